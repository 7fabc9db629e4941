/**
 * Reading a mysqldump / mariadb-dump SQL stream as it decompresses: which tables it creates
 * under which database, and whether it ends with the client's completion marker. Fed chunk by
 * chunk, it holds at most one short line; long lines (multi-megabyte INSERTs) are skipped
 * without being copied.
 */

export interface SqlTable {
  readonly database: string;
  readonly name: string;
}

export interface SqlScanResult {
  /** `CREATE TABLE` statements, each with the database of the `USE` before it ('' if none). */
  readonly tables: readonly SqlTable[];
  /** Databases selected with `USE`, in order of first appearance. */
  readonly databases: readonly string[];
  /** The last non-blank line is `-- Dump completed on …`. */
  readonly completed: boolean;
  readonly bytes: number;
}

const COMPLETION_MARKER = '-- Dump completed';
const INTERESTING = ['USE `', 'CREATE TABLE ', COMPLETION_MARKER].map((prefix) => Buffer.from(prefix, 'utf8'));
/** A line that could matter but is longer than this is not a statement we read. */
const MAX_LINE = 64 * 1024;
const NEWLINE = 0x0a;

/** Unquotes a backtick identifier at the start of `text`: returns the name and the rest. */
export function readBacktickIdentifier(text: string): { name: string; rest: string } | undefined {
  if (!text.startsWith('`')) return undefined;
  let name = '';
  for (let i = 1; i < text.length; i++) {
    const ch = text[i];
    if (ch === '`') {
      if (text[i + 1] === '`') {
        name += '`';
        i++;
      } else {
        return { name, rest: text.slice(i + 1) };
      }
    } else {
      name += ch;
    }
  }
  return undefined;
}

export class SqlDumpScanner {
  private readonly tables: SqlTable[] = [];
  private readonly databases: string[] = [];
  private database = '';
  private completed = false;
  private bytes = 0;
  /** Start of a line that may be interesting, carried over to the next chunk. */
  private pending: Buffer[] = [];
  private pendingLength = 0;
  /** Inside a line that is not interesting: skip to its newline. */
  private skipping = false;

  push(chunk: Buffer): void {
    this.bytes += chunk.length;
    let pos = 0;
    if (this.skipping || this.pendingLength > 0) {
      const newline = chunk.indexOf(NEWLINE);
      if (newline < 0) {
        if (!this.skipping) this.carry(chunk);
        return;
      }
      if (!this.skipping) {
        this.pending.push(chunk.subarray(0, newline));
        this.line(Buffer.concat(this.pending));
        this.pending = [];
        this.pendingLength = 0;
      }
      this.skipping = false;
      pos = newline + 1;
    }
    while (pos < chunk.length) {
      const newline = chunk.indexOf(NEWLINE, pos);
      if (newline < 0) {
        this.startPartial(chunk.subarray(pos));
        return;
      }
      if (newline > pos) this.lineAt(chunk, pos, newline);
      pos = newline + 1;
    }
  }

  finish(): SqlScanResult {
    if (this.pendingLength > 0) this.line(Buffer.concat(this.pending));
    this.pending = [];
    this.pendingLength = 0;
    return { tables: [...this.tables], databases: [...this.databases], completed: this.completed, bytes: this.bytes };
  }

  /** A complete line inside `chunk`: look at it only if its first bytes say it may matter. */
  private lineAt(chunk: Buffer, start: number, end: number): void {
    if (!isBlank(chunk, start, end)) this.completed = false;
    const first = chunk[start];
    if (first !== 0x55 /* U */ && first !== 0x43 /* C */ && first !== 0x2d /* - */) return;
    if (!INTERESTING.some((prefix) => startsWith(chunk, start, end, prefix))) return;
    this.line(chunk.subarray(start, end));
  }

  private line(bytes: Buffer): void {
    if (!isBlank(bytes, 0, bytes.length)) this.completed = false;
    const text = bytes.toString('utf8').replace(/\r$/, '');
    if (text.startsWith(COMPLETION_MARKER)) {
      this.completed = true;
    } else if (text.startsWith('USE `')) {
      const use = readBacktickIdentifier(text.slice(4));
      if (use && use.rest.trim() === ';') {
        this.database = use.name;
        if (!this.databases.includes(use.name)) this.databases.push(use.name);
      }
    } else if (text.startsWith('CREATE TABLE ')) {
      const created = readBacktickIdentifier(text.slice('CREATE TABLE '.length).replace(/^IF NOT EXISTS /, ''));
      if (created) this.tables.push({ database: this.database, name: created.name });
    }
  }

  /** A line that does not end in this chunk: keep it only if it may be interesting. */
  private startPartial(part: Buffer): void {
    if (!isBlank(part, 0, part.length)) this.completed = false;
    const mayMatter = INTERESTING.some((prefix) => startsWith(part, 0, part.length, prefix.subarray(0, Math.min(prefix.length, part.length))));
    if (mayMatter) this.carry(part);
    else this.skipping = true;
  }

  private carry(part: Buffer): void {
    this.pendingLength += part.length;
    if (this.pendingLength > MAX_LINE) {
      this.pending = [];
      this.pendingLength = 0;
      this.skipping = true;
      return;
    }
    // Copied: the caller may reuse the chunk's memory.
    this.pending.push(Buffer.from(part));
  }
}

