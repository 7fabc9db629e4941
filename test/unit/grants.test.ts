/**
 * The least-privilege SQL `lifeboat grants` prints, per engine, form and platform; the
 * privileges the MySQL/MariaDB dump's own options need; SHOW GRANTS parsing; and the messages
 * the preflight builds from what is missing.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { grantsCommand, grantsFor, parseServerVersion, platformOf } from '../../cli/grants';
import { TRANSIENT_DUMP_ERRORS } from '../../lib/constructs/backup-run-states';
import { errorName } from '../../lib/domain/errors';
import { describeFailure, FIRST_CHECK } from '../../lib/steps/record-failure';
import { mysqlDumpArgs } from '../../worker/engines/mysql-clients';
import {
  databasePatternMatches,
  MYSQL_PASSWORD_PLACEHOLDER,
  mysqlDumpNeeds,
  MysqlGrants,
  mysqlGrantsSql,
  mysqlPrivilegeError,
  parseGrantLine,
  type MysqlGrantsInput,
  type MysqlPrivilegeContext,
} from '../../worker/engines/mysql-privileges';
import { pgDumpallGlobalsArgs } from '../../worker/engines/postgres-clients';
import { EngineError } from '../../worker/engines/types';
import { PG_PASSWORD_VARIABLE, pgIdent, pgPrivilegeError, postgresGrantsSql, type PgGrantsInput, type PgPrivilegeGaps } from '../../worker/engines/postgres-privileges';
import { testConfig } from '../fixtures/config';

const ARN = 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:lifeboat/shop-AbCdEf';
const PG: PgGrantsInput = { source: 'shop', username: 'lifeboat_backup', databases: ['shop', 'Crm Daten'], passwordSecretArn: ARN, platform: 'self-managed' };

/** The statements of a psql script: neither comments nor blank lines. */
const statements = (sql: string) => sql.split('\n').filter((line) => line.trim() !== '' && !line.startsWith('--'));
const comments = (sql: string) => sql.split('\n').filter((line) => line.startsWith('--'));

