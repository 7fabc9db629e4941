/**
 * A MySQL/MariaDB point-in-time restore into an empty server (lib/binlog/restore-plan.ts): the
 * plan read from the bucket alone (printed first), the base dump restored with the engine's own
 * client (lib/restore: every artifact's SHA-256 checked first; a database that holds tables is
 * refused), then each database's archived binary logs replayed from its own coordinates up to
 * the target (`mariadb-binlog --database --start-position --stop-datetime | mariadb`), each phase
 * timed.
 *
 * Restore into an empty server: the server silently skips GTIDs it already has, so a replay
 * onto a server that has applied some of these transactions would leave them out unseen.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { listRuns, type RunRecord } from '../catalog/catalog';
import { formatSize } from '../config/units';
import { restoreRun, type RestoreResult, type RestoreTarget } from '../restore/restore';
import { readBinlogArchive, type BinlogArchive } from './archive-read';
import { describeWindows, planBinlogRestore, type BinlogRestorePlan, type BinlogTarget } from './restore-plan';
import { replayArchivedBinlogs, stopDatetime, type ReplayResult } from './replay';

export interface BinlogRestoreOptions {
  readonly s3: S3Client;
  readonly bucket: string;
  readonly source: string;
  readonly target: RestoreTarget;
  readonly at: BinlogTarget;
  /** `mariadb-binlog` / `mysqlbinlog` (engine.binlogTools.binlogClient). */
  readonly binlogClient: string;
  /** `mariadb` / `mysql`. */
  readonly sqlClient: string;
  /** Print the plan and stop. */
  readonly dryRun?: boolean;
  readonly workDir?: string;
  readonly log?: (line: string) => void;
  readonly signal?: AbortSignal;
}

export interface BinlogRestoreResult {
  readonly plan: BinlogRestorePlan;
  readonly restore?: RestoreResult;
  readonly replays: readonly ({ readonly database: string } & ReplayResult)[];
  readonly timings: { readonly planSeconds: number; readonly restoreSeconds: number; readonly replaySeconds: number };
}

const at = (target: BinlogTarget) => (target === 'latest' ? 'latest (the end of the archive)' : target.toISOString());

/** The plan, as printed before anything is written. */
export function formatBinlogPlan(source: string, plan: BinlogRestorePlan, bucket: string): string[] {
  const { base } = plan;
  return [
    `plan: restore ${source} to ${at(plan.target)} from s3://${bucket}`,
    `  base      dump ${base.runId} (finished ${base.finishedAt.toISOString()}): ` +
      base.databases.map((d) => `${d.database} from ${d.coordinates.file}:${d.coordinates.position}${d.coordinates.gtid ? ` (GTID ${d.coordinates.gtid})` : ''}`).join(', '),
    `  binlogs   ${plan.files.map((file) => `${file.file}${file.partial ? ' (partial)' : ''}`).join(', ')}: ${formatSize(Math.max(0, plan.bytes))} to replay at most` +
      (plan.target === 'latest' ? '' : `, --stop-datetime '${stopDatetime(plan.target)}' UTC`),
    `  window    ${describeWindows(plan.windows)}`,
    ...plan.warnings.map((warning) => `  warning   ${warning}`),
    '  into      an empty server: a replay skips the GTIDs a server already has, without a word',
  ];
}

export async function restoreBinlogAt(opts: BinlogRestoreOptions): Promise<BinlogRestoreResult> {
  const log = opts.log ?? (() => undefined);
  const started = Date.now();
  const [runs, archive]: [RunRecord[], BinlogArchive] = await Promise.all([
    listRuns(opts.s3, opts.bucket, opts.source),
    readBinlogArchive({ s3: opts.s3, bucket: opts.bucket, source: opts.source, signal: opts.signal }),
  ]);
  const plan = planBinlogRestore(opts.source, runs, archive, opts.at);
  for (const line of formatBinlogPlan(opts.source, plan, opts.bucket)) log(line);
  const planSeconds = (Date.now() - started) / 1000;
  if (opts.dryRun) return { plan, replays: [], timings: { planSeconds, restoreSeconds: 0, replaySeconds: 0 } };

  const run = runs.find((candidate) => candidate.runId === plan.base.runId) as RunRecord;
  const workDir = opts.workDir ?? mkdtempSync(join(tmpdir(), 'lifeboat-binlog-restore-'));
  try {
    const restoreStart = Date.now();
    const baseDir = join(workDir, 'base');
    mkdirSync(baseDir);
    const restore = await restoreRun({ s3: opts.s3, bucket: opts.bucket, run, target: opts.target, workDir: baseDir, log, signal: opts.signal });
    const restoreSeconds = (Date.now() - restoreStart) / 1000;
    log(`base      ${run.runId} restored into ${restore.databases.join(', ')}: ${restoreSeconds.toFixed(1)} s`);
    const replayStart = Date.now();
    const replays: ({ database: string } & ReplayResult)[] = [];
    for (const { database, coordinates } of plan.base.databases) {
      const replay = await replayArchivedBinlogs({
        s3: opts.s3, bucket: opts.bucket, source: opts.source, binlogClient: opts.binlogClient, sqlClient: opts.sqlClient,
        from: coordinates, stopAt: opts.at, database, archive, scratchDir: join(workDir, 'binlog', encodeURIComponent(database)),
        target: { host: opts.target.host, port: opts.target.port, user: opts.target.username, ...(opts.target.password !== undefined ? { password: opts.target.password } : {}) },
        signal: opts.signal,
      });
      log(`replay    ${database}: ${replay.files.join(', ')} from ${coordinates.file}:${coordinates.position}, ${formatSize(Math.max(0, replay.bytes))}: ${replay.seconds.toFixed(1)} s`);
      replays.push({ database, ...replay });
    }
    const replaySeconds = (Date.now() - replayStart) / 1000;
    return { plan, restore, replays, timings: { planSeconds, restoreSeconds, replaySeconds } };
  } finally {
    if (!opts.workDir) rmSync(workDir, { recursive: true, force: true });
  }
}
