/**
 * The native PITR checks (lib/rds/native-checks.ts) against the fake RDS: each finding names the
 * source, the value and the required one; a healthy source has none; a managed source is fixed
 * (retention raised, replication started with the offsite key) and an unmanaged one is never
 * touched; nothing is ever shortened; metrics per source, clusters without the offsite age.
 */
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { RDSServiceException } from '@aws-sdk/client-rds';
import { createRdsClient } from '../../lib/rds/client';
import {
  failureOf, measureNative, nativeCheckSource, nativeOffsiteThresholdSeconds, nativeRpoThresholdSeconds, parseNativeSources, publishNative,
  serializeNativeSources, type NativeCheckSource, type NativeMeasure, type NativeMetrics,
} from '../../lib/rds/native-checks';
import { FakeRds, mockRdsIamTrue, type RdsMock } from '../harness/rds';
import { parseConfig } from '../../lib/config';

const PRIMARY = 'eu-west-1';
const OFFSITE = 'eu-central-1';
const OFFSITE_KEY = 'arn:aws:kms:eu-central-1:111111111111:key/0f0e0d0c-0b0a-4909-8807-060504030201';
const MIN = 60;

const orders: NativeCheckSource = { name: 'orders', kind: 'instance', identifier: 'orders-db', region: PRIMARY, requiredWindowDays: 14, rpoSeconds: 15 * MIN, manage: false };
const ledger: NativeCheckSource = { name: 'ledger', kind: 'cluster', identifier: 'ledger', region: PRIMARY, requiredWindowDays: 7, rpoSeconds: 3_600, manage: false };

let fake: FakeRds;
let rds: RdsMock;
const clients = new Map<string, ReturnType<typeof createRdsClient>>();
const client = (region: string) => clients.get(region) ?? clients.set(region, createRdsClient({ region })).get(region)!;

beforeEach(() => {
  fake = new FakeRds({ region: PRIMARY });
  rds = mockRdsIamTrue(fake);
});
afterEach(() => rds.restore());

const measure = async (...sources: NativeCheckSource[]): Promise<NativeMeasure[]> =>
  measureNative({ rds: client, sources, offsite: { region: OFFSITE, keyArn: OFFSITE_KEY }, now: fake.now });
const one = async (source: NativeCheckSource) => (await measure(source))[0];
const changes = () => rds.calls.filter((call) => !call.command.startsWith('Describe')).map((call) => call.command);

/** A healthy instance: 14 days, encrypted, replicated to the offsite region. */
function healthyOrders(): void {
  fake.addInstance({ identifier: 'orders-db', backupRetentionPeriod: 14, storageEncrypted: true, kmsKeyId: 'arn:aws:kms:eu-west-1:111111111111:key/primary' });
  fake.addReplication('orders-db', OFFSITE, { kmsKeyId: OFFSITE_KEY, retention: 14, startedAt: new Date(fake.now.getTime() - 86_400_000) });
}

