/**
 * End to end: the RDS/Aurora point-in-time drill as deployed — the synthesized
 * `<app>-native-drill-<source>` state machine executed locally (local/runner.ts), every RDS call
 * made as its role and evaluated IAM-true against the synthesized policies before the fake RDS
 * (test/harness/rds.ts, at the SDK-client edge) answers it; the checker task as its task role.
 * RDS cannot run here: the instance a restore brings up is a stand-in, a throwaway PostgreSQL
 * restored from the source's latest verified logical dump (test/harness/rds-stand-in.ts), which
 * the fake's onAvailable hook points the drill instance's endpoint at.
 */
import { recentDrillReports } from '../../lib/catalog/drills';
import { parseConfig, type LifeboatConfig, type Source } from '../../lib/config';
import { formatRunId } from '../../lib/domain/run-id';
import { DRILL_TAG } from '../../lib/rds/drill-target';
import { startLocalAws, type LocalAws } from '../../local/aws';
import { asPrincipal } from '../../local/iam';
import { loadLocalHandlers, runLocalNativeDrillExecution } from '../../local/runner';
import { cloneApp, removeStatements } from '../fixtures/tamper';
import type { PgServer } from '../harness/postgres';
import { FakeRds, mockRdsIamTrue, type RdsMock, type RecordedRdsCall } from '../harness/rds';
import { dumpVerifiedRun, startSeededSource, startStandIn } from '../harness/rds-stand-in';

const ACCOUNT = '111111111111';
const REGION = 'eu-west-1';
const PASSWORD = 'backup-Pa55-from-the-secret';
const HOUR = 3_600_000;
const RUN_ID = formatRunId(new Date(Math.floor((Date.now() - 3 * HOUR) / HOUR) * HOUR));
// The target alternates with the execution's start date: day and month both even → a second of the window; else latest.
const TO_A_SECOND = new Date('2026-12-04T06:00:00Z');
const TO_LATEST = new Date('2026-12-03T06:00:00Z');

const network = { vpcId: 'vpc-0a1b2c3d', subnetIds: ['subnet-0a1b2c3d'], securityGroupIds: ['sg-0a1b2c3d'] };
const config: LifeboatConfig = parseConfig({
  primary: { region: REGION, account: ACCOUNT },
  offsite: { region: 'eu-central-1', account: '222222222222' },
  sources: [{
    // An RDS for PostgreSQL instance, read off its endpoint.
    name: 'ledger', engine: 'postgres', tier: 'tier1',
    connection: { host: 'ledger-db.c9akciq32.eu-west-1.rds.amazonaws.com', database: 'shop', username: 'backup', passwordSecretArn: `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:ledger-AbCdEf` },
    network,
    drillChecks: [{ name: 'customers restored', sql: 'SELECT count(*) = 1000 FROM public.customers' }],
  }, {
    // An Aurora PostgreSQL cluster, its drill instance of a configured class, in a drill security group.
    name: 'books', engine: 'postgres', tier: 'tier2',
    connection: { host: 'books.cluster-c9akciq32.eu-west-1.rds.amazonaws.com', database: 'shop', username: 'backup', passwordSecretArn: `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:books-AbCdEf` },
    network,
    rds: { drill: { instanceClass: 'db.t4g.medium', securityGroupIds: ['sg-0d0d0d0d'] } },
  }],
});
const ledger = config.sources.find((source) => source.name === 'ledger') as Source;
const books = config.sources.find((source) => source.name === 'books') as Source;

let aws: LocalAws;
let origin: PgServer;
const standIns = new Map<string, PgServer>();
let fake: FakeRds;
let mock: RdsMock;
let deniedBefore = 0;

beforeAll(async () => {
  [aws, origin] = await Promise.all([startLocalAws({ config }), startSeededSource('shop')]);
  const { s3, primaryBucket: bucket } = aws.services;
  for (const source of ['ledger', 'books']) {
    await dumpVerifiedRun({ s3, bucket, server: origin, database: 'shop', source, runId: RUN_ID });
    const standIn = await startStandIn({ s3, bucket, source, password: PASSWORD });
    // The backup user of the source, as the restored instance has it (a restore keeps the source's roles).
    await standIn.psql(`CREATE ROLE backup LOGIN PASSWORD '${PASSWORD}' IN ROLE pg_read_all_data`, 'shop');
    standIns.set(source, standIn);
  }
}, 240_000);

