/**
 * The watchdog's measure of a PITR source, as pure code: the holes in the WAL the kept sets need
 * and the unbroken window to the newest point (archiveCoverage), what is published for them
 * (publishAges), the sources' environment (parseWatchedSources, watchedSource), the archive-age
 * alarm's threshold and the alarms' names.
 */
import { parseConfig, type Source } from '../../lib/config';
import { archiveAgeAlarmThresholdSeconds, watchdogAlarmNames, watchedSource } from '../../lib/constructs/watchdog';
import { archiveCoverage, type ArchivedSegment } from '../../lib/pitr/archive-state';
import type { BackupSet } from '../../lib/pitr/pgbackrest-info';
import { pitrPlan } from '../../lib/pitr/plan';
import { segmentName, walContinuity } from '../../lib/pitr/wal';
import { parseWatchedSources, publishAges, type SourceAge, type WatchdogMetrics } from '../../lib/steps/watchdog';
import { prng } from '../fixtures/prng';

const T0 = Date.parse('2026-12-03T10:00:00Z');
const at = (seconds: number) => new Date(T0 + seconds * 1000);
/** Segments `from`..`to` of a timeline but `skip`, segment n arriving at T0 + 10 n s. */
const segments = (from: number, to: number, skip: readonly number[] = [], timeline = 1): ArchivedSegment[] =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i).filter((n) => !skip.includes(n))
    .map((n) => ({ name: segmentName(timeline, n), archivedAt: at(n * 10) }));
const set = (label: string, walStart: number, walStop: number, stopSeconds: number, timeline = 1): BackupSet => ({
  label, type: 'full', startTime: at(0), stopTime: at(stopSeconds), startLsn: '0/1', stopLsn: '0/2',
  walStart: segmentName(timeline, walStart), walStop: segmentName(timeline, walStop), size: 1, delta: 1, repoSize: 1, repoDelta: 1, checksumErrors: false,
});
const hole = (first: number, last: number, next?: number, timeline = 1) => ({
  timeline, first: segmentName(timeline, first), last: segmentName(timeline, last), missingCount: last - first + 1,
  ...(next === undefined ? {} : { nextArrivedAt: at(next * 10) }),
});

