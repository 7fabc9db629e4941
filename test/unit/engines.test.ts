import { PassThrough } from 'node:stream';
import {
  childEnv,
  formatCompression,
  parseCompression,
  redact,
  resolveClient,
  runClient,
  StderrTail,
  tableMatcher,
} from '../../worker/engines/common';
import {
  chooseMysqlCompression,
  mysqlArtifact,
  mysqlClientCandidates,
  mysqlDumpArgs,
  parseMysqlClientVersion,
  parseMysqlServerVersion,
  type MysqlDumpArgsInput,
} from '../../worker/engines/mysql-clients';
import { mysqlConnectError } from '../../worker/engines/mysql-connection';
import { mysqlEngine, mysqlTlsArgs, quoteMysqlIdent, threadsWithReadView } from '../../worker/engines/mysql';
import {
  checkPgClientVersion,
  choosePgCompression,
  parsePgClientVersion,
  parsePgServerVersion,
  pgCompressArg,
  pgDumpallGlobalsArgs,
  pgDumpArgs,
  quotePgIdent,
} from '../../worker/engines/postgres-clients';
import { pgConnectError, pgConninfo, targetConninfo } from '../../worker/engines/postgres-connection';
import { postgresEngine } from '../../worker/engines/postgres';
import { PG_CLIENT_MAJOR } from '../../lib/domain/versions';
import { withStdioBuffers } from '../../lib/process/stdio-buffers';
import { engineFor } from '../../worker/engines';
import { EngineError, type DumpTarget } from '../../worker/engines/types';

const SECRET = 's3cr3t-Pa55';
const target: DumpTarget = { host: 'db.internal', port: 5432, username: 'backup', password: SECRET, databases: ['app'] };

test.each([
  ['postgres', postgresEngine],
  ['mysql', mysqlEngine],
  ['mariadb', mysqlEngine],
] as const)('engineFor(%s)', (name, engine) => {
  expect(engineFor(name)).toBe(engine);
});

describe('version parsing', () => {
  test.each([
    ['pg_dump (PostgreSQL) 15.19 (Debian 15.19-0+deb12u1)', '15.19', 15],
    ['pg_dump (PostgreSQL) 17.9', '17.9', 17],
    ['pg_dumpall (PostgreSQL) 16.4 (Ubuntu 16.4-1.pgdg22.04+1)', '16.4', 16],
    ['pg_dump (PostgreSQL) 18beta1', '18beta1', 18],
    ['pg_dump (PostgreSQL) 9.6.24', '9.6.24', 9.6],
  ])('pg client %j → %s (major %d)', (line, version, major) => {
    expect(parsePgClientVersion(line)).toEqual({ version, major });
  });

  test.each([
    ['15.19 (Debian 15.19-0+deb12u1)', '15.19', 15],
    ['17.9', '17.9', 17],
    ['16.4 (Ubuntu 16.4-1.pgdg22.04+1)', '16.4', 16],
    ['18devel', '18devel', 18],
    ['9.6.24', '9.6.24', 9.6],
  ])('pg server %j → %s (major %d)', (text, version, major) => {
    expect(parsePgServerVersion(text)).toEqual({ version, major });
  });

  test.each(['', 'psql: command not found', 'mariadb-dump  Ver 10.19'])('pg client %j is not a version', (line) => {
    expect(() => parsePgClientVersion(line)).toThrow(/cannot parse/);
  });

  test.each([
    ['mariadb-dump  Ver 10.19 Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64)', 'mariadb-dump', 'mariadb', '10.11.19', 10, 11],
    ['mysqldump  Ver 10.19 Distrib 10.6.16-MariaDB, for debian-linux-gnu (x86_64)', 'mysqldump', 'mariadb', '10.6.16', 10, 6],
    ['mariadb-dump from 11.4.2-MariaDB, client 10.19 for debian-linux-gnu (x86_64)', 'mariadb-dump', 'mariadb', '11.4.2', 11, 4],
    ['mysqldump  Ver 8.0.36 for Linux on x86_64 (MySQL Community Server - GPL)', 'mysqldump', 'mysql', '8.0.36', 8, 0],
    ['mysqldump  Ver 8.4.3 for Linux on aarch64 (MySQL Community Server - GPL)', 'mysqldump', 'mysql', '8.4.3', 8, 4],
    ['/usr/bin/mysqldump  Ver 10.13 Distrib 5.7.44, for Linux (x86_64)', 'mysqldump', 'mysql', '5.7.44', 5, 7],
  ])('mysql client %j → %s %s %s', (line, tool, flavor, version, major, minor) => {
    expect(parseMysqlClientVersion(line)).toEqual({ tool, flavor, version, major, minor });
  });

  test.each([
    ['10.11.19-MariaDB', '', 'mariadb', '10.11.19', 10, 11],
    ['10.11.6-MariaDB-0+deb12u1', 'Debian 12', 'mariadb', '10.11.6', 10, 11],
    ['5.5.5-10.11.6-MariaDB-log', '', 'mariadb', '10.11.6', 10, 11],
    ['10.6.16-log', 'MariaDB Server', 'mariadb', '10.6.16', 10, 6],
    ['8.0.36', 'MySQL Community Server - GPL', 'mysql', '8.0.36', 8, 0],
    ['8.0.36-log', 'Source distribution', 'mysql', '8.0.36', 8, 0],
    ['8.0.mysql_aurora.3.05.2', 'Source distribution', 'mysql', '8.0', 8, 0],
    ['5.7.44-log', 'MySQL Community Server (GPL)', 'mysql', '5.7.44', 5, 7],
  ])('mysql server %j / %j → %s %s', (version, comment, flavor, short, major, minor) => {
    expect(parseMysqlServerVersion(version, comment)).toEqual({ flavor, version: short, major, minor });
  });
});