describe('lifeboat grants: PostgreSQL', () => {
  test('14 or later (the default): CONNECT per database, pg_read_all_data, large objects per database; no per-schema grants', () => {
    const sql = postgresGrantsSql(PG);
    const lines = statements(sql);
    expect(lines).toEqual(expect.arrayContaining([
      'GRANT CONNECT ON DATABASE shop TO lifeboat_backup;',
      'GRANT CONNECT ON DATABASE "Crm Daten" TO lifeboat_backup;',
      'GRANT pg_read_all_data TO lifeboat_backup;',
      '\\connect shop',
      '\\connect "Crm Daten"',
      "    EXECUTE format('GRANT SELECT ON LARGE OBJECT %s TO %I', lo, 'lifeboat_backup');",
    ]));
    expect(lines.filter((line) => line.includes('GRANT SELECT ON LARGE OBJECT'))).toHaveLength(2);
    expect(sql).not.toMatch(/GRANT USAGE ON SCHEMA|ON ALL TABLES IN SCHEMA|ALTER DEFAULT PRIVILEGES FOR ROLE %I/);
    expect(sql).toContain('lifeboat grants shop --server-version 13');
  });

  test('13 or earlier: USAGE, SELECT on all tables and sequences and default privileges, per schema, in each database', () => {
    const sql = postgresGrantsSql({ ...PG, serverMajor: 13 });
    const lines = statements(sql);
    for (const statement of [
      "    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', s.nspname, 'lifeboat_backup');",
      "    EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO %I', s.nspname, 'lifeboat_backup');",
      "    EXECUTE format('GRANT SELECT ON ALL SEQUENCES IN SCHEMA %I TO %I', s.nspname, 'lifeboat_backup');",
      "    EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I GRANT SELECT ON TABLES TO %I', s.rolname, s.nspname, 'lifeboat_backup');",
      "    EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I GRANT SELECT ON SEQUENCES TO %I', s.rolname, s.nspname, 'lifeboat_backup');",
    ]) {
      expect([statement, lines.filter((line) => line === statement).length]).toEqual([statement, 2]);
    }
    expect(lines).not.toContain('GRANT pg_read_all_data TO lifeboat_backup;');
    expect(lines.filter((line) => line.includes('GRANT SELECT ON LARGE OBJECT'))).toHaveLength(2);
  });

  test('19 or later: pg_read_all_data covers large objects, so there is no large-object block', () => {
    const sql = postgresGrantsSql({ ...PG, serverMajor: 19 });
    expect(statements(sql)).toContain('GRANT pg_read_all_data TO lifeboat_backup;');
    expect(sql).not.toContain('LARGE OBJECT %s');
  });

  test('the password: read from the secret into a psql variable; the statement names the variable, never a value', () => {
    const sql = postgresGrantsSql(PG);
    const lines = statements(sql);
    expect(lines).toContain(
      `\\set ${PG_PASSWORD_VARIABLE} \`aws secretsmanager get-secret-value --secret-id '${ARN}' --query SecretString --output text\``);
    expect(lines).toContain(`CREATE ROLE lifeboat_backup LOGIN PASSWORD :'${PG_PASSWORD_VARIABLE}';`);
    expect(lines).toContain(`\\unset ${PG_PASSWORD_VARIABLE}`);
    expect(lines.filter((line) => /\bPASSWORD\b/.test(line))).toEqual([`CREATE ROLE lifeboat_backup LOGIN PASSWORD :'${PG_PASSWORD_VARIABLE}';`]);
  });

  test('RDS/Aurora: run by the master user, no rds_superuser granted, pg_authid noted as unreadable', () => {
    const sql = postgresGrantsSql({ ...PG, platform: 'rds' });
    expect(sql).toMatch(/postgres on Amazon RDS \/ Aurora/);
    expect(sql).toMatch(/as the master user \(a member of rds_superuser, which the backup user does not need\)/);
    expect(statements(sql)).toContain('GRANT pg_read_all_data TO lifeboat_backup;');
    expect(statements(sql).join('\n')).not.toMatch(/rds_superuser|SUPERUSER|REPLICATION/);
    expect(sql).toMatch(/not pg_authid \(which RDS and Aurora let no one read\)/);
    expect(postgresGrantsSql(PG)).toMatch(/Run it with psql as a superuser/);
  });

  test('the globals claim holds: pg_dumpall runs with --no-role-passwords (it then reads pg_roles, not pg_authid)', () => {
    expect(pgDumpallGlobalsArgs('host=x', 'shop')).toContain('--no-role-passwords');
    expect(postgresGrantsSql(PG)).toMatch(/pg_dumpall --no-role-passwords reads pg_roles,\n-- not pg_authid/);
  });

  test('the backup user is quoted where PostgreSQL would fold or refuse its name', () => {
    const sql = postgresGrantsSql({ ...PG, username: 'Backup "ops"' });
    expect(statements(sql)).toContain('GRANT pg_read_all_data TO "Backup ""ops""";');
    expect(sql).toContain(`EXECUTE format('GRANT SELECT ON LARGE OBJECT %s TO %I', lo, 'Backup "ops"');`);
    expect(pgIdent('it\'s')).toBe('"it\'s"');
    expect(pgIdent('plain_name1')).toBe('plain_name1');
  });

  test('every statement group follows a comment that says why it is needed', () => {
    for (const form of [PG, { ...PG, serverMajor: 13 }, { ...PG, platform: 'rds' as const }]) {
      const sql = postgresGrantsSql(form);
      const blocks = sql.split(/\n\n/).filter((block) => statements(block).length > 0);
      for (const block of blocks) expect([block.split('\n')[0]?.startsWith('--'), block]).toEqual([true, block]);
    }
  });
});

const MARIADB_ARGS = mysqlDumpArgs({
  client: { flavor: 'mariadb', major: 10 }, serverFlavor: 'mariadb', host: 'db', port: 3306, username: 'backup', databases: ['shop'],
});
const MYSQL_ARGS = mysqlDumpArgs({
  client: { flavor: 'mysql', major: 8 }, serverFlavor: 'mysql', host: 'db', port: 3306, username: 'backup', databases: ['shop'],
});
const MY: MysqlGrantsInput = {
  source: 'catalogue', username: 'backup', databases: ['shop', 'crm'], passwordSecretArn: ARN, flavor: 'mariadb', platform: 'self-managed',
  dumpArgs: MARIADB_ARGS, tool: 'mariadb-dump',
};