describe('findings', () => {
  test('a healthy instance has none, and its window and offsite copy are measured', async () => {
    healthyOrders();
    const result = await one(orders);
    expect(result.problems).toEqual([]);
    expect(result).toMatchObject({
      found: true, retentionDays: 14, retentionShortfallDays: 0, restorableAgeSeconds: 5 * MIN,
      latestRestorableTime: new Date(fake.now.getTime() - 5 * MIN * 1000), earliestRestorableTime: expect.any(Date),
      replication: { region: OFFSITE, status: 'replicating', ageSeconds: 15 * MIN },
    });
    expect(changes()).toEqual([]);
  });

  test('a healthy cluster has none; its window is the cluster\'s', async () => {
    fake.addCluster({ identifier: 'ledger', backupRetentionPeriod: 7 });
    const result = await one(ledger);
    expect(result.problems).toEqual([]);
    expect(result).toMatchObject({ found: true, retentionDays: 7, retentionShortfallDays: 0, restorableAgeSeconds: 5 * MIN, earliestRestorableTime: expect.any(Date) });
    expect(result.replication).toBeUndefined();
  });

  test('retention too short: the source, the value and the required days, and the command; nothing changed when unmanaged', async () => {
    healthyOrders();
    fake.setRetention('orders-db', 3);
    const result = await one(orders);
    expect(result.retentionShortfallDays).toBe(11);
    expect(result.problems).toEqual([
      `orders: backup retention period of instance orders-db is 3 days, the tier requires 14 (manageNativeBackups is off: aws rds modify-db-instance --db-instance-identifier orders-db --backup-retention-period 14 --apply-immediately --region ${PRIMARY})`,
    ]);
    expect(changes()).toEqual([]);
    expect(fake.describeInstance('orders-db')?.BackupRetentionPeriod).toBe(3);
  });

  test('LatestRestorableTime older than the RPO: the time, its age and the RPO', async () => {
    healthyOrders();
    fake.stallRestorable('orders-db');
    const stalled = new Date(fake.now);
    fake.advance(3_600_000);
    const result = await measure(orders);
    expect(result[0].restorableAgeSeconds).toBe(3_600);
    expect(result[0].problems).toContain(`orders: LatestRestorableTime of instance orders-db is ${stalled.toISOString()}, 60 min old; the tier's RPO allows 15 min`);
  });

  test('an RPO under 15 minutes is held at 15: LatestRestorableTime normally trails by 5', async () => {
    healthyOrders();
    const result = await one({ ...orders, rpoSeconds: 60 });
    expect(result.problems).toEqual([]);
    expect(nativeRpoThresholdSeconds(60)).toBe(15 * MIN);
  });

  test('replication stopped: the status, not replicating', async () => {
    healthyOrders();
    fake.replicationStopped('orders-db');
    const result = await one(orders);
    expect(result.replication).toMatchObject({ status: 'missing' });
    expect(result.problems).toEqual([expect.stringMatching(`^orders: automated backups of orders-db are not replicated to the offsite region ${OFFSITE} \\(manageNativeBackups is off: aws rds start-db-instance-automated-backups-replication --source-db-instance-arn arn:aws:rds:${PRIMARY}:111111111111:db:orders-db --backup-retention-period 14 --kms-key-id <offsite key ARN> --region ${OFFSITE}\\)$`)]);
  });

  test('replication stopped silently by a disabled key: the copy\'s end, its age and the most allowed', async () => {
    healthyOrders();
    fake.advance(3_600_000);
    fake.disableKey(OFFSITE_KEY);
    const frozen = new Date(fake.now);
    fake.advance(3 * 3_600_000);
    const result = await one(orders);
    expect(result.replication).toMatchObject({ status: 'replicating', ageSeconds: 3 * 3_600 });
    expect(result.problems).toEqual([
      `orders: the automated backups of orders-db replicated to ${OFFSITE} end at ${frozen.toISOString()}, 3 h old; at most 75 min is allowed (a disabled or inaccessible KMS key stops replication silently)`,
    ]);
  });

  test('an instance that does not exist is a finding, without metrics', async () => {
    const result = await one(orders);
    expect(result).toMatchObject({ found: false, problems: [`orders: DB instance orders-db not found in ${PRIMARY} (its window cannot be checked)`] });
    const published = record([result]);
    expect(published).toEqual([]);
  });

  test('backups off: no point-in-time recovery, and not turned on even when managed (it restarts the instance)', async () => {
    fake.addInstance({ identifier: 'orders-db', backupRetentionPeriod: 0 });
    const result = await one({ ...orders, manage: true });
    expect(result.problems[0]).toMatch(/^orders: backup retention period of instance orders-db is 0 days, the tier requires 14: automated backups are off.*restarts the instance/);
    expect(result.problems).toContain('orders: instance orders-db has no LatestRestorableTime (no point-in-time recovery), the tier\'s RPO is 15 min');
    expect(changes()).toEqual([]);
  });

  test('an RDS error is the source\'s error (and the invocation\'s failure), the other sources are still measured', async () => {
    healthyOrders();
    fake.addCluster({ identifier: 'ledger' });
    fake.failNext('DescribeDBInstances', () => new RDSServiceException({ name: 'Throttling', $fault: 'client', $metadata: { httpStatusCode: 400 }, message: 'Rate exceeded' }));
    const results = await measure(orders, ledger);
    expect(results[0].error).toEqual({ name: 'Throttling', message: 'Rate exceeded' });
    expect(results[1].problems).toEqual([]);
    expect(failureOf(results)).toMatchObject({ name: 'NativeCheckFailed', message: 'native PITR checks failed for orders (Throttling: Rate exceeded)' });
    expect(failureOf([results[1]])).toBeUndefined();
  });
});

