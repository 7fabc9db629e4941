import {
  checkExtensions, checkRowCounts, checkRto, checkSql, checkTableSet, drillVerdict, formatSeconds, tableKey,
  type DrillJudgement, type TableRef,
} from '../../lib/drill/checks';
import { parseDrillReport, serializeDrillReport, type DrillReport } from '../../lib/domain/drill-report';
import type { ManifestTable } from '../../lib/domain/manifest';

const pg = (name: string, schema = 'public', database = 'shop'): TableRef => ({ database, schema, name });
const row = (table: TableRef, rows: number, exact = true): ManifestTable => ({ ...table, rows, exact });
const counts = (entries: [TableRef, number][]) => new Map(entries.map(([table, rows]) => [tableKey(table), rows]));

describe('checkTableSet', () => {
  test.each<[string, TableRef[], TableRef[], boolean, RegExp]>([
    ['same set in any order', [pg('a'), pg('b')], [pg('b'), pg('a')], true, /2 table\(s\), the manifest's set/],
    ['empty database', [], [], true, /0 table/],
    ['one missing', [pg('a'), pg('b')], [pg('a')], false, /missing after the restore: shop: public\.b$/],
    ['one unexpected', [pg('a')], [pg('a'), pg('x', 'audit')], false, /does not list: shop: audit\.x/],
    ['same name, other schema', [pg('a')], [pg('a', 'other')], false, /missing.*public\.a.*does not list.*other\.a/],
    ['same name, other database', [pg('a')], [pg('a', 'public', 'crm')], false, /crm: public\.a/],
    ['mysql names', [{ database: 'shop', schema: 'shop', name: 't' }], [], false, /shop\.t/],
  ])('%s', (_name, expected, found, ok, detail) => {
    const result = checkTableSet(expected, found);
    expect(result.ok).toBe(ok);
    expect(result.detail).toMatch(detail);
    expect(result.error).toBe(ok ? undefined : 'TableSetMismatch');
  });

  test('lists at most five names and counts the rest', () => {
    const expected = Array.from({ length: 8 }, (_, i) => pg(`t${i}`));
    expect(checkTableSet(expected, []).detail).toMatch(/8 table\(s\).*t4 and 3 more$/);
  });

  test('invariant: a set always matches itself and never matches after removing one table', () => {
    const tables = Array.from({ length: 6 }, (_, i) => pg(`t${i}`, i % 2 ? 'public' : 'audit'));
    expect(checkTableSet(tables, [...tables].reverse()).ok).toBe(true);
    for (let i = 0; i < tables.length; i++) {
      const fewer = tables.filter((_, j) => j !== i);
      expect(checkTableSet(tables, fewer).ok).toBe(false);
      expect(checkTableSet(fewer, tables).ok).toBe(false);
    }
  });
});

describe('checkRowCounts', () => {
  test.each<[string, ManifestTable[], [TableRef, number][], boolean, RegExp]>([
    ['all equal', [row(pg('a'), 3), row(pg('b'), 0)], [[pg('a'), 3], [pg('b'), 0]], true, /^2 exact count\(s\) equal/],
    ['fewer rows restored', [row(pg('orders'), 5)], [[pg('orders'), 4]], false, /shop: public\.orders: expected 5 rows \(manifest\), found 4/],
    ['more rows restored', [row(pg('orders'), 5)], [[pg('orders'), 6]], false, /expected 5 rows \(manifest\), found 6/],
    ['estimate differs: reported, not compared', [row(pg('big'), 1000, false)], [[pg('big'), 998]], true, /0 exact.*1 estimated count\(s\) not compared: shop: public\.big ~1000 estimated, 998 restored/],
    ['table missing from the restore is skipped', [row(pg('a'), 1), row(pg('gone'), 7)], [[pg('a'), 1]], true, /^1 exact count/],
  ])('%s', (_name, expected, found, ok, detail) => {
    const result = checkRowCounts(expected, counts(found));
    expect(result.ok).toBe(ok);
    expect(result.detail).toMatch(detail);
    expect(result.error).toBe(ok ? undefined : 'RowCountMismatch');
  });

  test('names every mismatching table, not only the first', () => {
    const result = checkRowCounts([row(pg('a'), 1), row(pg('b'), 2), row(pg('c'), 3)], counts([[pg('a'), 0], [pg('b'), 2], [pg('c'), 0]]));
    expect(result.detail).toMatch(/^2 of 3 exact count\(s\) differ: shop: public\.a: .*, shop: public\.c: /);
  });
});

describe('checkExtensions', () => {
  const ext = (name: string, database = 'shop') => ({ database, name, version: '1.0' });
  test.each<[string, ReturnType<typeof ext>[], { database: string; name: string }[], boolean, RegExp]>([
    ['none recorded', [], [{ database: 'shop', name: 'plpgsql' }], true, /0 extension/],
    ['all present', [ext('plpgsql'), ext('citext')], [{ database: 'shop', name: 'citext' }, { database: 'shop', name: 'plpgsql' }], true, /2 extension\(s\) present/],
    ['one missing', [ext('plpgsql'), ext('postgis')], [{ database: 'shop', name: 'plpgsql' }], false, /missing after the restore: postgis 1\.0 \(database shop\)$/],
    ['present in another database only', [ext('citext')], [{ database: 'crm', name: 'citext' }], false, /citext 1\.0 \(database shop\)/],
  ])('%s', (_name, expected, found, ok, detail) => {
    const result = checkExtensions(expected, found);
    expect(result.ok).toBe(ok);
    expect(result.detail).toMatch(detail);
    expect(result.error).toBe(ok ? undefined : 'ExtensionMissing');
  });
});

describe('checkSql', () => {
  const check = { name: 'has-orders', sql: 'SELECT count(*) > 0 FROM orders' };
  test.each<[string, { output: string } | { error: string }, boolean, RegExp]>([
    ['psql true', { output: 't\n' }, true, /^true on database shop$/],
    ['mysql true', { output: '1' }, true, /true/],
    ['spelled true', { output: 'TRUE' }, true, /true/],
    ['false', { output: 'f' }, false, /returned f on database shop, expected true/],
    ['mysql false', { output: '0' }, false, /returned 0/],
    ['no row', { output: '' }, false, /returned no row/],
    ['several rows', { output: 't\nt' }, false, /returned 2 rows/],
    ['server error', { error: 'relation "orders" does not exist' }, false, /failed on database shop: relation "orders" does not exist/],
  ])('%s', (_name, outcome, ok, detail) => {
    const result = checkSql(check, 'shop', outcome);
    expect(result.name).toBe('sql:has-orders');
    expect(result.ok).toBe(ok);
    expect(result.detail).toMatch(detail);
    expect(result.error).toBe(ok ? undefined : 'DrillCheckFailed');
  });
});

describe('checkRto', () => {
  test.each<[number, number, boolean, RegExp]>([
    [1.2346, 3600, true, /measured RTO 1\.235s within the tier's RTO of 1h \(3600s\)/],
    [3600, 3600, true, /within/],
    [0.5, 0.001, false, /measured RTO 0\.5s exceeds the tier's RTO of 0\.001s/],
    [5400, 3600, false, /1h 30m \(5400s\) exceeds the tier's RTO of 1h \(3600s\)/],
  ])('%s s against %s s', (measured, target, ok, detail) => {
    const result = checkRto(measured, target);
    expect(result.ok).toBe(ok);
    expect(result.detail).toMatch(detail);
    expect(result.error).toBe(ok ? undefined : 'RtoExceeded');
  });

  test('formatSeconds', () => {
    expect([0, 0.0004, 59.9999, 60, 86_461].map(formatSeconds)).toEqual(['0s', '0s', '60s', '1m (60s)', '24h 1m 1s (86461s)']);
  });
});

describe('drillVerdict', () => {
  const fail = (name: string, error: DrillJudgement['error']): DrillJudgement => ({ name, ok: false, detail: `${name} broke`, error });
  const pass: DrillJudgement = { name: 'table-set', ok: true, detail: 'fine' };
  test.each<[string, DrillJudgement[], string | undefined]>([
    ['all pass', [pass], undefined],
    ['rto only', [pass, fail('rto', 'RtoExceeded')], 'RtoExceeded'],
    ['row counts beat rto', [fail('rto', 'RtoExceeded'), fail('row-counts', 'RowCountMismatch')], 'RowCountMismatch'],
    ['table set beats everything', [fail('sql:x', 'DrillCheckFailed'), fail('extensions', 'ExtensionMissing'), fail('table-set', 'TableSetMismatch')], 'TableSetMismatch'],
  ])('%s', (_name, checks, name) => {
    const verdict = drillVerdict(checks);
    expect(verdict?.name).toBe(name);
    if (verdict) for (const check of checks.filter((c) => !c.ok)) expect(verdict.message).toContain(`${check.name}: ${check.name} broke`);
  });
});

describe('drill report document', () => {
  const report: DrillReport = {
    schemaVersion: 1, lifeboatVersion: '0.1.0', source: 'shop', drillId: '20261126T041500Z', runId: '20261126T030000Z',
    from: 'offsite', engine: 'postgres', server: { version: '15.14', major: 15 },
    startedAt: '2026-11-26T04:15:00.000Z', finishedAt: '2026-11-26T04:15:03.000Z',
    timings: { downloadSeconds: 0.5, restoreSeconds: 1.5, checkSeconds: 0.25 }, measuredRtoSeconds: 2.25, rtoTargetSeconds: 3600,
    checks: [{ name: 'rto', ok: true, detail: 'within' }], verdict: 'ok',
  };
  test('round trips', () => {
    expect(parseDrillReport(serializeDrillReport(report))).toEqual(report);
  });
  test.each<[string, unknown, RegExp]>([
    ['a drill id that is no run id', { ...report, drillId: '2026-11-26' }, /drillId: expected a run id/],
    ['an unknown origin', { ...report, from: 'backup' }, /from:/],
    ['a negative timing', { ...report, timings: { ...report.timings, checkSeconds: -1 } }, /timings\.checkSeconds/],
    ['an unknown field', { ...report, password: 'x' }, /password/],
  ])('rejects %s', (_name, document, message) => {
    expect(() => parseDrillReport(JSON.stringify(document), 'drills/shop/x/report.json')).toThrow(message);
    expect(() => parseDrillReport(JSON.stringify(document))).toThrow(expect.objectContaining({ name: 'InvalidDrillReport' }));
  });
});