afterAll(async () => {
  await Promise.all([aws?.stop(), origin?.stop(), ...[...standIns.values()].map((server) => server.stop())]);
});

beforeEach(() => {
  fake = new FakeRds({ account: ACCOUNT, region: REGION, now: new Date('2026-12-04T22:00:00Z') });
  fake.addSubnetGroup('ledger-db-subnets');
  fake.addInstance({ identifier: 'ledger-db', instanceClass: 'db.r6g.large', backupRetentionPeriod: 35 });
  fake.addSubnetGroup('books-subnets');
  fake.addCluster({ identifier: 'books', engine: 'aurora-postgresql', backupRetentionPeriod: 30 });
  // A drill instance that comes up is the stand-in restored from its source's dump.
  fake.onAvailable = (instance) => {
    const source = /^lbd-(ledger|books)-/.exec(instance.DBInstanceIdentifier ?? '')?.[1];
    const standIn = source ? standIns.get(source) : undefined;
    return standIn ? { address: standIn.host, port: standIn.port } : undefined;
  };
  mock = mockRdsIamTrue(fake, { evaluator: aws.evaluator });
  deniedBefore = aws.evaluator?.denials.length ?? 0;
});

afterEach(() => mock.restore());

const newDenials = () => (aws.evaluator?.denials ?? []).slice(deniedBefore).map((denial) => `${denial.request.principal} ${denial.request.action} ${denial.request.resource}`);
/** Each drill in a second of its own: its report's key is the second of its restore call. */
const nextSecond = () => new Promise((resolve) => setTimeout(resolve, 1000 - (Date.now() % 1000) + 5));
const drill = async (source: Source, startTime: Date) => (await nextSecond(), runLocalNativeDrillExecution({
  aws, source, startTime,
  // What ECS injects from the source's secret; TLS off to the loopback stand-in.
  containerEnv: { LIFEBOAT_DB_PASSWORD: PASSWORD, LIFEBOAT_DB_TLS_MODE: 'disable' },
}));
const callsOf = (command: string): RecordedRdsCall[] => mock.calls.filter((call) => call.command === command);
const drillRole = (source: string) => aws.roles.stateMachine(`-native-drill-${source}`);
/** What is left of the drill: every instance and cluster but the sources, each deleting or gone. */
const leftovers = () => [
  ...fake.instanceIdentifiers().filter((id) => id.startsWith('lbd-')).map((id) => `${id} ${fake.describeInstance(id)?.DBInstanceStatus}`),
  ...callsOf('RestoreDBClusterToPointInTime').map((call) => String(call.input.DBClusterIdentifier))
    .filter((id) => fake.describeCluster(id) !== undefined).map((id) => `${id} ${fake.describeCluster(id)?.Status}`),
].filter((line) => !/ deleting$/.test(line));