describe('client version check', () => {
  test.each([
    [{ version: '15.19', major: 15 }, { version: '15.2', major: 15 }],
    [{ version: '17.1', major: 17 }, { version: '15.19', major: 15 }],
    [{ version: '15.19', major: 15 }, { version: '9.6.24', major: 9.6 }],
  ])('pg_dump %j may dump %j', (client, server) => {
    expect(() => checkPgClientVersion(client, server)).not.toThrow();
  });

  test('an older pg_dump than the images carry fails with ClientTooOld naming both versions and the images\' major', () => {
    const attempt = (): void => checkPgClientVersion({ version: '15.19', major: 15 }, { version: '16.9', major: 16 });
    expect(attempt).toThrow(EngineError);
    expect(attempt).toThrow(
      expect.objectContaining({
        name: 'ClientTooOld',
        message: "pg_dump 15.19 cannot dump PostgreSQL 16.9: the dump client must be at least the server's major version; " +
          `the Lifeboat images carry PostgreSQL ${PG_CLIENT_MAJOR} clients, this pg_dump is 15: ` +
          'run it from the worker image, or use a PostgreSQL 16 or newer pg_dump',
      }),
    );
  });

  test('a server newer than the images\' clients: ClientTooOld says to raise PG_CLIENT_MAJOR, and where', () => {
    const newer = PG_CLIENT_MAJOR + 1;
    const attempt = (): void => checkPgClientVersion({ version: `${PG_CLIENT_MAJOR}.2`, major: PG_CLIENT_MAJOR }, { version: `${newer}.0`, major: newer });
    expect(attempt).toThrow(
      expect.objectContaining({
        name: 'ClientTooOld',
        message: `pg_dump ${PG_CLIENT_MAJOR}.2 cannot dump PostgreSQL ${newer}.0: the dump client must be at least the server's major version; ` +
          `this image carries PostgreSQL ${PG_CLIENT_MAJOR} clients; raise PG_CLIENT_MAJOR in lib/domain/versions.ts to at least ${newer} ` +
          'and redeploy (both images take their PostgreSQL major from it)',
      }),
    );
  });

  test('EngineError stacks start with the error name', () => {
    const err = new EngineError('DumpFailed', 'boom');
    expect(err.stack?.split('\n')[0]).toBe('DumpFailed: boom');
    expect(err).toBeInstanceOf(Error);
  });
});

