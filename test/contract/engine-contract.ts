/**
 * The engine contract (issue 12): one parameterised suite every engine passes with its real
 * tools, against throwaway servers and the local S3 server. For each engine:
 *  1. round trip: backup (runJob) → verify (verifyRun, verdict written as the Commit step does)
 *     → restore (chooseRun + restoreRun) → every table of the target equals the source's;
 *  2. a dump client SIGKILLed mid-dump: DumpFailed, nothing at the run's prefix (no object, no
 *     multipart upload in progress), the run is not restorable and the newest verified run is
 *     unchanged; the client's argv never held the password;
 *  3. an artifact damaged in place: the verdict is failed with ChecksumMismatch, the catalog
 *     calls the run failed and neither the watchdog nor a restore takes it;
 *  4. an aborted run (the AbortSignal of SIGTERM): Aborted, no dump client process left, no
 *     session left on the server, nothing at the run's prefix;
 *  5. the passwords (source and target) appear in no log line, outcome, error, manifest or
 *     verdict of a backup, a verification and a restore, nor when the password is wrong;
 *  6. a restore into a target that already holds the tables, without `clean`: TargetNotEmpty,
 *     the target unchanged;
 *  7. the watchdog's measure (measureAges) advances after a run: the newest verified run is the
 *     new one and its age shrinks by the slots' difference.
 * A later engine joins by adding an EngineSubject in engines.test.ts.
 */
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { readdirSync, readFileSync } from 'node:fs';
import { latestVerifiedRun, readRun } from '../../lib/catalog/catalog';
import { manifestKey, runPrefix, verificationKey } from '../../lib/domain/layout';
import { runIdToDate } from '../../lib/domain/run-id';
import { serializeVerification, type Verification } from '../../lib/domain/verification';
import { chooseRun } from '../../lib/restore/choose-run';
import { restoreRun, type RestoreTarget } from '../../lib/restore/restore';
import { measureAges } from '../../lib/steps/watchdog';
import { verifyRun } from '../../lib/verify/verify-run';
import type { BackupJob } from '../../worker/job';
import { runJob, type JobOutcome } from '../../worker/main';
import type { BackupProgress } from '../../worker/run-backup';
import { delay } from '../harness/processes';
import { startS3, tamperStoredObject, type S3Server } from '../harness/s3';
import { getBytes, listKeys, uploadsInProgress } from '../harness/s3-objects';

/** A throwaway database server, as the suite sees it. */
export interface ContractServer {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  /** Per table of the databases an ordinary run backs up: `"<rows> <digest of the rows, sorted>"` (test/harness/digests.ts). */
  tableDigests(): Promise<Record<string, string>>;
  /** Deletes one row of one backed-up table (to tell a restored target from a touched one). */
  changeOneRow(): Promise<void>;
  /** Sessions a run opened (its dump clients', its own) that the server still has open. */
  runSessions(): Promise<number>;
  stop(): Promise<void>;
}

export interface EngineSubject {
  /** The describe's title, e.g. "PostgreSQL". */
  readonly name: string;
  /** The Lifeboat source name of the runs (runs/<source>/…). */
  readonly source: string;
  /** Process names (/proc/<pid>/comm) of the dump clients a run spawns. */
  readonly dumpClients: readonly string[];
  /**
   * A server seeded with the engine's fixture (the ordinary runs' databases) and a database
   * large enough that its dump takes seconds (the slow runs'), requiring `password`.
   */
  startSource(password: string): Promise<ContractServer>;
  /** An empty server requiring `password`. */
  startTarget(password: string): Promise<ContractServer>;
  /**
   * The job of one run against `server` (`tls: { mode: 'disable' }`: the throwaway servers
   * offer none); `slow`: of the large database; `password`: in place of the server's.
   */
  job(server: ContractServer, runId: string, bucket: string, opts?: { slow?: boolean; password?: string }): BackupJob;
  /** The restore target `server` is. */
  restoreTarget(server: ContractServer): RestoreTarget;
}

const BUCKET = 'contract';
/** Later than every run id the suite makes: the watchdog measures at this instant. */
const MEASURED_AT = new Date('2026-03-02T00:00:00Z');

interface ClientProcess {
  readonly pid: number;
  readonly comm: string;
  readonly argv: string;
}

