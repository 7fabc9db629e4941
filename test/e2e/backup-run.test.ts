/**
 * End to end: the synthesized backup-run state machine executed by the local runner with the
 * real worker and Lambda code, against throwaway databases and the local S3/SNS server,
 * IAM-true across two accounts (every call evaluated against the synthesized policies of the
 * role that makes it). Happy paths for PostgreSQL and MariaDB, then injected faults; each
 * fault must end as a failed execution in the expected state, with an SNS message, no ok
 * verification for the run, and every earlier verified run untouched.
 */
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { listRuns, readRun } from '../../lib/catalog/catalog';
import { parseConfig, type LifeboatConfig, type Source } from '../../lib/config';
import { manifestKey, runPrefix, verificationKey } from '../../lib/domain/layout';
import { parseManifest } from '../../lib/domain/manifest';
import { formatRunId } from '../../lib/domain/run-id';
import { startLocalAws, type LocalAws } from '../../local/aws';
import { LocalReplicator } from '../../local/replicator';
import { runLocalExecution, type LocalRunHooks, type LocalTarget } from '../../local/runner';
import { startMariaDb, type MariaDbServer } from '../../local/servers/mariadb';
import { startPostgres, type PgServer } from '../../local/servers/postgres';
import { tamperStoredObject } from '../../local/servers/s3';
import type { LocalStack } from '../../local/services';
import { getBytes, listKeys, sha256 } from '../harness/s3-objects';

const SHOP_SQL = `CREATE TABLE customers (id bigserial PRIMARY KEY, email text NOT NULL);
  INSERT INTO customers (email) SELECT 'c' || g || '@example.com' FROM generate_series(1, 20000) g;
  CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id bigint NOT NULL REFERENCES customers (id), note text NOT NULL);
  INSERT INTO orders (customer_id, note) SELECT 1 + g % 20000, md5(g::text) || md5((g * 7)::text) FROM generate_series(1, 100000) g;`;

const config: LifeboatConfig = parseConfig({
  primary: { region: 'eu-west-1', account: '111111111111' },
  offsite: { region: 'eu-central-1', account: '222222222222' },
  sources: [
    source('shop', 'postgres', 'tier1'),
    source('catalogue', 'mariadb', 'tier2'),
    source('bulky', 'postgres', 'tier3'),
    source('shrinking', 'postgres', 'tier2'),
    source('unreplicated', 'postgres', 'tier2'),
  ],
});

function source(name: string, engine: string, tier: string) {
  return {
    name, engine, tier,
    connection: { host: `${name}.db.internal`, database: 'shop', username: 'backup', passwordSecretArn: `arn:aws:secretsmanager:eu-west-1:111111111111:secret:${name}-AbCdEf` },
    network: { vpcId: 'vpc-0a1b2c3d', subnetIds: ['subnet-0a1b2c3d'], securityGroupIds: ['sg-0a1b2c3d'] },
  };
}

let aws: LocalAws;
let stack: LocalStack;
let pg: PgServer;
let maria: MariaDbServer;
let replicator: LocalReplicator;
let slot = Date.UTC(2026, 10, 26, 0, 0, 0);

beforeAll(async () => {
  [aws, pg, maria] = await Promise.all([startLocalAws({ config }), startPostgres(), startMariaDb()]);
  stack = aws.stack;
  await pg.createDatabase('shop');
  await pg.psql(SHOP_SQL, 'shop');
  await maria.sql(`CREATE DATABASE shop; USE shop; CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(40)) ENGINE=InnoDB;
    INSERT INTO items SELECT seq, CONCAT('item ', seq) FROM seq_1_to_5000;`);
  replicator = new LocalReplicator({
    source: stack.services.s3, sourceBucket: stack.services.primaryBucket, destination: stack.services.s3, destinationBucket: stack.services.offsiteBucket,
    intervalMs: 50, iam: { evaluator: aws.evaluator!, requests: aws.replicationRequests },
  });
  replicator.start();
}, 120_000);

afterAll(async () => {
  await replicator?.stop();
  await Promise.all([aws?.stop(), pg?.stop(), maria?.stop()]);
});

afterEach(() => {
  // IAM-true: nothing any role did in a test was denied.
  expect(aws.evaluator!.denials.map((decision) => `${decision.request.principal} ${decision.request.action} ${decision.request.resource}`)).toEqual([]);
});

const pgTarget = (server: PgServer = pg): LocalTarget => ({ host: server.host, port: server.port, username: server.user });
const sourceNamed = (name: string): Source => config.sources.find((candidate) => candidate.name === name) as Source;

async function execute(name: string, target: LocalTarget, hooks?: LocalRunHooks) {
  slot += 3600_000;
  const scheduledTime = new Date(slot);
  await stack.receiveAlarms(); // drain earlier messages
  const result = await runLocalExecution({ aws, source: sourceNamed(name), target, scheduledTime, hooks, offsitePollMs: 50 });
  const alarms = await stack.receiveAlarms();
  return { ...result, runId: formatRunId(scheduledTime), alarms };
}