describe('compression', () => {
  test.each([
    ['zstd:3', 'zstd', 3],
    ['zstd', 'zstd', 3],
    ['gzip', 'gzip', 1],
    ['gzip:9', 'gzip', 9],
    ['lz4:4', 'lz4', 4],
    ['none', 'none', undefined],
    [' zstd:19 ', 'zstd', 19],
  ])('%j parses', (spec, method, level) => {
    expect(parseCompression(spec)).toEqual(level === undefined ? { method } : { method, level });
  });

  test.each(['brotli', 'zstd:0', 'zstd:20', 'gzip:10', 'none:1', 'zstd:fast', '', 'ZSTD'])('%j is rejected', (spec) => {
    expect(() => parseCompression(spec)).toThrow(expect.objectContaining({ name: 'InvalidDumpOptions' }));
  });

  test.each([
    [15, undefined, 'gzip:1', '--compress=1'],
    [16, undefined, 'zstd:3', '--compress=zstd:3'],
    [17, undefined, 'zstd:3', '--compress=zstd:3'],
    [15, 'gzip:6', 'gzip:6', '--compress=6'],
    [15, 'none', 'none', '--compress=0'],
    [16, 'none', 'none', '--compress=none'],
    [17, 'gzip', 'gzip:1', '--compress=gzip:1'],
    [17, 'lz4', 'lz4:1', '--compress=lz4:1'],
  ])('pg_dump %d with %j → %s (%s)', (major, requested, spec, arg) => {
    const compression = choosePgCompression(major, requested);
    expect(formatCompression(compression)).toBe(spec);
    expect(pgCompressArg(major, compression)).toBe(arg);
  });

  test.each([
    [15, 'zstd:3'],
    [15, 'lz4'],
  ])('pg_dump %d cannot %s', (major, requested) => {
    expect(() => choosePgCompression(major, requested)).toThrow(/needs pg_dump 16 or later/);
  });

  test.each([
    [undefined, 'zstd:3', '.sql.zst'],
    ['gzip', 'gzip:1', '.sql.gz'],
    ['gzip:6', 'gzip:6', '.sql.gz'],
    ['none', 'none', '.sql'],
  ])('mysql %j → %s %s', (requested, spec, ext) => {
    expect(mysqlArtifact(chooseMysqlCompression(requested))).toEqual({ fileExtension: ext, format: 'sql', compression: spec });
  });

  test('mysql refuses lz4', () => {
    expect(() => chooseMysqlCompression('lz4')).toThrow(expect.objectContaining({ name: 'InvalidDumpOptions' }));
  });
});

describe('pg_dump argv', () => {
  const conninfo = targetConninfo(target, 'app');

  test('connection string escapes values and holds no password', () => {
    expect(pgConninfo({ host: 'h', dbname: "o'brien\\x", port: 5432, sslrootcert: undefined })).toBe(
      "host='h' dbname='o\\'brien\\\\x' port='5432'",
    );
    expect(conninfo).toBe(
      "host='db.internal' port='5432' user='backup' dbname='app' sslmode='prefer' connect_timeout='10' application_name='lifeboat'",
    );
    expect(targetConninfo({ ...target, tls: { mode: 'verify-full', caFile: '/etc/rds.pem' } }, 'a=b c')).toContain(
      "dbname='a=b c' sslmode='verify-full' sslrootcert='/etc/rds.pem'",
    );
  });

  test.each([
    [
      'pg_dump 15, default compression, snapshot',
      { clientMajor: 15, conninfo, compression: choosePgCompression(15), snapshot: '00000003-0000001B-1' },
      ['--format=custom', '--compress=1', '--no-password', '--lock-wait-timeout=300000', '--snapshot=00000003-0000001B-1', `--dbname=${conninfo}`],
    ],
    [
      'pg_dump 17, zstd, excluded tables quoted literally, no lock timeout',
      {
        clientMajor: 17,
        conninfo,
        compression: choosePgCompression(17),
        lockWaitTimeoutSeconds: 0,
        excludeTables: [
          ['public', 'audit_*'],
          ['Kunden', 'Kunden "Ümlaut"'],
        ] as const,
      },
      ['--format=custom', '--compress=zstd:3', '--no-password', '--exclude-table="public"."audit_*"', '--exclude-table="Kunden"."Kunden ""Ümlaut"""', `--dbname=${conninfo}`],
    ],
  ])('%s', (_name, input, expected) => {
    const args = pgDumpArgs(input);
    expect(args).toEqual(expected);
    expect(args.join(' ')).not.toContain(SECRET);
  });

  test('globals: no role passwords, initial database given', () => {
    expect(pgDumpallGlobalsArgs(conninfo, 'app')).toEqual([
      '--globals-only',
      '--no-role-passwords',
      '--no-password',
      `--dbname=${conninfo}`,
      '--database=app',
    ]);
  });

  test.each([
    ['plain', '"plain"'],
    ['Kunden Ümlaut', '"Kunden Ümlaut"'],
    ['größe', '"größe"'],
    ['a"b', '"a""b"'],
    ['"', '""""'],
  ])('quotePgIdent(%j) = %s', (name, quoted) => {
    expect(quotePgIdent(name)).toBe(quoted);
  });
});

