import { defineConfig } from './lib/config';

/**
 * The example strategy: an orders database on PostgreSQL protected as tier1, and a
 * MariaDB catalogue database as tier2 with a longer retention. Select another file with
 * `npx cdk synth -c config=path/to/file.ts` (or .json).
 */
export default defineConfig({
  appName: 'Lifeboat',
  primary: { region: 'eu-west-1', account: '111111111111' },
  offsite: { region: 'eu-central-1', account: '222222222222', storageClass: 'GLACIER_IR' },
  // Compliance offsite: no one, the offsite account's root user included, can shorten a lock
  // there before its date (so a test deployment's objects stay, and bill, for their retention).
  objectLock: { mode: 'governance', offsiteMode: 'compliance' },
  tiers: {
    // Every field of a default tier can be overridden; here tier2 keeps 60 days.
    tier2: { retention: '60d' },
  },
  sources: [
    {
      name: 'orders',
      engine: 'postgres',
      tier: 'tier1',
      connection: {
        host: 'orders.cluster-abc123.eu-west-1.rds.amazonaws.com',
        database: 'orders',
        username: 'lifeboat_backup',
        passwordSecretArn: 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:lifeboat/orders-AbCdEf',
      },
      network: {
        vpcId: 'vpc-0a1b2c3d4e5f60718',
        subnetIds: ['subnet-0a1b2c3d4e5f60718', 'subnet-1a1b2c3d4e5f60718'],
        securityGroupIds: ['sg-0a1b2c3d4e5f60718'],
      },
      sizeHint: '20GB',
      dumpThroughputHint: '120MB',
    },
    {
      // Self-managed MariaDB with point-in-time recovery: its binary logs archived over the
      // replication protocol (log_bin, binlog_format=ROW, REPLICATION SLAVE and BINLOG MONITOR),
      // its dumps recording their coordinates as the bases of a restore to any second.
      name: 'catalogue',
      engine: 'mariadb',
      method: ['logical', 'pitr'],
      tier: 'tier2',
      connection: {
        host: 'catalogue.db.internal',
        databases: ['catalogue', 'pricing'],
        username: 'lifeboat_backup',
        passwordSecretArn: 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:lifeboat/catalogue-AbCdEf',
      },
      network: {
        vpcId: 'vpc-0a1b2c3d4e5f60718',
        subnetIds: ['subnet-0a1b2c3d4e5f60718'],
        securityGroupIds: ['sg-1a1b2c3d4e5f60718'],
      },
      sizeHint: '5GB',
    },
    {
      // Self-managed PostgreSQL on EC2 with point-in-time recovery: pgBackRest on the host
      // (lifeboat pitr setup ledger prints its setup), WAL archived continuously for the RPO.
      name: 'ledger',
      engine: 'postgres',
      tier: 'tier1',
      method: 'pitr',
      // marker: Lifeboat writes the time into lifeboat.pitr_marker every 5 minutes, and each PITR
      // drill checks the restore holds exactly what it should (and the archive never idles).
      pitr: { host: { instanceId: 'i-0a1b2c3d4e5f60718' }, dataDirectory: '/var/lib/postgresql/15/main', marker: true },
      connection: {
        host: 'ledger.db.internal',
        database: 'ledger',
        username: 'lifeboat_backup',
        passwordSecretArn: 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:lifeboat/ledger-AbCdEf',
      },
      network: {
        vpcId: 'vpc-0a1b2c3d4e5f60718',
        subnetIds: ['subnet-0a1b2c3d4e5f60718'],
        securityGroupIds: ['sg-2a1b2c3d4e5f60718'],
      },
    },
  ],
  notifications: {
    emails: ['oncall@example.com'],
    httpsEndpoints: ['https://events.example.com/lifeboat'],
    heartbeatUrls: ['https://hc-ping.example.com/lifeboat-orders'],
  },
});