/** Keys and checksums of every verified run of a source: must not change when a later run fails. */
async function verifiedRunsSnapshot(name: string): Promise<Record<string, string>> {
  const s3 = stack.services.s3;
  const snapshot: Record<string, string> = {};
  for (const run of await listRuns(s3, stack.services.primaryBucket, name)) {
    if (run.status !== 'verified') continue;
    for (const key of await listKeys(s3, stack.services.primaryBucket, runPrefix(name, run.runId))) {
      snapshot[key] = sha256(await getBytes(s3, stack.services.primaryBucket, key));
    }
  }
  return snapshot;
}

function failedState(result: Awaited<ReturnType<typeof execute>>): string | undefined {
  return result.history.rows.find((row) => row.state.endsWith(' failed'))?.state.replace(/ failed$/, '');
}

async function expectFailedRun(name: string, result: Awaited<ReturnType<typeof execute>>, state: string, error: RegExp, before: Record<string, string>) {
  expect(result.history.status).toBe('FAILED');
  expect(failedState(result)).toBe(state);
  expect(result.history.error?.name).toMatch(error);
  expect(result.alarms).toHaveLength(1);
  expect(result.alarms[0].message).toContain(name);
  expect(result.alarms[0].message).toContain(result.runId);
  expect(result.alarms[0].message).toContain(state);
  const run = await readRun(stack.services.s3, stack.services.primaryBucket, name, result.runId);
  expect(run.status).not.toBe('verified');
  expect(await verifiedRunsSnapshot(name)).toEqual(before);
}

describe('happy paths', () => {
  test('PostgreSQL: dumped, verified, committed, offsite confirmed, recorded', async () => {
    const result = await execute('shop', pgTarget());
    expect(result.history.status).toBe('SUCCEEDED');
    expect(result.history.rows.map((row) => row.state)).toEqual(expect.arrayContaining(['Dump', 'Verify', 'Commit', 'AwaitOffsite', 'Record', 'Backed up']));
    const run = await readRun(stack.services.s3, stack.services.primaryBucket, 'shop', result.runId);
    expect(run.status).toBe('verified');
    expect(run.verification?.verdict).toBe('ok');
    expect(run.offsite).toMatchObject({ source: 'shop', runId: result.runId, bucket: stack.services.offsiteBucket });
    expect(result.alarms).toEqual([]);
    expect(stack.events.events.some((event) => event.DetailType === 'Backup Verified' && event.Detail.runId === result.runId)).toBe(true);
    // The start heartbeat's event, put by the state machine before the dump, names the same run.
    const started = stack.events.events.filter((event) => event.DetailType === 'Backup Started' && event.Detail.runId === result.runId);
    expect(started).toEqual([expect.objectContaining({ Source: 'lifeboat', Detail: expect.objectContaining({ source: 'shop', execution: expect.any(String) }) })]);
    expect(result.history.rows.map((row) => row.state).slice(0, 4)).toEqual(['Start', 'Slot time given?', 'NameRun', 'AnnounceStart']);
    // The offsite bucket holds the same artifact bytes.
    const manifest = run.manifest as ReturnType<typeof parseManifest>;
    const replica = await getBytes(stack.services.s3, stack.services.offsiteBucket, manifest.artifacts[0].key);
    expect(sha256(replica)).toBe(manifest.artifacts[0].sha256);
  }, 60_000);

  test('MariaDB: the same run, with the SQL artifact', async () => {
    const result = await execute('catalogue', { host: maria.host, port: maria.port, username: maria.user });
    expect(result.history.status).toBe('SUCCEEDED');
    const run = await readRun(stack.services.s3, stack.services.primaryBucket, 'catalogue', result.runId);
    expect(run.status).toBe('verified');
    expect(run.manifest?.artifacts[0]).toMatchObject({ format: 'sql', compression: 'zstd:3' });
    expect(run.offsite).toBeDefined();
  }, 60_000);

  test('a retried schedule for a committed slot ends quietly and changes nothing', async () => {
    const first = await execute('shop', pgTarget());
    const before = await verifiedRunsSnapshot('shop');
    slot -= 3600_000; // the same slot again
    const again = await execute('shop', pgTarget());
    expect(again.runId).toBe(first.runId);
    expect(again.history.status).toBe('SUCCEEDED');
    expect(again.history.rows.map((row) => row.state)).toContain('Slot already committed');
    expect(again.alarms).toEqual([]);
    expect(await verifiedRunsSnapshot('shop')).toEqual(before);
  }, 60_000);
});

