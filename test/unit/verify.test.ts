/**
 * The verifier's pure parts: reading `pg_restore -l`, reading a SQL dump stream, following
 * zstd frames, comparing table sets, and the suspicious-size rule. Invariants first.
 */
import { constants as zlibConstants, zstdCompressSync } from 'node:zlib';
import { judgeSize, median, MIN_PREVIOUS_SIZES, TRAILING_RUNS } from '../../lib/verify/size';
import { CoalescingConsumer, type Consumer } from '../../lib/verify/fan-out';
import { readBacktickIdentifier, SqlDumpScanner, ZstdFrameTracker } from '../../lib/verify/sql-dump';
import { diffTableSets, parseTocLine, pgDisplayName, splitQualified, summarizeToc } from '../../lib/verify/toc';

describe('pg_restore -l', () => {
  const LISTING = `;
; Archive created at 2026-11-26 12:52:04 UTC
;     dbname: shop
;     TOC Entries: 70
;
; Selected TOC Entries:
;
9; 2615 16528 SCHEMA - Kunden postgres
8; 2615 16527 SCHEMA - sales postgres
10; 2615 16600 SCHEMA - My Schema postgres
11; 2615 16601 SCHEMA - DATA postgres
2; 3079 16422 EXTENSION - citext 
3578; 0 0 COMMENT - EXTENSION citext 
221; 1259 16540 TABLE Kunden Kunden Ümlaut postgres
219; 1259 16530 TABLE public customers postgres
218; 1259 16529 SEQUENCE public customers_id_seq postgres
223; 1259 16548 TABLE sales Order "Notes" postgres
225; 1259 16557 TABLE sales orders postgres
226; 1259 16567 TABLE sales orders_2025 postgres
240; 1259 16700 TABLE My Schema a b postgres
241; 1259 16701 TABLE DATA x postgres
231; 1259 16601 MATERIALIZED VIEW sales daily_totals postgres
3376; 0 0 TABLE ATTACH sales orders_2025 postgres
3566; 2613 16614 BLOB - 16614 postgres
3554; 0 16540 TABLE DATA Kunden Kunden Ümlaut postgres
3552; 0 16530 TABLE DATA public customers postgres
3556; 0 16548 TABLE DATA sales Order "Notes" postgres
3558; 0 16567 TABLE DATA sales orders_2025 postgres
3559; 0 16700 TABLE DATA My Schema a b postgres
3560; 0 16701 TABLE DATA DATA x postgres
3561; 0 16800 TABLE DATA public spatial_ref_sys postgres
3585; 0 0 SEQUENCE SET public customers_id_seq postgres
3571; 0 0 BLOBS - BLOBS 
3405; 2606 16562 FK CONSTRAINT sales orders orders_customer_id_fkey postgres
3562; 0 16601 MATERIALIZED VIEW DATA sales daily_totals postgres
`;

  test.each([
    ['3554; 0 16540 TABLE DATA Kunden Kunden Ümlaut postgres', 'TABLE DATA', 'Kunden Kunden Ümlaut postgres'],
    ['221; 1259 16540 TABLE Kunden Kunden Ümlaut postgres', 'TABLE', 'Kunden Kunden Ümlaut postgres'],
    // A TABLE in a schema named DATA: the catalog oid (pg_class) says it is not TABLE DATA.
    ['241; 1259 16701 TABLE DATA x postgres', 'TABLE', 'DATA x postgres'],
    ['3562; 0 16601 MATERIALIZED VIEW DATA sales daily_totals postgres', 'MATERIALIZED VIEW DATA', 'sales daily_totals postgres'],
    ['231; 1259 16601 MATERIALIZED VIEW sales daily_totals postgres', 'MATERIALIZED VIEW', 'sales daily_totals postgres'],
    ['3405; 2606 16562 FK CONSTRAINT sales orders orders_customer_id_fkey postgres', 'FK CONSTRAINT', 'sales orders orders_customer_id_fkey postgres'],
    ['3571; 0 0 BLOBS - BLOBS ', 'BLOBS', '- BLOBS '],
    ['9; 0 0 SOMETHING NEW - x postgres', 'SOMETHING', 'NEW - x postgres'],
  ])('%s → desc %s', (line, desc, rest) => {
    expect(parseTocLine(line)).toMatchObject({ desc, rest });
  });

  test.each([';', '', '; Archive created at', 'pg_restore: warning: x'])('not an entry: %j', (line) => {
    expect(parseTocLine(line)).toBeUndefined();
  });

  test.each([
    ['Kunden Kunden Ümlaut postgres', ['Kunden', 'public'], { schema: 'Kunden', name: 'Kunden Ümlaut' }],
    ['My Schema a b postgres', ['My', 'My Schema'], { schema: 'My Schema', name: 'a b' }],
    ['public customers postgres', [], { schema: 'public', name: 'customers' }],
    ['sales Order "Notes" postgres', ['sales'], { schema: 'sales', name: 'Order "Notes"' }],
    ['- citext ', ['-'], { schema: '-', name: 'citext' }],
  ])('splitQualified(%j)', (rest, schemas, expected) => {
    expect(splitQualified(rest, schemas)).toEqual(expected);
  });

  test('counts every entry by type and finds the tables with rows, partitioned parents, extension data', () => {
    const toc = summarizeToc(LISTING);
    expect(toc.entries).toHaveLength(28);
    expect(Object.values(toc.objectCounts).reduce((a, b) => a + b, 0)).toBe(toc.entries.length);
    expect(toc.objectCounts).toMatchObject({ SCHEMA: 4, TABLE: 7, 'TABLE DATA': 7, 'SEQUENCE SET': 1, BLOB: 1, BLOBS: 1, 'MATERIALIZED VIEW DATA': 1 });
    expect(toc.dataTables).toEqual([
      { schema: 'Kunden', name: 'Kunden Ümlaut' },
      { schema: 'public', name: 'customers' },
      { schema: 'sales', name: 'Order "Notes"' },
      { schema: 'sales', name: 'orders_2025' },
      { schema: 'My Schema', name: 'a b' },
      { schema: 'DATA', name: 'x' },
    ]);
    expect(toc.tablesWithoutData).toEqual([{ schema: 'sales', name: 'orders' }]);
    expect(toc.extensionData).toEqual([{ schema: 'public', name: 'spatial_ref_sys' }]);
  });

  test('an empty or header-only listing has no entries', () => {
    expect(summarizeToc(';\n; Archive created\n').entries).toEqual([]);
  });
});

