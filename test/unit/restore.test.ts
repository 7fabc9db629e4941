import { formatProgress, parseAt, parseRestoreArgs, resolveBucket, restoreCommand } from '../../cli/restore';
import { mysqlClientArgs } from '../../lib/restore/mysql';
import { onlyCleanDropsFailed, pgRestoreArgs } from '../../lib/restore/postgres';
import { testConfig } from '../fixtures/config';

const PG_URL = 'postgres://restorer@db.internal:6432/shop';

function problems(argv: string[], env: NodeJS.ProcessEnv = {}): string {
  try {
    parseRestoreArgs(argv, env);
  } catch (error) {
    expect((error as Error).name).toBe('InvalidInput');
    return (error as Error).message;
  }
  throw new Error('expected invalid arguments');
}

describe('parseRestoreArgs', () => {
  test('a full PostgreSQL command line', () => {
    const request = parseRestoreArgs(
      ['shop', '--target-url', PG_URL, '--run', '20261126T030000Z', '--bucket', 'b', '--jobs', '3', '--clean', '--globals', '--no-owner'],
      { PGPASSWORD: 'pw-secret' },
    );
    expect(request).toMatchObject({
      source: 'shop', from: 'primary', bucket: 'b', runId: '20261126T030000Z', jobs: 3, clean: true, globals: true, noOwner: true,
      targetDatabase: 'shop', target: { engine: 'postgres', host: 'db.internal', port: 6432, username: 'restorer', password: 'pw-secret' },
    });
  });

  test.each([
    ['postgres://h', 'postgres', 5432, 'postgres'],
    ['postgresql://h', 'postgres', 5432, 'postgres'],
    ['mysql://h', 'mysql', 3306, 'root'],
    ['mariadb://u@h:3307', 'mariadb', 3307, 'u'],
  ])('%s → %s port %d user %s', (url, engine, port, username) => {
    expect(parseRestoreArgs(['s', '--target-url', url, '--bucket', 'b'], {}).target).toMatchObject({ engine, port, username });
  });

  test('LIFEBOAT_DB_PASSWORD wins; MYSQL_PWD for MySQL; LIFEBOAT_BUCKET names the primary bucket', () => {
    expect(parseRestoreArgs(['s', '--target-url', 'mysql://h'], { LIFEBOAT_BUCKET: 'env-bucket', MYSQL_PWD: 'm', PGPASSWORD: 'p' }))
      .toMatchObject({ bucket: 'env-bucket', target: { password: 'm' } });
    expect(parseRestoreArgs(['s', '--target-url', 'mysql://h', '--bucket', 'b'], { LIFEBOAT_DB_PASSWORD: 'l', MYSQL_PWD: 'm' }).target.password).toBe('l');
  });

  test.each([
    [[], /SOURCE: give exactly one source name[\s\S]*--target-url: required/],
    [['a', 'b', '--target-url', PG_URL, '--bucket', 'x'], /SOURCE: give exactly one/],
    [['Shop!', '--target-url', PG_URL, '--bucket', 'x'], /SOURCE: "Shop!" is not valid/],
    [['s', '--target-url', 'ftp://h', '--bucket', 'x'], /unknown scheme "ftp:"/],
    [['s', '--target-url', PG_URL, '--run', 'yesterday', '--bucket', 'x'], /--run: "yesterday" is not valid/],
    [['s', '--target-url', PG_URL, '--at', 'soon', '--bucket', 'x'], /--at: "soon" is not valid/],
    [['s', '--target-url', PG_URL, '--run', '20261126T030000Z', '--at', '2026-11-26', '--bucket', 'x'], /--run and --at: give one/],
    [['s', '--target-url', PG_URL, '--from', 'backup', '--bucket', 'x'], /--from: "backup" is not valid \(valid: primary, offsite\)/],
    [['s', '--target-url', PG_URL, '--jobs', '0', '--bucket', 'x'], /--jobs: "0" is not valid/],
    [['s', '--target-url', PG_URL], /--bucket: required for --from primary unless LIFEBOAT_BUCKET/],
    [['s', '--target-url', 'mariadb://h/shop', '--bucket', 'x'], /give no \/db/],
    [['s', '--target-url', 'mariadb://h', '--globals', '--bucket', 'x'], /--globals and --no-owner: PostgreSQL only/],
  ])('%j is refused', (argv, message) => {
    expect(problems(argv)).toMatch(message);
  });

  test('a password in the URL is refused without echoing it', () => {
    const message = problems(['s', '--target-url', 'postgres://u:hunter22@h/db', '--bucket', 'x']);
    expect(message).toMatch(/contains a password; put it in LIFEBOAT_DB_PASSWORD/);
    expect(message).not.toContain('hunter22');
  });
});

