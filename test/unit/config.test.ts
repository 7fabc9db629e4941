import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { ConfigError, DEFAULT_TIERS, loadConfig, parseConfig, parseDuration, parseSize, type LifeboatConfigInput, type Tier } from '../../lib/config';
import { flexibleWindowFor } from '../../lib/constructs/backup-schedules';

/** A valid config; each test breaks one thing in a copy of it. */
function validConfig(): LifeboatConfigInput {
  return {
    primary: { region: 'eu-west-1' },
    offsite: { region: 'eu-central-1' },
    sources: [
      {
        name: 'orders',
        engine: 'postgres',
        tier: 'tier1',
        connection: {
          host: 'orders.example.internal',
          database: 'orders',
          username: 'backup',
          passwordSecretArn: 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:orders-AbCdEf',
        },
        network: { vpcId: 'vpc-0a1b2c3d' },
      },
      {
        name: 'catalogue',
        engine: 'mariadb',
        tier: 'tier2',
        connection: {
          host: 'catalogue.example.internal',
          databases: ['catalogue'],
          username: 'backup',
          passwordSecretArn: 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:catalogue-AbCdEf',
        },
        network: { vpcId: 'vpc-0a1b2c3d', subnetIds: ['subnet-0a1b2c3d'], securityGroupIds: ['sg-0a1b2c3d'] },
      },
    ],
  };
}

type Mutable = { -readonly [K in keyof LifeboatConfigInput]: any }; // eslint-disable-line @typescript-eslint/no-explicit-any

