/**
 * The offsite copy of DB clusters' PITR (lib/rds/snapshot-copy.ts) against a fake RDS at the
 * SDK-client edge (test/harness/rds.ts): the primary account's step on FakeRds (both regions),
 * the offsite account's on a stub of what RDS answers that account (shared snapshots are
 * another account's, which one FakeRds does not hold).
 */
import {
  CopyDBClusterSnapshotCommand, DBClusterSnapshotAlreadyExistsFault, DeleteDBClusterSnapshotCommand, DescribeDBClusterSnapshotsCommand,
  KMSKeyNotAccessibleFault, RDSClient, type DBClusterSnapshot,
} from '@aws-sdk/client-rds';
import { mockClient } from 'aws-sdk-client-mock';
import { createRdsClient } from '../../lib/rds/client';
import {
  advanceOffsiteCopies, advancePrimaryCopies, copyName, copyTime, failureOf, parseClusterCopySources, publishOffsiteAges, STAGING_SECONDS,
  type ClusterCopySource, type PrimaryCopyDeps,
} from '../../lib/rds/snapshot-copy';
import { FakeRds, mockRdsIamTrue, type RdsMock } from '../harness/rds';

const PRIMARY_ACCOUNT = '111111111111';
const OFFSITE_ACCOUNT = '222222222222';
const PRIMARY = 'eu-west-1';
const OFFSITE = 'eu-central-1';
const OFFSITE_KEY = `arn:aws:kms:${OFFSITE}:${OFFSITE_ACCOUNT}:key/0f0e0d0c-0b0a-4909-8807-060504030201`;
const DAY = 86_400_000;
const HOUR = 3_600_000;
const credentials = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'not-a-secret' };
const rds = (region: string) => createRdsClient({ region, credentials, maxAttempts: 1 });

const orders: ClusterCopySource = { name: 'orders', identifier: 'orders-aurora', region: PRIMARY, retentionSeconds: 7 * 86_400 };

let fake: FakeRds;
let mock: RdsMock;
beforeEach(() => {
  fake = new FakeRds({ account: PRIMARY_ACCOUNT, region: PRIMARY, now: new Date('2026-12-04T05:00:00Z') });
  fake.addCluster({ identifier: 'orders-aurora', storageEncrypted: true, kmsKeyId: `arn:aws:kms:${PRIMARY}:${PRIMARY_ACCOUNT}:key/aaaa` });
  mock = mockRdsIamTrue(fake);
});
afterEach(() => mock.restore());

const deps = (account?: string): PrimaryCopyDeps => ({
  rds, primaryAccount: PRIMARY_ACCOUNT, now: fake.now, offsite: { region: OFFSITE, keyArn: OFFSITE_KEY, ...(account ? { account } : {}) },
});
const offsiteCopies = () => fake.clusterSnapshots(OFFSITE).filter((snapshot) => snapshot.SnapshotType === 'manual');
const callsOf = (command: string) => mock.calls.filter((call) => call.command === command && !call.error);

describe('names', () => {
  test('a copy is named by its source and the UTC minute of the automated snapshot, and read back only for that source', () => {
    const time = new Date('2026-12-03T03:07:41Z');
    expect(copyName('orders', time)).toBe('lifeboat-orders-202612030307');
    expect(copyTime('orders', 'lifeboat-orders-202612030307')).toEqual(new Date('2026-12-03T03:07:00Z'));
    expect(copyTime('orders', `arn:aws:rds:${OFFSITE}:${PRIMARY_ACCOUNT}:cluster-snapshot:lifeboat-orders-202612030307`)).toEqual(new Date('2026-12-03T03:07:00Z'));
    // Another source whose name starts the same, and anything else, is not this source's copy.
    expect(copyTime('orders', 'lifeboat-orders-eu-202612030307')).toBeUndefined();
    expect(copyTime('orders', 'rds:orders-aurora-2026-12-03-03-07')).toBeUndefined();
  });
});

