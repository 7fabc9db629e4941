/**
 * The retention policy: invariants over seeded random run histories first, then golden cases
 * for the four default tiers, then the decision table.
 */
import type { RunStatus } from '../../lib/catalog/catalog';
import { parseDuration } from '../../lib/config/units';
import { DEFAULT_TIERS } from '../../lib/config/tiers';
import { formatRunId, runIdToDate } from '../../lib/domain/run-id';
import { decide, policyForTier, weekBucket, type RetentionDecision, type RetentionPolicy, type RunRef } from '../../lib/retention/policy';
import { decisionRows, formatRemaining, parsePruneSources, renderDecisionTable } from '../../lib/retention/prune';
import { prng } from '../fixtures/prng';

const DAY = 86_400;
const NOW = new Date('2026-11-26T04:00:00Z');


const tierSeconds = (name: string) => {
  const tier = DEFAULT_TIERS[name];
  return { scheduleSeconds: parseDuration(tier.schedule) as number, retentionSeconds: parseDuration(tier.retention) as number };
};

interface History {
  readonly seed: number;
  readonly runs: RunRef[];
  readonly policy: RetentionPolicy;
}

/**
 * A run history ending near NOW: runs on the tier's schedule (with random gaps), a random mix of
 * statuses, long streaks of failures, and — for a third of the seeds — no verified run at all for
 * longer than the retention at the end.
 */
function randomHistory(seed: number): History {
  const random = prng(seed);
  const tierName = ['tier1', 'tier2', 'tier3', 'tier4'][seed % 4];
  const { scheduleSeconds, retentionSeconds } = tierSeconds(tierName);
  const base = policyForTier({ scheduleSeconds, retentionSeconds });
  const policy: RetentionPolicy = random() < 0.5 ? base : {
    ...base,
    keepLast: Math.floor(random() * 5),
    daily: Math.floor(random() * 10),
    weekly: Math.floor(random() * 6),
    monthly: Math.floor(random() * 4),
    yearly: Math.floor(random() * 2),
    minVerified: Math.floor(random() * 5),
    failedGraceSeconds: Math.floor(random() * 4) * DAY,
  };
  const count = 20 + Math.floor(random() * 300);
  const drought = seed % 3 === 0 ? retentionSeconds + Math.floor(random() * retentionSeconds) : 0;
  const runs: RunRef[] = [];
  let slot = Math.floor(NOW.getTime() / 1000 / scheduleSeconds) * scheduleSeconds + (random() < 0.2 ? scheduleSeconds * 3 : 0);
  let streak = 0;
  for (let i = 0; i < count; i++) {
    const age = NOW.getTime() / 1000 - slot;
    let status: RunStatus;
    if (age < drought) status = random() < 0.7 ? 'failed' : 'unverified';
    else if (streak > 0) {
      status = 'failed';
      streak--;
    } else if (random() < 0.05) {
      status = 'failed';
      streak = Math.floor(random() * 60);
    } else status = random() < 0.8 ? 'verified' : random() < 0.5 ? 'failed' : 'unverified';
    runs.push({ runId: formatRunId(new Date(slot * 1000)), status });
    slot -= scheduleSeconds * (random() < 0.1 ? 1 + Math.floor(random() * 20) : 1);
  }
  // Input order is not a contract: shuffle.
  for (let i = runs.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [runs[i], runs[j]] = [runs[j], runs[i]];
  }
  return { seed, runs, policy };
}

const SEEDS = Array.from({ length: 300 }, (_, i) => i + 1);
const ageOf = (runId: string) => (NOW.getTime() - (runIdToDate(runId) as Date).getTime()) / 1000;
const newestFirst = (runs: readonly RunRef[]) => [...runs].sort((a, b) => (a.runId < b.runId ? 1 : -1));
const ids = (decision: RetentionDecision, list: 'keep' | 'remove') => new Set(decision[list].map((d) => d.runId));

