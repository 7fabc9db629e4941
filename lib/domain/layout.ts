/**
 * The bucket layout: the bucket is the catalog. Every key Lifeboat reads or writes is
 * built here, so the worker, the Lambdas and the CLI cannot disagree on it.
 *
 *   runs/<source>/<runId>/<artifact>          stock-tool format (.pgdump, .sql.zst, .sql.gz)
 *   runs/<source>/<runId>/globals.sql         PostgreSQL roles and tablespaces (no passwords)
 *   runs/<source>/<runId>/manifest.json       what was dumped
 *   runs/<source>/<runId>/verification.json   the verifier's verdict
 *   runs/<source>/<runId>/offsite.json        the replica's confirmation
 *   drills/<source>/<drillId>/report.json     restore drill evidence
 */

export const RUNS_PREFIX = 'runs/';
export const DRILLS_PREFIX = 'drills/';

export function sourcePrefix(source: string): string {
  return `${RUNS_PREFIX}${source}/`;
}

export function runPrefix(source: string, runId: string): string {
  return `${sourcePrefix(source)}${runId}/`;
}

/** The artifact of one database; `database` is part of the name so several can share a run. */
export function artifactKey(source: string, runId: string, database: string, fileExtension: string): string {
  return `${runPrefix(source, runId)}${encodeURIComponent(database)}${fileExtension}`;
}

export function globalsKey(source: string, runId: string): string {
  return `${runPrefix(source, runId)}globals.sql`;
}

export function manifestKey(source: string, runId: string): string {
  return `${runPrefix(source, runId)}manifest.json`;
}

export function verificationKey(source: string, runId: string): string {
  return `${runPrefix(source, runId)}verification.json`;
}

export function offsiteKey(source: string, runId: string): string {
  return `${runPrefix(source, runId)}offsite.json`;
}

export function drillReportKey(source: string, drillId: string): string {
  return `${DRILLS_PREFIX}${source}/${drillId}/report.json`;
}
