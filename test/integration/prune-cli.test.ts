import { ListObjectVersionsCommand, type PutObjectCommandInput, type S3Client } from '@aws-sdk/client-s3';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { pruneCommand } from '../../cli/prune';
import { formatRunId, runIdToDate } from '../../lib/domain/run-id';
import { buildRun, writeRun } from '../fixtures/runs';
import { startS3, type S3Server } from '../harness/s3';

const DAY_MS = 86_400_000;
let server: S3Server;
const dir = mkdtempSync(path.join(tmpdir(), 'lifeboat-prune-cli-'));
const T0 = Math.floor(Date.now() / 1000) * 1000;
const runIdOf = (daysAgo: number) => formatRunId(new Date(T0 - daysAgo * DAY_MS));
/** Runs locked as if the source had been tier1 when they were written: 90 days from their slot. */
const TIER1_LOCKED = [29, 30];

beforeAll(async () => {
  // The CLI takes credentials from the SDK's usual chain: the environment here.
  Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'lifeboat-test', AWS_SECRET_ACCESS_KEY: 'lifeboat-test-secret', AWS_REGION: 'us-east-1' });
  server = await startS3();
  await server.createBucket('primary', { objectLock: true });
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify({
    primary: { region: 'eu-west-1' }, offsite: { region: 'eu-central-1' },
    sources: [{
      name: 'orders', engine: 'postgres', tier: 'tier3',
      connection: { host: 'db', database: 'orders', username: 'backup', passwordSecretArn: 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:orders-AbCdEf' },
      network: { vpcId: 'vpc-0a1b2c3d' },
    }],
  }));
  // Every object under its run's lock; a lock already past (S3 takes no date in the past) is
  // written to lapse a moment from now, and waited for.
  const s3 = server.client();
  let lapses = 0;
  s3.middlewareStack.add((next, context) => async (args) => {
    if (context.commandName === 'PutObjectCommand') {
      const input = args.input as PutObjectCommandInput;
      const daysAgo = Math.round((T0 - (runIdToDate((input.Key as string).split('/')[2]) as Date).getTime()) / DAY_MS);
      const until = T0 - daysAgo * DAY_MS + (TIER1_LOCKED.includes(daysAgo) ? 90 : 7) * DAY_MS;
      const retainUntil = Math.max(until, Date.now() + 1_000);
      if (retainUntil > until) lapses = Math.max(lapses, retainUntil);
      Object.assign(input, { ObjectLockMode: 'COMPLIANCE', ObjectLockRetainUntilDate: new Date(retainUntil) });
    }
    return next(args);
  }, { step: 'initialize', name: 'runObjectLock' });
  // Twelve daily runs ending three weeks ago, the newest failed.
  for (let day = 21; day < 33; day++) await writeRun(s3, 'primary', buildRun('orders', runIdOf(day)), { verification: day === 21 ? 'failed' : 'ok' });
  s3.destroy();
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, lapses + 20 - Date.now())));
});

afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await server?.stop();
});

async function runsWithVersions(s3: S3Client): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  let KeyMarker: string | undefined;
  let VersionIdMarker: string | undefined;
  for (;;) {
    const page = await s3.send(new ListObjectVersionsCommand({ Bucket: 'primary', Prefix: 'runs/', KeyMarker, VersionIdMarker }));
    for (const entry of [...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])]) {
      const runId = (entry.Key as string).split('/')[2];
      counts.set(runId, (counts.get(runId) ?? 0) + 1);
    }
    if (!page.IsTruncated) return counts;
    [KeyMarker, VersionIdMarker] = [page.NextKeyMarker, page.NextVersionIdMarker];
  }
}

const prune = async (...extra: string[]) => {
  const lines: string[] = [];
  const code = await pruneCommand(['--config', path.join(dir, 'config.json'), '--bucket', 'primary', '--endpoint', server.endpoint, ...extra],
    process.env, (line) => lines.push(line));
  return { code, output: lines.join('\n') };
};

test('lifeboat prune is a dry run by default: it prints every decision with its reason, the locked runs kept until their date, and deletes nothing', async () => {
  const s3 = server.client();
  const before = await runsWithVersions(s3);
  const { code, output } = await prune();
  expect(code).toBe(0);
  // 12 runs: the newest verified of 7 calendar days kept (the failed one is not a backup and
  // goes), of the older ones 2 still locked, 2 to remove.
  expect(output).toContain('orders (dry run: nothing deleted): keep 7, remove 3, skipped under Object Lock 2');
  expect(output).toMatch(/newest verified \(1 of 3\)/);
  expect(output.split('\n').filter((line) => /^2026\d{4}T\d{6}Z/.test(line))).toHaveLength(12);
  for (const day of TIER1_LOCKED) {
    expect(output).toMatch(new RegExp(`${runIdOf(day)}  verified  skip-locked  verified, older than 7d and outside every keep count; kept: locked until ${new Date(T0 + (90 - day) * DAY_MS).toISOString()} \\(\\d+d( \\d+h)? left\\)`));
  }
  expect(await runsWithVersions(s3)).toEqual(before);
  s3.destroy();
});

test('lifeboat prune --apply deletes every version of the removed runs, and only those', async () => {
  const s3 = server.client();
  const before = await runsWithVersions(s3);
  const { code, output } = await prune('--apply');
  expect(code).toBe(0);
  expect(output).toContain('orders (applied): keep 7, remove 3, skipped under Object Lock 2');
  const removed = output.split('\n').filter((line) => / {2}remove {2}/.test(line)).map((line) => line.split(' ')[0]);
  expect(removed).toEqual([runIdOf(21), runIdOf(31), runIdOf(32)]);
  expect(await runsWithVersions(s3)).toEqual(new Map([...before].filter(([runId]) => !removed.includes(runId))));
  s3.destroy();
});

test('an unknown source is refused', async () => {
  const lines: string[] = [];
  expect(await pruneCommand(['--config', path.join(dir, 'config.json'), '--bucket', 'primary', '--source', 'nope'], {}, (line) => lines.push(line))).toBe(2);
  expect(lines.join('\n')).toContain('unknown source "nope" (known: orders)');
});