describe('table sets', () => {
  const t = (schema: string, name: string) => ({ schema, name });

  test.each([
    ['equal sets', [t('a', 'x'), t('b', 'y')], [t('b', 'y'), t('a', 'x')], [], []],
    ['a missing table', [t('a', 'x'), t('b', 'y')], [t('a', 'x')], [t('b', 'y')], []],
    ['an unexpected table', [t('a', 'x')], [t('a', 'x'), t('a', 'z')], [], [t('a', 'z')]],
    ['same name, other schema', [t('a', 'x')], [t('b', 'x')], [t('a', 'x')], [t('b', 'x')]],
    // No separator can make two different pairs collide.
    ['names with dots', [t('a.b', 'c')], [t('a', 'b.c')], [t('a.b', 'c')], [t('a', 'b.c')]],
    ['duplicates count once', [t('a', 'x'), t('a', 'x')], [t('a', 'x')], [], []],
  ])('%s', (_label, expected, found, missing, unexpected) => {
    expect(diffTableSets(expected, found)).toEqual({ missing, unexpected });
  });

  test('invariant: a set compared with itself has no difference, and swapping sides swaps missing and unexpected', () => {
    const a = [t('s', 'one'), t('s', 'two'), t('u', 'three')];
    const b = [t('s', 'two'), t('v', 'four')];
    expect(diffTableSets(a, a)).toEqual({ missing: [], unexpected: [] });
    const ab = diffTableSets(a, b);
    const ba = diffTableSets(b, a);
    expect(ab.missing).toEqual(ba.unexpected);
    expect(ab.unexpected).toEqual(ba.missing);
  });

  test.each([
    [t('public', 'customers'), 'public.customers'],
    [t('Kunden', 'Kunden Ümlaut'), '"Kunden"."Kunden Ümlaut"'],
    [t('sales', 'Order "Notes"'), 'sales."Order ""Notes"""'],
  ])('pgDisplayName(%j) = %s', (table, display) => {
    expect(pgDisplayName(table)).toBe(display);
  });
});

