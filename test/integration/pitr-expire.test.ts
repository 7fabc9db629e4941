/**
 * Lifeboat's pruner of PITR sets on real components (local/servers/pitr.ts: PostgreSQL 15
 * archiving with pgBackRest 2.45 into an Object Lock bucket): a history of three chains whose
 * sets are cataloged by the PITR run's own steps (verifyPitrRun, then Commit) — verified, one
 * failed, one never cataloged — and the expiry task's entry (worker/pitr-expire-main.ts, its
 * environment as the template gives it) removes exactly what the tier's policy decides, through
 * real `pgbackrest expire`: the newest verified full, the kept chain (a differential and
 * incrementals on a full that failed its verification) and their WAL stay, and the full still
 * restores; a dry run changes nothing; every S3 request of the real expiry is allowed to the
 * synthesized expiry role.
 */
import { ListObjectVersionsCommand, type S3Client } from '@aws-sdk/client-s3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../lib/config';
import { formatRunId } from '../../lib/domain/run-id';
import { listArchivedSegments, summarizeArchive } from '../../lib/pitr/archive-state';
import { applyPitrRetention } from '../../lib/pitr/expire-run';
import type { BackupSet, BackupType } from '../../lib/pitr/pgbackrest';
import { verifyPitrRun } from '../../lib/pitr/run';
import { parseSegment } from '../../lib/pitr/wal';
import { commit } from '../../lib/steps/commit';
import { IamEvaluator, IamModel, requestsForCall } from '../../local/iam';
import { synthApp } from '../../local/synth';
import { pitrExpireJobFromEnv, runPitrExpireJob } from '../../worker/pitr-expire-main';
import { delay } from '../harness/processes';
import { startPitrStack, type PitrStack } from '../harness/pitr';
import { listKeys } from '../harness/s3-objects';
import { recordedCall } from '../harness/s3-requests';

const SOURCE = 'ledger';
/**
 * A tier whose calendar counts are all zero (a schedule longer than a week, a retention shorter
 * than a month): past its week, keepLast and minVerified (3 each) alone decide, whatever day and
 * week the test runs in.
 */
const TIER = { retentionSeconds: 7 * 86_400, scheduleSeconds: 30 * 86_400 };
const DAY = 86_400_000;

let stack: PitrStack;
let s3: S3Client;
let scratch: string;
/** The history, oldest first: [F1, I1, F2, F3, I3a, D3, I3b]. */
const sets: BackupSet[] = [];
let rowsAtF2 = 0;
/** After the grace of failed and unverified sets, past the retention. */
let later: Date;

const HISTORY: readonly { readonly type: BackupType; readonly cataloged: 'verified' | 'failed' | 'none' }[] = [
  { type: 'full', cataloged: 'verified' },
  { type: 'incr', cataloged: 'none' },
  { type: 'full', cataloged: 'verified' },
  { type: 'full', cataloged: 'failed' },
  { type: 'incr', cataloged: 'verified' },
  { type: 'diff', cataloged: 'verified' },
  { type: 'incr', cataloged: 'verified' },
];

/** The set's Lifeboat run, as VerifySet and Commit write it; a `failed` one is recorded with a failed verdict. */
async function catalog(set: BackupSet, type: BackupType, requestedAt: Date, verdict: 'verified' | 'failed'): Promise<void> {
  const result = await verifyPitrRun(
    { source: SOURCE, tier: 'tier1', runId: formatRunId(set.startTime), type, requestedAt },
    { s3, bucket: stack.bucket, repoPath: stack.repository.path, stanza: stack.stanza, runner: stack.runner, verifiedBy: 'test' },
  );
  expect(result.dump.set.label).toBe(set.label);
  expect(result.verification.verdict).toBe('ok');
  if (verdict === 'verified') {
    await commit({ dump: result.dump, verification: result.verification }, { s3, bucket: stack.bucket });
    return;
  }
  const failed = { ...result.verification, verdict: 'failed' as const, error: { name: 'WalGap', message: `${SOURCE}-pitr/${result.dump.runId}: a WAL segment it needs is missing (a fixture verdict)` } };
  await expect(commit({ dump: result.dump, verification: failed }, { s3, bucket: stack.bucket })).rejects.toMatchObject({ name: 'WalGap' });
}

/** The expiry task's environment: the template's (bucket, tiers, scratch), the state's overrides, and pgBackRest's endpoint here. */
function taskEnv(): Record<string, string> {
  return {
    LIFEBOAT_BUCKET: stack.bucket,
    LIFEBOAT_SOURCES_JSON: JSON.stringify([{ name: 'orders', tier: { retentionSeconds: 90 * 86_400, scheduleSeconds: 900 } }, { name: SOURCE, tier: TIER }]),
    LIFEBOAT_DRY_RUN: 'false',
    LIFEBOAT_SCRATCH_DIR: scratch,
    LIFEBOAT_SOURCE: SOURCE,
    LIFEBOAT_PITR_STANZA: stack.stanza,
    AWS_REGION: stack.repository.region,
    LIFEBOAT_PGBACKREST_S3_ENDPOINT: stack.repository.endpoint,
    LIFEBOAT_PGBACKREST_S3_PORT: String(stack.repository.port),
    LIFEBOAT_PGBACKREST_S3_CA_FILE: stack.repository.caFile as string,
    LIFEBOAT_PGBACKREST_S3_URI_STYLE: 'path',
  };
}

