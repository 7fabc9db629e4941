/**
 * `pgbackrest info --output=json` (pgBackRest 2.45, info format 5) as typed objects: the backup
 * sets of one stanza (label, type, prior, start/stop times and LSNs, the WAL they need, sizes)
 * and the WAL archive's range per database.
 *
 * pgBackRest answers exit 0 even when the repository could not be read: the stanza's and the
 * repository's `status` say so (code 99 with e.g. `[HostConnectError] …`). `parseInfo` keeps
 * those statuses; the runner decides what they mean.
 */
import { z } from 'zod';

export type BackupType = 'full' | 'diff' | 'incr';

export interface BackupSet {
  /** e.g. `20261203-154410F`, `20261203-154410F_20261203-154420I`. */
  readonly label: string;
  readonly type: BackupType;
  /** The set this one is based on (for diff and incr); undefined for a full. */
  readonly prior?: string;
  /** Every set whose files this one references (undefined for a full). */
  readonly references?: readonly string[];
  /** Wall-clock start and stop, to the second (pgBackRest keeps epoch seconds). */
  readonly startTime: Date;
  readonly stopTime: Date;
  /** e.g. `0/3000028`. */
  readonly startLsn: string;
  readonly stopLsn: string;
  /** The first and last WAL segment a restore of this set needs, e.g. `000000010000000000000003`. */
  readonly walStart: string;
  readonly walStop: string;
  /** Database size in bytes, and the bytes this set copied (delta). */
  readonly size: number;
  readonly delta: number;
  /** The same in the repository (after compression). */
  readonly repoSize: number;
  readonly repoDelta: number;
  /** pgBackRest's `error` flag: a page checksum error was found while copying. */
  readonly checksumErrors: boolean;
  /** The PostgreSQL major version of the set's database (from the stanza's db list). */
  readonly pgVersion?: string;
  /** The pgBackRest that wrote the set (its `backrest.version`), e.g. `2.45`. */
  readonly writtenBy?: string;
}

export interface ArchiveRange {
  /** e.g. `15-1`: PostgreSQL version and database id. */
  readonly id: string;
  readonly pgVersion?: string;
  /** Oldest and newest WAL segment in the archive; undefined when it is empty. */
  readonly min?: string;
  readonly max?: string;
}

export interface InfoStatus {
  /** 0 ok, 2 no valid backups, 99 other (e.g. the repository could not be read), … */
  readonly code: number;
  readonly message: string;
}

export interface PgBackRestInfo {
  readonly stanza: string;
  readonly status: InfoStatus;
  /** Statuses of the repositories (one here: repo1). */
  readonly repoStatus: readonly InfoStatus[];
  /** Oldest first, as pgBackRest lists them. */
  readonly sets: readonly BackupSet[];
  readonly archive: readonly ArchiveRange[];
  /** The database system identifier (a 64-bit integer, kept as text). */
  readonly systemId?: string;
}

const status = z.looseObject({ code: z.number().int(), message: z.string() });
const databaseRef = z.looseObject({ id: z.number().int() });

const backupSchema = z.looseObject({
  archive: z.looseObject({ start: z.string().nullable(), stop: z.string().nullable() }),
  backrest: z.looseObject({ version: z.string() }).optional(),
  database: databaseRef,
  error: z.boolean().optional(),
  info: z.looseObject({
    delta: z.number(),
    size: z.number(),
    repository: z.looseObject({ delta: z.number(), size: z.number() }),
  }),
  label: z.string().min(1),
  lsn: z.looseObject({ start: z.string(), stop: z.string() }),
  prior: z.string().nullable(),
  reference: z.array(z.string()).nullable(),
  timestamp: z.looseObject({ start: z.number(), stop: z.number() }),
  type: z.enum(['full', 'diff', 'incr']),
});

const stanzaSchema = z.looseObject({
  name: z.string(),
  status,
  repo: z.array(z.looseObject({ key: z.number().int(), status })).default([]),
  archive: z.array(z.looseObject({ database: databaseRef, id: z.string(), min: z.string().nullable(), max: z.string().nullable() })).default([]),
  backup: z.array(backupSchema).default([]),
  db: z.array(z.looseObject({ id: z.number().int(), 'system-id': z.string(), version: z.string() })).default([]),
});

const infoSchema = z.array(stanzaSchema);

/**
 * JSON.parse turns the 64-bit system identifier into an inexact double: it is quoted first, the
 * only unquoted integer of that size in the document.
 */
function quoteSystemIds(json: string): string {
  return json.replace(/"system-id":\s*(\d+)/g, '"system-id":"$1"');
}

/** Parses `info --output=json` for `stanza`; throws a plain Error saying what did not match. */
export function parseInfo(json: string, stanza: string): PgBackRestInfo {
  let raw: unknown;
  try {
    raw = JSON.parse(quoteSystemIds(json));
  } catch (err) {
    throw new Error(`pgbackrest info: output is not JSON (${(err as Error).message})`);
  }
  const parsed = infoSchema.safeParse(raw);
  if (!parsed.success) throw new Error(`pgbackrest info: unexpected JSON: ${parsed.error.issues.slice(0, 3).map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const entry = parsed.data.find((s) => s.name === stanza);
  if (!entry) throw new Error(`pgbackrest info: no stanza ${JSON.stringify(stanza)} in the output`);
  const versions = new Map(entry.db.map((db) => [db.id, db.version]));
  return {
    stanza: entry.name,
    status: { code: entry.status.code, message: entry.status.message },
    repoStatus: entry.repo.map((repo) => ({ code: repo.status.code, message: repo.status.message })),
    systemId: entry.db.at(-1)?.['system-id'],
    archive: entry.archive.map((a) => ({
      id: a.id,
      pgVersion: versions.get(a.database.id),
      min: a.min ?? undefined,
      max: a.max ?? undefined,
    })),
    sets: entry.backup.map((b): BackupSet => ({
      label: b.label,
      type: b.type,
      prior: b.prior ?? undefined,
      references: b.reference ?? undefined,
      startTime: new Date(b.timestamp.start * 1000),
      stopTime: new Date(b.timestamp.stop * 1000),
      startLsn: b.lsn.start,
      stopLsn: b.lsn.stop,
      walStart: b.archive.start ?? '',
      walStop: b.archive.stop ?? '',
      size: b.info.size,
      delta: b.info.delta,
      repoSize: b.info.repository.size,
      repoDelta: b.info.repository.delta,
      checksumErrors: b.error ?? false,
      pgVersion: versions.get(b.database.id),
      ...(b.backrest ? { writtenBy: b.backrest.version } : {}),
    })),
  };
}

/**
 * The newest set a restore to `time` can start from: the last one that stopped at or before it
 * (a backup is consistent only from its stop on). Undefined when every set stopped later.
 * pgBackRest's stop time is whole seconds, truncated: a set that stopped at 12:00:04.6 reads
 * 12:00:04, so a target within that second may still be refused by recovery.
 */
export function setForTime(sets: readonly BackupSet[], time: Date): BackupSet | undefined {
  let chosen: BackupSet | undefined;
  for (const set of sets) {
    if (set.stopTime.getTime() <= time.getTime() && (!chosen || set.stopTime.getTime() >= chosen.stopTime.getTime())) chosen = set;
  }
  return chosen;
}
