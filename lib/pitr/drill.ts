/**
 * A PITR restore drill (issue 13): restore a chosen point into a throwaway server, and judge it —
 * recovery stopped at the target (not short of it: the last replayed commit is at or before the
 * target, and the server's log says it stopped before a later commit), every heap and B-tree of
 * the cluster sound (pg_amcheck), the source's drill checks true — timing each phase; the
 * measured RTO (restore + start and replay + checks) against the tier's RTO.
 *
 * The targets alternate: the latest WAL, and a random second of the last day that the window
 * covers (lib/pitr/restore-plan.ts refuses one it does not).
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../servers/processes';
import type { PgServer } from '../servers/postgres';
import type { PgBackRest, RestoreTarget } from './pgbackrest';
import { checkRecoveryReachedEnd, checkRecoveryReachedTime, secondsSince as seconds, waitForRecoveryEnd } from './recovery';

export interface PitrDrillCheck {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

export interface PitrDrillReport {
  readonly target: 'latest' | string;
  readonly set?: string;
  /** The throwaway server the set was restored into. */
  readonly server?: { readonly version: string; readonly major: number };
  readonly timings: { readonly restoreSeconds: number; readonly replaySeconds: number; readonly checkSeconds: number };
  readonly measuredRtoSeconds: number;
  readonly rtoSeconds: number;
  readonly checks: readonly PitrDrillCheck[];
  readonly verdict: 'ok' | 'failed';
}

export interface PitrDrillOptions {
  readonly runner: PgBackRest;
  readonly target: { readonly time: Date } | 'latest';
  /** A directory that does not exist yet: the drill restores into it and removes it afterwards. */
  readonly dataDir: string;
  /** Starts PostgreSQL (of the source's major) on the restored directory. */
  readonly startServer: (dataDir: string) => Promise<PgServer>;
  /** Directory with pg_amcheck (the server's bin directory). */
  readonly pgBinDir: string;
  /** The source's drill checks: each query returns one boolean. */
  readonly drillChecks?: readonly { readonly name: string; readonly sql: string; readonly database?: string }[];
  /** The database the checks run in by default. */
  readonly database: string;
  readonly rtoSeconds: number;
  /** @default 120 s */
  readonly recoveryTimeoutSeconds?: number;
  /** The archive's newest segment: a drill to `latest` checks that recovery replayed up to it. @default - not checked */
  readonly newestSegment?: string;
  /** More checks on the restored server, timed with the others (the PITR marker). */
  readonly extraChecks?: (psql: (sql: string, database?: string) => Promise<string>) => Promise<PitrDrillCheck[]>;
}

export async function runPitrDrill(opts: PitrDrillOptions): Promise<PitrDrillReport> {
  const target: RestoreTarget = opts.target;
  const targetText = target === 'latest' ? 'latest' : target.time.toISOString();
  // The drill removes its directory afterwards: it must be one it makes, never one that holds anything.
  if (existsSync(opts.dataDir)) {
    throw Object.assign(new Error(`drill dataDir ${opts.dataDir} already exists: a drill restores into a directory of its own, which it removes afterwards`), { name: 'InvalidInput' });
  }
  let server: PgServer | undefined;
  try {
    const restoreStarted = process.hrtime.bigint();
    const { set } = await opts.runner.restore({ dataDir: opts.dataDir, target });
    const restoreSeconds = seconds(restoreStarted);

    const replayStarted = process.hrtime.bigint();
    server = await opts.startServer(opts.dataDir);
    const psql = (sql: string) => (server as PgServer).psql(sql);
    await waitForRecoveryEnd(psql, opts.recoveryTimeoutSeconds ?? 120);
    const replaySeconds = seconds(replayStarted);

    const checkStarted = process.hrtime.bigint();
    const checks: PitrDrillCheck[] = [];
    if (target !== 'latest') {
      const { name, ok, detail } = await checkRecoveryReachedTime(psql, readFileSync(server.logPath, 'utf8'), target.time);
      checks.push({ name, ok, detail });
    } else if (opts.newestSegment) {
      const { name, ok, detail } = await checkRecoveryReachedEnd(psql, opts.newestSegment);
      checks.push({ name, ok, detail });
    }
    const amcheck = await run(join(opts.pgBinDir, 'pg_amcheck'), ['--all', '--install-missing', '--heapallindexed', '--no-password'], { env: { ...process.env, ...server.env } });
    checks.push({
      name: 'amcheck',
      ok: amcheck.code === 0,
      detail: amcheck.code === 0 ? 'pg_amcheck: every heap and B-tree index of every database sound (--heapallindexed)' : `pg_amcheck exited ${amcheck.code}: ${`${amcheck.stdout}${amcheck.stderr}`.trim().split('\n').slice(0, 5).join(' / ')}`,
    });
    if (opts.extraChecks) checks.push(...(await opts.extraChecks((sql, database) => (server as PgServer).psql(sql, database ?? opts.database))));
    for (const check of opts.drillChecks ?? []) {
      const result = await server.psql(check.sql, check.database ?? opts.database).then((out) => out.trim(), (error: Error) => `error: ${error.message.split('\n')[0]}`);
      checks.push({ name: `check: ${check.name}`, ok: result === 't', detail: `${check.sql} → ${result}` });
    }
    const checkSeconds = seconds(checkStarted);

    const measuredRtoSeconds = restoreSeconds + replaySeconds + checkSeconds;
    checks.push({ name: 'rto', ok: measuredRtoSeconds <= opts.rtoSeconds, detail: `measured ${measuredRtoSeconds.toFixed(1)}s against the tier's RTO of ${opts.rtoSeconds}s` });
    return {
      target: targetText,
      ...(set ? { set } : {}),
      server: { version: String(server.version), major: server.version },
      timings: { restoreSeconds, replaySeconds, checkSeconds },
      measuredRtoSeconds,
      rtoSeconds: opts.rtoSeconds,
      checks,
      verdict: checks.every((check) => check.ok) ? 'ok' : 'failed',
    };
  } finally {
    await server?.stop();
    rmSync(opts.dataDir, { recursive: true, force: true });
  }
}
