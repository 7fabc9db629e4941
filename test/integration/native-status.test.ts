/**
 * `lifeboat status` of RDS/Aurora sources: each one's own point-in-time window (earliest and
 * latest restorable time, its age, the retention against the tier's window) read from RDS as the
 * operator role, IAM-true; RDS is the fake at the SDK edge (test/harness/rds.ts), the bucket the
 * local stack's.
 */
import { parseConfig, type LifeboatConfig } from '../../lib/config';
import { createRdsClient } from '../../lib/rds/client';
import { readNativeWindow } from '../../lib/rds/window';
import { renderStatus, sourceStatuses, type NativeWindowReader } from '../../cli/status';
import { startLocalAws, type LocalAws } from '../../local/aws';
import { asPrincipal } from '../../local/iam';
import { FakeRds, mockRdsIamTrue, type RdsMock } from '../harness/rds';

const connection = (host: string) => ({
  host, database: 'orders', username: 'backup', passwordSecretArn: 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:orders-AbCdEf',
});
const network = { vpcId: 'vpc-0a1b2c3d', subnetIds: ['subnet-0a1b2c3d'], securityGroupIds: ['sg-0a1b2c3d'] };
const config: LifeboatConfig = parseConfig({
  primary: { region: 'eu-west-1', account: '111111111111' },
  offsite: { region: 'eu-central-1', account: '222222222222' },
  sources: [
    { name: 'orders', engine: 'postgres', tier: 'tier1', connection: connection('orders-db.c9akciq32.eu-west-1.rds.amazonaws.com'), network },
    { name: 'ledger', engine: 'postgres', tier: 'tier1', connection: connection('ledger.cluster-c9akciq32.eu-west-1.rds.amazonaws.com'), network },
  ],
});

let aws: LocalAws;
let fake: FakeRds;
let mock: RdsMock;
const client = createRdsClient({ region: 'eu-west-1', credentials: { accessKeyId: 'AKIDLOCAL', secretAccessKey: 'local' } });
const reader: NativeWindowReader = (rds, now) => readNativeWindow(client, rds, now);

beforeAll(async () => {
  aws = await startLocalAws({ config });
  fake = new FakeRds({ now: new Date() });
  mock = mockRdsIamTrue(fake, { evaluator: aws.evaluator });
  // orders: healthy (35 days kept, the latest point 5 minutes old). ledger: 7 days kept, its logs stalled 2 hours ago.
  fake.addInstance({ identifier: 'orders-db', backupRetentionPeriod: 35 });
  fake.addCluster({ identifier: 'ledger', backupRetentionPeriod: 7 });
  fake.stallRestorable('ledger', new Date(fake.now.getTime() - 2 * 3_600_000));
}, 60_000);

afterAll(async () => {
  mock?.restore();
  client.destroy();
  await aws?.stop();
});

test('the window of each source, and what breaks its tier, as the operator role', async () => {
  const statuses = await asPrincipal(aws.roles.operator, () => sourceStatuses(aws.services.s3, aws.services.primaryBucket, config.sources, fake.now, reader));
  const [orders, ledger] = statuses;
  expect(orders.native?.window).toMatchObject({ retentionDays: 35, ageSeconds: 300, status: 'available' });
  expect(orders.reasons.filter((reason) => reason.startsWith('native:'))).toEqual([]);
  expect(ledger.reasons.filter((reason) => reason.startsWith('native:'))).toEqual([
    'native: backup retention 7 day(s), tier tier1 requires 35',
    'native: latest restorable time 2h old, beyond the RPO (15m)',
  ]);
  const text = renderStatus(statuses);
  expect(text).toContain('orders: native point-in-time recovery of the RDS DB instance orders-db (eu-west-1), available');
  // The instance is 30 days old: its window reaches back to its first backup.
  expect(text).toMatch(/^ {2}window: \d{4}-\d\d-\d\dT[\d:.]+Z → \d{4}-\d\d-\d\dT[\d:.]+Z \(29d 23h\)$/m);
  expect(text).toContain('  latest restorable: 5m old / RPO 15m; backup retention 35 day(s) / 35 required');
  expect(text).toContain('ledger: native point-in-time recovery of the RDS DB cluster ledger (eu-west-1), available');
  expect(text).toContain('  latest restorable: 2h old / RPO 15m; backup retention 7 day(s) / 35 required');
  // The instance's earliest point is its automated backups' restore window, read as the operator too.
  expect(mock.calls.filter((call) => call.principal === aws.roles.operator).map((call) => call.command).sort())
    .toEqual(['DescribeDBClusters', 'DescribeDBInstanceAutomatedBackups', 'DescribeDBInstances']);
  expect(aws.evaluator?.denials).toEqual([]);
});

test('a source RDS does not know is a reason, not a crash; an instance outside the config is denied to the operator', async () => {
  const lost = { ...config.sources[0], rds: { ...config.sources[0].rds!, identifier: 'orders-db-old' } };
  const [status] = await asPrincipal(aws.roles.operator, () => sourceStatuses(aws.services.s3, aws.services.primaryBucket, [lost], fake.now, reader));
  expect(status.reasons).toContainEqual(expect.stringContaining(
    `native: window not read (AccessDenied: User: ${aws.roles.operator} is not authorized to perform: rds:DescribeDBInstances on resource: arn:aws:rds:eu-west-1:111111111111:db:orders-db-old because no identity-based policy allows the rds:DescribeDBInstances action`,
  ));
  expect(renderStatus([status])).toContain('orders: native point-in-time recovery of the RDS DB instance orders-db-old (eu-west-1): not read (AccessDenied: ');
});

test('without a reader (a local stack) nothing is read from RDS', async () => {
  const before = mock.calls.length;
  const [status] = await asPrincipal(aws.roles.operator, () => sourceStatuses(aws.services.s3, aws.services.primaryBucket, [config.sources[0]], fake.now));
  expect(status.native).toBeUndefined();
  expect(mock.calls.length).toBe(before);
});