describe('mysqldump argv', () => {
  const base: MysqlDumpArgsInput = {
    client: { flavor: 'mariadb', major: 10 },
    serverFlavor: 'mariadb',
    host: '127.0.0.1',
    port: 3306,
    username: 'backup',
    databases: ['shop'],
    tls: { mode: 'disable' },
  };
  const common = [
    '--no-defaults',
    '--protocol=TCP',
    '--host=127.0.0.1',
    '--port=3306',
    '--user=backup',
    '--single-transaction',
    '--skip-lock-tables',
    '--quick',
    '--routines',
    '--triggers',
    '--events',
    '--hex-blob',
    '--no-tablespaces',
    '--default-character-set=utf8mb4',
    '--max-allowed-packet=1G',
  ];

  test.each<[string, Partial<MysqlDumpArgsInput>, string[]]>([
    ['mariadb-dump for MariaDB', {}, [...common, '--skip-ssl', '--databases', 'shop']],
    [
      'MySQL mysqldump for MySQL: GTIDs off',
      { client: { flavor: 'mysql', major: 8 }, serverFlavor: 'mysql', tls: { mode: 'require' } },
      [...common, '--set-gtid-purged=OFF', '--ssl-mode=REQUIRED', '--databases', 'shop'],
    ],
    [
      'MySQL 8 mysqldump for MariaDB: no column statistics',
      { client: { flavor: 'mysql', major: 8 }, tls: undefined },
      [...common, '--set-gtid-purged=OFF', '--column-statistics=0', '--ssl-mode=PREFERRED', '--databases', 'shop'],
    ],
    [
      'mariadb-dump for MySQL: no MySQL-only flags; ignored tables; several databases',
      { serverFlavor: 'mysql', databases: ['shop', 'crm'], ignoreTables: [['shop', 'sessions']] },
      [...common, '--skip-ssl', '--ignore-table=shop.sessions', '--databases', 'shop', 'crm'],
    ],
  ])('%s', (_name, overrides, expected) => {
    const args = mysqlDumpArgs({ ...base, ...overrides });
    expect(args).toEqual(expected);
    expect(args[0]).toBe('--no-defaults');
    expect(args).not.toContain('--lock-tables');
    expect(args.some((a) => a.startsWith('--password') || a.startsWith('-p'))).toBe(false);
  });

  test.each<['mysql' | 'mariadb', 'disable' | 'prefer' | 'require' | 'verify-full', string | undefined, string[]]>([
    ['mariadb', 'disable', undefined, ['--skip-ssl']],
    ['mariadb', 'prefer', undefined, ['--ssl', '--skip-ssl-verify-server-cert']],
    ['mariadb', 'require', '/ca.pem', ['--ssl', '--skip-ssl-verify-server-cert']],
    ['mysql', 'require', '/ca.pem', ['--ssl-mode=REQUIRED']],
    ['mariadb', 'verify-full', '/ca.pem', ['--ssl', '--ssl-verify-server-cert', '--ssl-ca=/ca.pem']],
    ['mysql', 'disable', undefined, ['--ssl-mode=DISABLED']],
    ['mysql', 'prefer', undefined, ['--ssl-mode=PREFERRED']],
    ['mysql', 'verify-full', '/ca.pem', ['--ssl-mode=VERIFY_IDENTITY', '--ssl-ca=/ca.pem']],
  ])('%s client, tls %s', (flavor, mode, caFile, expected) => {
    expect(mysqlTlsArgs(flavor, { mode, caFile })).toEqual(expected);
  });

  test.each([
    ['mariadb', ['mariadb-dump', 'mysqldump']],
    ['mysql', ['mysqldump', 'mariadb-dump']],
  ] as const)('client candidates for %s', (flavor, expected) => {
    expect(mysqlClientCandidates(flavor)).toEqual(expected);
  });

  test.each([
    ['orders', '`orders`'],
    ['we`ird', '`we``ird`'],
    ['Kunden Ümlaut', '`Kunden Ümlaut`'],
  ])('quoteMysqlIdent(%j) = %s', (name, quoted) => {
    expect(quoteMysqlIdent(name)).toBe(quoted);
  });
});

