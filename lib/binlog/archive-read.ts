/**
 * The binary-log archive of a source, read from the bucket alone (never the server): the index
 * entries of its completed files, the newest archiver state (with the active file's partial
 * object), and from them the chain a replay can follow — every file of the sequence, each
 * starting where the previous ended — and where it breaks.
 */
import { GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { binlogIndexPrefix, binlogStateKey, binlogStatePrefix } from '../domain/layout';
import { formatRunId, isRunId } from '../domain/run-id';
import {
  binlogSequence, binlogSibling, parseBinlogIndexEntry, parseBinlogState, type BinlogFileFacts, type BinlogIndexEntry, type BinlogState,
} from './documents';

export interface ArchiveLocation {
  readonly s3: S3Client;
  readonly bucket: string;
  readonly source: string;
  readonly signal?: AbortSignal;
}

/** One file a replay reads: a completed file, or the newest run's partial copy of the active one. */
export interface ArchivedBinlog {
  readonly file: string;
  readonly key: string;
  readonly versionId?: string;
  readonly facts: BinlogFileFacts;
  readonly partial: boolean;
}

export interface BinlogArchive {
  /** Completed files, by sequence. */
  readonly entries: readonly BinlogIndexEntry[];
  readonly newestState?: BinlogState;
}

/** Every key under `prefix` (after `startAfter`, when given), page by page. */
export async function listKeys(location: ArchiveLocation, prefix: string, startAfter?: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await location.s3.send(
      new ListObjectsV2Command({ Bucket: location.bucket, Prefix: prefix, ContinuationToken: token, ...(startAfter && !token ? { StartAfter: startAfter } : {}) }),
      { abortSignal: location.signal },
    );
    for (const object of page.Contents ?? []) if (object.Key) keys.push(object.Key);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return keys;
}

export async function readText(location: ArchiveLocation, key: string): Promise<string> {
  const object = await location.s3.send(new GetObjectCommand({ Bucket: location.bucket, Key: key }), { abortSignal: location.signal });
  return (await object.Body?.transformToString('utf8')) ?? '';
}

/** The index entries, by sequence. */
export async function readBinlogIndex(location: ArchiveLocation): Promise<BinlogIndexEntry[]> {
  const keys = (await listKeys(location, binlogIndexPrefix(location.source))).filter((key) => key.endsWith('.json'));
  const entries = await Promise.all(keys.map(async (key) => parseBinlogIndexEntry(await readText(location, key), key)));
  return entries.sort((a, b) => a.sequence - b.sequence);
}

/** States of the last day are listed first: one state per archiver run accumulates, and the newest is recent while the archiver runs. */
const RECENT_STATES_MS = 86_400_000;

/**
 * The key of the newest archiver run's state (run ids sort by time), if any run finished: the
 * states written since a day before `now` (ListObjectsV2 StartAfter), and only when there is
 * none the whole prefix.
 */
export async function newestBinlogStateKey(location: ArchiveLocation, now = new Date()): Promise<string | undefined> {
  const prefix = binlogStatePrefix(location.source);
  const isState = (key: string) => key.endsWith('.json') && isRunId(key.slice(prefix.length, -'.json'.length));
  const recent = await listKeys(location, prefix, binlogStateKey(location.source, formatRunId(new Date(now.getTime() - RECENT_STATES_MS))));
  const keys = (recent.some(isState) ? recent : await listKeys(location, prefix)).filter(isState).sort();
  return keys.at(-1);
}

/** The newest archiver run's state, if any run finished. */
export async function readNewestBinlogState(location: ArchiveLocation, now = new Date()): Promise<BinlogState | undefined> {
  const newest = await newestBinlogStateKey(location, now);
  return newest === undefined ? undefined : parseBinlogState(await readText(location, newest), newest);
}

export async function readBinlogArchive(location: ArchiveLocation): Promise<BinlogArchive> {
  const [entries, newestState] = await Promise.all([readBinlogIndex(location), readNewestBinlogState(location)]);
  return { entries, ...(newestState ? { newestState } : {}) };
}

export interface BinlogChain {
  /** From `from` on, each file following the previous one, the partial last when it continues the chain. */
  readonly files: readonly ArchivedBinlog[];
  /** The first file the chain needs and the archive lacks (a purge before it was archived), if it breaks. */
  readonly missing?: string;
  /** Why the chain ends where it does, for people. */
  readonly end: string;
}

/**
 * The files a replay from `from` reads, in order: each completed file must be the next of the
 * sequence and follow the previous one (its Rotate named it, or the previous ended by a Stop
 * or crash and the sequence goes on), then the newest partial of the file after the last one.
 */
export function binlogChain(archive: BinlogArchive, from: string): BinlogChain {
  const bySequence = new Map(archive.entries.map((entry) => [entry.sequence, entry]));
  const files: ArchivedBinlog[] = [];
  let expected = from;
  let previous: BinlogIndexEntry | undefined;
  for (;;) {
    const entry = bySequence.get(binlogSequence(expected));
    if (!entry || entry.file !== expected) break;
    if (previous?.facts.ends === 'rotate' && previous.facts.next !== entry.file) {
      return { files, missing: previous.facts.next, end: `${previous.file} rotated to ${previous.facts.next}, not to ${entry.file}` };
    }
    files.push({ file: entry.file, key: entry.key, ...(entry.versionId ? { versionId: entry.versionId } : {}), facts: entry.facts, partial: false });
    previous = entry;
    expected = entry.facts.ends === 'rotate' && entry.facts.next ? entry.facts.next : binlogSibling(entry.file, 1);
  }
  const partial = archive.newestState?.partial;
  if (partial && partial.file === expected) {
    files.push({ file: partial.file, key: partial.key, ...(partial.versionId ? { versionId: partial.versionId } : {}), facts: partial.facts, partial: true });
    return { files, end: `the active file ${partial.file} as the newest archiver run read it` };
  }
  const newer = archive.entries.find((entry) => entry.sequence > binlogSequence(expected))
    ?? (partial && binlogSequence(partial.file) > binlogSequence(expected) ? { file: partial.file } : undefined);
  if (newer) return { files, missing: expected, end: `${expected} is not in the archive, and ${newer.file} is: the server purged it before it was archived` };
  return { files, end: files.length > 0 ? `${files.at(-1)?.file}, the newest archived file` : `${from} is not archived yet` };
}

/** The newest event time of the chain's files. */
export function chainNewestEvent(chain: BinlogChain): Date | undefined {
  const last = [...chain.files].reverse().find((file) => file.facts.lastEventAt);
  return last?.facts.lastEventAt ? new Date(last.facts.lastEventAt) : undefined;
}