describe('archiveCoverage', () => {
  test.each<[string, BackupSet[], ArchivedSegment[], ReturnType<typeof archiveCoverage>]>([
    ['an empty archive: no hole, no window', [], [], { holes: [] }],
    ['WAL but no set: no window, though nothing is missing', [], segments(1, 10), { holes: [] }],
    ['WAL but no set: the holes between its oldest and newest segment', [], segments(1, 10, [4, 5]), { holes: [hole(4, 5, 6)] }],
    ['one set, unbroken WAL: the window from its stop to the newest arrival', [set('F', 3, 4, 45)], segments(1, 20),
      { holes: [], window: { earliest: at(45), latest: at(200), fromSet: 'F' } }],
    ['a hole after the only set: the window to the newest point is gone', [set('F', 3, 4, 45)], segments(1, 20, [10]),
      { holes: [hole(10, 10, 11)] }],
    ['a hole between two sets: the window starts at the later set', [set('F1', 3, 4, 45), set('F2', 12, 13, 135)], segments(1, 20, [8, 9]),
      { holes: [hole(8, 9, 10)], window: { earliest: at(135), latest: at(200), fromSet: 'F2' } }],
    ['a hole before the oldest set is WAL no set needs', [set('F', 10, 11, 115)], segments(1, 20, [3]),
      { holes: [], window: { earliest: at(115), latest: at(200), fromSet: 'F' } }],
    ['the oldest set\'s own first segments removed: a hole, and that set restores nothing', [set('F', 3, 4, 45)], segments(5, 20),
      { holes: [hole(3, 4, 5)] }],
    ['a set whose stop segment has not arrived: a hole with nothing after it', [set('F', 18, 21, 215)], segments(1, 20),
      { holes: [hole(21, 21)] }],
    ['a timeline switch after the set: the new timeline continues it', [set('F', 3, 4, 45)], [...segments(1, 10), ...segments(10, 15, [], 2)],
      { holes: [], window: { earliest: at(45), latest: at(150), fromSet: 'F' } }],
    ['a hole on the later timeline breaks the window of a set on the earlier one', [set('F', 3, 4, 45)], [...segments(1, 10), ...segments(10, 15, [12], 2)],
      { holes: [hole(12, 12, 13, 2)] }],
    ['a timeline older than every set is nobody\'s concern', [set('F', 12, 13, 135, 2)], [...segments(1, 10, [5]), ...segments(10, 15, [], 2)],
      { holes: [], window: { earliest: at(135), latest: at(150), fromSet: 'F' } }],
  ])('%s', (_name, sets, archived, expected) => {
    expect(archiveCoverage(sets, archived)).toEqual(expected);
  });

  test('a hole whose next segment arrived after settledBefore may still be filled by a parallel push: left out, window kept', () => {
    const sets = [set('F', 3, 4, 45)];
    const archived = segments(1, 20, [18]);
    expect(archiveCoverage(sets, archived, { settledBefore: at(185) })).toEqual({ holes: [], window: { earliest: at(45), latest: at(200), fromSet: 'F' } });
    // Settled once the segment after it has been there long enough.
    expect(archiveCoverage(sets, archived, { settledBefore: at(190) })).toEqual({ holes: [hole(18, 18, 19)] });
    // A hole at a set's end (nothing after it) never waits.
    expect(archiveCoverage([set('F', 18, 21, 215)], segments(1, 20), { settledBefore: at(0) }).holes).toEqual([hole(21, 21)]);
  });

  test('invariants over 300 random archives: every missing segment the sets need is in exactly one hole, and the window replays unbroken', () => {
    const random = prng(13);
    const numberOf = (name: string) => parseInt(name.slice(16), 16);
    for (let round = 0; round < 300; round++) {
      const length = 5 + Math.floor(random() * 60);
      const removed = Array.from({ length }, (_, n) => n + 1).filter(() => random() < 0.08);
      const archived = segments(1, length, removed);
      const sets: BackupSet[] = [];
      for (let start = 1; start < length - 1; start += 1 + Math.floor(random() * 15)) sets.push(set(`S${start}`, start, start + 1, start * 10 + 5));
      const { holes, window } = archiveCoverage(sets, archived);
      const names = archived.map((segment) => segment.name);
      const newest = Math.max(0, ...archived.map((segment) => numberOf(segment.name)));
      const inHoles = holes.flatMap((h) => Array.from({ length: h.missingCount }, (_, i) => numberOf(h.first) + i));
      if (sets.length > 0) {
        const from = Math.min(...sets.map((s) => numberOf(s.walStart)));
        const to = Math.max(newest, ...sets.map((s) => numberOf(s.walStop)));
        expect({ round, inHoles }).toEqual({ round, inHoles: removed.filter((n) => n >= from && n <= to) });
      }
      const reachesNewest = (s: BackupSet) => numberOf(s.walStop) <= newest && walContinuity(names, s.walStart, segmentName(1, newest)).complete;
      if (window) {
        const from = sets.find((s) => s.label === window.fromSet) as BackupSet;
        expect(reachesNewest(from)).toBe(true);
        expect(window).toEqual({ earliest: from.stopTime, latest: at(newest * 10), fromSet: from.label });
        // The oldest such set.
        for (const older of sets.filter((s) => s.stopTime < from.stopTime)) expect(reachesNewest(older)).toBe(false);
      } else {
        for (const s of sets) expect(reachesNewest(s)).toBe(false);
      }
    }
  });
});