describe('invariants over random histories', () => {
  const cases = SEEDS.map((seed) => {
    const history = randomHistory(seed);
    return { ...history, decision: decide(history.runs, history.policy, NOW) };
  });

  test('the histories include droughts longer than the retention and long failure streaks', () => {
    const droughts = cases.filter(({ runs, policy }) => {
      const verified = runs.filter((run) => run.status === 'verified').map((run) => ageOf(run.runId));
      return verified.length > 0 && Math.min(...verified) > policy.keepWithinSeconds;
    });
    expect(droughts.length).toBeGreaterThan(30);
  });

  test('every run gets exactly one decision, with a reason', () => {
    for (const { seed, runs, decision } of cases) {
      const all = [...decision.keep, ...decision.remove].map((d) => d.runId).sort();
      expect({ seed, ids: all }).toEqual({ seed, ids: runs.map((run) => run.runId).sort() });
      for (const d of [...decision.keep, ...decision.remove]) expect(d.reason.length).toBeGreaterThan(0);
    }
  });

  test('the newest minVerified verified runs are kept, whatever the policy and however old', () => {
    for (const { seed, runs, policy, decision } of cases) {
      const kept = ids(decision, 'keep');
      const newest = newestFirst(runs).filter((run) => run.status === 'verified').slice(0, policy.minVerified);
      for (const run of newest) expect({ seed, runId: run.runId, kept: kept.has(run.runId) }).toEqual({ seed, runId: run.runId, kept: true });
    }
  });

  test('with a drought longer than the retention, the newest verified runs still survive', () => {
    const droughts = cases.filter(({ seed }) => seed % 3 === 0);
    for (const { seed, runs, policy, decision } of droughts) {
      const verified = newestFirst(runs).filter((run) => run.status === 'verified');
      const kept = decision.keep.filter((d) => d.status === 'verified').map((d) => d.runId);
      expect({ seed, kept: kept.length >= Math.min(policy.minVerified, verified.length) }).toEqual({ seed, kept: true });
    }
  });

  test('failed and unverified runs are removed exactly when older than the grace', () => {
    for (const { seed, runs, policy, decision } of cases) {
      const removed = ids(decision, 'remove');
      for (const run of runs.filter((r) => r.status !== 'verified')) {
        const expected = ageOf(run.runId) > policy.failedGraceSeconds;
        expect({ seed, runId: run.runId, removed: removed.has(run.runId) }).toEqual({ seed, runId: run.runId, removed: expected });
      }
    }
  });

  test('failed and unverified runs never count toward a keep count', () => {
    for (const { seed, runs, policy, decision } of cases) {
      const onlyVerified = decide(runs.filter((run) => run.status === 'verified'), policy, NOW);
      const verifiedDecisions = (d: RetentionDecision) => ({
        keep: d.keep.filter((x) => x.status === 'verified'),
        remove: d.remove.filter((x) => x.status === 'verified'),
      });
      expect({ seed, ...verifiedDecisions(decision) }).toEqual({ seed, ...verifiedDecisions(onlyVerified) });
    }
  });

  test('a verified run not older than keep-within is kept', () => {
    for (const { seed, runs, policy, decision } of cases) {
      const removed = ids(decision, 'remove');
      const young = runs.filter((run) => run.status === 'verified' && ageOf(run.runId) <= policy.keepWithinSeconds);
      expect({ seed, removed: young.filter((run) => removed.has(run.runId)) }).toEqual({ seed, removed: [] });
    }
  });

  test('keep and remove are disjoint, newest first, and the input order does not matter', () => {
    for (const { seed, runs, policy, decision } of cases) {
      const kept = ids(decision, 'keep');
      expect({ seed, both: decision.remove.filter((d) => kept.has(d.runId)) }).toEqual({ seed, both: [] });
      expect(decision.keep.map((d) => d.runId)).toEqual(newestFirst(decision.keep).map((d) => d.runId));
      expect(decide([...runs].reverse(), policy, NOW)).toEqual(decision);
    }
  });

  test('a policy that keeps nothing still keeps the newest verified run and young failures', () => {
    const zero: RetentionPolicy = { keepWithinSeconds: 0, keepLast: 0, daily: 0, weekly: 0, monthly: 0, yearly: 0, minVerified: 1, failedGraceSeconds: DAY };
    const runs: RunRef[] = [
      { runId: '20260101T000000Z', status: 'verified' },
      { runId: '20260102T000000Z', status: 'verified' },
      { runId: '20261126T000000Z', status: 'failed' },
      { runId: '20261120T000000Z', status: 'unverified' },
    ];
    const decision = decide(runs, zero, NOW);
    expect(decision.keep.map((d) => `${d.runId} ${d.reason}`)).toEqual([
      '20261126T000000Z failed but younger than the 1d grace',
      '20260102T000000Z newest verified (1 of 1)',
    ]);
    expect(decision.remove.map((d) => `${d.runId} ${d.reason}`)).toEqual([
      '20261120T000000Z unverified, past the 1d grace',
      '20260101T000000Z verified, older than 0s and outside every keep count',
    ]);
  });

  test('an invalid policy is rejected, naming the field', () => {
    const policy = { ...policyForTier(tierSeconds('tier1')), keepLast: -1 };
    expect(() => decide([], policy, NOW)).toThrow('keepLast: expected a number of at least 0, got -1');
  });
});

