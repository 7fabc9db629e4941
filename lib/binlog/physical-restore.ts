/**
 * Restore of a MySQL/MariaDB source to a point from its physical backups (issue 15): the newest
 * verified chain whose last backup ended at or before the target, downloaded (each stream's
 * SHA-256 against its manifest), unpacked and prepared (lib/binlog/physical-verify.ts), copied
 * back into an empty datadir with `--copy-back`, a throwaway server started on it (on a free
 * loopback port, lib/servers/mariadb.ts), and the archived binary logs replayed onto it from the
 * last backup's binlog coordinates up to the target (lib/binlog/replay.ts).
 *
 * A restore goes into an empty datadir only: replaying GTIDs a server already has is silently
 * skipped. Each phase is timed (the RTO's parts).
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { lifeboatError } from '../domain/errors';
import { pitrCatalogName } from '../domain/layout';
import { startMariaDb, type MariaDbServer } from '../servers/mariadb';
import { copyBackArgv, physicalChain, type PhysicalRunRef } from './physical';
import { prepareChainFromBucket, readPhysicalRuns, runTool, streamOf } from './physical-verify';
import { replayArchivedBinlogs, type ReplayResult } from './replay';

export interface PhysicalRestoreInput {
  readonly s3: S3Client;
  readonly bucket: string;
  readonly source: string;
  /** engine.binlogTools: `mariadb-backup` / `mbstream` / `mariadb-binlog`, and the SQL client (`mariadb`). */
  readonly tool: string;
  readonly streamTool: string;
  readonly binlogClient: string;
  readonly sqlClient: string;
  /** The target: events at or after it are not applied; 'latest': the archive's end. */
  readonly at: Date | 'latest';
  /** An empty (or absent) directory: the restored datadir. */
  readonly dataDir: string;
  /** Where the chain and the binary logs are unpacked (removed afterwards). */
  readonly scratchDir: string;
  /** The restored server's account for the replay (the source's own accounts come back with the datadir). @default - root, no password */
  readonly account?: { readonly user: string; readonly password?: string };
  readonly log?: (line: string) => void;
  readonly signal?: AbortSignal;
}

export interface PhysicalRestoreResult {
  /** The throwaway server on the restored datadir; the caller stops it (the datadir stays). */
  readonly server: MariaDbServer;
  /** The chain's run ids, full first. */
  readonly chain: string[];
  readonly from: { readonly file: string; readonly position: number; readonly gtid?: string };
  readonly replay: ReplayResult;
  readonly seconds: { readonly download: number; readonly copyBack: number; readonly start: number; readonly replay: number };
}

/** The base for a restore to `at`: the newest verified physical run that ended at or before it, with its chain. */
export function physicalBaseFor(runs: readonly PhysicalRunRef[], at: Date | 'latest', source: string): PhysicalRunRef[] {
  const candidates = runs
    .filter((run) => run.verdict === 'ok' && run.manifest?.physical)
    .filter((run) => at === 'latest' || new Date(run.manifest?.physical?.endTime ?? run.manifest?.finishedAt ?? 0).getTime() <= at.getTime())
    .sort((a, b) => b.runId.localeCompare(a.runId));
  const newest = candidates[0];
  if (!newest) {
    const verified = runs.filter((run) => run.verdict === 'ok' && run.manifest?.physical).map((run) => run.runId);
    throw lifeboatError('NoVerifiedRun',
      `${source} has no verified physical backup that ended at or before ${at === 'latest' ? 'now' : at.toISOString()} ` +
      `(verified physical runs of ${pitrCatalogName(source)}: ${verified.length > 0 ? verified.join(', ') : 'none'})`);
  }
  return physicalChain(runs, newest.runId, { requireVerified: true });
}

export async function restorePhysicalToPoint(input: PhysicalRestoreInput): Promise<PhysicalRestoreResult> {
  const log = input.log ?? (() => undefined);
  if (existsSync(input.dataDir) && readdirSync(input.dataDir).length > 0) {
    throw lifeboatError('TargetNotEmpty', `the datadir ${input.dataDir} is not empty: a physical restore goes into an empty directory only (replayed GTIDs the server already has would be skipped)`);
  }
  const runs = await readPhysicalRuns(input.s3, input.bucket, input.source);
  const chain = physicalBaseFor(runs, input.at, input.source);
  const last = chain.at(-1)?.manifest?.physical;
  if (!last) throw lifeboatError('NoVerifiedRun', `${input.source}: the chain is empty`);
  log(`${input.source}: base ${chain.map((run) => `${run.runId} (${run.manifest?.physical?.type})`).join(' → ')}, binlog from ${last.binlog.file}:${last.binlog.position}`);

  const work = join(input.scratchDir, `physical-restore-${input.source}`);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  let server: MariaDbServer | undefined;
  try {
    let mark = Date.now();
    const lap = () => {
      const seconds = (Date.now() - mark) / 1000;
      mark = Date.now();
      return seconds;
    };
    const links = chain.map((run) => {
      const stream = streamOf(run.manifest as NonNullable<PhysicalRunRef['manifest']>);
      return { runId: run.runId, stream: { key: stream.key, ...(stream.versionId ? { versionId: stream.versionId } : {}), sha256: stream.sha256 } };
    });
    const prepared = await prepareChainFromBucket({ ...input, log }, links, work);
    const download = lap();

    mkdirSync(input.dataDir, { recursive: true });
    const { command, argv } = copyBackArgv(input.tool, prepared.preparedDir, input.dataDir);
    const copied = await runTool(command, argv, { signal: input.signal });
    if (copied.code !== 0) {
      throw lifeboatError('RestoreFailed', `${command} --copy-back into ${input.dataDir} failed (${copied.signal ? `signal ${copied.signal}` : `exit ${copied.code}`}): ${copied.tail}`);
    }
    const copyBack = lap();

    server = await startMariaDb({ existingDataDir: input.dataDir });
    const start = lap();
    log(`${input.source}: restored datadir serving on ${server.host}:${server.port} (${server.version})`);

    const replay = await replayArchivedBinlogs({
      s3: input.s3, bucket: input.bucket, source: input.source, binlogClient: input.binlogClient, sqlClient: input.sqlClient,
      from: { file: last.binlog.file, position: last.binlog.position },
      stopAt: input.at,
      target: { host: server.host, port: server.port, user: input.account?.user ?? server.user, ...(input.account?.password !== undefined ? { password: input.account.password } : {}) },
      scratchDir: join(work, 'binlog'),
      ...(input.signal ? { signal: input.signal } : {}),
    });
    log(`${input.source}: replayed ${replay.files.length} binary log file(s), ${replay.bytes} bytes, in ${replay.seconds.toFixed(1)} s`);
    return { server, chain: chain.map((run) => run.runId), from: last.binlog, replay, seconds: { download, copyBack, start, replay: lap() } };
  } catch (error) {
    await server?.stop();
    throw error;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