describe('publishAges for PITR sources', () => {
  const record = () => {
    const calls: string[] = [];
    const double: WatchdogMetrics = {
      clearDefaultDimensions: () => calls.push('clearDefaultDimensions'),
      addDimension: (name, value) => calls.push(`dimension ${name}=${value}`),
      addMetric: (name, unit, value) => calls.push(`metric ${name}=${value} ${unit}`),
      addMetadata: (key, value) => calls.push(`metadata ${key}=${value}`),
      publishStoredMetrics: () => calls.push('flush'),
    };
    return { calls, double };
  };
  const archive = { stanza: 'ledger', state: 'fresh' as const, ageSeconds: 40, newestSegment: segmentName(1, 9), sets: 1, gaps: 0, missingSegments: 0, restorableWindowSeconds: 3600, restorableFrom: at(0), restorableTo: at(3600) };

  test.each<[string, SourceAge, string[]]>([
    ['a PITR source: its archive age, gaps and window, no logical age', { source: 'ledger', rpoSeconds: 180, methods: ['pitr'], state: 'fresh', archive },
      ['metric ArchiveAgeSeconds=40 Seconds', 'metric ArchiveGaps=0 Count', 'metric RestorableWindowSeconds=3600 Seconds']],
    ['both methods: the logical ages and the archive\'s', {
      source: 'ledger', rpoSeconds: 180, methods: ['logical', 'pitr'], state: 'fresh', secondsSinceVerified: 60, secondsSinceOffsite: 120, archive,
    }, ['metric SecondsSinceVerifiedBackup=60 Seconds', 'metric SecondsSinceOffsiteBackup=120 Seconds', 'metric ArchiveAgeSeconds=40 Seconds', 'metric ArchiveGaps=0 Count', 'metric RestorableWindowSeconds=3600 Seconds']],
    ['no backup set yet: no archive age (the alarm breaches on missing data), never backed up', {
      source: 'ledger', rpoSeconds: 180, methods: ['pitr'], state: 'never', archive: { ...archive, state: 'never', sets: 0, restorableWindowSeconds: 0, restorableFrom: undefined, restorableTo: undefined },
    }, ['metric NeverBackedUp=1 Count', 'metric ArchiveGaps=0 Count', 'metric RestorableWindowSeconds=0 Seconds']],
    ['both methods, logical never but the archive fresh: no NeverBackedUp, no logical age', {
      source: 'ledger', rpoSeconds: 180, methods: ['logical', 'pitr'], state: 'never', archive,
    }, ['metric ArchiveAgeSeconds=40 Seconds', 'metric ArchiveGaps=0 Count', 'metric RestorableWindowSeconds=3600 Seconds']],
    ['a gap: counted, the window to the newest point 0, the first missing segment in the metadata', {
      source: 'ledger', rpoSeconds: 180, methods: ['pitr'], state: 'fresh',
      archive: { ...archive, gaps: 2, missingSegments: 3, firstMissingSegment: segmentName(1, 4), restorableWindowSeconds: 0, restorableFrom: undefined, restorableTo: undefined },
    }, ['metric ArchiveAgeSeconds=40 Seconds', 'metric ArchiveGaps=2 Count', 'metric RestorableWindowSeconds=0 Seconds']],
  ])('%s', (_name, age, metrics) => {
    const { calls, double } = record();
    publishAges([age], double);
    expect(calls.filter((call) => call.startsWith('metric ') && !call.includes('Heartbeat'))).toEqual(metrics);
    expect(calls.filter((call) => call.startsWith('dimension'))).toEqual(['dimension source=ledger']);
    expect(calls.filter((call) => call === 'flush')).toHaveLength(2);
    if (age.archive?.firstMissingSegment) expect(calls).toContain(`metadata archiveFirstMissingSegment=${age.archive.firstMissingSegment}`);
    if (age.archive?.restorableFrom) expect(calls).toContain(`metadata restorableFrom=${age.archive.restorableFrom.toISOString()}`);
  });

});

