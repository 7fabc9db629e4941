/**
 * The pure parts of the PITR expiry: the policy's rule that the newest verified full is never
 * removed (with the chain rules of retention.ts, over random histories), each set's status from
 * its runs, and the expiry task's environment.
 */
import type { RunRecord } from '../../lib/catalog/catalog';
import type { Manifest } from '../../lib/domain/manifest';
import { statusesByLabel } from '../../lib/pitr/expire-run';
import type { BackupSet } from '../../lib/pitr/pgbackrest-info';
import { decidePitrRetention } from '../../lib/pitr/retention';
import type { RetentionPolicy } from '../../lib/retention/policy';
import { pitrExpireJobFromEnv } from '../../worker/pitr-expire-main';
import { prng } from '../fixtures/prng';

const HOUR = 3600_000;
const NOW = new Date('2026-12-03T12:00:00Z');
const POLICY: RetentionPolicy = { keepWithinSeconds: 0, keepLast: 1, daily: 0, weekly: 0, monthly: 0, yearly: 0, minVerified: 1, failedGraceSeconds: 0 };
const stamp = (time: Date) => time.toISOString().slice(0, 19).replace(/[-:]/g, '').replace('T', '-');

/** Sets hourly back from NOW, oldest first: `types` in order, each differential or incremental on the chain before it. */
function chain(types: readonly ('full' | 'diff' | 'incr')[]): BackupSet[] {
  const sets: BackupSet[] = [];
  let full: BackupSet | undefined;
  types.forEach((type, index) => {
    const start = new Date(NOW.getTime() - (types.length - index) * HOUR);
    const prior = type === 'full' ? undefined : type === 'diff' ? full : sets.at(-1);
    const set: BackupSet = {
      label: type === 'full' ? `${stamp(start)}F` : `${full!.label}_${stamp(start)}${type === 'diff' ? 'D' : 'I'}`,
      type,
      ...(prior ? { prior: prior.label, references: type === 'diff' ? [full!.label] : [...new Set([full!.label, ...(prior.references ?? []), prior.label])] } : {}),
      startTime: start, stopTime: new Date(start.getTime() + 60_000), startLsn: '0/1', stopLsn: '0/2',
      walStart: '000000010000000000000001', walStop: '000000010000000000000002', size: 1, delta: 1, repoSize: 1, repoDelta: 1, checksumErrors: false,
    };
    if (type === 'full') full = set;
    sets.push(set);
  });
  return sets;
}

test('the newest verified full stays when the keep counts are filled by a chain whose own full failed, and its WAL with it', () => {
  const [f1, i1, f2, i2a, i2b] = chain(['full', 'incr', 'full', 'incr', 'incr']);
  const statuses = { [f1.label]: 'verified', [i1.label]: 'verified', [f2.label]: 'failed', [i2a.label]: 'verified', [i2b.label]: 'verified' } as const;
  const decision = decidePitrRetention([f1, i1, f2, i2a, i2b], statuses, POLICY, NOW);
  const reasons = Object.fromEntries(decision.keep.map((entry) => [entry.set, entry.reason]));
  expect(Object.keys(reasons)).toEqual([i2b.label, i2a.label, f2.label, f1.label]);
  expect(reasons[f1.label]).toBe('the newest verified full: never removed');
  expect(decision.remove.map((entry) => entry.set)).toEqual([i1.label]);
  expect(decision.expire).toEqual({ sets: [i1.label], archiveFulls: 2 });
});

test('a newest verified full the policy keeps anyway says so too', () => {
  const [f1, i1] = chain(['full', 'incr']);
  const decision = decidePitrRetention([f1, i1], { [f1.label]: 'verified', [i1.label]: 'verified' }, POLICY, NOW);
  expect(decision.keep.map((entry) => [entry.set, entry.reasons])).toEqual([
    [i1.label, ['newest verified (1 of 1)', 'last 1 (1 of 1)']],
    [f1.label, [`needed by kept run ${decision.keep[0].runId}`, 'the newest verified full: never removed']],
  ]);
});