describe('retention dependencies (a run that needs other runs to be restored)', () => {
  const keepOne: RetentionPolicy = { keepWithinSeconds: 0, keepLast: 1, daily: 0, weekly: 0, monthly: 0, yearly: 0, minVerified: 0, failedGraceSeconds: 0 };

  test('a kept run keeps its base and the base\'s base, saying which run needs each', () => {
    const decision = decide([
      { runId: '20261125T030000Z', status: 'verified', dependsOn: ['20261124T030000Z'] },
      { runId: '20261124T030000Z', status: 'verified', dependsOn: ['20261122T030000Z'] },
      { runId: '20261123T030000Z', status: 'verified' },
      { runId: '20261122T030000Z', status: 'verified' },
    ], keepOne, NOW);
    expect(decision.keep.map((d) => `${d.runId} ${d.reason}`)).toEqual([
      '20261125T030000Z last 1 (1 of 1)',
      '20261124T030000Z needed by kept run 20261125T030000Z',
      '20261122T030000Z needed by kept run 20261124T030000Z',
    ]);
    expect(decision.remove.map((d) => d.runId)).toEqual(['20261123T030000Z']);
  });

  test('a removed run keeps nothing; a dependency that is gone already is not invented', () => {
    const decision = decide([
      { runId: '20261125T030000Z', status: 'verified', dependsOn: ['20261101T030000Z'] },
      { runId: '20261124T030000Z', status: 'verified', dependsOn: ['20261123T030000Z'] },
      { runId: '20261123T030000Z', status: 'verified' },
    ], keepOne, NOW);
    expect(decision.keep.map((d) => d.runId)).toEqual(['20261125T030000Z']);
    expect(decision.remove.map((d) => d.runId)).toEqual(['20261124T030000Z', '20261123T030000Z']);
  });

  test.each(SEEDS.slice(0, 100))('seed %i: every run a kept run depends on is kept, and nothing else changes', (seed) => {
    const { runs, policy } = randomHistory(seed);
    const random = prng(seed * 7919);
    const sorted = newestFirst(runs);
    // Chains as a full + differential + incremental engine would make them: each run on an earlier one.
    const withBases = sorted.map((run, index) => {
      const older = sorted.slice(index + 1, index + 8);
      return older.length > 0 && random() < 0.6 ? { ...run, dependsOn: [older[Math.floor(random() * older.length)].runId] } : run;
    });
    const alone = decide(runs, policy, NOW);
    const decision = decide(withBases, policy, NOW);
    const kept = ids(decision, 'keep');
    for (const run of withBases) {
      if (kept.has(run.runId)) for (const base of run.dependsOn ?? []) expect(kept.has(base) ? base : `${base} (needed by ${run.runId})`).toBe(base);
    }
    // Only dependencies move, and only from remove to keep.
    for (const runId of ids(alone, 'keep')) expect(kept.has(runId)).toBe(true);
    const moved = [...kept].filter((runId) => !ids(alone, 'keep').has(runId));
    for (const runId of moved) expect(decision.keep.find((d) => d.runId === runId)?.reason).toMatch(/^needed by kept run /);
    expect(decision.keep.length + decision.remove.length).toBe(new Set(runs.map((run) => run.runId)).size);
  });
});

