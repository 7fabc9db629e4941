import type { RetentionPolicy } from '../../lib/retention/policy';
import type { BackupSet } from '../../lib/pitr/pgbackrest-info';
import { decidePitrRetention } from '../../lib/pitr/retention';
import { prng } from '../fixtures/prng';

const HOUR = 3600_000;
const NOW = new Date('2026-12-03T12:00:00Z');
const label = (time: Date, type: string) => `${time.toISOString().slice(0, 19).replace(/[-:]/g, '').replace('T', '-')}${type}`;

/** A chain history: a full every `fullEvery` sets, then differentials or incrementals, hourly back from NOW. */
function history(count: number, random: () => number, fullEvery = 8): BackupSet[] {
  const sets: BackupSet[] = [];
  let full: BackupSet | undefined;
  let last: BackupSet | undefined;
  for (let i = count - 1; i >= 0; i--) {
    const start = new Date(NOW.getTime() - (i + 1) * HOUR);
    const type = !full || (count - 1 - i) % fullEvery === 0 ? 'full' : random() < 0.5 ? 'diff' : 'incr';
    const own = label(start, type === 'full' ? 'F' : type === 'diff' ? 'D' : 'I');
    const prior = type === 'full' ? undefined : type === 'diff' ? full : last;
    const set: BackupSet = {
      label: type === 'full' ? own : `${full!.label}_${own.slice(0, 15)}${own.slice(-1)}`,
      type: type as BackupSet['type'],
      ...(prior ? { prior: prior.label, references: type === 'diff' ? [full!.label] : [...new Set([full!.label, ...(prior.references ?? []), prior.label])] } : {}),
      startTime: start, stopTime: new Date(start.getTime() + 60_000), startLsn: '0/1', stopLsn: '0/2',
      walStart: '000000010000000000000001', walStop: '000000010000000000000002', size: 1, delta: 1, repoSize: 1, repoDelta: 1, checksumErrors: false,
    };
    if (type === 'full') full = set;
    last = set;
    sets.push(set);
  }
  return sets;
}

const verified = (sets: readonly BackupSet[]) => Object.fromEntries(sets.map((set) => [set.label, 'verified' as const]));

const POLICY: RetentionPolicy = { keepWithinSeconds: 0, keepLast: 2, daily: 0, weekly: 0, monthly: 0, yearly: 0, minVerified: 1, failedGraceSeconds: 0 };

test('a kept incremental keeps its chain and its full; what goes is expired dependents first, and the WAL from the kept fulls on', () => {
  const sets = history(6, prng(1), 4);
  expect([sets[0].type, sets[4].type]).toEqual(['full', 'full']);
  const decision = decidePitrRetention(sets, verified(sets), POLICY, NOW);
  const newest = sets[sets.length - 1];
  expect(decision.keep.map((entry) => entry.set)).toEqual(expect.arrayContaining([newest.label, newest.prior]));
  for (const entry of decision.remove) expect(sets.find((set) => set.label === entry.set)!.stopTime < sets[4].startTime).toBe(true);
  const fullsLast = decision.expire.sets.map((name) => sets.find((set) => set.label === name)!.type);
  expect(fullsLast.indexOf('full')).toBe(fullsLast.length - 1);
  expect(decision.expire.archiveFulls).toBe(1);
});

test.each(Array.from({ length: 100 }, (_, i) => i + 1))('seed %i: every kept set\'s prior chain and references are kept, the newest set and a full are kept', (seed) => {
  const random = prng(seed);
  const sets = history(5 + Math.floor(random() * 60), random, 2 + Math.floor(random() * 10));
  const policy: RetentionPolicy = { ...POLICY, keepLast: Math.floor(random() * 6), keepWithinSeconds: Math.floor(random() * 20) * 3600, minVerified: 1 + Math.floor(random() * 3) };
  const decision = decidePitrRetention(sets, verified(sets), policy, NOW);
  const kept = new Set(decision.keep.map((entry) => entry.set));
  for (const set of sets.filter((candidate) => kept.has(candidate.label))) {
    for (const needed of [...(set.references ?? []), ...(set.prior ? [set.prior] : [])]) expect(kept.has(needed) ? needed : `${needed} (needed by ${set.label})`).toBe(needed);
  }
  expect(kept.has(sets[sets.length - 1].label)).toBe(true);
  expect(sets.some((set) => set.type === 'full' && kept.has(set.label))).toBe(true);
  expect(decision.keep.length + decision.remove.length).toBe(sets.length);
  expect(decision.expire.archiveFulls).toBe(sets.filter((set) => set.type === 'full' && kept.has(set.label)).length);
});

test('failed sets do not fill the keep counts: the newest verified chain survives behind a run of failed ones', () => {
  const sets = history(12, prng(7), 4);
  // The newest full's chain (sets 8..11) failed verification, all of it.
  const statuses = { ...verified(sets), ...Object.fromEntries(sets.slice(8).map((set) => [set.label, 'failed' as const])) };
  const decision = decidePitrRetention(sets, statuses, { ...POLICY, keepLast: 1, minVerified: 1, failedGraceSeconds: 0 }, NOW);
  const kept = new Set(decision.keep.map((entry) => entry.set));
  // The newest verified set (7) and what it needs stay; the failed ones, past the grace, go.
  expect(kept.has(sets[7].label)).toBe(true);
  for (const needed of [...(sets[7].references ?? []), ...(sets[7].prior ? [sets[7].prior] : [])]) expect(kept.has(needed)).toBe(true);
  for (const failed of sets.slice(8)) expect(kept.has(failed.label)).toBe(false);
  // A set without a verdict is unverified: it counts for nothing either.
  const none = decidePitrRetention(sets, {}, { ...POLICY, failedGraceSeconds: 365 * 86_400 }, NOW);
  expect(none.remove).toEqual([]);
});
