/** Method 'pitr' in the config: what it needs, what it refuses, and what it resolves to. */
import { parseConfig, type LifeboatConfigInput } from '../../lib/config';
import { configProblems } from '../fixtures/config-input';
import { renderPlan } from '../../cli/plan';
import type { SourceInput } from '../../lib/config/schema';

const ORDERS: SourceInput = {
  name: 'orders',
  engine: 'postgres',
  tier: 'tier1',
  method: ['logical', 'pitr'],
  pitr: { host: { instanceId: 'i-0a1b2c3d4e5f60718' }, dataDirectory: '/var/lib/postgresql/15/main' },
  connection: {
    host: 'orders.example.internal',
    database: 'orders',
    username: 'backup',
    passwordSecretArn: 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:orders-AbCdEf',
  },
  network: { vpcId: 'vpc-0a1b2c3d' },
};

function config(source: Partial<SourceInput> & Record<string, unknown>, tiers?: LifeboatConfigInput['tiers']): LifeboatConfigInput {
  return { primary: { region: 'eu-west-1' }, offsite: { region: 'eu-central-1' }, ...(tiers ? { tiers } : {}), sources: [{ ...ORDERS, ...source } as SourceInput] };
}

const problems = configProblems;

test('a PostgreSQL source with both methods resolves its pgBackRest setup and its tier\'s plan', () => {
  const [source] = parseConfig(config({})).sources;
  expect(source.methods).toEqual(['logical', 'pitr']);
  expect(source.pitr).toEqual({
    host: { instanceId: 'i-0a1b2c3d4e5f60718' },
    stanza: 'orders',
    dataDirectory: '/var/lib/postgresql/15/main',
    osUser: 'postgres',
    marker: false,
    plan: {
      backups: [{ type: 'full', everySeconds: 604_800 }, { type: 'diff', everySeconds: 86_400 }, { type: 'incr', everySeconds: 300 }],
      archiveTimeoutSeconds: 300,
      archiveAgeAlarmSeconds: 900,
    },
  });
});

test('without method, a source is logical and has no pitr', () => {
  const { method: _method, pitr: _pitr, ...logical } = ORDERS;
  const [source] = parseConfig({ primary: { region: 'eu-west-1' }, offsite: { region: 'eu-central-1' }, sources: [logical] }).sources;
  expect(source.methods).toEqual(['logical']);
  expect(source.pitr).toBeUndefined();
});

test('a host by tag, a stanza and an OS user of its own; method as one word', () => {
  const [source] = parseConfig(config({
    method: 'pitr',
    pitr: { host: { tag: { key: 'lifeboat:source', value: 'orders' } }, stanza: 'main', dataDirectory: '/srv/pg', osUser: 'pgsql' },
  })).sources;
  expect(source.methods).toEqual(['pitr']);
  expect(source.pitr).toMatchObject({ host: { tag: { key: 'lifeboat:source', value: 'orders' } }, stanza: 'main', osUser: 'pgsql' });
});

test.each<[string, Record<string, unknown>, RegExp]>([
  ['pitr without its block', { pitr: undefined }, /^sources\[0\]\.pitr: required with method 'pitr' \(valid: \{ host: /],
  ['a pitr block without the method', { method: 'logical' }, /^sources\[0\]\.pitr: given, but method does not include 'pitr'/],
  ['MariaDB with a pgBackRest block', { engine: 'mariadb' }, /^sources\[0\]\.pitr: pgBackRest is PostgreSQL's; MariaDB's point-in-time recovery archives its binary logs and is configured in binlog \(valid: binlog: \{ physical\?: \{ host, dataDirectory\?, osUser\? \} \}, or no block\)$/],
  ['an RDS endpoint', { connection: { ...ORDERS.connection, host: 'orders.abcdefghijkl.eu-west-1.rds.amazonaws.com' } },
    /^sources\[0\]\.method: 'pitr' runs pgBackRest on a host Lifeboat reaches through SSM; orders\.abcdefghijkl\.eu-west-1\.rds\.amazonaws\.com is an RDS\/Aurora endpoint/],
  ['an unknown method', { method: 'snapshot' }, /^sources\[0\]\.method: unknown method \(valid: 'logical', 'pitr', or both as \['logical', 'pitr'\]\)/],
  ['a relative data directory', { pitr: { host: { instanceId: 'i-0a1b2c3d4e5f60718' }, dataDirectory: 'data' } }, /dataDirectory.*invalid dataDirectory \(valid: an absolute path/],
  ['a bad instance id', { pitr: { host: { instanceId: 'web-1' }, dataDirectory: '/d' } }, /pitr\.host/],
])('%s is refused, naming the field and what would be valid', (_what, change, expected) => {
  const found = problems(config(change));
  expect(found.some((problem) => expected.test(problem)) ? 'found' : found).toBe('found');
});

test('a tier whose RPO the archive cannot keep is refused for a PITR source, not for a logical one', () => {
  const tiers = { fast: { rpo: '2m', schedule: '1m', rto: '1h', retention: '7d', drill: '7d' } };
  expect(problems(config({ tier: 'fast', method: 'pitr' }, tiers))).toContainEqual(expect.stringMatching(
    /^sources\[0\]\.tier: tier fast: an RPO of 2m needs archive_timeout ≤ 40s \(a third of it\)/));
  const { method: _method, pitr: _pitr, ...logical } = ORDERS;
  expect(problems({ primary: { region: 'eu-west-1' }, offsite: { region: 'eu-central-1' }, tiers, sources: [{ ...logical, tier: 'fast' }] })
    .filter((problem) => problem.includes('archive_timeout'))).toEqual([]);
});

test('lifeboat plan shows a PITR source\'s backups and archive under the table; a PITR-only source has no dump schedule', () => {
  const both = renderPlan(parseConfig(config({})));
  expect(both).toContain('orders  postgres  tier1  every 5m UTC');
  expect(both).toContain('orders: point-in-time recovery with pgBackRest on i-0a1b2c3d4e5f60718 (stanza orders, /var/lib/postgresql/15/main), ' +
    'repository s3://<primary bucket>/pitr/orders/; logical dumps as in the table, for long portable retention');
  expect(both).toContain('  WAL archived continuously, archive_timeout = 300s; alarm when the newest archived segment is older than 15m');
  const only = renderPlan(parseConfig(config({ method: 'pitr', pitr: { host: { tag: { key: 'db', value: 'orders' } }, dataDirectory: '/srv/pg' } })));
  expect(only).toContain('orders  postgres  tier1  pitr (below)');
  expect(only).toContain('on the instance tagged db=orders (stanza orders, /srv/pg)');
  expect(only).toContain('; no logical dumps');
});

test('no source may be named like another\'s PITR catalog (its runs live under runs/<name>-pitr/)', () => {
  const clash = { ...ORDERS, name: 'orders-pitr', method: 'logical', pitr: undefined } as unknown as SourceInput;
  const input: LifeboatConfigInput = { primary: { region: 'eu-west-1' }, offsite: { region: 'eu-central-1' }, sources: [ORDERS, clash] };
  expect(problems(input)).toContainEqual(expect.stringMatching(/^sources\[1\]\.name: "orders-pitr" is the catalog of sources\[0\]'s point-in-time recovery runs/));
  const logicalOnly = { ...ORDERS, method: 'logical', pitr: undefined } as unknown as SourceInput;
  expect(problems({ ...input, sources: [logicalOnly, clash] }).filter((problem) => problem.includes('catalog'))).toEqual([]);
});