/** The processes descended from this one whose name is one of `names`, read from /proc. */
export function descendantProcesses(names: readonly string[]): ClientProcess[] {
  const parents = new Map<number, number>();
  const comms = new Map<number, string>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // pid (comm) state ppid …; comm may hold spaces and parentheses.
      const close = stat.lastIndexOf(')');
      comms.set(Number(entry), stat.slice(stat.indexOf('(') + 1, close));
      parents.set(Number(entry), Number(stat.slice(close + 2).split(' ')[1]));
    } catch {
      // Gone meanwhile.
    }
  }
  const isDescendant = (pid: number): boolean => {
    for (let at = parents.get(pid), hops = 0; at !== undefined && at > 0 && hops < 64; at = parents.get(at), hops++) {
      if (at === process.pid) return true;
    }
    return false;
  };
  const found: ClientProcess[] = [];
  for (const [pid, comm] of comms) {
    if (!names.includes(comm) || !isDescendant(pid)) continue;
    let argv = '';
    try {
      argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
    } catch {
      // Gone meanwhile.
    }
    found.push({ pid, comm, argv });
  }
  return found;
}

export function engineContractSuite(subject: EngineSubject): void {
  describe(`engine contract: ${subject.name}`, () => {
    const SOURCE_PASSWORD = `src-pw-${subject.source}-5e1f9a`;
    const TARGET_PASSWORD = `tgt-pw-${subject.source}-c0ffee`;
    let s3: S3Server;
    let client: S3Client;
    let source: ContractServer;
    let target: ContractServer;
    let atSource: Record<string, string>;
    let counter = 0;
    /** Run ids in slot order, a minute apart, all before MEASURED_AT. */
    const nextRunId = () => `20260301T${String(Math.floor(counter / 60)).padStart(2, '0')}${String(counter++ % 60).padStart(2, '0')}00Z`;

    beforeAll(async () => {
      // Each kept as soon as it is up: afterAll stops whatever started, even when another failed.
      await Promise.all([
        startS3().then((server) => (s3 = server)),
        subject.startSource(SOURCE_PASSWORD).then((server) => (source = server)),
        subject.startTarget(TARGET_PASSWORD).then((server) => (target = server)),
      ]);
      // As the stacks make the bucket: versioned, with Object Lock (the runs are written unlocked).
      await s3.createBucket(BUCKET, { objectLock: true });
      client = s3.client();
      atSource = await source.tableDigests();
      expect(Object.keys(atSource).length).toBeGreaterThan(0);
    }, 150_000);

    afterAll(async () => {
      await Promise.all([s3?.stop(), source?.stop(), target?.stop()]);
    });

    interface Backup {
      runId: string;
      outcome: JobOutcome;
      progress: BackupProgress;
      output: string[];
    }

    function startBackup(opts: { slow?: boolean; password?: string; signal?: AbortSignal } = {}) {
      const runId = nextRunId();
      const output: string[] = [];
      const progress: BackupProgress = { phase: 'preflight', bytesUploaded: 0 };
      const running = runJob(subject.job(source, runId, BUCKET, opts), { s3: client, progress, signal: opts.signal, log: (line) => output.push(line) });
      return { runId, progress, output, done: running.then((outcome): Backup => ({ runId, outcome, progress, output })) };
    }

    async function backUp(opts: { slow?: boolean; password?: string } = {}): Promise<Backup> {
      return startBackup(opts).done;
    }

    /** Judged by the real verifier; the verdict written as the Commit step writes it. */
    async function verify(backup: Backup, log: string[] = []): Promise<Verification> {
      const verification = await verifyRun({
        s3: client, bucket: BUCKET, source: subject.source, runId: backup.runId, manifestVersionId: backup.outcome.manifestVersionId,
        verifiedBy: 'lambda', log: (line) => log.push(line),
      });
      await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: verificationKey(subject.source, backup.runId), Body: serializeVerification(verification) }));
      return verification;
    }

    async function verifiedBackup(): Promise<Backup> {
      const backup = await backUp();
      expect(backup.outcome.error).toBeUndefined();
      expect(backup.outcome.code).toBe(0);
      const verification = await verify(backup);
      expect(verification.error).toBeUndefined();
      expect(verification.verdict).toBe('ok');
      return backup;
    }

    async function restore(runId: string, opts: { clean?: boolean; log?: string[] } = {}) {
      const run = await chooseRun(client, BUCKET, subject.source, { runId });
      return restoreRun({
        s3: client, bucket: BUCKET, run, target: subject.restoreTarget(target), clean: opts.clean, noOwner: true, jobs: 2,
        log: (line) => opts.log?.push(line),
      });
    }

    /** Polls until a dump client of this process is running and the run has uploaded a part. */
    async function dumping(progress: BackupProgress, runId: string): Promise<ClientProcess[]> {
      const deadline = Date.now() + 60_000;
      for (;;) {
        const clients = descendantProcesses(subject.dumpClients);
        if (progress.phase === 'dump' && progress.bytesUploaded > 0 && clients.length > 0) return clients;
        if (progress.phase !== 'preflight' && progress.phase !== 'dump') throw new Error(`the slow run ${runId} got to ${progress.phase} before it could be stopped`);
        if (Date.now() > deadline) throw new Error(`the slow run ${runId} never got to uploading (phase ${progress.phase}, ${progress.bytesUploaded} bytes)`);
        await delay(5);
      }
    }

    async function expectNothingThatCounts(runId: string, newestBefore: string | undefined): Promise<void> {
      expect(await listKeys(client, BUCKET, runPrefix(subject.source, runId))).toEqual([]);
      expect(await uploadsInProgress(client, BUCKET, runPrefix(subject.source, runId))).toEqual([]);
      expect(await readRun(client, BUCKET, subject.source, runId)).toMatchObject({ status: 'unverified', objects: [] });
      await expect(chooseRun(client, BUCKET, subject.source, { runId })).rejects.toMatchObject({ name: 'RunNotVerified' });
      expect((await latestVerifiedRun(client, BUCKET, subject.source))?.runId).toBe(newestBefore);
    }

    /** Waits up to 10 s for every dump client and its server session to be gone; returns what is left. */
    async function leftovers(): Promise<{ processes: string[]; sessions: number }> {
      let left = { processes: ['(not looked)'], sessions: -1 };
      for (let tries = 0; tries < 100; tries++) {
        if (tries > 0) await delay(100);
        left = { processes: descendantProcesses(subject.dumpClients).map((p) => `${p.comm} (${p.pid})`), sessions: await source.runSessions() };
        if (left.processes.length === 0 && left.sessions === 0) break;
      }
      return left;
    }

    test('round trip: backup → verify → restore, every table of the target equals the source', async () => {
      const backup = await verifiedBackup();
      expect(backup.outcome.manifest?.runId).toBe(backup.runId);
      expect(backup.outcome.manifest?.tables.length).toBeGreaterThanOrEqual(Object.keys(atSource).length);
      const result = await restore(backup.runId);
      expect(result.bytes).toBeGreaterThan(0);
      expect(await target.tableDigests()).toEqual(atSource);
    }, 120_000);

    test('a backup whose dump client is killed mid-dump: DumpFailed, and nothing that counts is left', async () => {
      const newestBefore = (await latestVerifiedRun(client, BUCKET, subject.source))?.runId;
      const run = startBackup({ slow: true });
      const clients = await dumping(run.progress, run.runId);
      for (const { argv } of clients) expect(argv).not.toContain(SOURCE_PASSWORD);
      for (const { pid } of clients) process.kill(pid, 'SIGKILL');
      const { outcome, output } = await run.done;
      expect(outcome.code).toBe(1);
      expect(outcome.error?.name).toBe('DumpFailed');
      expect(outcome.error?.message).toMatch(new RegExp(`(${subject.dumpClients.join('|')}).*(killed|stopped|exited)`));
      expect(outcome.manifest).toBeUndefined();
      expect(output.join('\n')).toContain('DumpFailed');
      await expectNothingThatCounts(run.runId, newestBefore);
    }, 120_000);

    test('an artifact damaged in place fails verification with ChecksumMismatch, and the run does not count', async () => {
      const newestBefore = (await verifiedBackup()).runId;
      const backup = await backUp();
      expect(backup.outcome.code).toBe(0);
      const { key, versionId } = backup.outcome.manifest!.artifacts[0];
      const stored = await getBytes(client, BUCKET, key);
      stored[Math.floor(stored.length / 2)] ^= 1;
      await tamperStoredObject(s3.endpoint, { bucket: BUCKET, key, versionId }, stored);

      const verification = await verify(backup);
      expect(verification.verdict).toBe('failed');
      expect(verification.error?.name).toBe('ChecksumMismatch');
      expect(verification.error?.message).toContain(key);
      expect(await readRun(client, BUCKET, subject.source, backup.runId)).toMatchObject({ status: 'failed' });
      expect((await latestVerifiedRun(client, BUCKET, subject.source))?.runId).toBe(newestBefore);
      await expect(chooseRun(client, BUCKET, subject.source, { runId: backup.runId })).rejects.toMatchObject({ name: 'RunNotVerified' });
    }, 120_000);

    test('an aborted run stops its dump clients and leaves nothing', async () => {
      const newestBefore = (await latestVerifiedRun(client, BUCKET, subject.source))?.runId;
      const stop = new AbortController();
      const run = startBackup({ slow: true, signal: stop.signal });
      expect((await dumping(run.progress, run.runId)).length).toBeGreaterThan(0);
      expect(await source.runSessions()).toBeGreaterThan(0);
      stop.abort(Object.assign(new Error('SIGTERM received'), { name: 'Aborted' }));
      const { outcome } = await run.done;
      expect(outcome.code).toBe(1);
      expect(outcome.error?.name).toBe('Aborted');
      expect(outcome.error?.message).toContain('SIGTERM received');
      expect(await leftovers()).toEqual({ processes: [], sessions: 0 });
      await expectNothingThatCounts(run.runId, newestBefore);
    }, 120_000);

    test('the passwords appear in no output of a backup, a verification, a restore, or a run with a wrong password', async () => {
      const seen: string[] = [];
      const backup = await verifiedBackup();
      seen.push(...backup.output, JSON.stringify(backup.outcome));
      const verifyLog: string[] = [];
      seen.push(serializeVerification(await verify(backup, verifyLog)), ...verifyLog);
      seen.push((await getBytes(client, BUCKET, manifestKey(subject.source, backup.runId))).toString('utf8'));
      const restoreLog: string[] = [];
      await restore(backup.runId, { clean: true, log: restoreLog });
      seen.push(...restoreLog);
      // A refused restore's message too.
      await target.changeOneRow();
      const refused = await restore(backup.runId, { log: restoreLog }).then(() => undefined, (error: Error) => error);
      expect(refused?.name).toBe('TargetNotEmpty');
      seen.push(`${refused?.name}: ${refused?.message}`, ...restoreLog);

      const wrong = `wrong-pw-${subject.source}-7f3a9c`;
      const denied = await backUp({ password: wrong });
      expect(denied.outcome.code).toBe(1);
      expect(denied.outcome.error?.name).toBe('AuthenticationFailed');
      seen.push(...denied.output, JSON.stringify(denied.outcome));

      // Something was said: the check is not vacuous.
      expect(backup.output.length).toBeGreaterThan(0);
      expect(restoreLog.length).toBeGreaterThan(0);
      expect(denied.output.join('\n')).toContain('AuthenticationFailed');
      const text = seen.join('\n');
      for (const secret of [SOURCE_PASSWORD, TARGET_PASSWORD, wrong]) expect(text.includes(secret) ? secret : undefined).toBeUndefined();
    }, 120_000);

    test('a restore into a target that already holds the tables, without clean: TargetNotEmpty, the target unchanged', async () => {
      const backup = await verifiedBackup();
      await restore(backup.runId, { clean: true });
      expect(await target.tableDigests()).toEqual(atSource);
      await target.changeOneRow();
      const changed = await target.tableDigests();
      expect(changed).not.toEqual(atSource);

      await expect(restore(backup.runId)).rejects.toMatchObject({
        name: 'TargetNotEmpty', message: expect.stringMatching(/^database \S+ on .* has \d+ table\(s\) \(.+\) that the restore would drop( or collide with)?; nothing was restored/),
      });
      expect(await target.tableDigests()).toEqual(changed);
    }, 120_000);

    test('the watchdog\'s measure advances after a run: the newest verified run is the new one, its age smaller', async () => {
      const watched = [{ name: subject.source, rpoSeconds: 86_400 }];
      const first = await verifiedBackup();
      const [before] = await measureAges({ s3: client, bucket: BUCKET, sources: watched, now: MEASURED_AT });
      expect(before).toMatchObject({ state: 'fresh', lastVerifiedRunId: first.runId });

      const second = await verifiedBackup();
      const [after] = await measureAges({ s3: client, bucket: BUCKET, sources: watched, now: MEASURED_AT });
      expect(after).toMatchObject({ state: 'fresh', lastVerifiedRunId: second.runId });
      const slots = (runIdToDate(second.runId)!.getTime() - runIdToDate(first.runId)!.getTime()) / 1000;
      expect(slots).toBeGreaterThan(0);
      expect(before.secondsSinceVerified! - after.secondsSinceVerified!).toBe(slots);
    }, 120_000);
  });
}