describe('the sources\' environment', () => {
  test('a PITR source carries its methods and stanza; a logical one only its name and RPO, as before', () => {
    expect(parseWatchedSources('[{"name":"ledger","rpoSeconds":180,"methods":["pitr"],"stanza":"main"},{"name":"orders","rpoSeconds":900}]'))
      .toEqual([{ name: 'ledger', rpoSeconds: 180, methods: ['pitr'], stanza: 'main' }, { name: 'orders', rpoSeconds: 900 }]);
  });

  test.each([
    ['[{"name":"a","rpoSeconds":1,"methods":[]}]', '[0].methods: expected a non-empty array of "logical", "pitr", got []'],
    ['[{"name":"a","rpoSeconds":1,"methods":["wal"]}]', '[0].methods: expected a non-empty array of "logical", "pitr", got ["wal"]'],
    ['[{"name":"a","rpoSeconds":1,"methods":["pitr"]},{"name":"b","rpoSeconds":1,"methods":["logical","pitr"],"stanza":" "}]',
      '[0].stanza: a source with method "pitr" needs its pgBackRest stanza, got undefined; [1].stanza: a source with method "pitr" needs its pgBackRest stanza, got " "'],
  ])('%s is refused, naming each problem', (text, message) => {
    expect(() => parseWatchedSources(text)).toThrow(message);
  });

  const sources = parseConfig({
    primary: { region: 'eu-west-1' }, offsite: { region: 'eu-central-1' },
    sources: ([['orders', 'logical'], ['ledger', 'pitr'], ['billing', ['logical', 'pitr']]] as const).map(([name, method]) => ({
      name, engine: 'postgres', tier: 'tier1', method,
      ...(method === 'logical' ? {} : { pitr: { host: { instanceId: 'i-0a1b2c3d4e5f60718' }, dataDirectory: '/srv/pg', stanza: `${name}-main` } }),
      connection: { host: `${name}.example.internal`, database: 'shop', username: 'backup', passwordSecretArn: 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:orders-AbCdEf' },
      network: { vpcId: 'vpc-0a1b2c3d' },
    })),
  }).sources as Source[];

  test('watchedSource: what the construct writes round-trips through what the handler parses', () => {
    const watched = sources.map(watchedSource);
    expect(watched).toEqual([
      { name: 'orders', rpoSeconds: 900 },
      { name: 'ledger', rpoSeconds: 900, methods: ['pitr'], stanza: 'ledger-main' },
      { name: 'billing', rpoSeconds: 900, methods: ['logical', 'pitr'], stanza: 'billing-main' },
    ]);
    expect(parseWatchedSources(JSON.stringify(watched))).toEqual(watched);
  });

  test('alarm names: a logical source\'s as before; next to PITR the logical ones say so', () => {
    expect(watchdogAlarmNames('Lifeboat', 'orders')).toEqual({ rpo: 'Lifeboat-rpo-orders', offsite: 'Lifeboat-offsite-rpo-orders' });
    expect(watchdogAlarmNames('Lifeboat', 'ledger', ['pitr'])).toEqual({ archiveRpo: 'Lifeboat-archive-rpo-ledger', archiveGap: 'Lifeboat-archive-gap-ledger' });
    expect(watchdogAlarmNames('Lifeboat', 'billing', ['logical', 'pitr'])).toEqual({
      rpo: 'Lifeboat-logical-rpo-billing', offsite: 'Lifeboat-logical-offsite-rpo-billing',
      archiveRpo: 'Lifeboat-archive-rpo-billing', archiveGap: 'Lifeboat-archive-gap-billing',
    });
  });
});

describe('the archive-age alarm threshold', () => {
  test.each([
    ['3m', 180],
    ['15m', 900],
    ['1h', 3600],
    ['24h', 86_400],
  ])('an RPO of %s alarms above %d s: the RPO, archive_timeout (a third of it at most) plus a push leaving room below it', (rpo, threshold) => {
    const rpoSeconds = threshold;
    const { plan } = pitrPlan({ name: rpo, rpoSeconds, scheduleSeconds: 60 });
    expect(archiveAgeAlarmThresholdSeconds(plan!)).toBe(threshold);
    // A healthy host's newest segment is at most archive_timeout + the push old: never above the threshold.
    expect(plan!.archiveTimeoutSeconds + 60).toBeLessThanOrEqual(threshold);
  });

  test('never below archive_timeout plus the push allowance, whatever a plan says', () => {
    expect(archiveAgeAlarmThresholdSeconds({ archiveAgeAlarmSeconds: 100, archiveTimeoutSeconds: 90 })).toBe(150);
    expect(archiveAgeAlarmThresholdSeconds({ archiveAgeAlarmSeconds: 100, archiveTimeoutSeconds: 90 }, 5)).toBe(100);
  });
});
