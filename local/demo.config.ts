import { defineConfig } from '../lib/config';

/**
 * The config `npm start` synthesizes and runs locally: one PostgreSQL source on tier1.
 * Locally the throwaway PostgreSQL stands in for the host named here.
 */
export default defineConfig({
  appName: 'Lifeboat',
  primary: { region: 'eu-west-1' },
  offsite: { region: 'eu-central-1' },
  sources: [
    {
      name: 'shop',
      engine: 'postgres',
      tier: 'tier1',
      connection: {
        host: 'shop.db.internal',
        database: 'shop',
        username: 'lifeboat_backup',
        passwordSecretArn: 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:lifeboat/shop-AbCdEf',
      },
      network: {
        vpcId: 'vpc-0a1b2c3d4e5f60718',
        subnetIds: ['subnet-0a1b2c3d4e5f60718'],
        securityGroupIds: ['sg-0a1b2c3d4e5f60718'],
      },
      sizeHint: '50MB',
    },
  ],
  notifications: { emails: ['oncall@example.com'] },
});