describe('SQL dump scanner', () => {
  const DUMP = [
    '-- MariaDB dump 10.19  Distrib 10.11.19-MariaDB',
    '',
    '-- Current Database: `shop`',
    'CREATE DATABASE /*!32312 IF NOT EXISTS*/ `shop`;',
    'USE `shop`;',
    'CREATE TABLE `Kunden Ümlaut` (',
    '  `id` int(11) NOT NULL',
    ') ENGINE=InnoDB;',
    `INSERT INTO \`Kunden Ümlaut\` VALUES (1),(2),${'(3),'.repeat(5000)}(4);`,
    "INSERT INTO `notes` VALUES ('\\nCREATE TABLE `fake` (');",
    'CREATE TABLE `we``ird` (',
    '/*!50001 CREATE VIEW `v` AS SELECT 1 AS `a`*/;',
    'USE `crm`;',
    'CREATE TABLE IF NOT EXISTS `leads` (',
    '-- Dump completed on 2026-11-26 12:52:06',
    '',
  ].join('\n');

  const scan = (chunks: Buffer[]) => {
    const scanner = new SqlDumpScanner();
    for (const chunk of chunks) scanner.push(chunk);
    return scanner.finish();
  };

  test('tables under the database of the USE before them, the completion marker', () => {
    expect(scan([Buffer.from(DUMP)])).toEqual({
      tables: [{ database: 'shop', name: 'Kunden Ümlaut' }, { database: 'shop', name: 'we`ird' }, { database: 'crm', name: 'leads' }],
      databases: ['shop', 'crm'],
      completed: true,
      bytes: Buffer.byteLength(DUMP),
    });
  });

  test('invariant: the result does not depend on where the chunks split (every split point, and 1-byte chunks)', () => {
    const bytes = Buffer.from(DUMP);
    const whole = scan([bytes]);
    for (let at = 0; at <= bytes.length; at += 7) {
      expect(scan([bytes.subarray(0, at), bytes.subarray(at)])).toEqual(whole);
    }
    const small = Buffer.from(DUMP.replace(/\(3\),/g, ''));
    const singles = Array.from({ length: small.length }, (_, i) => small.subarray(i, i + 1));
    expect(scan(singles)).toEqual(scan([small]));
  });

  test.each([
    ['no marker', 'USE `a`;\nCREATE TABLE `t` (\n', false],
    ['the marker followed by more SQL', '-- Dump completed on 2026-11-26\nINSERT INTO `t` VALUES (1);\n', false],
    ['the marker followed by blank lines', '-- Dump completed on 2026-11-26\n\n  \n', true],
    ['the marker without a final newline', 'x\n-- Dump completed on 2026-11-26', true],
    ['a marker-like line inside a long statement', `INSERT INTO t VALUES ('${'x'.repeat(100)}\n-- Dump completed');\nSELECT 1;\n`, false],
  ])('completion: %s', (_label, text, completed) => {
    expect(scan([Buffer.from(text)]).completed).toBe(completed);
  });

  test('a line longer than the scanner carries across chunks (64 KiB) is dropped, not accumulated', () => {
    const huge = Buffer.from(`CREATE TABLE \`${'x'.repeat(200_000)}\` (\nCREATE TABLE \`after\` (\n`);
    const chunks = Array.from({ length: Math.ceil(huge.length / 1000) }, (_, i) => huge.subarray(i * 1000, (i + 1) * 1000));
    expect(scan(chunks).tables).toEqual([{ database: '', name: 'after' }]);
  });

  test.each([
    ['`plain` (', { name: 'plain', rest: ' (' }],
    ['`we``ird`;', { name: 'we`ird', rest: ';' }],
    ['`Kunden Ümlaut`', { name: 'Kunden Ümlaut', rest: '' }],
    ['`unterminated', undefined],
    ['plain', undefined],
  ])('readBacktickIdentifier(%j)', (text, expected) => {
    expect(readBacktickIdentifier(text)).toEqual(expected);
  });
});

describe('zstd frame tracker', () => {
  const data = Buffer.from('CREATE TABLE `t` (id int);\n'.repeat(2000) + Array.from({ length: 3000 }, (_, i) => (i * 2654435761) % 997).join(','));
  const frame = (checksum: boolean) =>
    zstdCompressSync(data, { params: { [zlibConstants.ZSTD_c_checksumFlag]: checksum ? 1 : 0, [zlibConstants.ZSTD_c_compressionLevel]: 3 } });
  const track = (bytes: Buffer, chunk = bytes.length || 1) => {
    const tracker = new ZstdFrameTracker();
    for (let at = 0; at < bytes.length; at += chunk) tracker.push(bytes.subarray(at, at + chunk));
    return tracker.finish();
  };

  test.each([true, false])('invariant: a complete stream passes, every truncation of it fails (checksum %s)', (checksum) => {
    const whole = frame(checksum);
    expect(track(whole)).toBeUndefined();
    expect(track(whole, 3)).toBeUndefined();
    for (let length = 0; length < whole.length; length++) {
      expect([length, track(whole.subarray(0, length))]).toEqual([length, expect.any(String)]);
    }
  });

  test('several frames and a skippable frame pass; garbage after the last frame fails', () => {
    const skippable = Buffer.concat([Buffer.from([0x50, 0x2a, 0x4d, 0x18]), Buffer.from([3, 0, 0, 0]), Buffer.from('abc')]);
    expect(track(Buffer.concat([frame(true), skippable, frame(false)]), 1000)).toBeUndefined();
    expect(track(Buffer.concat([frame(true), Buffer.from('garbage!')]))).toMatch(/not a zstd frame at frame 2/);
    expect(track(Buffer.alloc(0))).toBe('the zstd stream holds no frame');
  });
});

