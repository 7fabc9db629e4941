/**
 * `lifeboat restore SOURCE --at TIME|latest --target-dir DIR` (cli/restore-pitr.ts) on real
 * components (test/harness/pitr.ts: PostgreSQL 15 archiving through pgBackRest 2.45 into the
 * local S3 server behind a TLS front): a full backup, then two batches of writes with the time
 * between them recorded and every table's digest taken after each; the CLI restores to that time
 * and to the latest WAL, each restored directory started again and compared equal to the
 * snapshot of that moment. Refused before anything is touched: a time before the window (naming
 * it), a non-empty directory (left as it was), a bad --at, a source without PITR.
 */
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { restoreCommand } from '../../cli/restore';
import { drillReportKey } from '../../lib/domain/layout';
import { serializeDrillReport } from '../../lib/domain/drill-report';
import { PITR_DRILL_ENGINE } from '../../lib/pitr/restore-at';
import { pgTableDigests } from '../harness/digests';
import { startPitrStack, type PitrStack } from '../harness/pitr';
import { startPostgres, type PgServer } from '../harness/postgres';
import { delay } from '../harness/processes';
import { TEST_CREDENTIALS } from '../harness/s3';

let stack: PitrStack;
let s3: S3Client;
let configFile: string;
let fullStarted: Date;
let between: Date;
let afterFull: Record<string, string>;
let atEnd: Record<string, string>;
const started: PgServer[] = [];

/** The source's clock, in ms since the epoch. */
const sourceNow = async () => Number((await stack.source.psql('SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint')).trim());

beforeAll(async () => {
  stack = await startPitrStack();
  s3 = stack.s3.client();
  await stack.seed(`CREATE TABLE orders (id int PRIMARY KEY, item text NOT NULL, qty int NOT NULL);
    INSERT INTO orders SELECT g, md5(g::text), g % 7 FROM generate_series(1, 3000) g;
    CREATE TABLE events (id serial PRIMARY KEY, note text NOT NULL);`);
  fullStarted = new Date(await sourceNow());
  await stack.runner.backup({ type: 'full' });
  await stack.source.psql(`INSERT INTO orders SELECT g, md5(g::text), 1 FROM generate_series(3001, 4000) g;
    INSERT INTO events (note) VALUES ('after the full');`, 'shop');
  afterFull = await pgTableDigests(stack.source, 'shop');
  // After every commit so far, before the next: the digests above are the state at this time.
  between = new Date((await sourceNow()) + 1);
  await delay(100);
  await stack.source.psql(`UPDATE orders SET qty = qty + 100 WHERE id <= 500; DELETE FROM orders WHERE id > 3900;
    INSERT INTO events (note) VALUES ('the second batch');`, 'shop');
  atEnd = await pgTableDigests(stack.source, 'shop');
  // A WAL switch that reaches the repository: the archive holds every commit above.
  await stack.runner.check();

  configFile = join(stack.work, 'lifeboat.json');
  writeFileSync(configFile, JSON.stringify({
    primary: { region: 'us-east-1', account: '111111111111' }, offsite: { region: 'eu-central-1', account: '111111111111' },
    sources: [
      {
        name: 'orders', engine: 'postgres', tier: 'tier1', method: 'pitr',
        pitr: { host: { instanceId: 'i-0a1b2c3d4e5f60718' }, stanza: stack.stanza, dataDirectory: stack.source.dataDir, osUser: stack.source.user },
        connection: { host: 'orders.example.internal', database: 'shop', username: 'backup', passwordSecretArn: 'arn:aws:secretsmanager:us-east-1:111111111111:secret:orders-AbCdEf' },
        network: { vpcId: 'vpc-0a1b2c3d' },
      },
      {
        name: 'billing', engine: 'postgres', tier: 'tier1',
        connection: { host: 'billing.example.internal', database: 'billing', username: 'backup', passwordSecretArn: 'arn:aws:secretsmanager:us-east-1:111111111111:secret:billing-AbCdEf' },
        network: { vpcId: 'vpc-0a1b2c3d' },
      },
    ],
  }));
}, 240_000);

afterAll(async () => {
  await Promise.all(started.map((server) => server.stop()));
  s3?.destroy();
  await stack?.stop();
});

