/**
 * Which PostgreSQL server a drill restores into: the oldest available server of at least the
 * source's major (manifest server.major), never an older one.
 */
import { choosePgServer, type PgServerBinaries } from '../../lib/drill/servers';
import { PG_CLIENT_MAJOR } from '../../lib/domain/versions';

const server = (major: number): PgServerBinaries => ({ binDir: `/usr/lib/postgresql/${major}/bin`, major });
/** This machine's kind: Debian's 15 and a newer embedded one; the worker image: PG_CLIENT_MAJOR only. */
const LOCAL = [server(15), server(PG_CLIENT_MAJOR)];
const IMAGE = [server(PG_CLIENT_MAJOR)];

test.each<[string, PgServerBinaries[], number, number]>([
  ['a source of the installed major restores into it', LOCAL, 15, 15],
  ['an older source (9.6) into the oldest server that is newer', LOCAL, 9.6, 15],
  ['a source between the two into the newer one', LOCAL, 16, PG_CLIENT_MAJOR],
  ['a source of the newest major into it', LOCAL, PG_CLIENT_MAJOR, PG_CLIENT_MAJOR],
  ['the image: any older source into its one server', IMAGE, 12, PG_CLIENT_MAJOR],
  ['the image: a source of its major into it', IMAGE, PG_CLIENT_MAJOR, PG_CLIENT_MAJOR],
  ['the order of the list does not matter', [...LOCAL].reverse(), 14, 15],
])('%s', (_what, available, sourceMajor, chosenMajor) => {
  const chosen = choosePgServer(sourceMajor, available);
  expect(chosen.major).toBe(chosenMajor);
  expect(chosen.major).toBeGreaterThanOrEqual(sourceMajor);
});

test('a source newer than every server: NoDrillServer naming both majors, what is available and PG_CLIENT_MAJOR to raise', () => {
  const tooNew = PG_CLIENT_MAJOR + 1;
  expect(() => choosePgServer(tooNew, LOCAL)).toThrow(expect.objectContaining({
    name: 'NoDrillServer',
    message: `no PostgreSQL server of major ${tooNew} or newer to restore the drill into: the run's source server is PostgreSQL ${tooNew}, ` +
      `the newest server this drill can start is PostgreSQL ${PG_CLIENT_MAJOR} ` +
      `(available: PostgreSQL 15 (/usr/lib/postgresql/15/bin), PostgreSQL ${PG_CLIENT_MAJOR} (/usr/lib/postgresql/${PG_CLIENT_MAJOR}/bin)), ` +
      "and a drill never restores into an older major than the source's. " +
      `The worker image carries a PostgreSQL ${PG_CLIENT_MAJOR} server: raise PG_CLIENT_MAJOR in lib/domain/versions.ts to at least ${tooNew} and redeploy.`,
  }));
});

test('a source the image could drill but this machine cannot: says so instead of asking for a raise', () => {
  expect(() => choosePgServer(16, [server(15)])).toThrow(expect.objectContaining({
    name: 'NoDrillServer',
    message: expect.stringMatching(new RegExp(
      `source server is PostgreSQL 16, the newest server this drill can start is PostgreSQL 15 .*` +
      `The worker image carries a PostgreSQL ${PG_CLIENT_MAJOR} server \\(lib/domain/versions.ts\\): drill there, or install a PostgreSQL 16 or newer server here\\.$`)),
  }));
});

test('no server at all: NoDrillServer says none', () => {
  expect(() => choosePgServer(15, [])).toThrow(expect.objectContaining({
    name: 'NoDrillServer', message: expect.stringContaining('the newest server this drill can start is none (available: none)'),
  }));
});
