/** Method 'pitr' of a MySQL/MariaDB source: binary-log archiving, what it needs, refuses and resolves to. */
import { parseConfig, type LifeboatConfigInput } from '../../lib/config';
import type { SourceInput } from '../../lib/config/schema';
import { binlogPlan } from '../../lib/binlog/plan';
import { configProblems as problems } from '../fixtures/config-input';
import type { Source } from '../../lib/config/types';
import type { Manifest } from '../../lib/domain/manifest';
import { binlogRestoreSection } from '../../lib/binlog/runbook';
import { renderRunbook } from '../../cli/runbook';

const SHOP: SourceInput = {
  name: 'shop',
  engine: 'mariadb',
  tier: 'tier1',
  method: ['logical', 'pitr'],
  connection: {
    host: 'shop.db.internal',
    database: 'shop',
    username: 'backup',
    passwordSecretArn: 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:shop-AbCdEf',
  },
  network: { vpcId: 'vpc-0a1b2c3d' },
};

function config(source: Partial<SourceInput> & Record<string, unknown>, tiers?: LifeboatConfigInput['tiers']): LifeboatConfigInput {
  return { primary: { region: 'eu-west-1' }, offsite: { region: 'eu-central-1' }, ...(tiers ? { tiers } : {}), sources: [{ ...SHOP, ...source } as SourceInput] };
}

test('MariaDB with both methods archives its binary logs every third of the RPO, its dumps the bases; no pgBackRest', () => {
  const [source] = parseConfig(config({})).sources;
  expect(source.methods).toEqual(['logical', 'pitr']);
  expect(source.pitr).toBeUndefined();
  expect(source.binlog).toEqual({
    binlogClient: 'mariadb-binlog', physicalTool: 'mariadb-backup', streamTool: 'mbstream',
    plan: { archiveEverySeconds: 300, archiveAgeAlarmSeconds: 900, minServerRetentionSeconds: 1200, physical: [] },
  });
});

test('MySQL uses its own tools; a physical host adds a weekly full and an incremental at the schedule', () => {
  const [source] = parseConfig(config({ engine: 'mysql', method: 'pitr', binlog: { physical: { host: { instanceId: 'i-0a1b2c3d4e5f60718' } } } })).sources;
  expect(source.binlog).toMatchObject({
    binlogClient: 'mysqlbinlog', physicalTool: 'xtrabackup', streamTool: 'xbstream',
    physical: { host: { instanceId: 'i-0a1b2c3d4e5f60718' }, dataDirectory: '/var/lib/mysql', osUser: 'mysql' },
    plan: { physical: [{ type: 'full', everySeconds: 604_800 }, { type: 'incr', everySeconds: 300 }] },
  });
});

test('the archiver runs at most hourly and at least every minute', () => {
  expect(binlogPlan({ name: 't', rpoSeconds: 86_400, scheduleSeconds: 86_400 }, false).plan?.archiveEverySeconds).toBe(3600);
  expect(binlogPlan({ name: 't', rpoSeconds: 180, scheduleSeconds: 3600 }, false).plan?.archiveEverySeconds).toBe(60);
  expect(binlogPlan({ name: 't', rpoSeconds: 120, scheduleSeconds: 3600 }, false).problem).toMatch(/needs the binary-log archiver every 40s .* valid: an RPO of at least 3m/);
});

test.each([
  ["'pitr' alone, no physical host", { method: 'pitr' },
    /^sources\[0\]\.method: 'pitr' alone leaves MariaDB's archived binary logs without a base to replay them onto \(valid: \['logical', 'pitr'\]/],
  ['an RDS endpoint', { connection: { ...SHOP.connection, host: 'shop.abcdefghijkl.eu-west-1.rds.amazonaws.com' } },
    /^sources\[0\]\.method: 'pitr' archives the binary logs of a self-managed server; shop\.abcdefghijkl\.eu-west-1\.rds\.amazonaws\.com is an RDS\/Aurora endpoint, whose native point-in-time recovery Lifeboat governs instead/],
  ['a binlog block without method pitr', { method: 'logical', binlog: {} },
    /^sources\[0\]\.binlog: given, but method does not include 'pitr' \(valid: method: 'pitr' or \['logical', 'pitr'\], or no binlog block\)$/],
  ['a binlog block on PostgreSQL', { engine: 'postgres', binlog: {}, pitr: { host: { instanceId: 'i-0a1b2c3d4e5f60718' }, dataDirectory: '/srv/pg' } },
    /^sources\[0\]\.binlog: binary-log archiving is MySQL's and MariaDB's; PostgreSQL's point-in-time recovery is configured in pitr \(valid: no binlog block\)$/],
  ['a physical host with a bad instance id', { binlog: { physical: { host: { instanceId: 'db1' } } } }, /invalid instance id \(valid: an EC2 instance id/],
])('%s is refused, naming the field and what would be valid', (_what, change, expected) => {
  const found = problems(config(change as Partial<SourceInput>));
  expect(found.some((problem) => expected.test(problem)) ? 'found' : found).toBe('found');
});

test('a tier whose RPO the archiver cannot keep is refused', () => {
  expect(problems(config({}, { tier1: { rpo: '2m', schedule: '1h' } }))).toEqual(expect.arrayContaining([
    expect.stringMatching(/^sources\[0\]\.tier: tier tier1: an RPO of 2m needs the binary-log archiver every 40s/),
  ]));
});

test('the runbook of a binary-log source: the recovery point is any second of the archive, and step 5b restores to one with Lifeboat and with stock tools', () => {
  const parsed = parseConfig(config({}));
  const source = parsed.sources[0] as Source;
  const manifest = {
    artifacts: [{ database: 'shop', key: 'runs/shop/20261204T000000Z/shop.sql.zst', bytes: 1, sha256: 'a'.repeat(64), format: 'sql', compression: 'zstd:3', parts: 1, binlog: { file: 'binlog.000007', position: 4242, gtid: '0-1-99' } }],
  } as unknown as Manifest;
  const markdown = renderRunbook({ config: parsed, source, bucket: 'primary-bucket', offsiteBucket: 'offsite-bucket', drills: [], now: new Date('2026-12-04T00:00:00Z') });
  expect(markdown).toContain('**Which recovery point.** Any second from the newest verified dump up to the archive\'s newest event (its binary logs are archived every 5m: step 5b)');
  expect(markdown).toContain('## 5b. Point-in-time restore from the archived binary logs');
  expect(markdown).toContain('npx lifeboat restore shop --at 2026-12-01T09:41:59Z --target-url mariadb://$TARGET_USER@$TARGET_HOST:$TARGET_PORT --bucket primary-bucket --dry-run');
  const section = binlogRestoreSection(source, 'primary-bucket', manifest, 'mariadb').join('\n');
  expect(section).toContain('# shop: from binlog.000007 position 4242 (GTID 0-1-99)');
  expect(section).toContain("TZ=UTC mariadb-binlog --start-position=4242 --stop-datetime='2026-12-01 09:42:00' --database=shop binlog.0* \\");
  expect(section).toContain('aws s3 cp s3://primary-bucket/binlog/shop/files/binlog.000007 .');
});
