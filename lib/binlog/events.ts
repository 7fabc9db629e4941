/**
 * A binary log read by its event headers, as it streams (never the whole file in memory): the
 * magic number, each event's 19-byte v4 header (timestamp, type, server id, length, end
 * position, flags), each event's CRC32 when the format description says the server writes them,
 * the Rotate event that names the next file, a Stop event, and MariaDB's Gtid_list. What the
 * archiver records of every file it stores (its index entry), and what says that a file is
 * whole: every event where the previous one ended, every checksum right.
 *
 * The layout is MySQL's and MariaDB's alike (the v4 format since MySQL 5.0):
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_replication_binlog_event.html
 */
import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import type { BinlogFileFacts } from './documents';

export const BINLOG_MAGIC = Buffer.from([0xfe, 0x62, 0x69, 0x6e]);
const HEADER_BYTES = 19;
const STOP_EVENT = 3;
const ROTATE_EVENT = 4;
const FORMAT_DESCRIPTION_EVENT = 15;
/** MariaDB's Gtid_list event: the GTID state at the start of the file. */
const GTID_LIST_EVENT = 163;
/** LOG_EVENT_ARTIFICIAL_F: an event the server made up for the reader (the Rotate a dump starts with). */
const ARTIFICIAL_FLAG = 0x20;
const CHECKSUM_CRC32 = 1;

export interface BinlogScan extends BinlogFileFacts {
  /** Bytes through the last whole event: a file cut mid-event (a killed reader) is whole up to here. */
  readonly wholeBytes: number;
  /** What is wrong with the file (a broken chain, a bad checksum, no magic); empty when whole. */
  readonly problems: readonly string[];
}

/** Reads a binary log chunk by chunk: `push` each chunk, then `finish`. */
export class BinlogScanner {
  private readonly hash = createHash('sha256');
  private pending: Buffer = Buffer.alloc(0);
  /** File offset of `pending[0]`. */
  private offset = 0;
  private bytes = 0;
  private events = 0;
  private checksums = false;
  private magicSeen = false;
  private firstEventAt?: number;
  private lastEventAt?: number;
  private endPosition = 0;
  private lastType?: number;
  private next?: string;
  private serverId?: number;
  private gtidListAtStart?: string;
  private readonly problems: string[] = [];

  constructor(private readonly file: string) {}

  push(chunk: Buffer): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    if (this.problems.length > 0) return;
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    this.consume();
  }

  finish(): BinlogScan {
    if (this.problems.length === 0 && !this.magicSeen && this.bytes > 0) this.problems.push(`${this.file}: shorter than the binary log magic number`);
    const wholeBytes = this.magicSeen ? this.offset : 0;
    const ends = this.lastType === ROTATE_EVENT && this.next !== undefined ? 'rotate' : this.lastType === STOP_EVENT ? 'stop' : 'none';
    return {
      bytes: this.bytes,
      sha256: this.hash.digest('hex'),
      events: this.events,
      ...(this.firstEventAt !== undefined ? { firstEventAt: iso(this.firstEventAt) } : {}),
      ...(this.lastEventAt !== undefined ? { lastEventAt: iso(this.lastEventAt) } : {}),
      endPosition: this.endPosition,
      ends,
      ...(ends === 'rotate' && this.next ? { next: this.next } : {}),
      ...(this.serverId !== undefined ? { serverId: this.serverId } : {}),
      ...(this.gtidListAtStart !== undefined ? { gtidListAtStart: this.gtidListAtStart } : {}),
      wholeBytes,
      problems: [...this.problems],
    };
  }

  private consume(): void {
    if (!this.magicSeen) {
      if (this.pending.length < BINLOG_MAGIC.length) return;
      if (!this.pending.subarray(0, BINLOG_MAGIC.length).equals(BINLOG_MAGIC)) {
        this.problems.push(`${this.file}: not a binary log (no magic number at offset 0)`);
        return;
      }
      this.magicSeen = true;
      this.advance(BINLOG_MAGIC.length);
    }
    while (this.pending.length >= HEADER_BYTES) {
      const length = this.pending.readUInt32LE(9);
      if (length < HEADER_BYTES) {
        this.problems.push(`${this.file}: event at ${this.offset} claims ${length} bytes, less than its header`);
        return;
      }
      if (this.pending.length < length) return;
      this.event(this.pending.subarray(0, length));
      if (this.problems.length > 0) return;
      this.advance(length);
    }
  }

  private advance(bytes: number): void {
    this.pending = this.pending.subarray(bytes);
    this.offset += bytes;
  }

  private event(event: Buffer): void {
    const at = this.offset;
    const timestamp = event.readUInt32LE(0);
    const type = event.readUInt8(4);
    const serverId = event.readUInt32LE(5);
    const endPosition = event.readUInt32LE(13);
    const flags = event.readUInt16LE(17);
    if (type === FORMAT_DESCRIPTION_EVENT && this.events === 0) {
      // The checksum algorithm is the byte before the format description's own CRC32.
      this.checksums = event.length >= HEADER_BYTES + 5 && event.readUInt8(event.length - 5) === CHECKSUM_CRC32;
    }
    if (this.checksums) {
      const expected = event.readUInt32LE(event.length - 4);
      if (crc32(event.subarray(0, event.length - 4)) !== expected) {
        this.problems.push(`${this.file}: event at ${at} (type ${type}) fails its CRC32 checksum`);
        return;
      }
    }
    if ((flags & ARTIFICIAL_FLAG) !== 0) return;
    if (endPosition !== 0 && endPosition !== at + event.length) {
      this.problems.push(`${this.file}: event at ${at} ends at ${at + event.length} but says ${endPosition}: the chain of events is broken`);
      return;
    }
    this.events += 1;
    this.endPosition = at + event.length;
    this.serverId ??= serverId;
    if (timestamp > 0) {
      this.firstEventAt ??= timestamp;
      this.lastEventAt = timestamp;
    }
    this.lastType = type;
    const body = event.subarray(HEADER_BYTES, this.checksums ? event.length - 4 : event.length);
    if (type === ROTATE_EVENT && body.length > 8) this.next = body.subarray(8).toString('latin1');
    if (type === GTID_LIST_EVENT && this.gtidListAtStart === undefined) this.gtidListAtStart = gtidList(body);
  }
}

/** MariaDB's Gtid_list body: a count (low 28 bits), then (domain, server id, sequence) each. */
function gtidList(body: Buffer): string | undefined {
  if (body.length < 4) return undefined;
  const count = body.readUInt32LE(0) & 0x0fffffff;
  const gtids: string[] = [];
  for (let i = 0; i < count && 4 + (i + 1) * 16 <= body.length; i++) {
    const at = 4 + i * 16;
    gtids.push(`${body.readUInt32LE(at)}-${body.readUInt32LE(at + 4)}-${body.readBigUInt64LE(at + 8)}`);
  }
  return gtids.join(',');
}

function iso(seconds: number): string {
  return new Date(seconds * 1000).toISOString();
}

/** Scans a whole buffer (tests, small files). */
export function scanBinlog(file: string, content: Buffer): BinlogScan {
  const scanner = new BinlogScanner(file);
  scanner.push(content);
  return scanner.finish();
}