/** The CLI as an operator runs it, against the harness's bucket; pgBackRest through the TLS front. */
async function restore(source: string, at: string, dir: string, extra: string[] = []) {
  const out: string[] = [];
  let err = '';
  const code = await restoreCommand([
    source, '--at', at, '--target-dir', dir, '--config', configFile, '--bucket', stack.bucket, '--region', stack.repository.region,
    '--repo-endpoint', `https://${stack.front.host}:${stack.front.port}`, '--repo-ca-file', stack.repository.caFile as string, ...extra,
  ], {}, { s3, log: (line) => out.push(line), stderr: { write: (text: string) => (err += text) } });
  const text = out.join('\n');
  // The operator's secret never reaches a line the command prints.
  expect(`${text}\n${err}`).not.toContain(TEST_CREDENTIALS.secretAccessKey);
  return { code, out: text, err };
}

async function digestsOf(dir: string) {
  // The restored directory starts as a primary on its own: no recovery left, no restore_command needed.
  const server = await startPostgres({ existingDataDir: dir });
  started.push(server);
  expect((await server.psql('SELECT pg_is_in_recovery()')).trim()).toBe('f');
  return pgTableDigests(server, 'shop');
}

test('to a time between two batches of writes: the plan first, then each phase timed, and the directory holds what the source held then', async () => {
  const dir = join(stack.work, 'restore-at-between');
  const { code, out, err } = await restore('orders', between.toISOString(), dir);
  expect(err).toBe('');
  expect(code).toBe(0);
  const lines = out.split('\n');
  // The plan comes before anything is restored.
  expect(lines[0]).toBe(`plan: restore orders to ${between.toISOString()} from s3://${stack.bucket}/pitr/orders/ (primary, us-east-1; stanza orders)`);
  expect(out).toMatch(/^ {2}set {7}\d{8}-\d{6}F \(full, .+; .+ in the repository\)$/m);
  expect(out).toMatch(/^ {2}WAL {7}[0-9A-F]{24} to [0-9A-F]{24}: \d+ segment\(s\), .+ to replay at most$/m);
  expect(out).toMatch(/^ {2}window {4}\S+Z to \S+Z$/m);
  expect(out).toContain('  estimate  none: no PITR drill of orders has been reported yet');
  expect(out).toMatch(new RegExp(`^ {2}into {6}${dir} \\(a new directory(, as postgres)?\\), PostgreSQL 15$`, 'm'));
  expect(lines.findIndex((line) => line.startsWith('plan:'))).toBeLessThan(lines.findIndex((line) => line.startsWith('restore ')));
  expect(out).toMatch(/^restore {3}pgbackrest restore --set=\d{8}-\d{6}F --type=time --target=".+\+00" --target-action=promote: [\d.]+ s$/m);
  expect(out).toMatch(/^replay {4}PostgreSQL 15 \(.+\) on 127\.0\.0\.1:\d+: recovery ended, promoted: [\d.]+ s$/m);
  expect(out).toMatch(/^confirm {3}recovery stopped before a commit at .+; the last replayed commit was at .+, target .+; stopped cleanly \(shut down\): [\d.]+ s$/m);
  expect(out).toMatch(new RegExp(`^restored orders to ${between.toISOString().replace(/\./g, '\\.')} into ${dir} in [\\d.]+ s: plan [\\d.]+ s, restore [\\d.]+ s, replay\\+start [\\d.]+ s, confirm [\\d.]+ s$`, 'm'));
  expect(out).toMatch(new RegExp(`^to start it: sudo -u postgres /usr/lib/postgresql/15/bin/pg_ctl -D ${dir} -l ${dir}\\.log start$`, 'm'));
  // Stopped cleanly: no postmaster left on the directory.
  expect(existsSync(join(dir, 'postmaster.pid'))).toBe(false);
  expect(await digestsOf(dir)).toEqual(afterFull);
  expect(afterFull).not.toEqual(atEnd);
}, 180_000);

