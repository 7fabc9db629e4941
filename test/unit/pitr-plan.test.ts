import { parseDuration } from '../../lib/config/units';
import { DEFAULT_TIERS } from '../../lib/config/tiers';
import { describePitrPlan, pitrPlan } from '../../lib/pitr/plan';

const tier = (name: string) => ({
  name,
  rpoSeconds: parseDuration(DEFAULT_TIERS[name].rpo) as number,
  scheduleSeconds: parseDuration(DEFAULT_TIERS[name].schedule) as number,
});

test.each([
  ['tier1', [['full', 604_800], ['diff', 86_400], ['incr', 300]], 300],
  ['tier2', [['full', 604_800], ['diff', 86_400], ['incr', 1800]], 1200],
  ['tier3', [['full', 604_800], ['diff', 86_400], ['incr', 43_200]], 3600],
  ['tier4', [['full', 604_800], ['diff', 518_400]], 3600],
])('%s: the seed\'s week and an archive_timeout of at most a third of the RPO', (name, backups, timeout) => {
  const { plan, problem } = pitrPlan(tier(name));
  expect(problem).toBeUndefined();
  expect(plan?.backups.map((backup) => [backup.type, backup.everySeconds])).toEqual(backups);
  expect(plan?.archiveTimeoutSeconds).toBe(timeout);
  expect(plan!.archiveTimeoutSeconds).toBeLessThanOrEqual(tier(name).rpoSeconds / 3);
  expect(plan?.archiveAgeAlarmSeconds).toBe(tier(name).rpoSeconds);
});

test('a schedule of a week or more: fulls only, at the schedule', () => {
  expect(pitrPlan({ name: 'monthly', rpoSeconds: 31 * 86_400, scheduleSeconds: 14 * 86_400 }).plan?.backups).toEqual([{ type: 'full', everySeconds: 14 * 86_400 }]);
});

test('an RPO the archive cannot keep is refused, naming the tier, the RPO and what would be valid', () => {
  const { plan, problem } = pitrPlan({ name: 'fast', rpoSeconds: 120, scheduleSeconds: 60 });
  expect(plan).toBeUndefined();
  expect(problem).toBe("tier fast: an RPO of 2m needs archive_timeout ≤ 40s (a third of it), below PostgreSQL's sensible minimum of 60s " +
    "(each switch archives a whole segment); valid: an RPO of at least 3m for method 'pitr' (a shorter one needs synchronous replication, not backups)");
  expect(pitrPlan({ name: 'edge', rpoSeconds: 180, scheduleSeconds: 60 }).plan?.archiveTimeoutSeconds).toBe(60);
});

test('the plan in words, for lifeboat plan', () => {
  expect(describePitrPlan(pitrPlan(tier('tier1')).plan!)).toEqual([
    'full backup every 7d',
    'differential backup every 1d',
    'incremental backup every 5m',
    'WAL archived continuously, archive_timeout = 300s; alarm when the newest archived segment is older than 15m',
  ]);
});
