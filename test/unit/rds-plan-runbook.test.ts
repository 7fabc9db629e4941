/**
 * What `lifeboat plan` and the runbook say of an RDS/Aurora source's own point-in-time recovery:
 * which instance or cluster (and whether it was read off the endpoint), the window, and restore
 * commands for both regions that need no Lifeboat.
 */
import { parseConfig, type LifeboatConfigInput } from '../../lib/config';
import type { SourceInput } from '../../lib/config/schema';
import type { RdsNativeSource, Source } from '../../lib/config/types';
import { renderPlan } from '../../cli/plan';
import { renderRunbook } from '../../cli/runbook';
import { RDS_INSTANCE_SOURCE } from '../fixtures/config-input';

const base = RDS_INSTANCE_SOURCE;

const config = (sources: SourceInput[], extra: Partial<LifeboatConfigInput> = {}) => parseConfig({
  primary: { region: 'eu-west-1', account: '111111111111' }, offsite: { region: 'eu-central-1', account: '222222222222' }, sources, ...extra,
});

const runbook = (input: ReturnType<typeof config>, name = 'orders') => renderRunbook({
  config: input, source: input.sources.find((source) => source.name === name) as Source, bucket: 'primary-bucket', offsiteBucket: 'offsite-bucket',
  drills: [], now: new Date('2026-12-04T00:00:00Z'),
});

test('plan: the instance read off the endpoint, its window, offsite replication, settings and drill', () => {
  const text = renderPlan(config([base]));
  expect(text).toContain('orders: native point-in-time recovery of the RDS DB instance orders-db (eu-west-1), read off its endpoint orders-db.c9akciq32.eu-west-1.rds.amazonaws.com');
  expect(text).toContain('window: automated backups kept at least 35 days (the tier\'s retention of 90d, capped at what RDS keeps; the logical dumps keep the rest); LatestRestorableTime at most 15m old');
  expect(text).toContain('offsite: its automated backups replicated to eu-central-1, alarmed when stopped');
  expect(text).toContain('settings: checked and alarmed only (tier tier1 manageNativeBackups is off)');
  expect(text).toContain('drill: every 1d, a point-in-time restore (alternately the latest point and a random second of the window) into a throwaway instance');
});

test('plan: a named cluster, managed, on a tier whose retention is the window', () => {
  const text = renderPlan(config([{ ...base, tier: 'tier3', connection: { ...base.connection, host: 'db.example.internal' }, rds: { cluster: 'orders-aurora' } }],
    { tiers: { tier3: { manageNativeBackups: true } } }));
  expect(text).toContain('orders: native point-in-time recovery of the RDS DB cluster orders-aurora (eu-west-1), named in the config (rds.cluster)');
  expect(text).toContain('window: automated backups kept at least 7 days;');
  expect(text).toContain('offsite: its newest automated cluster snapshot copied daily to eu-central-1 and account 222222222222 with the offsite key, kept 7d');
  expect(text).toContain('settings: managed (tier tier3 manageNativeBackups): Lifeboat raises the retention to the window, never lowers anything');
});

test('plan: a source without RDS says nothing of it', () => {
  expect(renderPlan(config([{ ...base, connection: { ...base.connection, host: '10.0.3.17' } }]))).not.toContain('native point-in-time');
});

describe('runbook: the restore section of an RDS instance', () => {
  const text = runbook(config([base]));
  test('console and CLI in the primary region, to a time or the latest point, into the source\'s network', () => {
    expect(text).toContain('## 5a. Point-in-time restore with RDS');
    expect(text).toContain('Actions → **Restore to point in time**');
    expect(text).toContain('aws rds restore-db-instance-to-point-in-time --region eu-west-1 \\\n  --source-db-instance-identifier orders-db --target-db-instance-identifier orders-db-restored --restore-time "$RESTORE_TIME"');
    expect(text).toContain('aws rds wait db-instance-available --region eu-west-1 --db-instance-identifier orders-db-restored');
    expect(text).toContain('--db-subnet-group-name SUBNET_GROUP --vpc-security-group-ids SG_ID');
  });
  test('from the replicated automated backups in the offsite region', () => {
    expect(text).toContain('aws rds describe-db-instance-automated-backups --region eu-central-1');
    expect(text).toContain('--source-db-instance-automated-backups-arn REPLICA_ARN');
  });
  test('needs no Lifeboat command, and says what to do after', () => {
    const section = text.slice(text.indexOf('## 5a.'), text.indexOf('## 6.'));
    expect(section).not.toMatch(/lifeboat (restore|status|verify)/);
    expect(section).toContain('--backup-retention-period 35');
    expect(text).toContain('RDS\'s own point-in-time recovery reaches any second of its window');
  });
});

test('runbook: an Aurora cluster restores the cluster, then an instance in it; offsite from the newest snapshot copy', () => {
  const input = config([{ ...base, connection: { ...base.connection, host: 'orders.cluster-c9akciq32.eu-west-1.rds.amazonaws.com' } }]);
  expect((input.sources[0].rds as RdsNativeSource).kind).toBe('cluster');
  const text = runbook(input);
  expect(text).toContain('aws rds restore-db-cluster-to-point-in-time --region eu-west-1 \\\n  --source-db-cluster-identifier orders --db-cluster-identifier orders-restored');
  expect(text).toContain('aws rds create-db-instance --region eu-west-1 --db-cluster-identifier orders-restored --db-instance-identifier orders-restored-1 \\\n  --engine aurora-postgresql');
  expect(text).toContain("starts_with(DBClusterSnapshotIdentifier, 'lifeboat-orders-')");
  expect(text).toContain('aws rds restore-db-cluster-from-snapshot --region eu-central-1');
  expect(text).toContain('signed in to account 222222222222');
});

test('runbook: a source without RDS has no 5a', () => {
  expect(runbook(config([{ ...base, connection: { ...base.connection, host: '10.0.3.17' } }]))).not.toContain('## 5a.');
});
