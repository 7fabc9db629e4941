/**
 * A managed RDS instance's automated backups replicated into the offsite region under the offsite
 * key of ANOTHER account, IAM-true across both accounts: the checks function of the synthesized
 * native shard, as its role, starts the replication with the offsite key (its alias ARN), and the
 * KMS requests that implies are allowed by the checks role's own policy and by the offsite key's
 * policy, which admits the checks roles by path. Without that key-policy statement the call is
 * denied, naming principal, action and key.
 */
import { parseConfig, type LifeboatConfig } from '../../lib/config';
import { IamEvaluator, IamModel, asPrincipal } from '../../local/iam';
import { synthApp } from '../../local/synth';
import { cloneApp, removeStatements } from '../fixtures/tamper';
import { FakeRds, mockRdsIamTrue, type RdsMock } from '../harness/rds';

const ACCOUNT = '111111111111';
const OFFSITE_ACCOUNT = '222222222222';
const REGION = 'eu-west-1';
const OFFSITE = 'eu-central-1';
const config: LifeboatConfig = parseConfig({
  primary: { region: REGION, account: ACCOUNT },
  offsite: { region: OFFSITE, account: OFFSITE_ACCOUNT },
  tiers: { tier1: { manageNativeBackups: true } },
  sources: [{
    name: 'orders', engine: 'postgres', tier: 'tier1',
    network: { vpcId: 'vpc-0a1b2c3d', subnetIds: ['subnet-0a1b2c3d'], securityGroupIds: ['sg-0a1b2c3d'] },
    connection: { host: 'orders-db.c9akciq32.eu-west-1.rds.amazonaws.com', database: 'orders', username: 'backup', passwordSecretArn: `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:orders-AbCdEf` },
  }],
});
const app = synthApp(config);

type Handler = (event: unknown, context: unknown) => Promise<unknown>;
const model = IamModel.fromApp(app);
const fn = [...model.functions.values()].find((candidate) => candidate.logicalId.startsWith('NativePitrChecksFunction'));
if (!fn) throw new Error('no native checks function in the templates');
const environment = (app.primary.resolve(app.primary.properties(fn.logicalId).Environment) as { Variables: Record<string, string> }).Variables;
let handler: Handler;
beforeAll(() => {
  const saved = { ...process.env };
  Object.assign(process.env, environment, { AWS_REGION: REGION, AWS_ACCESS_KEY_ID: 'AKIDLOCAL', AWS_SECRET_ACCESS_KEY: 'local' });
  try {
    ({ handler } = jest.requireActual<{ handler: Handler }>('../../lambdas/native-checks/handler'));
  } finally {
    process.env = saved;
  }
});

let mock: RdsMock | undefined;
afterEach(() => mock?.restore());

async function check(evaluator: IamEvaluator): Promise<{ fake: FakeRds; error?: Error }> {
  const fake = new FakeRds({ account: ACCOUNT, region: REGION, now: new Date() });
  fake.addInstance({ identifier: 'orders-db', backupRetentionPeriod: 35, storageEncrypted: true, kmsKeyId: `arn:aws:kms:${REGION}:${ACCOUNT}:key/1f2e3d4c-0000-4000-8000-000000000001` });
  mock = mockRdsIamTrue(fake, { evaluator });
  const writes = [jest.spyOn(process.stdout, 'write').mockImplementation(() => true), jest.spyOn(process.stderr, 'write').mockImplementation(() => true)];
  try {
    await asPrincipal(fn!.roleArn, () => handler({}, { functionName: 'native-checks', awsRequestId: 'r-1', getRemainingTimeInMillis: () => 60_000 }));
    return { fake };
  } catch (error) {
    return { fake, error: error as Error };
  } finally {
    for (const write of writes) write.mockRestore();
  }
}

test('the replication starts with the offsite account\'s key, allowed by both accounts\' policies', async () => {
  const evaluator = new IamEvaluator(model);
  const { fake, error } = await check(evaluator);
  expect(error).toBeUndefined();
  expect(evaluator.denials).toEqual([]);
  const [replication] = fake.replicationsOf('orders-db');
  expect(replication?.KmsKeyId).toBe(`arn:aws:kms:${OFFSITE}:${OFFSITE_ACCOUNT}:alias/lifeboat-offsite`);
  const kms = evaluator.decisions.filter((decision) => decision.request.action.startsWith('kms:')).map((decision) => decision.request.action).sort();
  expect(kms).toEqual(['kms:CreateGrant', 'kms:DescribeKey']);
});

test('without the offsite key\'s statement for the checks roles, the replication is denied naming the role, the action and the key', async () => {
  const tampered = cloneApp(app);
  removeStatements(tampered, { resource: 'OffsiteBackupsKey', statement: 'AllowRdsReplicationFromPrimaryChecks' });
  const evaluator = new IamEvaluator(IamModel.fromApp(tampered));
  const { fake, error } = await check(evaluator);
  expect(error?.message).toMatch(new RegExp(`is not authorized to perform: kms:(CreateGrant|DescribeKey) on resource: arn:aws:kms:${OFFSITE}:${OFFSITE_ACCOUNT}:key/`));
  expect(evaluator.denials[0]?.request.principal).toBe(fn!.roleArn);
  expect(fake.replicationsOf('orders-db')).toEqual([]);
});