describe('lifeboat grants: MySQL/MariaDB', () => {
  test('the worker\'s own dump options need TRIGGER, EVENT and routines, and neither LOCK TABLES, PROCESS nor RELOAD', () => {
    const expected = { triggers: true, events: true, routines: true, lockTables: false, process: false, reload: false };
    expect(mysqlDumpNeeds(MARIADB_ARGS)).toEqual(expected);
    expect(mysqlDumpNeeds(MYSQL_ARGS)).toEqual(expected);
  });

  test.each([
    ['without --no-tablespaces: PROCESS', (a: string[]) => a.filter((x) => x !== '--no-tablespaces'), { process: true }],
    ['without --single-transaction and --skip-lock-tables: LOCK TABLES', (a: string[]) => a.filter((x) => x !== '--single-transaction' && x !== '--skip-lock-tables'), { lockTables: true }],
    ['with --master-data=2: RELOAD', (a: string[]) => [...a, '--master-data=2'], { reload: true }],
    ['mysqldump without --set-gtid-purged=OFF but with AUTO: RELOAD', (a: string[]) => [...a.filter((x) => x !== '--set-gtid-purged=OFF'), '--set-gtid-purged=AUTO'], { reload: true }],
    ['with --skip-triggers: no TRIGGER', (a: string[]) => [...a.filter((x) => x !== '--triggers'), '--skip-triggers'], { triggers: false }],
    ['without --events: no EVENT', (a: string[]) => a.filter((x) => x !== '--events'), { events: false }],
    ['without --routines: no routine privilege', (a: string[]) => a.filter((x) => x !== '--routines'), { routines: false }],
  ])('options change what is needed, %s', (_name, change, difference) => {
    const base = mysqlDumpNeeds(MYSQL_ARGS);
    expect(mysqlDumpNeeds(change([...MYSQL_ARGS]))).toEqual({ ...base, ...difference });
  });

  test('MariaDB: one GRANT per database of exactly SELECT, SHOW VIEW, TRIGGER, EVENT; SELECT on mysql.proc for routines', () => {
    const lines = statements(mysqlGrantsSql(MY));
    expect(lines.filter((line) => line.startsWith('GRANT'))).toEqual([
      "GRANT SELECT, SHOW VIEW, TRIGGER, EVENT ON `shop`.* TO 'backup'@'%';",
      "GRANT SELECT, SHOW VIEW, TRIGGER, EVENT ON `crm`.* TO 'backup'@'%';",
      "GRANT SELECT ON `mysql`.`proc` TO 'backup'@'%';",
    ]);
    expect(lines.join('\n')).not.toMatch(/LOCK TABLES|PROCESS|RELOAD|ALL PRIVILEGES/);
  });

  test('what is not needed is named with the option that makes it unnecessary', () => {
    const notNeeded = mysqlGrantsSql(MY).split('-- Not needed, because of how the dump runs:\n')[1] ?? '';
    expect(notNeeded).toMatch(/LOCK TABLES: --single-transaction/);
    expect(notNeeded).toMatch(/PROCESS: --no-tablespaces \(MySQL 8\.0\.21\+/);
    expect(notNeeded).toMatch(/RELOAD, FLUSH_TABLES, BACKUP_ADMIN: no FLUSH TABLES WITH READ LOCK/);
  });

  test('each privilege granted has a comment line saying why', () => {
    for (const input of [MY, { ...MY, flavor: 'mysql' as const, dumpArgs: MYSQL_ARGS.filter((a) => a !== '--no-tablespaces'), tool: 'mysqldump' }]) {
      const sql = mysqlGrantsSql(input);
      const granted = statements(sql).filter((line) => line.startsWith('GRANT'))
        .flatMap((line) => (/^GRANT (.+?) ON /.exec(line)?.[1] ?? '').split(', '));
      for (const privilege of new Set(granted)) {
        expect([privilege, comments(sql).some((line) => line.includes(`${privilege}:`) || line.includes(`holders of ${privilege}`))])
          .toEqual([privilege, true]);
      }
    }
  });

  test.each([
    [undefined, "GRANT SHOW_ROUTINE ON *.* TO 'backup'@'%';"],
    [{ major: 8, minor: 0, patch: 20 }, "GRANT SHOW_ROUTINE ON *.* TO 'backup'@'%';"],
    [{ major: 8, minor: 4, patch: 0 }, "GRANT SHOW_ROUTINE ON *.* TO 'backup'@'%';"],
    [{ major: 8, minor: 0, patch: 19 }, "GRANT SELECT ON *.* TO 'backup'@'%';"],
    [{ major: 5, minor: 7, patch: 44 }, "GRANT SELECT ON `mysql`.`proc` TO 'backup'@'%';"],
  ])('MySQL %j: routines need %s', (serverVersion, grant) => {
    const sql = mysqlGrantsSql({ ...MY, flavor: 'mysql', dumpArgs: MYSQL_ARGS, tool: 'mysqldump', serverVersion });
    expect(statements(sql)).toContain(grant);
    expect(statements(sql).filter((line) => line.startsWith('GRANT') && line.includes('.* TO')).length).toBeGreaterThanOrEqual(2);
  });

  test('with tablespaces dumped, PROCESS is granted globally and said why', () => {
    const sql = mysqlGrantsSql({ ...MY, dumpArgs: MARIADB_ARGS.filter((a) => a !== '--no-tablespaces') });
    expect(statements(sql)).toContain("GRANT PROCESS ON *.* TO 'backup'@'%';");
    expect(sql).toMatch(/PROCESS: tablespaces are dumped/);
  });

  test('the password: a placeholder in the statement, the secret named where to read it from', () => {
    const sql = mysqlGrantsSql(MY);
    expect(statements(sql)).toContain(`CREATE USER IF NOT EXISTS 'backup'@'%' IDENTIFIED BY '${MYSQL_PASSWORD_PLACEHOLDER}';`);
    expect(sql).toContain(`aws secretsmanager get-secret-value --secret-id '${ARN}' --query SecretString --output text`);
    expect(statements(sql).filter((line) => /IDENTIFIED/.test(line))).toHaveLength(1);
  });
});

describe('lifeboat grants: the command', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'lifeboat-grants-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const config = path.join(dir, 'config.json');
  writeFileSync(config, JSON.stringify({
    appName: 'Grants',
    primary: { region: 'eu-west-1', account: '111111111111' },
    offsite: { region: 'eu-central-1', account: '222222222222' },
    sources: [
      {
        name: 'orders', engine: 'postgres', tier: 'tier2',
        connection: { host: 'orders.cluster-abc123.eu-west-1.rds.amazonaws.com', databases: ['orders', 'billing'], username: 'lifeboat_backup', passwordSecretArn: ARN },
        network: { vpcId: 'vpc-0a1b2c3d4e5f60718' },
      },
      {
        name: 'catalogue', engine: 'mariadb', tier: 'tier3',
        connection: { host: 'catalogue.db.internal', databases: ['catalogue'], username: 'backup', passwordSecretArn: ARN },
        network: { vpcId: 'vpc-0a1b2c3d4e5f60718' },
      },
    ],
    notifications: { emails: ['oncall@example.com'] },
  }));

  async function grants(...args: string[]): Promise<{ code: number; out: string; err: string }> {
    let out = '';
    let err = '';
    const write = process.stderr.write;
    process.stderr.write = ((chunk: string) => {
      err += chunk;
      return true;
    }) as typeof process.stderr.write;
    try {
      const code = await grantsCommand(args, (text) => (out += text));
      return { code, out, err };
    } finally {
      process.stderr.write = write;
    }
  }

  test('uses the source\'s username, databases and secret; an RDS host name gives the RDS form', async () => {
    const { code, out } = await grants('orders', '--config', config);
    expect(code).toBe(0);
    expect(out).toMatch(/postgres on Amazon RDS \/ Aurora, PostgreSQL 14 or later; databases: orders, billing/);
    expect(statements(out)).toEqual(expect.arrayContaining([
      'GRANT CONNECT ON DATABASE orders TO lifeboat_backup;', 'GRANT CONNECT ON DATABASE billing TO lifeboat_backup;',
    ]));
    expect(out).toContain(ARN);
  });

  test('--server-version and --platform select the form', async () => {
    const old = await grants('orders', '--config', config, '--server-version', '13', '--platform', 'self-managed');
    expect(old.code).toBe(0);
    expect(old.out).toMatch(/postgres self-managed, PostgreSQL 13;/);
    expect(old.out).toContain('GRANT SELECT ON ALL TABLES IN SCHEMA');
    const mariadb = await grants('catalogue', '--config', config);
    expect(statements(mariadb.out)).toContain("GRANT SELECT, SHOW VIEW, TRIGGER, EVENT ON `catalogue`.* TO 'backup'@'%';");
  });

  test.each([
    [['nope'], /unknown source "nope" \(known: orders, catalogue\)/],
    [[], /give one source \(got none\)/],
    [['orders', '--server-version', 'fifteen'], /--server-version: "fifteen" is not a version \(valid: a server version such as 13, 15, 9\.6, 8\.0\.19, 10\.11\)/],
    [['orders', '--platform', 'azure'], /--platform: "azure" is not a platform \(valid: rds, self-managed\)/],
  ])('fails with exit 2 when %j, naming the value and what is valid', async (args, message) => {
    const { code, out, err } = await grants(...args, '--config', config);
    expect(code).toBe(2);
    expect(out).toBe('');
    expect(err).toMatch(message);
  });

  test.each([
    ['orders.cluster-abc123.eu-west-1.rds.amazonaws.com', 'rds'],
    ['db-1.abc.cn-north-1.rds.amazonaws.com.cn', 'rds'],
    ['catalogue.db.internal', 'self-managed'],
    ['10.0.3.17', 'self-managed'],
  ])('platform of %s is %s', (host, platform) => {
    expect(platformOf(host)).toBe(platform);
  });

  test.each([['13', { major: 13, minor: 0, patch: 0 }], ['9.6', { major: 9, minor: 6, patch: 0 }], ['8.0.19', { major: 8, minor: 0, patch: 19 }], ['x', undefined], ['', undefined]])(
    'server version %j', (text, parts) => expect(parseServerVersion(text)).toEqual(parts));

  test('every source of the fixture config prints, with its own user and databases', () => {
    for (const source of testConfig.sources) {
      const sql = grantsFor(source);
      expect(sql).toContain(`backup user of source "${source.name}"`);
      for (const database of source.connection.databases) expect(sql).toContain(database);
      expect(sql).toContain(source.connection.username);
    }
  });
});