describe('primary account', () => {
  test('copies the newest available automated snapshot into the offsite region, named, tagged and encrypted with the offsite key', async () => {
    fake.addAutomatedClusterSnapshot('orders-aurora', new Date('2026-12-02T03:10:00Z'));
    const newest = fake.addAutomatedClusterSnapshot('orders-aurora', new Date('2026-12-03T03:10:00Z'));
    fake.addAutomatedClusterSnapshot('orders-aurora', new Date('2026-12-04T03:10:00Z'), { status: 'creating' });

    const [report] = await advancePrimaryCopies(deps(), [orders]);

    expect(report).toMatchObject({ source: 'orders', action: 'copy-started', copied: 'lifeboat-orders-202612030310', newest: { identifier: newest.DBClusterSnapshotIdentifier } });
    const [copy] = callsOf('CopyDBClusterSnapshot');
    expect(copy.region).toBe(OFFSITE);
    expect(copy.input).toEqual({
      SourceDBClusterSnapshotIdentifier: newest.DBClusterSnapshotArn,
      TargetDBClusterSnapshotIdentifier: 'lifeboat-orders-202612030310',
      KmsKeyId: OFFSITE_KEY,
      CopyTags: true,
      Tags: [{ Key: 'lifeboat:source', Value: 'orders' }, { Key: 'lifeboat:copy-of', Value: newest.DBClusterSnapshotIdentifier }],
    });
    expect(offsiteCopies().map((snapshot) => [snapshot.DBClusterSnapshotIdentifier, snapshot.KmsKeyId])).toEqual([['lifeboat-orders-202612030310', OFFSITE_KEY]]);
    // No copy is available yet: no age, which the alarm counts as breaching.
    expect(report.offsiteAgeSeconds).toBeUndefined();
  });

  test('the real SDK presigns the cross-region copy: a PreSignedUrl for the source region, with the destination region and the offsite key', async () => {
    const newest = fake.addAutomatedClusterSnapshot('orders-aurora', new Date('2026-12-03T03:10:00Z'));
    await advancePrimaryCopies(deps(), [orders]);
    const [{ input }] = callsOf('CopyDBClusterSnapshot');
    mock.restore();
    // The copier's own request, through an unmocked client of the offsite region, stopped before it leaves the machine.
    const client = rds(OFFSITE);
    let body = '';
    client.middlewareStack.add((() => async (args: { request: { body: string } }) => {
      body = args.request.body;
      throw new Error('captured');
    }) as never, { step: 'finalizeRequest', priority: 'high' });
    await expect(client.send(new CopyDBClusterSnapshotCommand(input as never))).rejects.toThrow('captured');
    const form = new URLSearchParams(body);
    expect(form.get('Action')).toBe('CopyDBClusterSnapshot');
    expect(form.get('SourceDBClusterSnapshotIdentifier')).toBe(newest.DBClusterSnapshotArn);
    const presigned = new URL(form.get('PreSignedUrl') as string);
    expect(presigned.host).toBe(`rds.${PRIMARY}.amazonaws.com`);
    expect(presigned.searchParams.get('DestinationRegion')).toBe(OFFSITE);
    expect(presigned.searchParams.get('KmsKeyId')).toBe(OFFSITE_KEY);
    expect(presigned.searchParams.get('X-Amz-Credential')).toContain(`/${PRIMARY}/rds/aws4_request`);
  });

  test('idempotent: a second run copies nothing more, and reports the age once the copy is available', async () => {
    fake.addAutomatedClusterSnapshot('orders-aurora', new Date('2026-12-04T03:10:00Z'));
    await advancePrimaryCopies(deps(), [orders]);
    fake.advance(HOUR);
    const [second] = await advancePrimaryCopies(deps(), [orders]);
    fake.advance(HOUR);
    const [third] = await advancePrimaryCopies(deps(), [orders]);

    expect(callsOf('CopyDBClusterSnapshot')).toHaveLength(1);
    expect(second.action).toBe('copying');
    expect(third).toMatchObject({ action: 'up-to-date', newestCopy: { identifier: 'lifeboat-orders-202612040310' } });
    expect(third.offsiteAgeSeconds).toBe((fake.now.getTime() - Date.parse('2026-12-04T03:10:00Z')) / 1000);
  });

  test('an overlapping run that lost the race to copy (DBClusterSnapshotAlreadyExists) copies nothing and fails nothing', async () => {
    fake.addAutomatedClusterSnapshot('orders-aurora', new Date('2026-12-04T03:10:00Z'));
    fake.failNext('CopyDBClusterSnapshot', () => new DBClusterSnapshotAlreadyExistsFault({ message: 'DBClusterSnapshot lifeboat-orders-202612040310 already exists.', $metadata: {} }));
    const reports = await advancePrimaryCopies(deps(), [orders]);
    expect(reports[0]).toMatchObject({ action: 'copying' });
    expect(failureOf(reports)).toBeUndefined();
  });

  test('no automated snapshot yet: nothing copied, no age', async () => {
    const [report] = await advancePrimaryCopies(deps(), [orders]);
    expect(report).toMatchObject({ action: 'no-snapshot', shared: [], deleted: [] });
    expect(report.offsiteAgeSeconds).toBeUndefined();
    expect(callsOf('CopyDBClusterSnapshot')).toHaveLength(0);
  });

  test('one account: copies older than the retention are deleted, never the newest available one, nor one still copying', async () => {
    // Ten daily snapshots, each copied; then the cluster's snapshots stop (its newest copy gets old).
    for (let day = 0; day < 10; day += 1) {
      fake.addAutomatedClusterSnapshot('orders-aurora', new Date(fake.now.getTime() - HOUR));
      await advancePrimaryCopies(deps(), [orders]);
      fake.advance(DAY);
      await advancePrimaryCopies(deps(), [orders]);
    }
    const kept = offsiteCopies().filter((snapshot) => snapshot.Status === 'available');
    const oldest = Math.min(...kept.map((snapshot) => (copyTime('orders', snapshot.DBClusterSnapshotIdentifier as string) as Date).getTime()));
    expect(fake.now.getTime() - oldest).toBeLessThanOrEqual(orders.retentionSeconds * 1000 + DAY);
    expect(callsOf('DeleteDBClusterSnapshot').length).toBeGreaterThan(0);

    // Long past the retention with no new snapshot: the newest copy stays, alone.
    fake.advance(30 * DAY);
    const [report] = await advancePrimaryCopies(deps(), [orders]);
    expect(offsiteCopies().map((snapshot) => snapshot.DBClusterSnapshotIdentifier)).toEqual([report.newestCopy?.identifier]);
    expect(report.offsiteAgeSeconds).toBeGreaterThan(30 * 86_400);
    // Nothing but Lifeboat's copies was ever deleted.
    expect(callsOf('DeleteDBClusterSnapshot').every((call) => String(call.input.DBClusterSnapshotIdentifier).startsWith('lifeboat-orders-'))).toBe(true);
  });

  test('cross-account: the available staging copy is shared with the offsite account once, and staging copies go after 3 days (never the newest)', async () => {
    fake.addAutomatedClusterSnapshot('orders-aurora', new Date('2026-12-04T03:10:00Z'));
    const runs = [];
    for (let run = 0; run < 5; run += 1) {
      runs.push((await advancePrimaryCopies(deps(OFFSITE_ACCOUNT), [orders]))[0]);
      fake.advance(HOUR);
    }
    // Shared in the first run that finds the copy available, and never again.
    const first = runs.findIndex((report) => report.action === 'up-to-date');
    expect(first).toBeGreaterThan(0);
    expect(runs.map((report) => report.shared)).toEqual(runs.map((_report, index) => (index === first ? ['lifeboat-orders-202612040310'] : [])));
    const modifies = callsOf('ModifyDBClusterSnapshotAttribute');
    expect(modifies).toEqual([expect.objectContaining({
      region: OFFSITE, input: { DBClusterSnapshotIdentifier: 'lifeboat-orders-202612040310', AttributeName: 'restore', ValuesToAdd: [OFFSITE_ACCOUNT] },
    })]);

    // Four more days of daily snapshots: staging copies older than 3 days go, the rest stay shared.
    for (let day = 0; day < 4; day += 1) {
      fake.advance(DAY);
      fake.addAutomatedClusterSnapshot('orders-aurora', new Date(fake.now.getTime() - HOUR));
      await advancePrimaryCopies(deps(OFFSITE_ACCOUNT), [orders]);
      fake.advance(HOUR);
      await advancePrimaryCopies(deps(OFFSITE_ACCOUNT), [orders]);
    }
    const left = offsiteCopies().map((snapshot) => copyTime('orders', snapshot.DBClusterSnapshotIdentifier as string) as Date);
    expect(left.length).toBeGreaterThan(0);
    expect(left.every((time) => fake.now.getTime() - time.getTime() <= STAGING_SECONDS * 1000 + 2 * HOUR)).toBe(true);
    expect(callsOf('DeleteDBClusterSnapshot').map((call) => call.input.DBClusterSnapshotIdentifier)).toContain('lifeboat-orders-202612040310');
  });

  test('cross-account: with no new snapshot for ten days the newest staging copy stays (still shared)', async () => {
    fake.addAutomatedClusterSnapshot('orders-aurora', new Date('2026-12-03T03:10:00Z'));
    fake.addAutomatedClusterSnapshot('orders-aurora', new Date('2026-12-04T03:10:00Z'));
    for (let run = 0; run < 4; run += 1) {
      await advancePrimaryCopies(deps(OFFSITE_ACCOUNT), [orders]);
      fake.advance(HOUR);
    }
    fake.advance(10 * DAY);
    const [report] = await advancePrimaryCopies(deps(OFFSITE_ACCOUNT), [orders]);
    expect(offsiteCopies().map((snapshot) => snapshot.DBClusterSnapshotIdentifier)).toEqual(['lifeboat-orders-202612040310']);
    expect(report.newestCopy?.identifier).toBe('lifeboat-orders-202612040310');
  });

  test('the handler: reads its environment, runs the step with clients of both regions, and fails after every source, naming the failed one', async () => {
    fake.addCluster({ identifier: 'billing' });
    fake.addAutomatedClusterSnapshot('orders-aurora', new Date('2026-12-04T03:10:00Z'));
    fake.addAutomatedClusterSnapshot('billing', new Date('2026-12-04T03:20:00Z'));
    fake.failNext('CopyDBClusterSnapshot', () => new KMSKeyNotAccessibleFault({ message: `The specified KMS key ${OFFSITE_KEY} is disabled.`, $metadata: {} }));
    const env = {
      LIFEBOAT_SOURCES_JSON: JSON.stringify([orders, { ...orders, name: 'billing', identifier: 'billing' }]),
      LIFEBOAT_OFFSITE_REGION: OFFSITE, LIFEBOAT_OFFSITE_KEY_ARN: OFFSITE_KEY, LIFEBOAT_PRIMARY_ACCOUNT: PRIMARY_ACCOUNT,
      POWERTOOLS_METRICS_NAMESPACE: 'Lifeboat',
    };
    const saved = { ...process.env };
    Object.assign(process.env, env);
    const quiet = ['log', 'info', 'warn', 'error'].map((level) => jest.spyOn(console, level as 'log').mockImplementation(() => undefined));
    try {
      // Loaded here, once, after its environment is set (it reads it at load, as in Lambda), sharing the mocked SDK.
      const { handler } = jest.requireActual<{ handler: (event: unknown, context: unknown) => Promise<unknown> }>('../../lambdas/native-snapshot-copy/handler');
      await expect(handler({}, { functionName: 'copier', awsRequestId: 'r-1', getRemainingTimeInMillis: () => 60_000 }))
        .rejects.toMatchObject({ name: 'SnapshotCopyFailed', message: expect.stringContaining('orders (KMSKeyNotAccessibleFault') });
      // billing was copied all the same, in the offsite region.
      expect(callsOf('CopyDBClusterSnapshot').map((call) => [call.region, call.input.TargetDBClusterSnapshotIdentifier])).toEqual([[OFFSITE, 'lifeboat-billing-202612040320']]);
    } finally {
      for (const spy of quiet) spy.mockRestore();
      process.env = saved;
    }
  });

  test.each([
    ['not JSON', '[', /not JSON/],
    ['an empty list', '[]', /LIFEBOAT_SOURCES_JSON/],
    ['a source without its cluster', JSON.stringify([{ name: 'orders', region: PRIMARY, retentionSeconds: 1 }]), /0\.identifier/],
  ])('the handler\'s sources fail fast when %s', (_what, text, message) => {
    expect(() => parseClusterCopySources(text)).toThrow(message);
  });

  test('one source failing (the offsite key disabled) does not stop the others; the run fails after, naming it', async () => {
    fake.addCluster({ identifier: 'billing' });
    fake.addAutomatedClusterSnapshot('billing', new Date('2026-12-04T03:20:00Z'));
    fake.addAutomatedClusterSnapshot('orders-aurora', new Date('2026-12-04T03:10:00Z'));
    fake.failNext('CopyDBClusterSnapshot', () => new KMSKeyNotAccessibleFault({ message: `The specified KMS key ${OFFSITE_KEY} is disabled.`, $metadata: {} }));
    const billing: ClusterCopySource = { name: 'billing', identifier: 'billing', region: PRIMARY, retentionSeconds: 30 * 86_400 };

    const reports = await advancePrimaryCopies(deps(), [orders, billing]);

    expect(reports.map((report) => [report.source, report.error?.name, report.action])).toEqual([
      ['orders', 'KMSKeyNotAccessibleFault', 'no-snapshot'],
      ['billing', undefined, 'copy-started'],
    ]);
    const failure = failureOf(reports);
    expect(failure?.name).toBe('SnapshotCopyFailed');
    expect(failure?.message).toContain('orders (KMSKeyNotAccessibleFault: The specified KMS key');
  });

  test('NativeOffsiteAgeSeconds per source with an available copy, dimension source only; none without', () => {
    const published: { dimensions: Record<string, string>; name: string; value: number }[] = [];
    let dimensions: Record<string, string> = {};
    const metrics = {
      clearDefaultDimensions: () => undefined,
      addDimension: (name: string, value: string) => { dimensions[name] = value; },
      addMetadata: () => undefined,
      addMetric: (name: string, _unit: unknown, value: number) => { published.push({ dimensions: { ...dimensions }, name, value }); },
      publishStoredMetrics: () => { dimensions = {}; },
    };
    publishOffsiteAges([
      { source: 'orders', action: 'up-to-date', shared: [], deleted: [], offsiteAgeSeconds: 7_200, newestCopy: { identifier: 'lifeboat-orders-202612040310', time: '2026-12-04T03:10:00.000Z' } },
      { source: 'billing', action: 'no-snapshot', shared: [], deleted: [] },
    ], metrics as never);
    expect(published).toEqual([{ dimensions: { source: 'orders' }, name: 'NativeOffsiteAgeSeconds', value: 7_200 }]);
  });
});