describe('consistent snapshots in SHOW ENGINE INNODB STATUS', () => {
  const mariadb = `=====================================
TRANSACTIONS
------------
Trx id counter 19
Purge done for trx's n:o < 19 undo n:o < 0 state: running
History list length 2
LIST OF TRANSACTIONS FOR EACH SESSION:
---TRANSACTION (0x7f01f183b180), ACTIVE 0 sec
0 lock struct(s), heap size 1128, 0 row lock(s)
MariaDB thread id 8, OS thread handle 139646300726976, query id 15 127.0.0.1 root
Trx read view will not see trx with id >= 19, sees < 19
---TRANSACTION (0x7f01f183a680), ACTIVE 0 sec
0 lock struct(s), heap size 1128, 0 row lock(s)
MariaDB thread id 7, OS thread handle 139646301034176, query id 13 127.0.0.1 root
---TRANSACTION (0x7f01f1839b80), ACTIVE 0 sec
MariaDB thread id 6, OS thread handle 139646301341376, query id 16 127.0.0.1 root starting
SHOW ENGINE INNODB STATUS
Trx read view will not see trx with id >= 19, sees < 19
--------
FILE I/O
--------
Trx read view will not see (not a transaction line) MariaDB thread id 99
`;
  const mysql8 = `LIST OF TRANSACTIONS FOR EACH SESSION:
---TRANSACTION 421929473062616, ACTIVE 2 sec
MySQL thread id 9, OS thread handle 139948394084096, query id 52 localhost root
Trx read view will not see trx with id >= 1829, sees < 1829
---TRANSACTION 421929473061808, not started
0 lock struct(s), heap size 1128, 0 row lock(s)
MySQL thread id 10, OS thread handle 139948394084097, query id 50 localhost app
--------
`;

  test.each([
    ['MariaDB 10.11', mariadb, [8, 6]],
    ['MySQL 8', mysql8, [9]],
    ['no transaction list', 'BACKGROUND THREAD\n', []],
  ])('%s', (_name, status, ids) => {
    expect(threadsWithReadView(status)).toEqual(ids);
  });
});

describe('connection errors', () => {
  test.each([
    [{ code: '28P01', message: 'password authentication failed for user "backup"' }, 'AuthenticationFailed'],
    [{ code: '28000', message: 'no pg_hba.conf entry for host' }, 'AuthenticationFailed'],
    [{ message: 'SASL: SCRAM-SERVER-FIRST-MESSAGE: client password must be a string' }, 'AuthenticationFailed'],
    [{ code: '3D000', message: 'database "nope" does not exist' }, 'DatabaseNotFound'],
    [{ code: 'ECONNREFUSED', message: `connect ECONNREFUSED 10.0.0.1:5432 ${SECRET}` }, 'SourceUnreachable'],
    [{ message: 'Connection terminated due to connection timeout' }, 'SourceUnreachable'],
    [{ code: '53300', message: 'sorry, too many clients already' }, 'SourceUnreachable'],
  ])('pg %j → %s', (err, name) => {
    const mapped = pgConnectError(err, target, 'app');
    expect(mapped.name).toBe(name);
    expect(mapped.message).toContain('backup@db.internal:5432/app');
    expect(`${mapped.message}${mapped.stack}`).not.toContain(SECRET);
  });

  test.each([
    [{ errno: 1045, message: "Access denied for user 'backup'@'10.0.0.2' (using password: YES)" }, 'AuthenticationFailed'],
    [{ errno: 1044, message: "Access denied for user 'backup'@'%' to database 'shop'" }, 'AuthenticationFailed'],
    [{ errno: 1049, message: "Unknown database 'shop'" }, 'DatabaseNotFound'],
    [{ code: 'ETIMEDOUT', message: 'connect ETIMEDOUT' }, 'SourceUnreachable'],
    [{ code: 'HANDSHAKE_NO_SSL_SUPPORT', message: 'Server does not support secure connection' }, 'TlsRequired'],
    [{ code: 'DEPTH_ZERO_SELF_SIGNED_CERT', message: 'self-signed certificate' }, 'TlsVerifyFailed'],
    [{ code: 'ERR_TLS_CERT_ALTNAME_INVALID', message: "Hostname/IP does not match certificate's altnames: IP: 10.0.0.9 is not in the cert's list: " }, 'TlsVerifyFailed'],
  ])('mysql %j → %s', (err, name) => {
    expect(mysqlConnectError(err, { ...target, port: 3306 }).name).toBe(name);
  });
});