test('a passing drill to a second of the window: restored into lbd-ledger-*, checked, reported with the measured RTO and the lazy-load scan time, then deleted', async () => {
  const before = Date.now();
  const result = await drill(ledger, TO_A_SECOND);
  expect(result.history.error).toBeUndefined();
  expect(result.history.status).toBe('SUCCEEDED');
  expect(newDenials()).toEqual([]);

  const [restore] = callsOf('RestoreDBInstanceToPointInTime');
  const drillId = String(restore.input.TargetDBInstanceIdentifier);
  expect(drillId).toMatch(/^lbd-ledger-[0-9a-f]{8}$/);
  expect(restore).toMatchObject({
    principal: drillRole('ledger'),
    input: {
      SourceDBInstanceIdentifier: 'ledger-db', DBInstanceClass: 'db.r6g.large', DBSubnetGroupName: 'ledger-db-subnets',
      VpcSecurityGroupIds: ['sg-0a1b2c3d'], PubliclyAccessible: false, MultiAZ: false, DeletionProtection: false,
      Tags: expect.arrayContaining([{ Key: DRILL_TAG, Value: 'ledger' }]),
    },
  });
  // A second of the window: inside [earliest, latest) of the source.
  const target = Date.parse(String(restore.input.RestoreTime));
  expect(restore.input.UseLatestRestorableTime).toBeUndefined();
  expect(target).toBeLessThan(fake.now.getTime() - 5 * 60_000);
  expect(target).toBeGreaterThanOrEqual(fake.now.getTime() - 35 * 24 * HOUR);

  const [report] = await recentDrillReports(aws.services.s3, aws.services.primaryBucket, 'ledger', 1);
  expect(report).toMatchObject({ verdict: 'ok', engine: 'rds-native', runId: RUN_ID, pitr: { target: new Date(target).toISOString().replace('.000Z', 'Z') } });
  expect(report.pitr?.set).toBe(`instance ledger-db → ${drillId}`);
  expect(report.checks.map((check) => [check.name, check.ok])).toEqual([['table-set', true], ['sql:customers restored', true], ['lazy-load-scan', true], ['rto', true]]);
  // Measured from the restore call (made during this execution) to the checks done.
  expect(Date.parse(report.startedAt)).toBeGreaterThanOrEqual(before - 1000);
  expect(report.measuredRtoSeconds).toBeGreaterThan(0);
  expect(report.measuredRtoSeconds).toBeLessThanOrEqual((Date.now() - before) / 1000 + 1);
  expect(report.timings.lazyLoadSeconds).toBeGreaterThan(0);
  expect(JSON.stringify(report)).not.toContain(PASSWORD);

  // Deleted without a final snapshot, as the drill role, after the check.
  const deletes = callsOf('DeleteDBInstance');
  expect(deletes.map((call) => [call.input.DBInstanceIdentifier, call.input.SkipFinalSnapshot, call.principal, call.error])).toEqual([[drillId, true, drillRole('ledger'), undefined]]);
  expect(mock.calls.findIndex((call) => call.command === 'DeleteDBInstance')).toBeGreaterThan(mock.calls.findIndex((call) => call.command === 'DescribeDBInstances' && call.input.DBInstanceIdentifier === drillId));
  expect(leftovers()).toEqual([]);
  expect(result.notifications).toEqual([]);
}, 120_000);

test('on an odd day the drill restores to latest', async () => {
  const result = await drill(ledger, TO_LATEST);
  expect(result.history.error).toBeUndefined();
  expect(result.history.status).toBe('SUCCEEDED');
  const [restore] = callsOf('RestoreDBInstanceToPointInTime');
  expect(restore.input).toMatchObject({ UseLatestRestorableTime: true });
  expect(restore.input.RestoreTime).toBeUndefined();
  const [report] = await recentDrillReports(aws.services.s3, aws.services.primaryBucket, 'ledger', 1);
  expect(report.pitr?.target).toBe('latest');
  expect(leftovers()).toEqual([]);
  expect(newDenials()).toEqual([]);
}, 120_000);

test('a failing check (a table missing from the restore): the drill fails TableSetMismatch, on the alarm topic, and the instance is deleted', async () => {
  const standIn = standIns.get('ledger') as PgServer;
  await standIn.psql('ALTER TABLE public.empty_table RENAME TO empty_table_moved', 'shop');
  try {
    const result = await drill(ledger, TO_LATEST);
    expect(result.history.status).toBe('FAILED');
    expect(result.history.error?.name).toBe('TableSetMismatch');
    expect(result.history.error?.cause).toContain('public.empty_table');
    const drillId = String(callsOf('RestoreDBInstanceToPointInTime')[0].input.TargetDBInstanceIdentifier);
    expect(callsOf('DeleteDBInstance').map((call) => [call.input.DBInstanceIdentifier, call.error])).toEqual([[drillId, undefined]]);
    expect(leftovers()).toEqual([]);
    const message = result.notifications.map((notification) => notification.message).join('\n');
    expect(message).toContain('TableSetMismatch');
    expect(message).toContain(`drill identifier ${drillId}; deleted: yes`);
    const [report] = await recentDrillReports(aws.services.s3, aws.services.primaryBucket, 'ledger', 1);
    expect(report).toMatchObject({ verdict: 'failed', error: { name: 'TableSetMismatch' } });
    expect(newDenials()).toEqual([]);
  } finally {
    await standIn.psql('ALTER TABLE public.empty_table_moved RENAME TO empty_table', 'shop');
  }
}, 120_000);