describe('managed sources', () => {
  test('retention raised to the required days and replication started with the offsite key; the next check is clean', async () => {
    fake.addInstance({ identifier: 'orders-db', backupRetentionPeriod: 3, storageEncrypted: true, kmsKeyId: 'arn:aws:kms:eu-west-1:111111111111:key/primary' });
    const managed = { ...orders, manage: true };
    const first = await one(managed);
    expect(first.actions).toEqual([
      'orders: backup retention period raised from 3 to 14 days (ModifyDBInstance, ApplyImmediately)',
      `orders: automated backups of orders-db replication to ${OFFSITE} started (14 days, offsite key)`,
    ]);
    expect(first.problems).toEqual([]);
    expect(first.retentionShortfallDays).toBe(0);
    expect(rds.calls.filter((call) => !call.command.startsWith('Describe'))).toEqual([
      expect.objectContaining({ command: 'ModifyDBInstance', region: PRIMARY, input: { DBInstanceIdentifier: 'orders-db', BackupRetentionPeriod: 14, ApplyImmediately: true } }),
      expect.objectContaining({
        command: 'StartDBInstanceAutomatedBackupsReplication', region: OFFSITE,
        input: { SourceDBInstanceArn: `arn:aws:rds:${PRIMARY}:111111111111:db:orders-db`, BackupRetentionPeriod: 14, KmsKeyId: OFFSITE_KEY },
      }),
    ]);
    // Pending while RDS makes the first copy: neither a finding nor an age (the offsite alarm waits on missing data).
    const second = await one(managed);
    expect(second).toMatchObject({ problems: [], actions: [], replication: { status: 'pending' } });
    expect(second.replication?.ageSeconds).toBeUndefined();
    fake.advance(3_600_000);
    const third = await one(managed);
    expect(third).toMatchObject({ problems: [], actions: [], replication: { status: 'replicating', ageSeconds: 15 * MIN } });
    expect(changes()).toHaveLength(2);
  });

  test('an unencrypted instance replicates without a key', async () => {
    fake.addInstance({ identifier: 'orders-db', backupRetentionPeriod: 14 });
    await one({ ...orders, manage: true });
    expect(rds.calls.find((call) => call.command === 'StartDBInstanceAutomatedBackupsReplication')?.input).toEqual({
      SourceDBInstanceArn: `arn:aws:rds:${PRIMARY}:111111111111:db:orders-db`, BackupRetentionPeriod: 14,
    });
  });

  test('never shortens: a longer retention stays; a stalled replication is reported, not restarted', async () => {
    healthyOrders();
    fake.setRetention('orders-db', 30);
    fake.disableKey(OFFSITE_KEY);
    fake.advance(4 * 3_600_000);
    const result = await one({ ...orders, manage: true });
    expect(result.retentionDays).toBe(30);
    expect(result.problems).toEqual([expect.stringContaining('stops replication silently')]);
    expect(changes()).toEqual([]);
  });

  test('a cluster\'s retention raised with ModifyDBCluster', async () => {
    fake.addCluster({ identifier: 'ledger', backupRetentionPeriod: 1 });
    const result = await one({ ...ledger, manage: true });
    expect(result.actions).toEqual(['ledger: backup retention period raised from 1 to 7 days (ModifyDBCluster, ApplyImmediately)']);
    expect(fake.describeCluster('ledger')?.BackupRetentionPeriod).toBe(7);
  });
});

interface Published { source: string; metrics: Record<string, [string, number]>; metadata: Record<string, string> }

