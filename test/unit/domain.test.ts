import * as layout from '../../lib/domain/layout';
import { MANIFEST_SCHEMA_VERSION, parseManifest, serializeManifest, type Manifest } from '../../lib/domain/manifest';
import { formatRunId, isRunId, runIdToDate, slotRunId } from '../../lib/domain/run-id';
import { LIFEBOAT_VERSION } from '../../lib/domain/version';

describe('run ids', () => {
  test.each([
    ['2026-11-26T03:00:00.000Z', 900, '20261126T030000Z'],
    ['2026-11-26T03:14:59.999Z', 900, '20261126T030000Z'],
    ['2026-11-26T03:15:00.000Z', 900, '20261126T031500Z'],
    ['2026-11-26T03:59:00.000Z', 3600, '20261126T030000Z'],
    ['2026-11-26T23:59:59.000Z', 86_400, '20261126T000000Z'],
  ])('%s every %d s is slot %s', (at, interval, runId) => {
    expect(slotRunId(new Date(at), interval)).toBe(runId);
  });

  test('every instant of a slot maps to the same id, and the next slot to a later one', () => {
    const start = Date.UTC(2026, 10, 26, 3, 0, 0);
    const ids = new Set<string>();
    for (let offset = 0; offset < 900_000; offset += 7_919) ids.add(slotRunId(new Date(start + offset), 900));
    expect([...ids]).toEqual(['20261126T030000Z']);
    expect(slotRunId(new Date(start + 900_000), 900) > '20261126T030000Z').toBe(true);
  });

  test('round trip and validation', () => {
    const date = new Date('2026-02-28T23:45:00Z');
    expect(runIdToDate(formatRunId(date))?.toISOString()).toBe(date.toISOString());
    expect.assertions(1 + 6);
    for (const bad of ['20261331T250000Z', '2026-11-26T03:00:00Z', '20261126T030000', '', '20260230T000000Z']) {
      expect(isRunId(bad)).toBe(false);
    }
    expect(() => slotRunId(date, 0)).toThrow('interval must be a positive whole number of seconds (got 0)');
  });
});

describe('bucket layout', () => {
  test('keys of one run share its prefix', () => {
    const run = layout.runPrefix('orders', '20261126T030000Z');
    expect(run).toBe('runs/orders/20261126T030000Z/');
    expect(layout.artifactKey('orders', '20261126T030000Z', 'orders', '.pgdump')).toBe(`${run}orders.pgdump`);
    expect(layout.artifactKey('orders', '20261126T030000Z', 'a/b c', '.sql.zst')).toBe(`${run}a%2Fb%20c.sql.zst`);
    expect([layout.globalsKey, layout.manifestKey, layout.verificationKey, layout.offsiteKey].map((key) => key('orders', '20261126T030000Z')))
      .toEqual([`${run}globals.sql`, `${run}manifest.json`, `${run}verification.json`, `${run}offsite.json`]);
    expect(layout.drillReportKey('orders', '20261127T000000Z')).toBe('drills/orders/20261127T000000Z/report.json');
  });
});

describe('manifest', () => {
  const manifest: Manifest = {
    schemaVersion: MANIFEST_SCHEMA_VERSION,
    lifeboatVersion: LIFEBOAT_VERSION,
    source: 'orders',
    engine: 'postgres',
    tier: 'tier1',
    runId: '20261126T030000Z',
    startedAt: '2026-11-26T03:00:01.000Z',
    finishedAt: '2026-11-26T03:00:09.000Z',
    server: { version: '15.19', major: 15 },
    client: { tool: 'pg_dump', version: '15.19', major: 15 },
    databaseSizeBytes: 8_000_000,
    encoding: 'UTF8',
    artifacts: [{
      database: 'orders', key: 'runs/orders/20261126T030000Z/orders.pgdump', bytes: 1234, sha256: 'a'.repeat(64),
      format: 'pg_dump-custom', compression: 'gzip:1', parts: 1,
    }],
    tables: [{ database: 'orders', schema: 'public', name: 'orders', rows: 10, exact: true }],
    rowCountConsistency: 'same-snapshot',
    extensions: [{ database: 'orders', name: 'pgcrypto', version: '1.3' }],
  };

  test('serialize and parse round-trip', () => {
    expect(parseManifest(serializeManifest(manifest))).toEqual(manifest);
    expect(LIFEBOAT_VERSION).toMatch(/^\d+\.\d+\.\d+/);
  });

  test.each<[string, unknown, RegExp]>([
    ['not JSON', '{', /^k: not JSON/],
    ['wrong checksum shape', { ...manifest, artifacts: [{ ...manifest.artifacts[0], sha256: 'xyz' }] }, /artifacts\.0\.sha256: expected a lowercase hex SHA-256/],
    ['bad run id', { ...manifest, runId: 'yesterday' }, /runId: expected a run id/],
    ['no artifacts', { ...manifest, artifacts: [] }, /artifacts: /],
    ['future schema', { ...manifest, schemaVersion: 2 }, /schemaVersion/],
  ])('rejects %s', (_case, value, message) => {
    const text = typeof value === 'string' ? value : JSON.stringify(value);
    expect(() => parseManifest(text, 'k')).toThrow(message);
  });

  test('serialize refuses an invalid manifest instead of writing it', () => {
    expect(() => serializeManifest({ ...manifest, databaseSizeBytes: -1 })).toThrow();
  });
});