describe('SHOW GRANTS', () => {
  test.each([
    ["GRANT SELECT, SHOW VIEW, EVENT, TRIGGER ON `shop`.* TO `a`@`%`", { privileges: ['SELECT', 'SHOW VIEW', 'EVENT', 'TRIGGER'], database: 'shop', table: '*', revoke: false }],
    ["GRANT USAGE ON *.* TO `a`@`%` IDENTIFIED BY PASSWORD '*D821809F681A40A6E379B50D0463EFAE20BDD122'", { privileges: ['USAGE'], database: '*', table: '*', revoke: false }],
    ['GRANT SELECT ON `mysql`.`proc` TO `a`@`%`', { privileges: ['SELECT'], database: 'mysql', table: 'proc', revoke: false }],
    ['GRANT SELECT (`User`, `Host`), INSERT ON `mysql`.`user` TO `a`@`%`', { privileges: ['INSERT'], database: 'mysql', table: 'user', revoke: false }],
    ['GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION', { privileges: ['ALL PRIVILEGES'], database: '*', table: '*', revoke: false }],
    ['GRANT SELECT ON `sh\\_op%`.* TO `r2`', { privileges: ['SELECT'], database: 'sh\\_op%', table: '*', revoke: false }],
    ['GRANT SELECT ON `we``ird`.`t ON x` TO `a`@`%`', { privileges: ['SELECT'], database: 'we`ird', table: 't ON x', revoke: false }],
    ['GRANT SHOW_ROUTINE,BACKUP_ADMIN ON *.* TO `u`@`%`', { privileges: ['SHOW_ROUTINE', 'BACKUP_ADMIN'], database: '*', table: '*', revoke: false }],
    ['REVOKE SELECT ON `mysql`.* FROM `u`@`%`', { privileges: ['SELECT'], database: 'mysql', table: '*', revoke: true }],
    ['GRANT `r1` TO `a`@`%`', undefined],
    ['GRANT `r1`@`%`,`r2`@`%` TO `u`@`%`', undefined],
    ["GRANT PROXY ON ``@`%` TO `root`@`127.0.0.1` WITH GRANT OPTION", undefined],
    ['GRANT EXECUTE ON PROCEDURE `shop`.`add_order` TO `u`@`%`', undefined],
    ['SET DEFAULT ROLE `r1` FOR `a`@`%`', undefined],
  ])('%s', (line, parsed) => {
    expect(parseGrantLine(line)).toEqual(parsed);
  });

  test.each([
    ['shop', 'shop', true], ['shop', 'shopx', false], ['sh\\_op%', 'sh_op2', true], ['sh\\_op%', 'shXop2', false],
    ['sh_p', 'shop', true], ['%', 'anything', true], ['*', 'anything', true],
  ])('database grant %s covers %s: %s', (pattern, database, covers) => {
    expect(databasePatternMatches(pattern, database)).toBe(covers);
  });

  test('global, database and table privileges; partial revokes; column-level grants do not count', () => {
    const grants = new MysqlGrants([
      'GRANT SELECT, PROCESS ON *.* TO `u`@`%`',
      'REVOKE SELECT ON `secret`.* FROM `u`@`%`',
      'GRANT TRIGGER ON `sh\\_op%`.* TO `u`@`%`',
      'GRANT SHOW VIEW (`c`) ON `crm`.`v` TO `u`@`%`',
    ]);
    expect(grants.global('PROCESS')).toBe(true);
    expect(grants.onDatabase('SELECT', 'shop')).toBe(true);
    expect(grants.onDatabase('SELECT', 'secret')).toBe(false);
    expect(grants.onDatabase('TRIGGER', 'sh_op1')).toBe(true);
    expect(grants.onDatabase('TRIGGER', 'shop')).toBe(false);
    expect(grants.onTable('SHOW VIEW', 'crm', 'v')).toBe(false);
    expect(grants.onTable('SELECT', 'mysql', 'proc')).toBe(true);
  });
});