test.each(Array.from({ length: 100 }, (_, i) => i + 1))('seed %i: whatever fails, the newest verified full and every kept set\'s chain are kept, and the WAL from the oldest kept full on', (seed) => {
  const random = prng(seed);
  const types = Array.from({ length: 4 + Math.floor(random() * 40) }, (_, i) => (i === 0 || random() < 0.15 ? 'full' : random() < 0.4 ? 'diff' : 'incr') as 'full' | 'diff' | 'incr');
  const sets = chain(types);
  const statuses = Object.fromEntries(sets.map((set) => [set.label, random() < 0.25 ? 'failed' as const : random() < 0.1 ? 'unverified' as const : 'verified' as const]));
  const policy: RetentionPolicy = { ...POLICY, keepLast: Math.floor(random() * 4), minVerified: 1 + Math.floor(random() * 2), failedGraceSeconds: Math.floor(random() * 3) * 3600 };
  const decision = decidePitrRetention(sets, statuses, policy, NOW);
  const kept = new Set(decision.keep.map((entry) => entry.set));
  const newestFull = sets.filter((set) => set.type === 'full' && statuses[set.label] === 'verified').at(-1);
  if (newestFull) expect(kept.has(newestFull.label)).toBe(true);
  for (const set of sets.filter((candidate) => kept.has(candidate.label))) {
    for (const needed of [...(set.references ?? []), ...(set.prior ? [set.prior] : [])]) expect(kept.has(needed) ? needed : `${needed} (needed by ${set.label})`).toBe(needed);
  }
  expect(decision.keep.length + decision.remove.length).toBe(sets.length);
  expect(new Set(decision.expire.sets)).toEqual(new Set(decision.remove.map((entry) => entry.set)));
  // The WAL is kept from the oldest kept full on: the fulls the archive expiry counts are exactly the kept ones.
  expect(decision.expire.archiveFulls).toBe(Math.max(1, sets.filter((set) => set.type === 'full' && kept.has(set.label)).length));
  // Dependents are expired before what they depend on.
  for (const [index, label] of decision.expire.sets.entries()) {
    const set = sets.find((candidate) => candidate.label === label)!;
    for (const base of set.references ?? []) expect(decision.expire.sets.indexOf(base) === -1 || decision.expire.sets.indexOf(base) > index).toBe(true);
  }
});

const run = (runId: string, status: RunRecord['status'], label?: string): RunRecord =>
  ({ source: 'ledger-pitr', runId, status, objects: [], ...(label ? { manifest: { pitr: { label } } as Manifest } : {}) });

test.each([
  ['one verified run', [run('20261203T000000Z', 'verified', 'A')], { A: 'verified' }],
  ['a retry\'s verdict is newer evidence than the first\'s', [run('20261203T000000Z', 'verified', 'A'), run('20261203T001500Z', 'failed', 'A')], { A: 'failed' }],
  ['a later run without a verdict does not hide an earlier one', [run('20261203T000000Z', 'verified', 'A'), run('20261203T001500Z', 'unverified', 'A')], { A: 'verified' }],
  ['only runs without a verdict: unverified', [run('20261203T000000Z', 'unverified', 'A')], { A: 'unverified' }],
  ['a run whose manifest names no set counts for none', [run('20261203T000000Z', 'verified')], {}],
] as const)('statuses by label: %s', (_what, runs, expected) => {
  expect(statusesByLabel(runs)).toEqual(expected);
});

const ENV = {
  LIFEBOAT_BUCKET: 'lifeboat-primary', LIFEBOAT_SOURCE: 'ledger', LIFEBOAT_PITR_STANZA: 'ledger', AWS_REGION: 'eu-west-1',
  LIFEBOAT_SOURCES_JSON: JSON.stringify([{ name: 'ledger', tier: { retentionSeconds: 2_592_000, scheduleSeconds: 900 } }]),
};

test('the job: the source\'s tier from the template\'s sources, its own repository, the region\'s endpoint', () => {
  expect(pitrExpireJobFromEnv(ENV)).toMatchObject({
    bucket: 'lifeboat-primary', source: { name: 'ledger', tier: { retentionSeconds: 2_592_000, scheduleSeconds: 900 } }, stanza: 'ledger',
    repoPath: '/pitr/ledger', dryRun: false, pgbackrest: { endpoint: 's3.eu-west-1.amazonaws.com', uriStyle: 'host' },
  });
  expect(pitrExpireJobFromEnv({ ...ENV, LIFEBOAT_DRY_RUN: 'true' }).dryRun).toBe(true);
});

test('the job: every problem of the environment at once, each naming its variable', () => {
  const attempt = () => pitrExpireJobFromEnv({ ...ENV, LIFEBOAT_SOURCE: 'orders', LIFEBOAT_DRY_RUN: 'yes', LIFEBOAT_PITR_STANZA: 'a b', AWS_REGION: '' });
  expect(attempt).toThrow(expect.objectContaining({ name: 'InvalidInput' }));
  expect(attempt).toThrow(/LIFEBOAT_SOURCE: "orders" is not one of the PITR sources in LIFEBOAT_SOURCES_JSON \(ledger\)/);
  expect(attempt).toThrow(/LIFEBOAT_DRY_RUN: "yes" is not valid/);
  expect(attempt).toThrow(/LIFEBOAT_PITR_STANZA: "a b" is not valid/);
  expect(attempt).toThrow(/AWS_REGION: required/);
  expect(() => pitrExpireJobFromEnv({ ...ENV, LIFEBOAT_SOURCES_JSON: '[{"name":"ledger","tier":{}}]' })).toThrow(/LIFEBOAT_SOURCES_JSON: \[0\]\.tier\.retentionSeconds: expected positive seconds/);
});
