/**
 * The binary-log archive's two documents, read and written through their schema (like the
 * manifest):
 * - the index entry of a completed file (`binlog/<source>/index/<file>.json`), stored once beside
 *   the file: its size and SHA-256, its first and last event, and how it ended (a Rotate event
 *   naming the next file, a Stop event at a clean shutdown, or neither after a crash);
 * - the state of one archiver run (`binlog/<source>/state/<runId>.json`): the server's files, what
 *   was stored, the active file's partial object, the newest archived event and, when the server
 *   had purged what was not archived, the gap. The watchdog, status and the restore read them.
 */
import { z } from 'zod';
import { parseDocument, serializeDocument } from '../domain/json-document';
import { isRunId } from '../domain/run-id';

export const BINLOG_DOCUMENT_SCHEMA_VERSION = 1;

const sha256 = z.string().regex(/^[0-9a-f]{64}$/, { error: 'expected a lowercase hex SHA-256' });
const timestamp = z.iso.datetime();
const runId = z.string().refine(isRunId, { error: 'expected a run id such as 20261126T030000Z' });
/** `binlog.000042`, `mysql-bin.000007`: the server's base name and a sequence number. */
export const BINLOG_FILE_NAME = /^[A-Za-z0-9._-]+\.\d{6,}$/;
const fileName = z.string().regex(BINLOG_FILE_NAME, { error: 'expected a binary log file name such as binlog.000042' });

/** What a binary log file holds, read from its event headers (lib/binlog/events.ts). */
export const binlogFileFactsSchema = z.strictObject({
  bytes: z.number().int().nonnegative(),
  sha256,
  /** Number of events, format description included. */
  events: z.number().int().nonnegative(),
  /** Times of the first and last event (whole seconds: the binary log's resolution). */
  firstEventAt: timestamp.optional(),
  lastEventAt: timestamp.optional(),
  /** The last event's end position: where a replay of the whole file stops. */
  endPosition: z.number().int().nonnegative(),
  /** rotate: the last event names `next`; stop: the server shut down cleanly; none: still written, or crashed. */
  ends: z.enum(['rotate', 'stop', 'none']),
  next: fileName.optional(),
  serverId: z.number().int().nonnegative().optional(),
  /** MariaDB's Gtid_list at the file's start (the GTID state before its first event), e.g. `0-1-42`. */
  gtidListAtStart: z.string().optional(),
});

export const binlogIndexEntrySchema = z.strictObject({
  schemaVersion: z.literal(BINLOG_DOCUMENT_SCHEMA_VERSION),
  source: z.string().min(1),
  file: fileName,
  sequence: z.number().int().nonnegative(),
  key: z.string().min(1),
  versionId: z.string().min(1).optional(),
  archivedAt: timestamp,
  /** The archiver run that stored it. */
  runId,
  facts: binlogFileFactsSchema,
});

export const binlogStateSchema = z.strictObject({
  schemaVersion: z.literal(BINLOG_DOCUMENT_SCHEMA_VERSION),
  source: z.string().min(1),
  engine: z.string().min(1),
  runId,
  startedAt: timestamp,
  finishedAt: timestamp,
  /** `SHOW BINARY LOGS` at the run's start: the files the server still had. */
  serverFiles: z.array(z.strictObject({ file: fileName, bytes: z.number().int().nonnegative() })),
  /** The completed files this run stored (each once, with its index entry). */
  stored: z.array(fileName),
  /** The newest completed file of the archive after this run. */
  archivedThrough: fileName.optional(),
  /** The active file as this run read it: its own object, never overwritten. */
  partial: z
    .strictObject({ file: fileName, key: z.string().min(1), versionId: z.string().min(1).optional(), facts: binlogFileFactsSchema })
    .optional(),
  /** The newest event the archive holds (completed files and this run's partial). */
  newestEventAt: timestamp.optional(),
  /**
   * The archive held everything the server had written at this time: the run's start, when it
   * stored the active file up to at least the size SHOW BINARY LOGS gave for it then. An idle
   * server writes no event, so the RPO is measured from here, not from the newest event.
   */
  completeAsOf: timestamp.optional(),
  /** The server no longer had files the archive lacks: a restore cannot cross them. */
  gap: z.strictObject({ missing: z.array(fileName).min(1), after: fileName.optional(), firstOnServer: fileName }).optional(),
  outcome: z.enum(['ok', 'BinlogGap']),
});

export type BinlogFileFacts = z.infer<typeof binlogFileFactsSchema>;
export type BinlogIndexEntry = z.infer<typeof binlogIndexEntrySchema>;
export type BinlogState = z.infer<typeof binlogStateSchema>;

export function parseBinlogIndexEntry(text: string, key: string): BinlogIndexEntry {
  return parseDocument(binlogIndexEntrySchema, text, key, 'binlog index entry', 'InvalidBinlogIndex');
}

export function serializeBinlogIndexEntry(entry: BinlogIndexEntry): string {
  return serializeDocument(binlogIndexEntrySchema, entry);
}

export function parseBinlogState(text: string, key: string): BinlogState {
  return parseDocument(binlogStateSchema, text, key, 'binlog archiver state', 'InvalidBinlogState');
}

export function serializeBinlogState(state: BinlogState): string {
  return serializeDocument(binlogStateSchema, state);
}

/** The file's sequence number: `binlog.000042` → 42. */
export function binlogSequence(file: string): number {
  const match = /\.(\d+)$/.exec(file);
  if (!match) throw Object.assign(new Error(`"${file}" is not a binary log file name (valid: such as binlog.000042)`), { name: 'InvalidInput' });
  return Number(match[1]);
}

/** The name of the file `offset` after `file` in its sequence, with the same base and width. */
export function binlogSibling(file: string, offset: number): string {
  const match = /^(.*\.)(\d+)$/.exec(file);
  if (!match) throw Object.assign(new Error(`"${file}" is not a binary log file name (valid: such as binlog.000042)`), { name: 'InvalidInput' });
  const digits = match[2] as string;
  return `${match[1]}${String(Number(digits) + offset).padStart(digits.length, '0')}`;
}