test('a restore API error (no capacity for the class): the drill fails with RDS\'s error as Step Functions names it, nothing is left, and it is told', async () => {
  fake.failNextRestore('InsufficientDBInstanceCapacityFault');
  const result = await drill(ledger, TO_LATEST);
  expect(result.history.status).toBe('FAILED');
  expect(result.history.error?.name).toBe('Rds.InsufficientDbInstanceCapacityException');
  expect(result.history.error?.cause).toContain('no capacity for the requested DB instance class');
  expect(callsOf('RestoreDBInstanceToPointInTime').map((call) => call.error)).toEqual(['InsufficientDBInstanceCapacityFault']);
  // The deletion still looked (a failed call may have left something): nothing to delete, so no delete was made.
  const drillId = String(callsOf('RestoreDBInstanceToPointInTime')[0].input.TargetDBInstanceIdentifier);
  expect(callsOf('DescribeDBInstances').filter((call) => call.input.DBInstanceIdentifier === drillId).map((call) => call.error)).toEqual(['DBInstanceNotFoundFault']);
  expect(callsOf('DeleteDBInstance')).toEqual([]);
  expect(fake.instanceIdentifiers()).toEqual(['ledger-db', 'books-1']);
  expect(callsOf('CreateDBInstance')).toEqual([]);
  expect(result.notifications.map((notification) => notification.message).join('\n')).toMatch(/RestoreLatest .*Rds\.InsufficientDbInstanceCapacityException/);
  expect(newDenials()).toEqual([]);
}, 120_000);

test('a timeout (the instance never becomes available): the drill fails DrillTimeout after its looks, and the instance is deleted', async () => {
  fake.describesUntilAvailable = Number.MAX_SAFE_INTEGER;
  const result = await drill(ledger, TO_LATEST);
  expect(result.history.status).toBe('FAILED');
  expect(result.history.error?.name).toBe('DrillTimeout');
  const drillId = String(callsOf('RestoreDBInstanceToPointInTime')[0].input.TargetDBInstanceIdentifier);
  expect(result.history.error?.cause).toContain(`the drill instance ${drillId} was not available after 120 looks 30s apart`);
  expect(result.history.error?.cause).toContain('last status creating');
  // 120 looks (the tier's RTO of an hour, at least, 30 s apart), then one before the delete.
  expect(callsOf('DescribeDBInstances').filter((call) => call.input.DBInstanceIdentifier === drillId)).toHaveLength(120 + 1);
  expect(callsOf('DeleteDBInstance').map((call) => [call.input.DBInstanceIdentifier, call.error])).toEqual([[drillId, undefined]]);
  expect(leftovers()).toEqual([]);
  expect(result.notifications.map((notification) => notification.message).join('\n')).toContain('DrillTimeout');
  expect(newDenials()).toEqual([]);
}, 180_000);

test('Aurora: RestoreDBClusterToPointInTime, then CreateDBInstance of the drill class in it; checked; the instance then the cluster deleted', async () => {
  const result = await drill(books, TO_A_SECOND);
  expect(result.history.error).toBeUndefined();
  expect(result.history.status).toBe('SUCCEEDED');
  expect(newDenials()).toEqual([]);
  const [restore] = callsOf('RestoreDBClusterToPointInTime');
  const clusterId = String(restore.input.DBClusterIdentifier);
  expect(clusterId).toMatch(/^lbd-books-[0-9a-f]{8}$/);
  expect(restore).toMatchObject({
    principal: drillRole('books'),
    input: { SourceDBClusterIdentifier: 'books', DBSubnetGroupName: 'books-subnets', VpcSecurityGroupIds: ['sg-0d0d0d0d'], Tags: expect.arrayContaining([{ Key: DRILL_TAG, Value: 'books' }]) },
  });
  expect(restore.input.RestoreToTime).toBeDefined();
  expect(restore.input.DBClusterInstanceClass).toBeUndefined();
  const [create] = callsOf('CreateDBInstance');
  expect(create.input).toMatchObject({
    DBClusterIdentifier: clusterId, DBInstanceIdentifier: `${clusterId}-1`, DBInstanceClass: 'db.t4g.medium', Engine: 'aurora-postgresql',
    Tags: expect.arrayContaining([{ Key: DRILL_TAG, Value: 'books' }]),
  });
  const [report] = await recentDrillReports(aws.services.s3, aws.services.primaryBucket, 'books', 1);
  expect(report).toMatchObject({ verdict: 'ok', engine: 'rds-native', pitr: { set: `cluster books → ${clusterId}` } });
  expect(report.timings.lazyLoadSeconds).toBeGreaterThan(0);
  const deletes = mock.calls.filter((call) => call.command.startsWith('Delete'));
  expect(deletes.map((call) => [call.command, call.input.DBInstanceIdentifier ?? call.input.DBClusterIdentifier, call.input.SkipFinalSnapshot, call.error])).toEqual([
    ['DeleteDBInstance', `${clusterId}-1`, true, undefined],
    ['DeleteDBCluster', clusterId, true, undefined],
  ]);
  expect(leftovers()).toEqual([]);
}, 120_000);