describe('table exclusion patterns', () => {
  test.each<[string[], boolean, string, string, boolean]>([
    [['public.audit_log'], true, 'public', 'audit_log', true],
    [['public.audit_log'], true, 'other', 'audit_log', false],
    [['audit_log'], true, 'other', 'audit_log', true],
    [['public.audit_*'], true, 'public', 'audit_2026', true],
    [['public.audit_?'], true, 'public', 'audit_12', false],
    [['Public.Audit'], true, 'public', 'audit', true],
    [['"Kunden Ümlaut"'], true, 'public', 'Kunden Ümlaut', true],
    [['"Kunden Ümlaut"'], true, 'public', 'kunden ümlaut', false],
    [['"a.b".t'], true, 'a.b', 't', true],
    [['"we*rd"'], true, 'public', 'weXrd', false],
    [['"we*rd"'], true, 'public', 'we*rd', true],
    [['log(1)'], true, 'public', 'log(1)', true],
    [['shop.Sessions'], false, 'shop', 'sessions', false],
    [['shop.Sessions'], false, 'shop', 'Sessions', true],
    [[], true, 'public', 'anything', false],
  ])('%j (foldCase %s) on %s.%s → %s', (patterns, foldCase, schema, table, matches) => {
    expect(tableMatcher(patterns, foldCase)(schema, table)).toBe(matches);
  });

  test.each(['a.b.c', '.t', 's.'])('%j is rejected', (pattern) => {
    expect(() => tableMatcher([pattern], true)).toThrow(expect.objectContaining({ name: 'InvalidDumpOptions' }));
  });
});

