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
 *   pitr/<source>/                            pgBackRest's repository of a PITR source (its host writes it)
 *   runs/<source>-pitr/<runId>/               the Lifeboat runs of its sets (manifest, verification, offsite)
 *   binlog/<source>/files/<file>              a MySQL/MariaDB source's completed binary log, stored once
 *   binlog/<source>/index/<file>.json         its index entry: size, SHA-256, first and last event, how it ended
 *   binlog/<source>/partial/<file>/<runId>    the file still being written, as one archiver run saw it
 *   binlog/<source>/state/<runId>.json        what that archiver run found and stored (the watchdog reads the newest)
 */

export const RUNS_PREFIX = 'runs/';
export const DRILLS_PREFIX = 'drills/';

export function sourcePrefix(source: string): string {
  return `${RUNS_PREFIX}${source}/`;
}

/**
 * The catalog of a source's point-in-time recovery runs: `<source>-pitr`, so that a source with
 * both methods keeps its logical runs (which restores, drills and the size rule read) apart from
 * its PITR sets, and the two schedules' slots never share a run. The validator refuses a source
 * named like another's PITR catalog.
 */
export function pitrCatalogName(source: string): string {
  return `${source}-pitr`;
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

export const BINLOG_PREFIX = 'binlog/';

/** Everything of a MySQL/MariaDB source's binary-log archive (lib/binlog). */
export function binlogPrefix(source: string): string {
  return `${BINLOG_PREFIX}${source}/`;
}

/** A completed binary log, stored once and never overwritten. */
export function binlogFileKey(source: string, file: string): string {
  return `${binlogPrefix(source)}files/${file}`;
}

export function binlogIndexPrefix(source: string): string {
  return `${binlogPrefix(source)}index/`;
}

/** The index entry of a completed binary log (lib/binlog/documents.ts). */
export function binlogIndexKey(source: string, file: string): string {
  return `${binlogIndexPrefix(source)}${file}.json`;
}

/** The active binary log as archiver run `runId` read it: its own object per run, never overwritten. */
export function binlogPartialKey(source: string, file: string, runId: string): string {
  return `${binlogPrefix(source)}partial/${file}/${runId}`;
}

export function binlogStatePrefix(source: string): string {
  return `${binlogPrefix(source)}state/`;
}

/** The record of one archiver run (lib/binlog/documents.ts). */
export function binlogStateKey(source: string, runId: string): string {
  return `${binlogStatePrefix(source)}${runId}.json`;
}