describe('the preflight\'s messages', () => {
  const needs = mysqlDumpNeeds(MARIADB_ARGS);
  const context: MysqlPrivilegeContext = {
    account: { user: 'backup', host: '%' }, flavor: 'mariadb', version: { major: 10, minor: 11, patch: 6 }, tool: 'mariadb-dump', needs, source: 'catalogue',
  };

  test('MySQL/MariaDB: everything granted, no error; SHOW VIEW is asked for only where there are views', () => {
    const all = new MysqlGrants(['GRANT SELECT, SHOW VIEW, TRIGGER, EVENT ON `shop`.* TO `backup`@`%`', 'GRANT SELECT ON `mysql`.`proc` TO `backup`@`%`']);
    expect(mysqlPrivilegeError(all, [{ database: 'shop', views: ['v'] }], context)).toBeUndefined();
    const noShowView = new MysqlGrants(['GRANT SELECT, TRIGGER, EVENT ON `shop`.* TO `backup`@`%`', 'GRANT SELECT ON `mysql`.`proc` TO `backup`@`%`']);
    expect(mysqlPrivilegeError(noShowView, [{ database: 'shop', views: [] }], context)).toBeUndefined();
    expect(mysqlPrivilegeError(noShowView, [{ database: 'shop', views: ['v1', 'v2'] }], context)).toMatchObject({
      name: 'InsufficientPrivileges',
      message: expect.stringContaining('database "shop": no SHOW VIEW (it has 2 views (v1, v2): SHOW CREATE VIEW fails without it)'),
    });
  });

  test('MySQL/MariaDB: each missing privilege per database, the routine privilege, and one GRANT per database that fixes it', () => {
    const error = mysqlPrivilegeError(new MysqlGrants(['GRANT SELECT ON `shop`.* TO `backup`@`%`']), [
      { database: 'shop', views: [] }, { database: 'crm', views: [] },
    ], context);
    expect(error?.name).toBe('InsufficientPrivileges');
    expect(error?.message).toMatch(/^user 'backup'@'%' lacks privileges mariadb-dump needs, .*it was not started\. /);
    expect(error?.message).toContain('database "shop": no TRIGGER (triggers are dumped; without it they are invisible and would be left out), no EVENT');
    expect(error?.message).toContain('database "crm": no SELECT (to read its tables');
    expect(error?.message).toContain('no SELECT on mysql.proc (--routines');
    expect(error?.message).toContain("Fix: GRANT TRIGGER, EVENT ON `shop`.* TO 'backup'@'%'; GRANT SELECT, TRIGGER, EVENT ON `crm`.* TO 'backup'@'%'; GRANT SELECT ON `mysql`.`proc` TO 'backup'@'%'.");
    expect(error?.message).toMatch(/The complete least-privilege SQL: lifeboat grants catalogue$/);
  });

  test('MariaDB 11.3+: SHOW CREATE ROUTINE on each database also shows routine bodies', () => {
    const grants = new MysqlGrants(['GRANT SELECT, SHOW VIEW, TRIGGER, EVENT, SHOW CREATE ROUTINE ON `shop`.* TO `backup`@`%`']);
    expect(mysqlPrivilegeError(grants, [{ database: 'shop', views: [] }], { ...context, version: { major: 11, minor: 4 } })).toBeUndefined();
    expect(mysqlPrivilegeError(grants, [{ database: 'shop', views: [] }], context)?.message).toContain('no SELECT on mysql.proc');
  });

  const none: PgPrivilegeGaps = { database: 'shop', tables: [], sequences: [], schemas: [], rowSecurity: [], largeObjects: [] };

  test('PostgreSQL: nothing missing, no error', () => {
    expect(pgPrivilegeError([none, { ...none, database: 'crm' }], { username: 'backup', serverMajor: 15 })).toBeUndefined();
  });

  test('PostgreSQL: the first five names, the count, and per-schema fixes before 14', () => {
    const tables = ['a.t1', 'a.t2', 'a.t3', 'b.t4', 'b.t5', 'b.t6', '"Big"."T 7"'];
    const error = pgPrivilegeError([none, { ...none, database: 'crm', tables, schemas: ['"Big"'], sequences: ['a.s1'] }], { username: 'backup', serverMajor: 13, source: 'shop' });
    expect(error?.name).toBe('InsufficientPrivileges');
    expect(error?.message).toContain('database "crm": no SELECT on 7 tables (a.t1, a.t2, a.t3, b.t4, b.t5 and 2 more), no SELECT on 1 sequence (a.s1), no USAGE on 1 schema ("Big")');
    expect(error?.message).toContain('fix (connected to crm): GRANT USAGE ON SCHEMA "Big" TO backup; GRANT SELECT ON ALL TABLES IN SCHEMA "Big" TO backup; ' +
      'GRANT SELECT ON ALL TABLES IN SCHEMA a TO backup; GRANT SELECT ON ALL SEQUENCES IN SCHEMA a TO backup; GRANT SELECT ON ALL TABLES IN SCHEMA b TO backup');
    expect(error?.message).not.toContain('database "shop"');
    expect(error?.message).toMatch(/lifeboat grants shop$/);
  });

  test('PostgreSQL 14+: pg_read_all_data fixes tables, sequences and schemas; large objects and RLS get their own statements', () => {
    const error = pgPrivilegeError([{ ...none, tables: ['public.t'], largeObjects: ['16614', '16615'], rowSecurity: ['public.secret'] }], { username: 'backup', serverMajor: 15 });
    expect(error?.message).toContain('no SELECT on 2 large objects (16614, 16615), row-level security it does not bypass on 1 table (public.secret)');
    expect(error?.message).toContain('fix (connected to shop): GRANT pg_read_all_data TO backup; GRANT SELECT ON LARGE OBJECT 16614, 16615 TO backup; ALTER ROLE backup BYPASSRLS');
    expect(error?.message).toMatch(/lifeboat grants SOURCE$/);
  });
});

describe('InsufficientPrivileges', () => {
  test('is a name the state machine sees (not WorkerError), is not retried, and the on-call message explains it', () => {
    expect(errorName(new EngineError('InsufficientPrivileges', 'x'))).toBe('InsufficientPrivileges');
    expect(TRANSIENT_DUMP_ERRORS).not.toContain('InsufficientPrivileges');
    const report = describeFailure({
      source: 'shop', runId: '20261126T031500Z', failedState: 'Dump',
      failure: { Error: 'InsufficientPrivileges', Cause: 'user "backup" cannot read all that pg_dump reads … lifeboat grants shop' },
    }, { known: false }, new Date('2026-11-26T04:00:00Z'));
    expect(report.message).toContain(`First thing to check: ${FIRST_CHECK.InsufficientPrivileges}`);
    expect(FIRST_CHECK.InsufficientPrivileges).toMatch(/lifeboat grants SOURCE/);
    expect(FIRST_CHECK.InsufficientPrivileges).toMatch(/Nothing was uploaded/);
  });
});