describe('faults', () => {
  const tamper = (change: (bytes: Buffer) => Buffer) => async ({ bucket, source: name, runId }: { bucket: string; source: string; runId: string }) => {
    const s3 = stack.services.s3;
    const manifest = parseManifest((await getBytes(s3, bucket, manifestKey(name, runId))).toString('utf8'));
    const { key, versionId } = manifest.artifacts[0];
    // In place: the version the manifest names is what every reader reads.
    await tamperStoredObject(stack.services.endpoint, { bucket, key, versionId }, change(await getBytes(s3, bucket, key)));
  };

  test('a bit flipped in the artifact before Verify: ChecksumMismatch', async () => {
    const before = await verifiedRunsSnapshot('shop');
    const result = await execute('shop', pgTarget(), {
      afterDump: tamper((bytes) => {
        const copy = Buffer.from(bytes);
        copy[Math.floor(copy.length / 2)] ^= 0x01;
        return copy;
      }),
    });
    await expectFailedRun('shop', result, 'Verify', /^ChecksumMismatch$/, before);
    const verification = await stack.services.s3.send(new GetObjectCommand({ Bucket: stack.services.primaryBucket, Key: verificationKey('shop', result.runId) }));
    expect(JSON.parse(await (verification.Body as { transformToString(): Promise<string> }).transformToString()).verdict).toBe('failed');
  }, 60_000);

  test('a truncated artifact: caught by Verify', async () => {
    const before = await verifiedRunsSnapshot('shop');
    const result = await execute('shop', pgTarget(), { afterDump: tamper((bytes) => bytes.subarray(0, Math.floor(bytes.length * 0.7))) });
    await expectFailedRun('shop', result, 'Verify', /^(SizeMismatch|ChecksumMismatch|ArchiveCorrupt)$/, before);
  }, 60_000);

  test('the database killed mid-dump: Dump fails after its retries', async () => {
    const victim = await startPostgres();
    try {
      await victim.createDatabase('shop');
      await victim.psql(`${SHOP_SQL} INSERT INTO orders (customer_id, note) SELECT 1 + g % 20000, md5(g::text) || md5((g * 3)::text) FROM generate_series(1, 1200000) g;`, 'shop');
      await execute('bulky', pgTarget(victim)); // an earlier verified run
      const before = await verifiedRunsSnapshot('bulky');
      expect(Object.keys(before).length).toBeGreaterThan(0);
      const result = await execute('bulky', pgTarget(victim), { duringDump: async () => victim.crash() });
      await expectFailedRun('bulky', result, 'Dump', /^(DumpFailed|SourceUnreachable)$/, before);
      expect(result.history.rows.find((row) => row.state === 'Dump')?.retries).toBe(2);
      expect(await listKeys(stack.services.s3, stack.services.primaryBucket, runPrefix('bulky', result.runId))).toEqual([]);
    } finally {
      await victim.stop();
    }
  }, 120_000);

  test('a dump that shrank by 90%: SuspiciousSize', async () => {
    const shrinking = await startPostgres();
    try {
      await shrinking.createDatabase('shop');
      await shrinking.psql(SHOP_SQL, 'shop');
      for (let i = 0; i < 3; i++) {
        const history = (await execute('shrinking', pgTarget(shrinking))).history;
        expect(`${history.status} ${history.error?.name ?? ''}: ${history.error?.cause ?? ''}`).toMatch(/^SUCCEEDED /);
      }
      const before = await verifiedRunsSnapshot('shrinking');
      await shrinking.psql('DELETE FROM orders WHERE id % 10 <> 0; VACUUM FULL orders;', 'shop');
      const result = await execute('shrinking', pgTarget(shrinking));
      await expectFailedRun('shrinking', result, 'Verify', /^SuspiciousSize$/, before);
      expect(result.alarms[0].message).toMatch(/median/i);
    } finally {
      await shrinking.stop();
    }
  }, 120_000);

  test('an offsite copy that never arrives: OffsiteMissing, the primary backup stays verified', async () => {
    const before = await verifiedRunsSnapshot('unreplicated');
    replicator.paused = true;
    try {
      const result = await execute('unreplicated', pgTarget());
      expect(result.history.status).toBe('FAILED');
      expect(failedState(result)).toBe('AwaitOffsite');
      expect(result.history.error?.name).toBe('OffsiteMissing');
      expect(result.alarms).toHaveLength(1);
      expect(result.alarms[0].message).toContain('unreplicated');
      // By design (docs/backup-run.md): the primary copy was verified and committed before
      // the offsite wait; the run counts as a backup, its offsite copy is what is missing.
      const run = await readRun(stack.services.s3, stack.services.primaryBucket, 'unreplicated', result.runId);
      expect(run.status).toBe('verified');
      expect(run.offsite).toBeUndefined();
      const after = await verifiedRunsSnapshot('unreplicated');
      for (const [key, digest] of Object.entries(before)) expect(after[key]).toBe(digest);
    } finally {
      replicator.paused = false;
    }
  }, 60_000);
});