describe('calendar buckets', () => {
  test.each([
    ['20261126T040000Z', '2026-W48'],
    ['20210103T000000Z', '2020-W53'],
    ['20210104T000000Z', '2021-W01'],
    ['20241230T000000Z', '2025-W01'],
  ])('%s is in ISO week %s (UTC)', (runId, week) => {
    expect(weekBucket(runIdToDate(runId) as Date)).toBe(week);
  });

  test('a day bucket is the UTC day of the run id, whatever the local time zone', () => {
    const policy: RetentionPolicy = { keepWithinSeconds: 0, keepLast: 0, daily: 2, weekly: 0, monthly: 0, yearly: 0, minVerified: 0, failedGraceSeconds: 0 };
    const decision = decide(
      [
        { runId: '20261125T235900Z', status: 'verified' },
        { runId: '20261125T000100Z', status: 'verified' },
        { runId: '20261124T235900Z', status: 'verified' },
        { runId: '20261124T120000Z', status: 'verified' },
      ],
      policy,
      NOW,
    );
    expect(decision.keep.map((d) => `${d.runId} ${d.reason}`)).toEqual(['20261125T235900Z daily 2026-11-25', '20261124T235900Z daily 2026-11-24']);
  });
});

describe('default tiers', () => {
  test.each([
    ['tier1', { keepWithinSeconds: 90 * DAY, keepLast: 288, daily: 90, weekly: 13, monthly: 3, yearly: 0 }],
    ['tier2', { keepWithinSeconds: 30 * DAY, keepLast: 48, daily: 30, weekly: 5, monthly: 1, yearly: 0 }],
    ['tier3', { keepWithinSeconds: 7 * DAY, keepLast: 3, daily: 7, weekly: 1, monthly: 0, yearly: 0 }],
    ['tier4', { keepWithinSeconds: 365 * DAY, keepLast: 3, daily: 0, weekly: 53, monthly: 13, yearly: 1 }],
  ])('%s policy', (name, expected) => {
    expect(policyForTier(tierSeconds(name))).toEqual({ ...expected, minVerified: 3, failedGraceSeconds: 2 * DAY });
  });

  /** Every slot verified for `spanSeconds` up to the last slot before NOW. */
  function steady(name: string, spanSeconds: number): RunRef[] {
    const { scheduleSeconds } = tierSeconds(name);
    const last = Math.floor(NOW.getTime() / 1000 / scheduleSeconds) * scheduleSeconds;
    const runs: RunRef[] = [];
    for (let slot = last; slot > last - spanSeconds; slot -= scheduleSeconds) runs.push({ runId: formatRunId(new Date(slot * 1000)), status: 'verified' });
    return runs;
  }

  const summary = (decision: RetentionDecision) => ({
    keep: decision.keep.length,
    remove: decision.remove.length,
    oldestKept: decision.keep.at(-1)?.runId,
    oldestKeptReason: decision.keep.at(-1)?.reason,
  });

  test.each([
    // Steady backups for twice the retention: keep-within decides (the window's edge included),
    // and the calendar counts reach no further back than it.
    ['tier1', 180 * DAY, { keep: 25921, remove: 25919, oldestKept: '20260828T040000Z', oldestKeptReason: 'within 90d' }],
    ['tier2', 60 * DAY, { keep: 1441, remove: 1439, oldestKept: '20261027T040000Z', oldestKeptReason: 'within 30d' }],
    ['tier3', 14 * DAY, { keep: 14, remove: 14, oldestKept: '20261119T120000Z', oldestKeptReason: 'within 7d' }],
    ['tier4', 2 * 365 * DAY, { keep: 62, remove: 60, oldestKept: '20251120T000000Z', oldestKeptReason: 'weekly 2025-W47' }],
  ])('%s: steady history', (name, span, expected) => {
    expect(summary(decide(steady(name, span), policyForTier(tierSeconds(name)), NOW))).toEqual(expected);
  });

  test('tier3: after a drought longer than the retention, the newest verified runs and the calendar counts survive', () => {
    const policy = policyForTier(tierSeconds('tier3'));
    const runs = steady('tier3', 40 * DAY).map((run) => (ageOf(run.runId) < 20 * DAY ? { ...run, status: 'failed' as const } : run));
    const decision = decide(runs, policy, NOW);
    expect(decision.keep.map((d) => `${d.runId} ${d.reason}`)).toEqual([
      '20261126T000000Z failed but younger than the 2d grace',
      '20261125T120000Z failed but younger than the 2d grace',
      '20261125T000000Z failed but younger than the 2d grace',
      '20261124T120000Z failed but younger than the 2d grace',
      '20261106T000000Z newest verified (1 of 3); last 3 (1 of 3); daily 2026-11-06; weekly 2026-W45',
      '20261105T120000Z newest verified (2 of 3); last 3 (2 of 3); daily 2026-11-05',
      '20261105T000000Z newest verified (3 of 3); last 3 (3 of 3)',
      '20261104T120000Z daily 2026-11-04',
      '20261103T120000Z daily 2026-11-03',
      '20261102T120000Z daily 2026-11-02',
      '20261101T120000Z daily 2026-11-01',
      '20261031T120000Z daily 2026-10-31',
    ]);
    expect(decision.remove[0]).toMatchObject({ runId: '20261124T000000Z', reason: 'failed, past the 2d grace' });
  });
});