test('to latest: replayed to the end of the archive, equal to the source after the last batch', async () => {
  const dir = join(stack.work, 'restore-at-latest');
  mkdirSync(dir);
  if (stack.owner) chownSync(dir, stack.owner.uid, stack.owner.gid);
  const { code, out, err } = await restore('orders', 'latest', dir);
  expect(err).toBe('');
  expect(code).toBe(0);
  expect(out).toContain('plan: restore orders to latest (the end of the archive)');
  expect(out).toMatch(/^restore {3}pgbackrest restore --set=\S+ --type=default \(to the end of the archive\): [\d.]+ s$/m);
  expect(out).toMatch(/^confirm {3}recovery replayed to [0-9A-F]+\/[0-9A-F]+ \(segment [0-9A-F]{24}\); the archive's newest segment was [0-9A-F]{24}; the last replayed commit was at .+; stopped cleanly/m);
  expect(await digestsOf(dir)).toEqual(atEnd);
}, 180_000);

test('a time before the window is refused naming the window, and nothing is created', async () => {
  const dir = join(stack.work, 'restore-at-too-early');
  const early = new Date(fullStarted.getTime() - 3_600_000);
  const { code, out, err } = await restore('orders', early.toISOString(), dir);
  expect(code).toBe(2);
  expect(out).toBe('');
  expect(err).toMatch(new RegExp(`^restore failed: InvalidInput: restore orders --at: target ${early.toISOString().replace(/\./g, '\\.')} is before the restorable window ` +
    `\\(the window is \\S+Z to \\S+Z; valid: a time in it, or 'latest'\\)\n$`));
  expect(existsSync(dir)).toBe(false);
}, 60_000);

test('a non-empty target directory is refused and left untouched', async () => {
  const dir = join(stack.work, 'restore-at-occupied');
  mkdirSync(dir);
  writeFileSync(join(dir, 'keep.txt'), 'not the restore\'s');
  const { code, out, err } = await restore('orders', 'latest', dir);
  expect(code).toBe(1);
  expect(out).toBe('');
  expect(err).toBe(`--target-dir: ${dir} is not empty (1 entry, e.g. keep.txt): a restore writes only into an empty directory or a new one; nothing was touched\n`);
  expect(readdirSync(dir)).toEqual(['keep.txt']);
  expect(readFileSync(join(dir, 'keep.txt'), 'utf8')).toBe('not the restore\'s');
  // A file where the directory should be: refused too.
  const file = join(stack.work, 'restore-at-file');
  writeFileSync(file, 'a file');
  const onFile = await restore('orders', 'latest', file);
  expect(onFile.code).toBe(2);
  expect(onFile.err).toContain(`--target-dir: ${file} exists and is not a directory`);
  expect(readFileSync(file, 'utf8')).toBe('a file');
});

test.each([
  ['a word', 'yesterday'],
  ['a time without its zone', '2026-12-03T15:44:15'],
  ['an impossible date', '2026-02-30T10:00:00Z'],
  ['microseconds', '2026-12-03T15:44:15.123456Z'],
])('--at %s is refused, naming the flag, the value and what is valid', async (_what, value) => {
  const dir = join(stack.work, 'restore-at-bad');
  const { code, out, err } = await restore('orders', value, dir);
  expect(code).toBe(2);
  expect(out).toBe('');
  expect(err).toContain(`--at: "${value}" is not valid (valid: an ISO-8601 time with its zone, to the millisecond at most, e.g. 2026-12-03T15:44:15Z or 2026-12-03T16:44:15.250+01:00; or latest)`);
  expect(existsSync(dir)).toBe(false);
});

test('--at with --target-dir on a source without PITR is refused, saying how its runs are restored', async () => {
  const { code, err } = await restore('billing', 'latest', join(stack.work, 'restore-at-billing'));
  expect(code).toBe(2);
  expect(err).toContain('source billing has no point-in-time recovery (methods: logical): --at with --target-dir restores a PITR source; restore a logical run with --target-url URL [--at TIME | --run ID] instead');
});

test('the estimate is the last PITR drill report\'s; --dry-run prints the plan and writes nothing', async () => {
  const drillId = '20261203T120000Z';
  await s3.send(new PutObjectCommand({
    Bucket: stack.bucket, Key: drillReportKey('orders', drillId), ContentType: 'application/json',
    Body: serializeDrillReport({
      schemaVersion: 1, lifeboatVersion: '0.1.0', source: 'orders', drillId, runId: drillId, from: 'primary', engine: PITR_DRILL_ENGINE,
      startedAt: '2026-12-03T12:00:00.000Z', finishedAt: '2026-12-03T12:01:00.000Z',
      timings: { downloadSeconds: 0, restoreSeconds: 41.5, checkSeconds: 8.5 }, measuredRtoSeconds: 50, rtoTargetSeconds: 3600, checks: [], verdict: 'ok',
    }),
  }));
  const dir = join(stack.work, 'restore-at-dry-run');
  const { code, out, err } = await restore('orders', 'latest', dir, ['--dry-run']);
  expect(err).toBe('');
  expect(code).toBe(0);
  expect(out).toContain(`  estimate  ~50.0 s from the last PITR drill (${drillId}, ok: restore 41.5 s, download 0.0 s, checks 8.5 s), against the tier's RTO of`);
  expect(out.split('\n').at(-1)).toBe('dry run: nothing was written');
  expect(existsSync(dir)).toBe(false);
}, 60_000);