function startsWith(buffer: Buffer, start: number, end: number, prefix: Buffer): boolean {
  if (end - start < prefix.length) return false;
  return buffer.compare(prefix, 0, prefix.length, start, start + prefix.length) === 0;
}

function isBlank(buffer: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const byte = buffer[i];
    if (byte !== 0x20 && byte !== 0x09 && byte !== 0x0d && byte !== 0x0a) return false;
  }
  return true;
}

/**
 * Follows the frame structure of a zstd stream (RFC 8878) without decompressing it, to tell a
 * complete stream from a truncated one: Node's zstd decompressor ends quietly at the end of its
 * input even in the middle of a frame, so a truncated .sql.zst would otherwise decompress "fine".
 */
export class ZstdFrameTracker {
  private state: 'magic' | 'skippable-size' | 'skip' | 'frame-header' | 'header-rest' | 'block-header' | 'block-body' | 'checksum' = 'magic';
  private readonly field = Buffer.alloc(8);
  private fieldLength = 0;
  private skipBytes = 0;
  private checksum = false;
  private lastBlock = false;
  private frames = 0;
  private problem: string | undefined;

  push(chunk: Buffer): void {
    let pos = 0;
    while (pos < chunk.length && this.problem === undefined) {
      if (this.state === 'skip' || this.state === 'block-body' || this.state === 'header-rest' || this.state === 'checksum') {
        const take = Math.min(this.skipBytes, chunk.length - pos);
        this.skipBytes -= take;
        pos += take;
        if (this.skipBytes === 0) this.afterSkip();
        continue;
      }
      const need = this.state === 'magic' || this.state === 'skippable-size' ? 4 : this.state === 'frame-header' ? 1 : 3;
      const take = Math.min(need - this.fieldLength, chunk.length - pos);
      chunk.copy(this.field, this.fieldLength, pos, pos + take);
      this.fieldLength += take;
      pos += take;
      if (this.fieldLength === need) {
        this.fieldLength = 0;
        this.onField();
      }
    }
  }

  /** Undefined when the stream ended cleanly after at least one complete frame; else why not. */
  finish(): string | undefined {
    if (this.problem !== undefined) return this.problem;
    if (this.state !== 'magic' || this.fieldLength !== 0) return `the zstd stream ends inside frame ${this.frames + 1} (truncated)`;
    if (this.frames === 0) return 'the zstd stream holds no frame';
    return undefined;
  }

  private onField(): void {
    const f = this.field;
    switch (this.state) {
      case 'magic': {
        const magic = f.readUInt32LE(0);
        if (magic === 0xfd2fb528) this.state = 'frame-header';
        else if ((magic & 0xfffffff0) >>> 0 === 0x184d2a50) this.state = 'skippable-size';
        else this.problem = `not a zstd frame at frame ${this.frames + 1} (magic 0x${magic.toString(16)})`;
        return;
      }
      case 'skippable-size':
        this.skipBytes = f.readUInt32LE(0);
        this.state = 'skip';
        if (this.skipBytes === 0) this.afterSkip();
        return;
      case 'frame-header': {
        const descriptor = f[0] as number;
        const fcsFlag = descriptor >> 6;
        const singleSegment = (descriptor >> 5) & 1;
        if ((descriptor >> 3) & 1) {
          this.problem = `reserved bit set in the header of zstd frame ${this.frames + 1}`;
          return;
        }
        this.checksum = ((descriptor >> 2) & 1) === 1;
        const dictionaryIdBytes = [0, 1, 2, 4][descriptor & 3] as number;
        const contentSizeBytes = [singleSegment ? 1 : 0, 2, 4, 8][fcsFlag] as number;
        this.skipBytes = (singleSegment ? 0 : 1) + dictionaryIdBytes + contentSizeBytes;
        this.state = 'header-rest';
        if (this.skipBytes === 0) this.afterSkip();
        return;
      }
      case 'block-header': {
        const header = f.readUIntLE(0, 3);
        this.lastBlock = (header & 1) === 1;
        const type = (header >> 1) & 3;
        const size = header >>> 3;
        if (type === 3) {
          this.problem = `reserved block type in zstd frame ${this.frames + 1}`;
          return;
        }
        // An RLE block stores one byte, repeated `size` times.
        this.skipBytes = type === 1 ? 1 : size;
        this.state = 'block-body';
        if (this.skipBytes === 0) this.afterSkip();
        return;
      }
      default:
        return;
    }
  }

  private afterSkip(): void {
    switch (this.state) {
      case 'skip':
        this.state = 'magic';
        return;
      case 'header-rest':
        this.state = 'block-header';
        return;
      case 'block-body':
        if (!this.lastBlock) {
          this.state = 'block-header';
        } else if (this.checksum) {
          this.skipBytes = 4;
          this.state = 'checksum';
        } else {
          this.frames++;
          this.state = 'magic';
        }
        return;
      case 'checksum':
        this.frames++;
        this.state = 'magic';
        return;
      default:
        return;
    }
  }
}