describe('offsite account', () => {
  const stagingArn = (name: string) => `arn:aws:rds:${OFFSITE}:${PRIMARY_ACCOUNT}:cluster-snapshot:${name}`;
  const KEY = `arn:aws:kms:${OFFSITE}:${OFFSITE_ACCOUNT}:key/1111`;
  /** RDS as the offsite account sees it: the primary's shared snapshots, and its own, which copies create. */
  function offsiteRds(shared: string[], own: { id: string; status?: string }[]) {
    const stub = mockClient(RDSClient);
    const mine = new Map(own.map((snapshot) => [snapshot.id, snapshot.status ?? 'available']));
    const shape = (id: string, status: string, type: string): DBClusterSnapshot => ({
      DBClusterSnapshotIdentifier: id, DBClusterSnapshotArn: id.startsWith('arn:') ? id : `arn:aws:rds:${OFFSITE}:${OFFSITE_ACCOUNT}:cluster-snapshot:${id}`,
      DBClusterIdentifier: 'orders-aurora', SnapshotType: type, Status: status, StorageEncrypted: true, Engine: 'aurora-postgresql',
      SnapshotCreateTime: new Date('2026-12-04T04:00:00Z'),
    });
    stub.on(DescribeDBClusterSnapshotsCommand, { SnapshotType: 'shared', IncludeShared: true })
      .callsFake(() => ({ DBClusterSnapshots: shared.map((name) => shape(stagingArn(name), 'available', 'shared')) }));
    stub.on(DescribeDBClusterSnapshotsCommand, { SnapshotType: 'manual' })
      .callsFake(() => ({ DBClusterSnapshots: [...mine].map(([id, status]) => shape(id, status, 'manual')) }));
    stub.on(CopyDBClusterSnapshotCommand).callsFake((input: { TargetDBClusterSnapshotIdentifier: string }) => {
      if (mine.has(input.TargetDBClusterSnapshotIdentifier)) throw new DBClusterSnapshotAlreadyExistsFault({ message: 'exists', $metadata: {} });
      mine.set(input.TargetDBClusterSnapshotIdentifier, 'copying');
      return { DBClusterSnapshot: shape(input.TargetDBClusterSnapshotIdentifier, 'copying', 'manual') };
    });
    stub.on(DeleteDBClusterSnapshotCommand).callsFake((input: { DBClusterSnapshotIdentifier: string }) => {
      mine.delete(input.DBClusterSnapshotIdentifier);
      return {};
    });
    return { stub, mine };
  }

  beforeEach(() => mock.restore());

  test('copies each shared staging copy it has not copied yet into its own account with its key; a second run copies nothing', async () => {
    const { stub, mine } = offsiteRds(['lifeboat-orders-202612030310', 'lifeboat-orders-202612040310', 'lifeboat-billing-202612040300'], [{ id: 'lifeboat-orders-202612030310' }]);
    try {
      const now = new Date('2026-12-04T05:00:00Z');
      const [report] = await advanceOffsiteCopies({ rds: rds(OFFSITE), primaryAccount: PRIMARY_ACCOUNT, keyArn: KEY, now }, [{ name: 'orders', retentionSeconds: 30 * 86_400 }]);
      const copies = stub.commandCalls(CopyDBClusterSnapshotCommand).map((call) => call.args[0].input);
      expect(copies).toEqual([{
        SourceDBClusterSnapshotIdentifier: stagingArn('lifeboat-orders-202612040310'),
        TargetDBClusterSnapshotIdentifier: 'lifeboat-orders-202612040310',
        KmsKeyId: KEY,
        Tags: [{ Key: 'lifeboat:source', Value: 'orders' }, { Key: 'lifeboat:copy-of', Value: stagingArn('lifeboat-orders-202612040310') }],
      }]);
      expect(report).toMatchObject({ action: 'copy-started', newestCopy: { identifier: 'lifeboat-orders-202612030310' }, offsiteAgeSeconds: 26 * 3600 - 600 });

      mine.set('lifeboat-orders-202612040310', 'available');
      const [second] = await advanceOffsiteCopies({ rds: rds(OFFSITE), primaryAccount: PRIMARY_ACCOUNT, keyArn: KEY, now }, [{ name: 'orders', retentionSeconds: 30 * 86_400 }]);
      expect(stub.commandCalls(CopyDBClusterSnapshotCommand)).toHaveLength(1);
      expect(second).toMatchObject({ action: 'up-to-date', offsiteAgeSeconds: 6_600 });
    } finally {
      stub.restore();
    }
  });

  test('deletes its own copies older than the retention, never the newest, and copies no staging copy already past it', async () => {
    const { stub, mine } = offsiteRds(['lifeboat-orders-202610010300'], [{ id: 'lifeboat-orders-202610020300' }, { id: 'lifeboat-orders-202610030300' }, { id: 'lifeboat-orders-202612010300' }]);
    try {
      const now = new Date('2026-12-04T05:00:00Z');
      const [report] = await advanceOffsiteCopies({ rds: rds(OFFSITE), primaryAccount: PRIMARY_ACCOUNT, keyArn: KEY, now }, [{ name: 'orders', retentionSeconds: 30 * 86_400 }]);
      expect(stub.commandCalls(CopyDBClusterSnapshotCommand)).toHaveLength(0);
      expect(report.deleted.map((gone) => gone.identifier)).toEqual(['lifeboat-orders-202610020300', 'lifeboat-orders-202610030300']);
      expect([...mine.keys()]).toEqual(['lifeboat-orders-202612010300']);

      // Long past the retention, the newest copy stays.
      const [later] = await advanceOffsiteCopies({ rds: rds(OFFSITE), primaryAccount: PRIMARY_ACCOUNT, keyArn: KEY, now: new Date('2027-06-01T00:00:00Z') }, [{ name: 'orders', retentionSeconds: 30 * 86_400 }]);
      expect(later.deleted).toEqual([]);
      expect([...mine.keys()]).toEqual(['lifeboat-orders-202612010300']);
    } finally {
      stub.restore();
    }
  });

  test('a snapshot shared by another account is not copied', async () => {
    const { stub } = offsiteRds([], []);
    stub.on(DescribeDBClusterSnapshotsCommand, { SnapshotType: 'shared', IncludeShared: true }).resolves({
      DBClusterSnapshots: [{ DBClusterSnapshotIdentifier: `arn:aws:rds:${OFFSITE}:333333333333:cluster-snapshot:lifeboat-orders-202612040310`, DBClusterSnapshotArn: `arn:aws:rds:${OFFSITE}:333333333333:cluster-snapshot:lifeboat-orders-202612040310`, Status: 'available', SnapshotType: 'shared', SnapshotCreateTime: new Date() }],
    });
    try {
      const [report] = await advanceOffsiteCopies({ rds: rds(OFFSITE), primaryAccount: PRIMARY_ACCOUNT, keyArn: KEY, now: new Date('2026-12-04T05:00:00Z') }, [{ name: 'orders', retentionSeconds: 30 * 86_400 }]);
      expect(report.action).toBe('no-snapshot');
      expect(stub.commandCalls(CopyDBClusterSnapshotCommand)).toHaveLength(0);
    } finally {
      stub.restore();
    }
  });
});
