/**
 * The binary-log coordinates a logical dump records (`--master-data=2 --gtid` for MariaDB's
 * client, `--source-data=2` for MySQL's), read from the dump's own text: the commented
 * `CHANGE MASTER TO` / `CHANGE REPLICATION SOURCE TO` line near its head, and the GTID position
 * (MariaDB prints `SET GLOBAL gtid_slave_pos` near its end; MySQL's `--set-gtid-purged=COMMENTED`
 * prints `SET @@GLOBAL.GTID_PURGED` near its head). A replay of the archived binary logs onto
 * the restored database starts at these coordinates.
 */
import { Transform } from 'node:stream';

export interface BinlogCoordinates {
  readonly file: string;
  readonly position: number;
  readonly gtid?: string;
}

/** Bytes of the dump's head and tail kept to read the coordinates from. */
export const COORDINATE_HEAD_BYTES = 64 * 1024;
export const COORDINATE_TAIL_BYTES = 16 * 1024;

/** The coordinates in a dump's head and tail text, or undefined when it has none. */
export function parseDumpCoordinates(head: string, tail = ''): BinlogCoordinates | undefined {
  const text = `${head}\n${tail}`;
  const change = /CHANGE (?:MASTER|REPLICATION SOURCE) TO (?:MASTER|SOURCE)_LOG_FILE='([^']+)',\s*(?:MASTER|SOURCE)_LOG_POS=(\d+)/.exec(text);
  if (!change) return undefined;
  const gtid = /SET GLOBAL gtid_slave_pos='([^']*)'/.exec(text)?.[1]
    ?? /SET @@GLOBAL\.GTID_PURGED=(?:\/\*!\d+ '\+'\*\/ )?'([^']*)'/.exec(text)?.[1];
  return { file: change[1] as string, position: Number(change[2]), ...(gtid ? { gtid: gtid.replace(/\s+/g, '') } : {}) };
}

/** A pass-through that keeps the stream's first and last bytes, to read the coordinates once it ends. */
export class CoordinateTap extends Transform {
  private head = Buffer.alloc(0);
  private tail = Buffer.alloc(0);

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null, data?: Buffer) => void): void {
    if (this.head.length < COORDINATE_HEAD_BYTES) this.head = Buffer.concat([this.head, chunk.subarray(0, COORDINATE_HEAD_BYTES - this.head.length)]);
    const joined = Buffer.concat([this.tail, chunk]);
    this.tail = joined.subarray(Math.max(0, joined.length - COORDINATE_TAIL_BYTES));
    callback(null, chunk);
  }

  coordinates(): BinlogCoordinates | undefined {
    return parseDumpCoordinates(this.head.toString('utf8'), this.tail.toString('utf8'));
  }
}