describe('suspicious size', () => {
  test.each([
    [[1], 1],
    [[3, 1, 2], 2],
    [[4, 1, 3, 2], 2.5],
    [[10, 10, 1000], 10],
  ])('median(%j) = %d', (values, expected) => {
    expect(median(values)).toBe(expected);
  });

  test.each([
    // bytes, previous (newest first), shrink, judged, ok
    [100, [], 0.5, false, true],
    [1, [1000, 1000], 0.5, false, true],
    [499, [1000, 1000, 1000], 0.5, true, false],
    [500, [1000, 1000, 1000], 0.5, true, true],
    [501, [1000, 1000, 1000], 0.5, true, true],
    [899, [1000, 1000, 1000], 0.1, true, false],
    [0, [0, 0, 0], 0.5, true, true],
    [1, [1000, 1000, 1000], 1, true, true],
    // Only the newest TRAILING_RUNS count: old huge runs do not make today's run suspicious.
    [100, [100, 100, 100, 100, 100, 100, 100, 1e9, 1e9, 1e9, 1e9, 1e9, 1e9, 1e9, 1e9], 0.5, true, true],
  ])('%d bytes against %j with shrink %d: judged %s, ok %s', (bytes, previous, shrink, judged, ok) => {
    expect(judgeSize(bytes, previous, shrink)).toMatchObject({ judged, ok });
  });

  test('the detail names the figures', () => {
    expect(judgeSize(300, [1000, 900, 1100], 0.5).detail).toBe(
      '300 bytes is 30% of the median 1000 bytes of the last 3 verified runs (below the 500-byte floor, shrink limit 50%)');
  });

  test('invariants: never judged below the minimum history; a run at least as large as the median always passes', () => {
    for (let n = 0; n < MIN_PREVIOUS_SIZES; n++) expect(judgeSize(0, Array(n).fill(1e9)).judged).toBe(false);
    for (const previous of [[5, 6, 7], [1, 1e6, 1e6, 2], Array.from({ length: TRAILING_RUNS + 5 }, (_, i) => i * 1000)]) {
      const mid = median(previous.slice(0, TRAILING_RUNS));
      for (const shrink of [0, 0.25, 0.5, 1]) expect(judgeSize(Math.ceil(mid), previous, shrink).ok).toBe(true);
    }
  });

  test.each([-0.1, 1.5, Number.NaN])('shrink %d is refused', (shrink) => {
    expect(() => judgeSize(1, [1, 1, 1], shrink)).toThrow(RangeError);
  });
});

describe('coalescing consumer (decompressor input in ~1 MiB writes)', () => {
  function recorder(wait?: Promise<void>) {
    const writes: Buffer[] = [];
    let ended = false;
    const consumer: Consumer = {
      write: (chunk) => {
        writes.push(Buffer.from(chunk));
        return wait;
      },
      end: () => {
        ended = true;
      },
    };
    return { consumer, writes, ended: () => ended };
  }

  test('small chunks reach the consumer as batches of the batch size, in order, with nothing lost', () => {
    const inner = recorder();
    const coalescing = new CoalescingConsumer(inner.consumer, 1000);
    const input = Array.from({ length: 25 }, (_, i) => Buffer.alloc(150, i));
    for (const chunk of input) coalescing.write(chunk);
    coalescing.end();
    expect(inner.writes.map((w) => w.length)).toEqual([1000, 1000, 1000, 750]);
    expect(Buffer.concat(inner.writes)).toEqual(Buffer.concat(input));
    expect(inner.ended()).toBe(true);
  });

  test('a chunk at least as large as a batch passes through uncopied when nothing is pending', () => {
    const inner = recorder();
    const coalescing = new CoalescingConsumer(inner.consumer, 100);
    const big = Buffer.alloc(500, 7);
    coalescing.write(big);
    expect(inner.writes).toEqual([big]);
  });

  test('pending bytes are copied: a reader reusing its chunk memory does not change them', () => {
    const inner = recorder();
    const coalescing = new CoalescingConsumer(inner.consumer, 100);
    const reused = Buffer.alloc(60, 1);
    coalescing.write(reused);
    reused.fill(2);
    coalescing.write(reused);
    coalescing.end();
    expect(Buffer.concat(inner.writes)).toEqual(Buffer.concat([Buffer.alloc(60, 1), Buffer.alloc(60, 2)]));
  });

  test("the inner consumer's back-pressure reaches the reader on the batch's write", async () => {
    let release: () => void = () => undefined;
    const inner = recorder(new Promise<void>((resolve) => (release = resolve)));
    const coalescing = new CoalescingConsumer(inner.consumer, 100);
    expect(coalescing.write(Buffer.alloc(50))).toBeUndefined();
    const wait = coalescing.write(Buffer.alloc(50));
    expect(wait).toBeInstanceOf(Promise);
    release();
    await wait;
  });
});