function problemsOf(mutate: (config: Mutable) => void): readonly string[] {
  const config = structuredClone(validConfig()) as Mutable;
  mutate(config);
  try {
    parseConfig(config);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  throw new Error('expected the config to be rejected');
}

describe('parseConfig resolves a valid config', () => {
  const config = parseConfig(validConfig());

  test('the four default tiers: DESIGN.md\'s RPOs, RTOs, retentions and drills, and schedules that keep those RPOs', () => {
    expect(Object.keys(config.tiers)).toEqual(['tier1', 'tier2', 'tier3', 'tier4']);
    expect(config.tiers.tier1).toEqual({
      name: 'tier1', rpoSeconds: 900, rtoSeconds: 3600, scheduleSeconds: 300, timezone: 'UTC',
      retentionSeconds: 90 * 86_400, drillSeconds: 86_400, pitrWindowDays: 35, manageNativeBackups: false,
    });
    expect(Object.values(config.tiers).map((tier) => [tier.name, tier.scheduleSeconds])).toEqual([
      ['tier1', 300], ['tier2', 1800], ['tier3', 12 * 3600], ['tier4', 6 * 86_400],
    ]);
    expect(config.tiers.tier4).toMatchObject({ rpoSeconds: 7 * 86_400, retentionSeconds: 365 * 86_400, drillSeconds: 90 * 86_400 });
  });

  test('defaults: ports per engine, database list, storage class, Object Lock mode, app name', () => {
    expect(config.appName).toBe('Lifeboat');
    expect(config.sources[0].connection).toMatchObject({ port: 5432, databases: ['orders'] });
    expect(config.sources[1].connection).toMatchObject({ port: 3306, databases: ['catalogue'] });
    expect(config.offsite.storageClass).toBe('GLACIER_IR');
    expect(config.objectLock.mode).toBe('GOVERNANCE');
    expect(config.notifications).toEqual({ emails: [], httpsEndpoints: [], heartbeatUrls: [] });
    expect(config.sources[0].tier).toBe(config.tiers.tier1);
  });

  test('a default tier can be partially overridden and a custom tier added', () => {
    const input = {
      ...validConfig(),
      tiers: {
        tier2: { retention: '60d', timezone: 'Europe/Berlin' },
        gold: { rpo: '10m', rto: '30m', schedule: '5m', retention: '2y', drill: '1d' },
      },
    };
    const resolved = parseConfig(input);
    expect(resolved.tiers.tier2).toEqual({ ...parseConfig(validConfig()).tiers.tier2, retentionSeconds: 60 * 86_400, timezone: 'Europe/Berlin', pitrWindowDays: 35 });
    expect(resolved.tiers.gold).toMatchObject({ rpoSeconds: 600, scheduleSeconds: 300, retentionSeconds: 2 * 365 * 86_400 });
  });

  test('drill checks resolve, and default to none', () => {
    const input = validConfig() as Mutable;
    input.sources[0].drillChecks = [{ name: 'orders exist', sql: 'SELECT count(*) > 0 FROM orders' }];
    const resolved = parseConfig(input);
    expect(resolved.sources[0].drillChecks).toEqual([{ name: 'orders exist', sql: 'SELECT count(*) > 0 FROM orders' }]);
    expect(resolved.sources[1].drillChecks).toEqual([]);
  });

  test('compliance mode and size hints resolve', () => {
    const input = validConfig() as Mutable;
    input.objectLock = { mode: 'compliance' };
    input.sources[0].sizeHint = '2GiB';
    const resolved = parseConfig(input);
    expect(resolved.objectLock.mode).toBe('COMPLIANCE');
    expect(resolved.sources[0].sizeHintBytes).toBe(2 * 1024 ** 3);
  });

  test('every default tier passes its own rules', () => {
    for (const tier of Object.keys(DEFAULT_TIERS)) {
      expect(() => parseConfig({ ...validConfig(), tiers: { [tier]: {} } })).not.toThrow();
    }
  });
});

describe('each validation rule names the field, the value and what is valid', () => {
  test.each<[string, (config: Mutable) => void, string]>([
    ['unknown tier', (c) => { c.sources[1].tier = 'tier9'; },
      'sources[1].tier: unknown tier "tier9" (known: tier1, tier2, tier3, tier4)'],
    ['duplicate source names', (c) => { c.sources[1].name = 'orders'; },
      'sources[1].name: duplicate source name "orders" (already used by sources[0]; valid: a unique name)'],
    ['invalid source name', (c) => { c.sources[0].name = 'Orders_DB'; },
      'sources[0].name: invalid source name (valid: 1-40 characters of a-z, 0-9 and "-", not starting or ending with "-") (got "Orders_DB")'],
    ['unknown engine', (c) => { c.sources[0].engine = 'oracle'; },
      'sources[0].engine: unknown engine (valid: postgres, mysql, mariadb) (got "oracle")'],
    ['offsite region equals primary', (c) => { c.offsite.region = 'eu-west-1'; },
      'offsite.region: "eu-west-1" is also the primary region (valid: any region other than "eu-west-1", so that the offsite copy survives the loss of the primary region)'],
    ['offsite account without primary account', (c) => { c.offsite.account = '222222222222'; },
      'offsite.account: "222222222222" is set but primary.account is not (valid: both accounts, so that the offsite bucket and key policies can name the primary account, or neither)'],
    ['app name too long for the offsite bucket name', (c) => { c.appName = 'LifeboatForTheWholeCompanyXYZ1'; },
      'appName: "LifeboatForTheWholeCompanyXYZ1" is too long for the offsite bucket name in eu-central-1 (valid: at most 29 characters)'],
    ['invalid region', (c) => { c.offsite.region = 'Frankfurt'; },
      'offsite.region: unknown AWS region (valid: a region that aws-cdk-lib\'s region facts list, such as "eu-west-1") (got "Frankfurt")'],
    ['a misspelt region, with the closest known name', (c) => { c.offsite.region = 'eu-centrl-1'; },
      'offsite.region: unknown AWS region (valid: a region that aws-cdk-lib\'s region facts list, such as "eu-west-1"; did you mean "eu-central-1"?) (got "eu-centrl-1")'],
    ['a region of the right shape that does not exist', (c) => { c.primary.region = 'eu-west-9'; },
      'primary.region: unknown AWS region (valid: a region that aws-cdk-lib\'s region facts list, such as "eu-west-1"; did you mean "eu-west-1", "eu-west-2" or "eu-west-3"?) (got "eu-west-9")'],
    ['schedule longer than RPO', (c) => { c.tiers = { tier2: { schedule: '2h' } }; },
      'tiers.tier2.schedule: "2h" is longer than the tier\'s RPO of "1h" (valid: a schedule interval of at most 1h, or a longer rpo)'],
    ['retention not longer than RPO', (c) => { c.tiers = { tier4: { retention: '7d' } }; },
      'tiers.tier4.retention: "7d" is not longer than the tier\'s RPO of "7d" (valid: a retention longer than 7d, or a backup could expire before the next one exists)'],
    ['subnets without security groups', (c) => { c.sources[0].network.subnetIds = ['subnet-0a1b2c3d']; },
      'sources[0].network: subnetIds and securityGroupIds must be given together (got subnetIds only; valid: both, or neither to use the VPC\'s private subnets and a new security group)'],
    ['security groups without subnets', (c) => { delete c.sources[1].network.subnetIds; },
      'sources[1].network: subnetIds and securityGroupIds must be given together (got securityGroupIds only; valid: both, or neither to use the VPC\'s private subnets and a new security group)'],
    ['invalid duration', (c) => { c.tiers = { tier1: { rpo: '15 minutes' } }; },
      'tiers.tier1.rpo: invalid duration (valid: a whole number followed by m, h, d, w or y, e.g. "15m", "24h", "7d", "1y") (got "15 minutes")'],
    ['incomplete custom tier', (c) => { c.tiers = { gold: { rpo: '5m' } }; },
      'tiers.gold: custom tier is missing rto, schedule, retention, drill (valid: a custom tier defines rpo, rto, schedule, retention and drill; only the defaults tier1, tier2, tier3, tier4 can be partial)'],
    ['unknown timezone', (c) => { c.tiers = { tier1: { timezone: 'Mars/Olympus' } }; },
      'tiers.tier1.timezone: unknown timezone (valid: an IANA name such as "UTC" or "Europe/Berlin") (got "Mars/Olympus")'],
    ['both database and databases', (c) => { c.sources[0].connection.databases = ['a']; },
      'sources[0].connection: give either database or databases, not both (got both)'],
    ['no database', (c) => { delete c.sources[0].connection.database; },
      'sources[0].connection.database: required (valid: a database name, or databases: a list of names)'],
    ['secret ARN', (c) => { c.sources[0].connection.passwordSecretArn = 'my-secret'; },
      'sources[0].connection.passwordSecretArn: invalid secret ARN (valid: arn:aws:secretsmanager:<region>:<account>:secret:<name>) (got "my-secret")'],
    ['port out of range', (c) => { c.sources[0].connection.port = 70000; },
      'sources[0].connection.port: invalid port (valid: an integer from 1 to 65535) (got 70000)'],
    ['storage class', (c) => { c.offsite.storageClass = 'TAPE'; },
      'offsite.storageClass: unknown storage class (valid: STANDARD, STANDARD_IA, ONEZONE_IA, INTELLIGENT_TIERING, GLACIER_IR) (got "TAPE")'],
    ['GLACIER offsite storage class', (c) => { c.offsite.storageClass = 'GLACIER'; },
      'offsite.storageClass: GLACIER needs a restore before an object can be read, and the offsite copy is read without one: AwaitOffsite reads each run\'s manifest and verification there, and restores and drills from the offsite copy read its artifacts (valid: GLACIER_IR, archive pricing with millisecond reads; or STANDARD, STANDARD_IA, ONEZONE_IA, INTELLIGENT_TIERING) (got "GLACIER")'],
    ['DEEP_ARCHIVE offsite storage class', (c) => { c.offsite.storageClass = 'DEEP_ARCHIVE'; },
      'offsite.storageClass: DEEP_ARCHIVE needs a restore before an object can be read, and the offsite copy is read without one: AwaitOffsite reads each run\'s manifest and verification there, and restores and drills from the offsite copy read its artifacts (valid: GLACIER_IR, archive pricing with millisecond reads; or STANDARD, STANDARD_IA, ONEZONE_IA, INTELLIGENT_TIERING) (got "DEEP_ARCHIVE")'],
    ['Object Lock mode', (c) => { c.objectLock = { mode: 'legal-hold' }; },
      'objectLock.mode: unknown Object Lock mode (valid: governance, compliance) (got "legal-hold")'],
    ['notification e-mail', (c) => { c.notifications = { emails: ['oncall'] }; },
      'notifications.emails[0]: invalid e-mail address (got "oncall")'],
    ['heartbeat URL must be https', (c) => { c.notifications = { heartbeatUrls: ['http://hc.example.com/x'] }; },
      'notifications.heartbeatUrls[0]: invalid URL (valid: an https:// URL) (got "http://hc.example.com/x")'],
    ['size hint', (c) => { c.sources[0].sizeHint = 'huge'; },
      'sources[0].sizeHint: invalid size (valid: a number followed by B, KB, MB, GB, TB, KiB, MiB, GiB or TiB, e.g. "500MB", "20GiB") (got "huge")'],
    ['unknown field', (c) => { c.sources[0].connection.pasword = 'x'; },
      'sources[0].connection: unknown field "pasword" (valid: host, port, database, databases, username, passwordSecretArn, tls, tlsCa)'],
    ['drill check without sql', (c) => { c.sources[0].drillChecks = [{ name: 'x', sql: '' }]; },
      'sources[0].drillChecks[0].sql: sql is required (valid: a query returning one boolean, e.g. "SELECT count(*) > 0 FROM orders") (got "")'],
    ['no sources', (c) => { c.sources = []; },
      'sources: at least one source is required (valid: a list of sources, each with name, engine, tier, connection and network) (got an empty list)'],
    ['an empty list of databases', (c) => { delete c.sources[1].connection.database; c.sources[1].connection.databases = []; },
      'sources[1].connection.databases: at least one database is required (valid: a list of database names such as ["orders"], or database: one name) (got an empty list)'],
    ['an empty list of subnets', (c) => { c.sources[1].network.subnetIds = []; },
      'sources[1].network.subnetIds: at least one subnet is required (valid: a list of subnet ids such as "subnet-0a1b2c3d4e5f60718", or neither subnetIds nor securityGroupIds to use the VPC\'s private subnets and a new security group) (got an empty list)'],
    ['an empty list of security groups', (c) => { c.sources[1].network.securityGroupIds = []; },
      'sources[1].network.securityGroupIds: at least one security group is required (valid: a list of security group ids such as "sg-0a1b2c3d4e5f60718", or neither subnetIds nor securityGroupIds to use the VPC\'s private subnets and a new security group) (got an empty list)'],
    ['an empty list of deployment roles', (c) => { c.deploymentRoleArns = []; },
      'deploymentRoleArns: at least one role is required (valid: a list of role ARNs, or no deploymentRoleArns to use the CDK bootstrap\'s cfn-exec role) (got an empty list)'],
    ['a list where one value belongs', (c) => { c.sources[0].connection.database = ['orders']; },
      'sources[0].connection.database: Invalid input: expected string, received array (got a list of 1)'],
    ['offsite.account without primary: only the missing primary is reported', (c) => { delete c.primary; c.offsite.account = '222222222222'; },
      'primary: required (valid: an object with region and, optionally, account)'],
    ['a VPC id of 9 hex digits', (c) => { c.sources[0].network.vpcId = 'vpc-0a1b2c3d4'; },
      'sources[0].network.vpcId: invalid VPC id (valid: "vpc-" followed by 8 or 17 lowercase hex digits, e.g. "vpc-0a1b2c3d4e5f60718") (got "vpc-0a1b2c3d4")'],
    ['a VPC id in upper case', (c) => { c.sources[0].network.vpcId = 'vpc-0A1B2C3D'; },
      'sources[0].network.vpcId: invalid VPC id (valid: "vpc-" followed by 8 or 17 lowercase hex digits, e.g. "vpc-0a1b2c3d4e5f60718") (got "vpc-0A1B2C3D")'],
    ['a subnet id without its digits', (c) => { c.sources[1].network.subnetIds = ['subnet-0a1b2c3d', 'subnet-']; },
      'sources[1].network.subnetIds[1]: invalid subnet id (valid: "subnet-" followed by 8 or 17 lowercase hex digits, e.g. "subnet-0a1b2c3d4e5f60718") (got "subnet-")'],
    ['a security group name instead of its id', (c) => { c.sources[1].network.securityGroupIds = ['sg-backup-access']; },
      'sources[1].network.securityGroupIds[0]: invalid security group id (valid: "sg-" followed by 8 or 17 lowercase hex digits, e.g. "sg-0a1b2c3d4e5f60718") (got "sg-backup-access")'],
    ['a missing source field', (c) => { delete c.sources[0].network; },
      'sources[0].network: required (valid: an object with vpcId and, optionally, subnetIds and securityGroupIds)'],
    ['a missing string', (c) => { delete c.sources[1].connection.username; },
      'sources[1].connection.username: required (valid: a string)'],
    ['wrong type', (c) => { c.sources[0].connection.host = 42; },
      'sources[0].connection.host: Invalid input: expected string, received number (got 42)'],
    ['a host that is a URL with a password', (c) => { c.sources[0].connection.host = 'postgres://backup:hunter2@orders.example.internal:5432/orders'; },
      'sources[0].connection.host: a URL, not a host (valid: a hostname or IP address only, e.g. "orders.example.internal"; username, port and database are fields of their own, and the password is read from passwordSecretArn, never written in the config) (got "postgres://backup:***@orders.example.internal:5432/orders")'],
    ['a host that is a URL without credentials', (c) => { c.sources[1].connection.host = 'mysql://catalogue.example.internal'; },
      'sources[1].connection.host: a URL, not a host (valid: a hostname or IP address only, e.g. "orders.example.internal"; username, port and database are fields of their own, and the password is read from passwordSecretArn, never written in the config) (got "mysql://catalogue.example.internal")'],
    ['a host with credentials before "@"', (c) => { c.sources[0].connection.host = 'backup:hunter2@orders.example.internal'; },
      'sources[0].connection.host: credentials before "@" are not part of a host (valid: a hostname or IP address only, e.g. "orders.example.internal"; the user name goes in username, and the password is read from passwordSecretArn, never written in the config) (got "backup:***@orders.example.internal")'],
    ['a host with a user name before "@"', (c) => { c.sources[0].connection.host = 'backup@orders.example.internal'; },
      'sources[0].connection.host: credentials before "@" are not part of a host (valid: a hostname or IP address only, e.g. "orders.example.internal"; the user name goes in username, and the password is read from passwordSecretArn, never written in the config) (got "***@orders.example.internal")'],
    ['a secret ARN without Secrets Manager\'s six-character suffix', (c) => {
      c.sources[0].connection.passwordSecretArn = 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:lifeboat/orders';
    },
    'sources[0].connection.passwordSecretArn: a secret ARN without the six-character suffix Secrets Manager adds to the name ' +
      '(valid: the complete ARN, which ECS needs, e.g. "arn:aws:secretsmanager:eu-west-1:111111111111:secret:lifeboat/orders-AbCdEf", ' +
      'as `aws secretsmanager describe-secret --secret-id lifeboat/orders --query ARN` prints it) ' +
      '(got "arn:aws:secretsmanager:eu-west-1:111111111111:secret:lifeboat/orders")'],
    ['a UTC offset instead of an IANA timezone', (c) => { c.tiers = { tier1: { timezone: '+05:00' } }; },
      'tiers.tier1.timezone: a UTC offset, not an IANA timezone name, which EventBridge Scheduler needs (valid: an IANA name such as "UTC" or "Europe/Berlin"; a fixed offset of +05:00 is "Etc/GMT-5", the Etc sign is inverted) (got "+05:00")'],
    ['a half-hour UTC offset', (c) => { c.tiers = { tier2: { timezone: '+05:30' } }; },
      'tiers.tier2.timezone: a UTC offset, not an IANA timezone name, which EventBridge Scheduler needs (valid: an IANA name such as "UTC" or "Europe/Berlin") (got "+05:30")'],
    ['a timezone in the wrong case', (c) => { c.tiers = { tier1: { timezone: 'europe/berlin' } }; },
      'tiers.tier1.timezone: unknown timezone (valid: an IANA name such as "UTC" or "Europe/Berlin"; did you mean "Europe/Berlin"?) (got "europe/berlin")'],
    ['a misspelt timezone', (c) => { c.tiers = { tier3: { timezone: 'Europe/Berln' } }; },
      'tiers.tier3.timezone: unknown timezone (valid: an IANA name such as "UTC" or "Europe/Berlin"; did you mean "Europe/Berlin"?) (got "Europe/Berln")'],
    ['a schedule whose flexible window leaves the RPO behind (15m every 15m)', (c) => { c.tiers = { tier1: { schedule: '15m' } }; },
      'tiers.tier1.schedule: every "15m" with a flexible window of 3m, the newest backup can be 18m old before the next dump has even started, more than the tier\'s RPO of "15m" ' +
        '(valid: a schedule of at most 13m, or a longer rpo)'],
    ['a schedule that leaves no room for the dumps of the tier\'s sources', (c) => { c.tiers = { tier1: { schedule: '15m' } }; c.sources[0].sizeHint = '6GB'; },
      'tiers.tier1.schedule: every "15m" with a flexible window of 3m, the newest backup can be 18m old before the next dump has even started, more than the tier\'s RPO of "15m" ' +
        '(valid: a schedule of at most 11m, which leaves room for the 2m dump of sources[0], or a longer rpo)'],
    ['a source whose dump, after the schedule and its window, passes the RPO', (c) => { c.sources[1].sizeHint = '80GB'; },
      'sources[1].sizeHint: a "80GB" database takes about 26m 40s to dump at 50 MB/s; every 30m with a flexible window of 6m, tier "tier2"\'s newest backup can be 1h 2m old, more than its RPO of 1h ' +
        '(valid: a faster measured dumpThroughputHint, a schedule of at most 28m for tier "tier2", or a tier with a longer rpo)'],
  ])('%s', (_rule, mutate, message) => {
    expect(problemsOf(mutate)).toEqual([message]);
  });

  test.each([
    'eu-west-1', 'eu-central-2', 'us-east-1', 'us-gov-west-1', 'cn-north-1', 'ap-southeast-5', 'il-central-1',
  ])('a region that aws-cdk-lib knows is accepted: %s', (region) => {
    const config = validConfig() as Mutable;
    config.primary.region = region;
    config.offsite.region = region === 'eu-west-1' ? 'eu-central-1' : 'eu-west-1';
    expect(() => parseConfig(config)).not.toThrow();
  });

  test.each([
    'UTC', 'Etc/UTC', 'GMT', 'Etc/GMT-5', 'Etc/GMT+12', 'Europe/Berlin', 'Europe/Kyiv', 'Europe/Kiev', 'Asia/Kolkata',
    'America/Argentina/Buenos_Aires', 'America/Port-au-Prince', 'Pacific/Chatham',
  ])('an IANA timezone name is accepted: %s', (timezone) => {
    expect(parseConfig({ ...validConfig(), tiers: { tier3: { timezone } } }).tiers.tier3.timezone).toBe(timezone);
  });

  test.each([
    ['+05:00'], ['-0800'], ['+00:00'], ['Z'], ['UTC+5'], ['GMT+5'], ['utc'], ['asia/kolkata'], ['Mars/Olympus'],
  ])('not an IANA timezone name: %s', (timezone) => {
    expect(problemsOf((c) => { c.tiers = { tier3: { timezone } }; })).toEqual([expect.stringMatching(/^tiers\.tier3\.timezone: (a UTC offset|unknown timezone)/)]);
  });

  test('size hint the schedule cannot keep: longer than the interval, and past the RPO', () => {
    expect(problemsOf((c) => { c.sources[0].sizeHint = '500GB'; })).toEqual([
      'sources[0].sizeHint: a "500GB" database takes about 2h 46m to dump at 50 MB/s, longer than tier "tier1"\'s schedule of 5m, so the tier\'s RPO cannot be kept (valid: a tier whose schedule is longer than the dump, or a measured dumpThroughputHint)',
      'sources[0].sizeHint: a "500GB" database takes about 2h 46m to dump at 50 MB/s; every 5m with a flexible window of 1m, tier "tier1"\'s newest backup can be 2h 52m old, more than its RPO of 15m (valid: a faster measured dumpThroughputHint, or a tier with a longer rpo)',
    ]);
  });

  test('a measured throughput hint lets a large database into a short schedule', () => {
    const config = validConfig() as Mutable;
    config.sources[0].sizeHint = '50GB';
    expect(() => parseConfig(config)).toThrow(/sources\[0\]\.sizeHint: a "50GB" database takes about 16m 40s to dump at 50 MB\/s/);
    config.sources[0].dumpThroughputHint = '200MB';
    expect(() => parseConfig(config)).not.toThrow();
  });

  test('several problems are reported together, in one error', () => {
    const problems = problemsOf((c) => {
      c.offsite.region = 'eu-west-1';
      c.sources[1].name = 'orders';
      c.sources[1].tier = 'platinum';
      c.sources[0].engine = 'oracle';
      c.tiers = { tier3: { schedule: '2d' } };
    });
    expect(problems).toHaveLength(5);
    expect(problems).toEqual(expect.arrayContaining([
      expect.stringMatching(/^sources\[0\]\.engine: unknown engine/),
      expect.stringMatching(/^offsite\.region: "eu-west-1" is also the primary region/),
      expect.stringMatching(/^sources\[1\]\.name: duplicate source name "orders"/),
      expect.stringMatching(/^sources\[1\]\.tier: unknown tier "platinum"/),
      expect.stringMatching(/^tiers\.tier3\.schedule: "2d" is longer than the tier's RPO of "24h"/),
    ]));
  });

  test('the error message lists every problem on its own line', () => {
    const config = validConfig() as Mutable;
    config.sources[0].tier = 'x';
    config.sources[1].tier = 'y';
    expect(() => parseConfig(config, 'prod.json')).toThrow(
      'Invalid Lifeboat config in prod.json (2 problems):\n  - sources[0].tier: unknown tier "x" (known: tier1, tier2, tier3, tier4)\n' +
        '  - sources[1].tier: unknown tier "y" (known: tier1, tier2, tier3, tier4)',
    );
  });

  test.each([
    ['a URL with user and password', 'postgres://backup:hunter2-secret@orders.example.internal:5432/orders', 'postgres://backup:***@orders.example.internal:5432/orders'],
    ['a MySQL URL', 'mysql://backup:hunter2-secret@catalogue.example.internal', 'mysql://backup:***@catalogue.example.internal'],
    ['user:password@host', 'backup:hunter2-secret@orders.example.internal', 'backup:***@orders.example.internal'],
    ['only a password before "@"', ':hunter2-secret@orders.example.internal', '***@orders.example.internal'],
    ['a password with "@" in it', 'postgres://backup:hunter2@secret@orders.example.internal', 'postgres://backup:***@orders.example.internal'],
    ['a password with "/" in it', 'postgres://backup:hunter2/secret@orders.example.internal/orders', 'postgres://backup:***@orders.example.internal/orders'],
    ['a password with ":" in it', 'postgres://backup:hunter2:secret@orders.example.internal', 'postgres://backup:***@orders.example.internal'],
    ['a password in the query string', 'postgres://orders.example.internal/orders?sslmode=require&password=hunter2-secret', 'postgres://orders.example.internal/orders?***'],
    ['a query string with "@" in it', 'postgres://orders.example.internal/orders?user=a@b&password=hunter2-secret', 'postgres://***@b&***'],
    ['a password as the user name', 'postgres://hunter2-secret@orders.example.internal', 'postgres://***@orders.example.internal'],
    ['a URL without its host', 'postgres://backup:hunter2-secret', 'postgres://backup***'],
  ])('a host with credentials is refused and its password never reaches the error: %s', (_form, host, echoed) => {
    const config = structuredClone(validConfig()) as Mutable;
    config.sources[0].connection.host = host;
    let error: unknown;
    try {
      parseConfig(config);
    } catch (thrown) {
      error = thrown;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems;
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^sources\[0\]\.connection\.host: /);
    expect(problems[0].slice(problems[0].lastIndexOf(' (got '))).toBe(` (got ${JSON.stringify(echoed)})`);
    expect((error as Error).message).not.toMatch(/hunter2|secret(?!Arn)/i);
  });

  test('every new problem is reported in the same pass as the others', () => {
    const problems = problemsOf((c) => {
      c.primary.region = 'eu-centrl-1';
      c.sources[0].connection.host = 'postgres://backup:hunter2@db';
      c.sources[0].connection.passwordSecretArn = 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:lifeboat/orders';
      c.offsite.storageClass = 'GLACIER';
      c.tiers = { tier1: { schedule: '15m', timezone: '+01:00' } };
      c.sources[1].network.vpcId = 'vpc-123';
      c.sources[1].tier = 'tier9';
    });
    expect(problems.map((problem) => problem.split(':')[0]).sort()).toEqual([
      'offsite.storageClass', 'primary.region', 'sources[0].connection.host', 'sources[0].connection.passwordSecretArn',
      'sources[1].network.vpcId', 'sources[1].tier', 'tiers.tier1.schedule', 'tiers.tier1.timezone',
    ]);
  });

  test('a value under a misspelt key is never echoed back (it may be a password)', () => {
    const problems = problemsOf((c) => { c.sources[0].connection.password = 'hunter2-secret'; });
    expect(problems.join('\n')).not.toContain('hunter2-secret');
  });
});

/**
 * The newest backup is at most interval + flexible window + dump old before the next one is
 * available (a slot's backup lands at most window + dump after the slot; the next slot is an
 * interval later). A config is accepted exactly when that stays within the RPO and the dump fits
 * in the interval.
 */
describe('schedule, flexible window and dump against the RPO', () => {
  const MB = 1e6;
  test.each([
    // schedule, RPO, sizeHint at 100 MB/s ("none": no sizeHint, a dump of no time)
    ['5m', '15m', 'none'], ['10m', '15m', 'none'], ['12m', '15m', 'none'], ['13m', '15m', 'none'], ['14m', '15m', 'none'],
    ['15m', '15m', 'none'], ['5m', '15m', '30GB'], ['5m', '15m', '50GB'], ['10m', '15m', '18GB'], ['10m', '15m', '19GB'],
    ['30m', '1h', '100GB'], ['30m', '1h', '150GB'], ['45m', '1h', '60GB'], ['50m', '1h', 'none'], ['12h', '24h', '1TB'],
    ['24h', '24h', 'none'], ['23h', '24h', '1TB'], ['6d', '7d', '5TB'], ['7d', '7d', 'none'],
  ])('every %s, RPO %s, size %s', (schedule, rpo, sizeHint) => {
    const config = validConfig() as Mutable;
    config.tiers = { gold: { rpo, rto: '1h', schedule, retention: '90d', drill: '7d' } };
    config.sources[0].tier = 'gold';
    config.sources[0].dumpThroughputHint = '100MB';
    if (sizeHint !== 'none') config.sources[0].sizeHint = sizeHint;
    const scheduleSeconds = parseDuration(schedule) as number;
    const dumpSeconds = sizeHint === 'none' ? 0 : (parseSize(sizeHint) as number) / (100 * MB);
    const worstAge = scheduleSeconds + flexibleWindowFor({ scheduleSeconds }).toSeconds() + dumpSeconds;
    const keeps = worstAge <= (parseDuration(rpo) as number) && dumpSeconds <= scheduleSeconds;
    if (keeps) expect(() => parseConfig(config)).not.toThrow();
    else expect(problemsOf((c) => Object.assign(c, config))).toEqual([expect.stringMatching(/^(tiers\.gold\.schedule|sources\[0\]\.sizeHint): /)]);
  });

  test('the example\'s tier1 source keeps its RPO on the default tier1 schedule', () => {
    const config = loadConfig('lifeboat.config.ts', path.resolve(__dirname, '../..'));
    const orders = config.sources.find((source) => source.name === 'orders');
    expect(orders?.tier.name).toBe('tier1');
    const tier = orders?.tier as Tier;
    const dumpSeconds = (orders?.sizeHintBytes as number) / 120e6; // its dumpThroughputHint: 120MB
    expect(tier.scheduleSeconds + flexibleWindowFor(tier).toSeconds() + dumpSeconds).toBeLessThanOrEqual(tier.rpoSeconds);
  });

  test('every default tier leaves room for a dump within its RPO', () => {
    for (const [name, tier] of Object.entries(parseConfig(validConfig()).tiers)) {
      const slack = tier.rpoSeconds - tier.scheduleSeconds - flexibleWindowFor(tier).toSeconds();
      expect([name, slack > 0]).toEqual([name, true]);
    }
  });
});

describe('loadConfig', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'lifeboat-config-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('reads a JSON file', () => {
    writeFileSync(path.join(dir, 'prod.json'), JSON.stringify(validConfig()));
    expect(loadConfig('prod.json', dir).sources.map((s) => s.name)).toEqual(['orders', 'catalogue']);
  });

  test('reads the repository example config (TypeScript)', () => {
    const config = loadConfig('lifeboat.config.ts', path.resolve(__dirname, '../..'));
    expect(new Set(config.sources.map((s) => s.engine)).size).toBeGreaterThan(1);
    expect(new Set(config.sources.map((s) => s.tier.name)).size).toBeGreaterThan(1);
  });

  test('an invalid JSON file fails with the file name and every problem', () => {
    const config = validConfig() as Mutable;
    config.sources[0].tier = 'tier9';
    writeFileSync(path.join(dir, 'bad.json'), JSON.stringify(config));
    expect(() => loadConfig('bad.json', dir)).toThrow(/Invalid Lifeboat config in bad\.json \(1 problem\):\n {2}- sources\[0\]\.tier: unknown tier "tier9"/);
  });

  test('a missing file says which file', () => {
    expect(() => loadConfig('nope.json', dir)).toThrow(/cannot read nope\.json: ENOENT/);
  });
});