test('the drill role without its delete permission: the delete is denied naming principal, action and resource, the drill fails DrillCleanupFailed, and the janitor removes the leftover', async () => {
  const app = cloneApp(aws.app);
  await aws.stop();
  const policy = Object.keys(app.primary.template.Resources).find((id) => /NativeDrillledger.*StateMachineRoleDefaultPolicy/.test(id));
  expect(policy).toBeDefined();
  removeStatements(app, { resource: policy as string, statement: 'DeleteOnlyDrill' });
  aws = await startLocalAws({ config, app });
  mock.restore();
  mock = mockRdsIamTrue(fake, { evaluator: aws.evaluator });
  // This drill ran 7 hours ago (its instance's creation time is RDS's clock): the janitor's maximum age is 6 hours.
  fake.now = new Date(Date.now() - 7 * HOUR);

  const result = await drill(ledger, TO_LATEST);
  expect(result.history.status).toBe('FAILED');
  expect(result.history.error?.name).toBe('DrillCleanupFailed');
  const drillId = String(callsOf('RestoreDBInstanceToPointInTime')[0].input.TargetDBInstanceIdentifier);
  const role = drillRole('ledger');
  const resource = `arn:aws:rds:${REGION}:${ACCOUNT}:db:${drillId}`;
  expect(result.history.error?.cause).toContain(`User: ${role} is not authorized to perform: rds:DeleteDBInstance on resource: ${resource}`);
  expect(aws.evaluator?.denials.map((denial) => `${denial.request.principal} ${denial.request.action} ${denial.request.resource}`)).toEqual([`${role} rds:DeleteDBInstance ${resource}`]);
  expect(result.notifications.map((notification) => notification.message).join('\n')).toContain('DrillCleanupFailed');
  // The drill itself passed: its report says so.
  const [report] = await recentDrillReports(aws.services.s3, aws.services.primaryBucket, 'ledger', 1);
  expect(report.verdict).toBe('ok');
  expect(fake.describeInstance(drillId)?.DBInstanceStatus).toBe('available');

  // The hourly janitor, as its function's synthesized role, deletes the leftover (and nothing else).
  const janitor = [...aws.model.functions.values()].find((fn) => fn.origin.startsWith(`${aws.app.primary.stackName}/NativeDrillJanitor`));
  expect(janitor).toBeDefined();
  const handler = (await loadLocalHandlers(aws)).get(janitor?.arn as string);
  const context = { functionName: 'janitor', awsRequestId: 'local', getRemainingTimeInMillis: () => 300_000, callbackWaitsForEmptyEventLoop: false };
  const output = await asPrincipal(aws.model.functionRole(janitor?.arn as string), () => (handler as (event: unknown, ctx: unknown) => Promise<unknown>)({}, context));
  expect(output).toEqual([{ region: REGION, deleted: [drillId], young: [] }]);
  expect(fake.describeInstance(drillId)?.DBInstanceStatus).toBe('deleting');
  expect(fake.describeInstance('ledger-db')?.DBInstanceStatus).toBe('available');
  expect(aws.evaluator?.denials).toHaveLength(1);
}, 120_000);