test('the decision table renders one row per run, newest first', () => {
  const runs: RunRef[] = [
    { runId: '20261126T030000Z', status: 'unverified' },
    { runId: '20261125T030000Z', status: 'verified' },
    { runId: '20261120T030000Z', status: 'failed' },
    { runId: '20261010T030000Z', status: 'verified' },
  ];
  const policy = { ...policyForTier(tierSeconds('tier3')), minVerified: 1, keepLast: 1, daily: 1, weekly: 0 };
  expect(renderDecisionTable(decisionRows(decide(runs, policy, NOW)))).toBe(
    [
      'RUN               STATUS      ACTION  REASON',
      '----------------  ----------  ------  ----------------------------------------------------------------------',
      '20261126T030000Z  unverified  keep    unverified but younger than the 2d grace',
      '20261125T030000Z  verified    keep    newest verified (1 of 1); within 7d; last 1 (1 of 1); daily 2026-11-25',
      '20261120T030000Z  failed      remove  failed, past the 2d grace',
      '20261010T030000Z  verified    remove  verified, older than 7d and outside every keep count',
    ].join('\n'),
  );
});

describe('formatRemaining (how long a run stays locked, in its "kept: locked until" reason)', () => {
  test.each([
    [41 * DAY + 3 * 3600 + 59 * 60, '41d 3h'],
    [41 * DAY + 59 * 60, '41d'],
    [DAY, '1d'],
    [DAY - 1, '23h 59m'],
    [5 * 3600, '5h'],
    [12 * 60 + 5.9, '12m 5s'],
    [60, '1m'],
    [42, '42s'],
    [0.4, '0s'],
  ])('%ss left: %s (its two largest units, truncated; the date beside it is exact)', (seconds, words) => {
    expect(formatRemaining(seconds)).toBe(words);
  });
});

describe('parsePruneSources (LIFEBOAT_SOURCES_JSON)', () => {
  test('accepts what the Pruner construct writes', () => {
    const text = JSON.stringify([{ name: 'orders', tier: { retentionSeconds: 90 * DAY, scheduleSeconds: 900 } }]);
    expect(parsePruneSources(text)).toEqual([{ name: 'orders', tier: { retentionSeconds: 90 * DAY, scheduleSeconds: 900 } }]);
  });

  test('reports every problem at once, each with its place', () => {
    const text = JSON.stringify([{ name: '', tier: { retentionSeconds: 0, scheduleSeconds: 900 } }, { name: 'x' }]);
    expect(() => parsePruneSources(text)).toThrow(
      '[0].name: expected a source name, got ""; [0].tier.retentionSeconds: expected positive seconds, got 0; ' +
      '[1].tier.retentionSeconds: expected positive seconds, got undefined; [1].tier.scheduleSeconds: expected positive seconds, got undefined',
    );
    expect(() => parsePruneSources('{')).toThrow(/^not JSON/);
    expect(() => parsePruneSources('{}')).toThrow(/^expected an array/);
  });
});