const labels = async () => (await stack.runner.info()).sets.map((set) => set.label);
const location = () => ({ s3, bucket: stack.bucket, repoPath: stack.repository.path, stanza: stack.stanza });

beforeAll(async () => {
  stack = await startPitrStack({ stanza: SOURCE, repoPath: `/pitr/${SOURCE}`, recordRequests: true });
  s3 = stack.s3.client();
  scratch = mkdtempSync(join(tmpdir(), 'lifeboat-pitr-expire-'));
  await stack.seed('CREATE TABLE entries (id int, note text);');
  for (const [index, step] of HISTORY.entries()) {
    await stack.source.psql(`INSERT INTO entries SELECT g, md5(g::text) FROM generate_series(${index * 1000}, ${index * 1000 + 999}) g; SELECT pg_switch_wal();`, 'shop');
    const requestedAt = new Date();
    const set = await stack.runner.backup({ type: step.type });
    expect(set.type).toBe(step.type);
    sets.push(set);
    if (index === 2) rowsAtF2 = (index + 1) * 1000;
    if (step.cataloged !== 'none') await catalog(set, step.type, requestedAt, step.cataloged);
    // Sets are runs at their start second: one second apart at least.
    await delay(1100);
  }
  await stack.runner.check();
  later = new Date(Date.now() + 8 * DAY);
}, 420_000);