describe('secrets and child plumbing', () => {
  test.each([
    [`password ${SECRET} and ${SECRET}`, [SECRET], 'password *** and ***'],
    ['nothing here', [SECRET], 'nothing here'],
    ['ab ab', ['ab'], 'ab ab'],
    ['x', [undefined], 'x'],
  ])('redact(%j)', (text, secrets, expected) => {
    expect(redact(text, secrets)).toBe(expected);
  });

  test('the child environment holds only what is passed (no inherited PG*/MYSQL*/HOME)', () => {
    process.env.PGSSLMODE = 'disable';
    try {
      const env = childEnv({ PGPASSWORD: SECRET, MYSQL_PWD: undefined });
      expect(Object.keys(env).sort()).toEqual(['LANG', 'LC_ALL', 'PATH', 'PGPASSWORD', 'TZ']);
    } finally {
      delete process.env.PGSSLMODE;
    }
  });

  test('stderr tail keeps the last lines', () => {
    const tail = new StderrTail(100);
    for (let i = 0; i < 50; i++) tail.push(`line ${i}\n`);
    expect(tail.lines(3)).toBe('line 47\nline 48\nline 49');
  });

  test('a missing client is ClientNotFound', () => {
    expect(() => resolveClient('pg_dump', '/nonexistent')).toThrow(expect.objectContaining({ name: 'ClientNotFound' }));
    expect(resolveClient('sh')).toMatch(/\/sh$/);
  });

  const base = { env: childEnv({}), secrets: [SECRET], killed: () => false };

  test('larger stdio buffers go through stdbuf, only when stdbuf and the program exist', () => {
    const sh = resolveClient('sh');
    const stdbuf = resolveClient('stdbuf');
    expect(withStdioBuffers(sh, ['-c', 'true'], { output: 1048576 })).toEqual([stdbuf, ['--output=1048576', sh, '-c', 'true']]);
    expect(withStdioBuffers(sh, ['-c', 'true'], { input: 65536, output: 1048576 })).toEqual([
      stdbuf, ['--input=65536', '--output=1048576', sh, '-c', 'true'],
    ]);
    expect(withStdioBuffers(sh, ['-c', 'true'], {})).toEqual([sh, ['-c', 'true']]);
    // A client that cannot start must fail to spawn ("cannot start"), not become stdbuf's exit 127.
    expect(withStdioBuffers('/nonexistent/pg_dump', ['-V'], { output: 1048576 })).toEqual(['/nonexistent/pg_dump', ['-V']]);
    expect(withStdioBuffers(sh, ['-c', 'true'], { output: 1048576 }, '/nonexistent')).toEqual([sh, ['-c', 'true']]);
  });

  test('through stdbuf, a client writing with stdio delivers the same bytes and exit status', async () => {
    const out = new PassThrough();
    const chunks: Buffer[] = [];
    out.on('data', (chunk: Buffer) => chunks.push(chunk));
    const { done } = runClient({
      ...base,
      label: 'awk',
      path: resolveClient('awk'),
      args: ['BEGIN { for (i = 0; i < 200000; i++) print i; exit 3 }'],
      out,
      stdoutBufferBytes: 1048576,
    });
    await expect(done).rejects.toMatchObject({ name: 'DumpFailed', message: 'awk exited with code 3' });
    const lines = Buffer.concat(chunks).toString('utf8').trimEnd().split('\n');
    expect(lines).toHaveLength(200000);
    expect(lines[199999]).toBe('199999');
  });


  test('exit code ≠ 0 → DumpFailed with the last stderr lines, password redacted', async () => {
    const out = new PassThrough();
    out.resume();
    const { done } = runClient({
      ...base,
      label: 'fake_dump',
      path: '/bin/sh',
      args: ['-c', `echo partial; echo "connecting with ${SECRET}" >&2; echo "FATAL: it broke" >&2; exit 3`],
      out,
    });
    const err = (await done.catch((e: unknown) => e)) as Error;
    expect(err.name).toBe('DumpFailed');
    expect(err.message).toBe('fake_dump exited with code 3: connecting with ***\nFATAL: it broke');
    expect(`${err.message}${err.stack}`).not.toContain(SECRET);
  });

  test('back-pressure: a reader that does not read holds the client, memory stays bounded', async () => {
    const out = new PassThrough();
    const running = runClient({ ...base, label: 'yes', path: '/usr/bin/yes', args: ['0123456789abcdef'], out });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(out.readableLength + out.writableLength).toBeLessThan(1024 * 1024);
    expect(running.child.exitCode).toBeNull();
    out.destroy();
    const err = (await running.done.catch((e: unknown) => e)) as Error;
    expect(err.name).toBe('DumpFailed');
  });

  test('a reader that goes away early (EPIPE) stops the client and fails the dump', async () => {
    const out = new PassThrough();
    const running = runClient({ ...base, label: 'yes', path: '/usr/bin/yes', args: ['data'], out });
    let seen = 0;
    out.on('data', (chunk: Buffer) => {
      seen += chunk.length;
      if (seen > 1_000_000) out.destroy();
    });
    const err = (await running.done.catch((e: unknown) => e)) as Error;
    expect(err.name).toBe('DumpFailed');
    expect(err.message).toMatch(/^yes (was killed by SIG(PIPE|TERM)|exited with code \d+) after its output was closed/);
    expect(running.child.exitCode !== null || running.child.signalCode !== null).toBe(true);
  });

  test('exit 0 with all output delivered resolves', async () => {
    const out = new PassThrough();
    const chunks: Buffer[] = [];
    out.on('data', (c: Buffer) => chunks.push(c));
    const { done } = runClient({ ...base, label: 'printf', path: '/usr/bin/printf', args: ['hello'], out });
    await done;
    expect(Buffer.concat(chunks).toString()).toBe('hello');
  });

  test('a client that cannot start → DumpFailed', async () => {
    const out = new PassThrough();
    const { done } = runClient({ ...base, label: 'ghost', path: '/nonexistent/ghost', args: [], out });
    await expect(done).rejects.toMatchObject({ name: 'DumpFailed', message: expect.stringMatching(/cannot start ghost/) });
  });
});