describe('parseAt', () => {
  test.each([
    ['20261126T030000Z', '2026-11-26T03:00:00.000Z'],
    ['2026-11-26T03:00:00Z', '2026-11-26T03:00:00.000Z'],
    ['2026-11-26T03:00:00', '2026-11-26T03:00:00.000Z'],
    ['2026-11-26T04:00:00+01:00', '2026-11-26T03:00:00.000Z'],
    ['2026-11-26', '2026-11-26T00:00:00.000Z'],
  ])('%s → %s', (text, iso) => {
    expect(parseAt(text)?.toISOString()).toBe(iso);
  });
  test.each(['now', '26/11/2026', '2026-13-45T00:00:00Z'])('%s is not a time', (text) => {
    expect(parseAt(text)).toBeUndefined();
  });
});

describe('resolveBucket', () => {
  const base = parseRestoreArgs(['s', '--target-url', PG_URL, '--from', 'offsite'], {});
  test('offsite: the deterministic bucket name and region from the config', () => {
    expect(resolveBucket(base, () => testConfig)).toEqual({ bucket: 'lifeboat-offsite-111111111111-eu-central-1', region: 'eu-central-1' });
  });
  test('offsite without an account in the config needs --bucket', () => {
    const config = { ...testConfig, primary: { region: 'eu-west-1' } };
    expect(() => resolveBucket(base, () => config)).toThrow(/depends on the AWS account.*give --bucket/);
    expect(resolveBucket({ ...base, bucket: 'mine' }, () => config)).toEqual({ bucket: 'mine', region: 'eu-central-1' });
  });
  test('primary never reads the config', () => {
    const request = parseRestoreArgs(['s', '--target-url', PG_URL, '--bucket', 'p', '--region', 'eu-west-1'], {});
    expect(resolveBucket(request, () => {
      throw new Error('config read');
    })).toEqual({ bucket: 'p', region: 'eu-west-1' });
  });
});

describe('restoreCommand', () => {
  test('invalid arguments exit 2 with the usage on stderr', async () => {
    let err = '';
    const code = await restoreCommand(['--target-url', PG_URL], {}, { stderr: { write: (text: string) => (err += text) }, log: () => undefined });
    expect(code).toBe(2);
    expect(err).toMatch(/SOURCE: give exactly one[\s\S]*Usage: lifeboat restore/);
  });
});

describe('client argv', () => {
  test('no password ever in pg_restore\'s or the mysql client\'s argv; --exit-on-error unless clean', () => {
    const target = { host: 'h', port: 5432, username: 'u' };
    expect(pgRestoreArgs(target, 'db', '/tmp/a.pgdump', { jobs: 4, clean: false, noOwner: true })).toEqual([
      '--host', 'h', '--port', '5432', '--username', 'u', '--no-password', '--dbname', 'db', '--jobs', '4', '--exit-on-error',
      '--no-owner', '--no-privileges', '/tmp/a.pgdump',
    ]);
    expect(pgRestoreArgs(target, 'db', 'f', { jobs: 1, clean: true, noOwner: false })).toEqual(expect.arrayContaining(['--clean', '--if-exists']));
    expect(mysqlClientArgs(target).join(' ')).not.toMatch(/password|-p\b/);
  });
});

describe('onlyCleanDropsFailed', () => {
  const dropError = 'pg_restore: error: could not execute query: ERROR:  cannot drop inherited constraint "p_pkey"\n' +
    'Command was: ALTER TABLE IF EXISTS ONLY sales.p DROP CONSTRAINT IF EXISTS p_pkey;\n';
  test.each([
    [`${dropError}pg_restore: warning: errors ignored on restore: 1\n`, true],
    [`${dropError}pg_restore: error: could not execute query: ERROR:  x\nCommand was: CREATE TABLE t ();\npg_restore: warning: errors ignored on restore: 2\n`, false],
    [`${dropError}pg_restore: warning: errors ignored on restore: 2\n`, false],
    ['pg_restore: error: connection to server failed\n', false],
  ])('%#', (stderr, ok) => {
    expect(onlyCleanDropsFailed(stderr)).toBe(ok);
  });
});

test('formatProgress', () => {
  expect(formatProgress({ phase: 'download', bytes: 5_000_000, totalBytes: 10_000_000, bytesPerSecond: 1_000_000, etaSeconds: 5 }))
    .toMatch(/^download +\[#{10}\.{10}\] .* 50% .*\/s {2}ETA 5s$/);
});
