/**
 * The local stack as a newcomer uses it, each step its own `lifeboat` process, as the README
 * shows: local up, run, list, verify (primary and offsite), restore from offsite, drill,
 * status, local down — then up again, the runs still there, and down --purge. The restore is
 * compared with the source table by table: row count and an ordered digest of the content.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { stopPersistentS3 } from '../harness/s3';
import { startPostgres, type PgServer } from '../harness/postgres';

const REPO = path.resolve(__dirname, '../..');
const BIN = path.join(REPO, 'bin/lifeboat-cli.js');
const SEED = readFileSync(path.join(REPO, 'local/demo-seed.sql'), 'utf8');

let dir: string;
let source: PgServer;
let target: PgServer;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'lifeboat-local-stack-'));
  [source, target] = await Promise.all([startPostgres(), startPostgres()]);
  await source.createDatabase('orders');
  await source.psql(`${SEED}\nINSERT INTO public.customers (email, name, created_at) VALUES ('only-here@example.com', 'Näher Ünïcode', '2026-12-01');`, 'orders');
}, 60_000);

afterAll(async () => {
  // Whatever happened above, no server is left behind.
  await stopPersistentS3(path.join(dir, 's3')).catch(() => undefined);
  await Promise.all([source?.stop(), target?.stop()]);
  rmSync(dir, { recursive: true, force: true });
});

/** One `lifeboat` command, as a process of its own (the Node that runs the tests: 22). */
function lifeboat(...args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: REPO,
      env: { ...process.env, LIFEBOAT_LOCAL_DIR: dir, LIFEBOAT_DB_PASSWORD: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out }));
  });
}

/** Per table: its row count and an md5 of its rows in order. */
async function digests(server: PgServer, database: string): Promise<Record<string, string>> {
  const tables = (await server.psql(`SELECT format('%I.%I', schemaname, tablename) FROM pg_tables
    WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1`, database)).split('\n').filter(Boolean);
  const result: Record<string, string> = {};
  for (const table of tables) {
    result[table] = (await server.psql(`SELECT count(*) || ' ' || md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) FROM ${table} t`, database)).trim();
  }
  return result;
}

test('local up, run, list, verify, restore --from offsite, drill, status, local down: separate commands on one stack', async () => {
  const up = await lifeboat('local', 'up');
  expect(up.out).toMatch(/local stack up: http:\/\/127\.0\.0\.1:\d+ \(pid \d+\), data in /);
  expect(up.code).toBe(0);
  expect((await lifeboat('local', 'up')).out).toContain('local stack already up');

  const run = await lifeboat('run', 'orders', '--local', '--target-url', `postgres://${source.user}@${source.host}:${source.port}`);
  expect(run.out).toMatch(/Execution SUCCEEDED in/);
  expect(run.out).toMatch(/IAM-true: \d+ AWS calls by \d+ roles evaluated .*: none denied/);
  expect(run.code).toBe(0);
  const runId = /Execution orders-(\d{8}T\d{6}Z)/.exec(run.out)?.[1] as string;
  expect(runId).toBeDefined();

  const list = await lifeboat('list', 'orders', '--local');
  expect(list.out).toMatch(new RegExp(`^${runId}\\s+verified\\s+\\S+ [KM]B\\s+confirmed \\(eu-central-1, lag \\d+s\\)\\s+-`, 'm'));
  expect(list.out).toMatch(/\d+ AWS calls as arn:aws:iam::111111111111:role\/lifeboat\/operator\/Lifeboat-operator-eu-west-1: none denied/);
  expect(list.code).toBe(0);

  for (const from of ['primary', 'offsite']) {
    const verify = await lifeboat('verify', 'orders', '--local', '--from', from);
    expect(verify.out).toContain(`(${from}): recorded verdict ok`);
    expect(verify.out).toMatch(/ok {5}full-read: pg_restore --file=\/dev\/null read every entry/);
    expect(verify.out).toContain(`verify orders/${runId}: ok`);
    expect(verify.code).toBe(0);
  }

  const restore = await lifeboat('restore', 'orders', '--local', '--from', 'offsite', '--target-url', `postgres://${target.user}@${target.host}:${target.port}/orders`);
  expect(restore.out).toMatch(new RegExp(`run orders/${runId} .* from s3://lifeboat-offsite-222222222222-eu-central-1 \\(offsite, eu-central-1\\)`));
  expect(restore.out).toMatch(/restored orders\/\S+ into orders on /);
  expect(restore.code).toBe(0);
  expect(await digests(target, 'orders')).toEqual(await digests(source, 'orders'));

  const drill = await lifeboat('drill', 'orders', '--local', '--from', 'offsite');
  expect(drill.out).toMatch(new RegExp(`drill orders: run ${runId} from offsite`));
  expect(drill.out).toMatch(/drill passed: drills\/orders\/\d{8}T\d{6}Z\/report\.json/);
  expect(drill.out).toMatch(/AWS calls as arn:aws:iam::111111111111:role\/lifeboat\/drill\/\S+: none denied/);
  expect(drill.code).toBe(0);
  expect((await lifeboat('list', 'orders', '--local')).out).toMatch(new RegExp(`^${runId}\\s+verified .* ok \\d{8}T\\d{6}Z \\(offsite, RTO [\\d.]+s\\)`, 'm'));

  // The example config's second source has never been backed up: status says so, and exits 1.
  const status = await lifeboat('status', '--local');
  expect(status.out).toMatch(new RegExp(`^orders\\s+tier1\\s+${runId} .* OK$`, 'm'));
  expect(status.out).toMatch(/^catalogue\s+tier2\s+-.*NO BACKUP/m);
  expect(status.code).toBe(1);

  const down = await lifeboat('local', 'down');
  expect(down.out).toContain('local stack down: its server stopped; its data stays in');
  expect(down.code).toBe(0);
  const gone = await lifeboat('list', 'orders', '--local');
  expect(gone.out).toContain('--local: no local stack at');
  expect(gone.out).toContain('lifeboat local up');
  expect(gone.code).not.toBe(0);

  // Its data was on disk: up again, the run and its drill are there.
  expect((await lifeboat('local', 'up')).code).toBe(0);
  expect((await lifeboat('list', 'orders', '--local')).out).toMatch(new RegExp(`^${runId}\\s+verified .* ok \\d{8}T\\d{6}Z`, 'm'));
  const purge = await lifeboat('local', 'down', '--purge');
  expect(purge.out).toContain(`${dir} removed`);
  expect(purge.code).toBe(0);
}, 600_000);
