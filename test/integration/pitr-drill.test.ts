/**
 * A PITR drill (lib/pitr/drill.ts) on real components (test/harness/pitr.ts): to a time between
 * two batches of writes, and to the latest WAL, each restored into a throwaway server, checked
 * (recovery stopped at the target, pg_amcheck over the whole cluster, the source's drill checks)
 * and timed; a drill check that fails fails the drill, naming it.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runPitrDrill } from '../../lib/pitr/drill';
import { defaultPgBinDir, startPostgres } from '../harness/postgres';
import { delay } from '../harness/processes';
import { startPitrStack, type PitrStack } from '../harness/pitr';

let stack: PitrStack;
let target: Date;
let rowsAtTarget: number;

const drill = (name: string, to: { time: Date } | 'latest', drillChecks: { name: string; sql: string }[]) => runPitrDrill({
  runner: stack.runner,
  target: to,
  dataDir: join(stack.work, `drill-${name}`),
  startServer: (dataDir) => startPostgres({ existingDataDir: dataDir, env: stack.runner.serverEnvironment() }),
  pgBinDir: defaultPgBinDir(),
  database: 'shop',
  drillChecks,
  rtoSeconds: 3600,
});

beforeAll(async () => {
  stack = await startPitrStack();
  await stack.seed(`CREATE TABLE orders (id int PRIMARY KEY, item text NOT NULL); CREATE INDEX ON orders (item); INSERT INTO orders SELECT g, md5(g::text) FROM generate_series(1, 5000) g;`);
  await stack.runner.backup({ type: 'full' });
  await stack.source.psql('INSERT INTO orders SELECT g, md5(g::text) FROM generate_series(5001, 6000) g;', 'shop');
  rowsAtTarget = 6000;
  // A target after every commit so far, and before the next one.
  target = new Date(Number((await stack.source.psql("SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint")).trim()) + 1);
  await delay(50);
  await stack.source.psql('INSERT INTO orders SELECT g, md5(g::text) FROM generate_series(6001, 7000) g; SELECT pg_switch_wal();', 'shop');
  await stack.runner.check();
}, 180_000);

afterAll(async () => {
  await stack?.stop();
});

test('a drill to a time: recovery stopped there, the cluster is sound, the checks hold, each phase timed', async () => {
  const report = await drill('time', { time: target }, [{ name: 'orders as of the target', sql: `SELECT count(*) = ${rowsAtTarget} FROM orders` }]);
  expect(report.verdict).toBe('ok');
  expect(report.checks.map((check) => [check.name, check.ok])).toEqual([
    ['recovery-target', true], ['amcheck', true], ['check: orders as of the target', true], ['rto', true],
  ]);
  expect(report.checks[0].detail).toMatch(/^recovery stopped before a commit at .+; the last replayed commit was at .+, target /);
  expect(report.timings.restoreSeconds).toBeGreaterThan(0);
  expect(report.timings.replaySeconds).toBeGreaterThan(0);
  expect(report.measuredRtoSeconds).toBeCloseTo(report.timings.restoreSeconds + report.timings.replaySeconds + report.timings.checkSeconds, 6);
}, 120_000);

test('a drill to the latest WAL: every row; a failing drill check fails the drill, naming it', async () => {
  const report = await drill('latest', 'latest', [
    { name: 'every order', sql: 'SELECT count(*) = 7000 FROM orders' },
    { name: 'impossible', sql: 'SELECT count(*) = 0 FROM orders' },
  ]);
  expect(report.verdict).toBe('failed');
  expect(report.checks.filter((check) => !check.ok).map((check) => check.name)).toEqual(['check: impossible']);
  expect(report.checks.find((check) => check.name === 'check: every order')?.ok).toBe(true);
}, 120_000);

test('a drill into a directory that already exists is refused, and the directory is left as it was', async () => {
  const dir = join(stack.work, 'drill-occupied');
  mkdirSync(dir);
  writeFileSync(join(dir, 'keep.txt'), 'not the drill\'s');
  await expect(drill('occupied', 'latest', [])).rejects.toMatchObject({ name: 'InvalidInput', message: expect.stringContaining(`drill dataDir ${dir} already exists`) });
  expect(readFileSync(join(dir, 'keep.txt'), 'utf8')).toBe('not the drill\'s');
});