afterAll(async () => {
  s3?.destroy();
  await stack?.stop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

test('a dry run decides every set, logs why, and changes nothing', async () => {
  const [f1, i1] = sets;
  const keysBefore = await listKeys(s3, stack.bucket, `pitr/${SOURCE}/`);
  const lines: string[] = [];
  const result = await applyPitrRetention({ s3, bucket: stack.bucket, source: { name: SOURCE, tier: TIER }, runner: stack.runner, now: later, dryRun: true, log: (line) => lines.push(line) });
  expect(result).toMatchObject({ source: SOURCE, dryRun: true, applied: false, expire: { sets: [i1.label, f1.label], archiveFulls: 2 } });
  expect(await listKeys(s3, stack.bucket, `pitr/${SOURCE}/`)).toEqual(keysBefore);
  expect(await labels()).toEqual(sets.map((set) => set.label));
  // One line per set, saying what and why.
  for (const set of sets) expect(lines.filter((line) => line.includes(`set ${set.label} `))).toHaveLength(1);
  expect(lines.find((line) => line.includes(`set ${i1.label} `))).toMatch(/\(incr, unverified\) would be removed: unverified, past the 2d grace$/);
}, 60_000);

test('the expiry task removes exactly the decided sets through pgbackrest expire; the newest verified full, the kept chain and their WAL stay', async () => {
  const [f1, i1, f2, f3, i3a, d3, i3b] = sets;
  const keysBefore = await listKeys(s3, stack.bucket, `pitr/${SOURCE}/`);
  const oldestBefore = (await listArchivedSegments(location()))[0].name;
  const recordedFrom = stack.front.requests.length;
  const lines: string[] = [];

  const outcome = await runPitrExpireJob(pitrExpireJobFromEnv(taskEnv()), { s3, now: () => later, log: (line) => lines.push(line) });
  expect(outcome.error).toBeUndefined();
  expect(outcome.code).toBe(0);
  const result = outcome.result!;
  expect(result.applied).toBe(true);
  const reasons = Object.fromEntries(result.keep.map((entry) => [entry.set, entry.reason]));
  expect(result.keep.map((entry) => entry.set)).toEqual([i3b, d3, i3a, f3, f2].map((set) => set.label));
  expect(reasons[i3b.label]).toBe('newest verified (1 of 3); last 3 (1 of 3)');
  // F3 failed its verification: kept only because the kept chain needs it, and F2 is then the newest verified full.
  expect(reasons[f3.label]).toMatch(/^needed by kept run /);
  expect(reasons[f2.label]).toBe('the newest verified full: never removed');
  expect(result.remove.map((entry) => [entry.set, entry.status])).toEqual([[i1.label, 'unverified'], [f1.label, 'verified']]);
  expect(result.expire).toEqual({ sets: [i1.label, f1.label], archiveFulls: 2 });

  // pgBackRest's own view: exactly the decided sets are gone.
  expect(await labels()).toEqual([f2, f3, i3a, d3, i3b].map((set) => set.label));
  // The WAL before F2 goes; from F2's start on the archive is whole.
  const segments = await listArchivedSegments(location());
  expect(parseSegment(segments[0].name).number).toBeGreaterThan(parseSegment(oldestBefore).number);
  expect(parseSegment(segments[0].name).number).toBeLessThanOrEqual(parseSegment(f2.walStart).number);
  expect(summarizeArchive(segments, new Date()).gaps).toEqual([]);
  expect(segments.at(-1)!.name >= i3b.walStop).toBe(true);
  // In the locked, versioned bucket an expired set's files are hidden by delete markers; their versions stay.
  const keysAfter = new Set(await listKeys(s3, stack.bucket, `pitr/${SOURCE}/`));
  const removedKeys = keysBefore.filter((key) => !keysAfter.has(key));
  expect(removedKeys.some((key) => key.startsWith(`pitr/${SOURCE}/backup/${SOURCE}/${f1.label}/`))).toBe(true);
  expect(removedKeys.filter((key) => /\/backup\/[^/]+\/[^/]+\//.test(key) && ![f1.label, i1.label].some((label) => key.includes(`/${label}/`)))).toEqual([]);
  const versions = await s3.send(new ListObjectVersionsCommand({ Bucket: stack.bucket, Prefix: `pitr/${SOURCE}/backup/${SOURCE}/${f1.label}/` }));
  const versioned = [...new Set((versions.Versions ?? []).map((version) => version.Key))].sort();
  expect(versioned.length).toBeGreaterThan(0);
  expect((versions.DeleteMarkers ?? []).filter((marker) => marker.IsLatest).map((marker) => marker.Key).sort()).toEqual(versioned);

  // IAM-true: every request the real expiry made (and a delete of every key it removed) is allowed to the synthesized expiry role.
  const app = synthApp(loadConfig('lifeboat.config.ts'));
  const model = IamModel.fromApp(app);
  const role = [...model.taskDefinitions.values()].find((definition) => definition.family.endsWith('-pitr-expire'))?.taskRoleArn as string;
  const primary = [...model.buckets.values()].find((bucket) => bucket.account === app.primary.account && bucket.objectLockEnabled && bucket.keyArn && bucket.origin.startsWith(`${app.primary.stackName}/`));
  expect(role).toBeDefined();
  const calls = stack.front.requests.slice(recordedFrom).map((request) => recordedCall(request, primary!.name));
  expect(calls.map((call) => call.command)).toEqual(expect.arrayContaining(['ListObjectsV2', 'GetObject', 'PutObject']));
  const deletes = { command: 'DeleteObjects', input: { Bucket: primary!.name, Delete: { Objects: removedKeys.map((key) => ({ Key: key })) } } };
  const evaluator = new IamEvaluator(model);
  const denied: string[] = [];
  for (const { command, input } of [...calls.filter((call) => call.command !== 'DeleteObjects'), deletes]) {
    for (const request of requestsForCall(model, role, 'S3', command, input).requests) {
      const decision = await evaluator.evaluate(request);
      if (!decision.allowed) denied.push(`${request.action} ${request.resource}: ${decision.explanation}`);
    }
  }
  expect([...new Set(denied)]).toEqual([]);
  // …and what would remove or unlock a version, or touch another source's repository, is not.
  for (const [command, input] of [
    ['DeleteObject', { Key: `pitr/${SOURCE}/archive/${SOURCE}/archive.info`, VersionId: 'v1' }],
    ['PutObjectRetention', { Key: `pitr/${SOURCE}/archive/${SOURCE}/archive.info`, Retention: { Mode: 'GOVERNANCE', RetainUntilDate: new Date(Date.now() + DAY) } }],
    ['DeleteObject', { Key: 'pitr/orders/archive/orders/archive.info' }],
    ['DeleteObject', { Key: `runs/${SOURCE}-pitr/${formatRunId(f1.startTime)}/manifest.json` }],
  ] as const) {
    const decisions = await Promise.all(requestsForCall(model, role, 'S3', command, { Bucket: primary!.name, ...input }).requests.map((request) => evaluator.evaluate(request)));
    expect([command, input.Key, decisions.some((decision) => !decision.allowed)]).toEqual([command, input.Key, true]);
  }
}, 240_000);

test('after the expiry the newest verified full restores to its consistent point, and a second expiry removes nothing', async () => {
  const f2 = sets[2];
  const { server, set } = await stack.restoreAndStart('f2', 'immediate', f2.label);
  expect(set).toBe(f2.label);
  expect((await server.psql('SELECT count(*) FROM entries', 'shop')).trim()).toBe(String(rowsAtF2));

  const again = await runPitrExpireJob(pitrExpireJobFromEnv(taskEnv()), { s3, now: () => later, log: () => undefined });
  expect(again.code).toBe(0);
  expect(again.result).toMatchObject({ applied: false, remove: [], expire: { sets: [] } });
  expect(await labels()).toEqual(sets.slice(2).map((set) => set.label));
}, 180_000);