/** What publishNative hands Powertools, one entry per published document. */
function record(measures: NativeMeasure[]): Published[] {
  const published: Published[] = [];
  let current: Published = { source: '', metrics: {}, metadata: {} };
  const recorder: NativeMetrics = {
    clearDefaultDimensions: () => undefined,
    addDimension: (name, value) => { if (name === 'source') current.source = value; else throw new Error(`unexpected dimension ${name}`); },
    addMetric: (name, unit, value) => { current.metrics[name] = [unit, value]; },
    addMetadata: (key, value) => { current.metadata[key] = value; },
    publishStoredMetrics: () => { published.push(current); current = { source: '', metrics: {}, metadata: {} }; },
  };
  publishNative(measures, recorder);
  return published;
}

describe('metrics', () => {
  test('per source, dimension source only: shortfall, restorable age, and the offsite age for instances only', async () => {
    healthyOrders();
    fake.setRetention('orders-db', 10);
    fake.addCluster({ identifier: 'ledger', backupRetentionPeriod: 7 });
    const published = record(await measure(orders, ledger));
    expect(published).toEqual([
      {
        source: 'orders',
        metrics: { NativeRetentionShortfallDays: [MetricUnit.Count, 4], NativeRestorableAgeSeconds: [MetricUnit.Seconds, 300], NativeOffsiteAgeSeconds: [MetricUnit.Seconds, 900] },
        metadata: expect.objectContaining({ identifier: 'instance:orders-db', offsiteStatus: 'replicating', latestRestorableTime: expect.any(String) }),
      },
      {
        source: 'ledger',
        metrics: { NativeRetentionShortfallDays: [MetricUnit.Count, 0], NativeRestorableAgeSeconds: [MetricUnit.Seconds, 300] },
        metadata: expect.objectContaining({ identifier: 'cluster:ledger' }),
      },
    ]);
  });

  test('thresholds: the offsite copy of an instance may trail RPO + 1 h, a cluster\'s daily copy 2 days', () => {
    expect(nativeOffsiteThresholdSeconds('instance', 15 * MIN)).toBe(75 * MIN);
    expect(nativeOffsiteThresholdSeconds('instance', 4 * 3_600)).toBe(5 * 3_600);
    expect(nativeOffsiteThresholdSeconds('cluster', 15 * MIN)).toBe(2 * 86_400);
  });
});

describe('the environment', () => {
  test('round trip, compact (manage only when true)', () => {
    const json = serializeNativeSources([orders, { ...ledger, manage: true }]);
    expect(json).toBe('[{"name":"orders","kind":"instance","id":"orders-db","region":"eu-west-1","days":14,"rpo":900},{"name":"ledger","kind":"cluster","id":"ledger","region":"eu-west-1","days":7,"rpo":3600,"manage":true}]');
    expect(parseNativeSources(json)).toEqual([orders, { ...ledger, manage: true }]);
  });

  test('every problem named at once', () => {
    expect(() => parseNativeSources('[{"name":"orders","kind":"db","id":"x","region":"eu-west-1","days":40,"rpo":900}]'))
      .toThrow(/\[0\.kind\].*; \[0\.days\]/);
    expect(() => parseNativeSources('not json')).toThrow(/LIFEBOAT_NATIVE_SOURCES_JSON is not JSON/);
  });

  test('from a resolved config source', () => {
    const [source] = parseConfig({
      primary: { region: PRIMARY }, offsite: { region: OFFSITE },
      sources: [{
        name: 'orders', engine: 'postgres', tier: 'tier1',
        connection: { host: 'orders-db.c9akciq32.eu-west-1.rds.amazonaws.com', database: 'orders', username: 'backup', passwordSecretArn: 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:orders-AbCdEf' },
        network: { vpcId: 'vpc-0a1b2c3d', subnetIds: ['subnet-0a1b2c3d'], securityGroupIds: ['sg-0a1b2c3d'] },
      }],
    }).sources;
    expect(nativeCheckSource(source)).toEqual({
      name: 'orders', kind: 'instance', identifier: 'orders-db', region: PRIMARY, requiredWindowDays: source.tier.pitrWindowDays, rpoSeconds: source.tier.rpoSeconds,
      manage: source.tier.manageNativeBackups,
    });
  });
});
