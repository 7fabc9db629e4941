/**
 * The pure parts of `lifeboat restore --at` (lib/pitr/restore-at.ts, recovery.ts,
 * restored-server.ts): what --at accepts, pgBackRest's endpoint, the target directory's checks,
 * the repository's major, the segment of an LSN, the last PITR drill.
 */
import { chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DrillReport } from '../../lib/domain/drill-report';
import { segmentOfLsn } from '../../lib/pitr/recovery';
import { inspectTargetDir, lastPitrDrill, parsePitrAt, pgMajorOfBackupInfo, PITR_DRILL_ENGINE, repositoryEndpoint } from '../../lib/pitr/restore-at';
import { completeConfigFiles } from '../../lib/pitr/restored-server';

describe('--at', () => {
  test.each([
    ['2026-12-03T15:44:15Z', '2026-12-03T15:44:15.000Z'],
    ['2026-12-03T15:44:15.5Z', '2026-12-03T15:44:15.500Z'],
    ['2026-12-03T16:44:15.250+01:00', '2026-12-03T15:44:15.250Z'],
    ['2026-12-03T10:14:15-0530', '2026-12-03T15:44:15.000Z'],
    ['2026-12-03 15:44:15+00', '2026-12-03T15:44:15.000Z'],
    ['2026-12-03T15:44Z', '2026-12-03T15:44:00.000Z'],
    ['2028-02-29T00:00:00Z', '2028-02-29T00:00:00.000Z'],
  ])('%s is %s', (text, expected) => {
    const target = parsePitrAt(text);
    expect(target !== 'latest' && target?.time.toISOString()).toBe(expected);
  });

  test('latest is the end of the archive', () => {
    expect(parsePitrAt('latest')).toBe('latest');
  });

  test.each([
    'yesterday', 'LATEST', '', '2026-12-03', '2026-12-03T15:44:15', '2026-12-03T15:44:15.1234Z', '2026-02-29T00:00:00Z', '2026-13-01T00:00:00Z',
    '2026-12-03T24:00:00Z', '2026-12-03T15:60:00Z', '2026-12-03T15:44:60Z', '2026-12-03T15:44:15+15:00', '20261203T154415Z',
  ])('%j is refused', (text) => {
    expect(parsePitrAt(text)).toBeUndefined();
  });

  test('invariant: every accepted time prints back (toISOString) to one that parses to the same instant', () => {
    for (let i = 0; i < 200; i++) {
      const time = new Date(Date.UTC(2020, 0, 1) + Math.floor(Math.random() * 10 * 365 * 86_400_000));
      const back = parsePitrAt(time.toISOString());
      expect(back !== 'latest' && back?.time.getTime()).toBe(time.getTime());
    }
  });
});

describe("pgBackRest's endpoint", () => {
  test.each([
    [{ region: 'eu-west-1' }, { endpoint: 's3.eu-west-1.amazonaws.com', uriStyle: 'host' }],
    [{ region: 'cn-north-1' }, { endpoint: 's3.cn-north-1.amazonaws.com.cn', uriStyle: 'host' }],
    [{ region: 'eu-west-1', endpoint: 'https://s3.example.internal:9443' }, { endpoint: 's3.example.internal', port: 9443, uriStyle: 'path' }],
    [{ region: 'eu-west-1', endpoint: 'http://127.0.0.1:4566', repoEndpoint: 'https://localhost:8443' }, { endpoint: 'localhost', port: 8443, uriStyle: 'path' }],
  ])('%j → %j', (given, expected) => {
    expect(repositoryEndpoint(given)).toEqual({ endpoint: expected });
  });

  test.each([
    [{ region: 'eu-west-1', endpoint: 'http://127.0.0.1:4566' }, /^--endpoint: pgBackRest reaches S3 over HTTPS by host name only, not http:\/\/127\.0\.0\.1:4566 \(valid: https:\/\/HOST\[:PORT\]; .*--repo-endpoint/],
    [{ region: 'eu-west-1', repoEndpoint: 'https://10.0.0.5' }, /^--repo-endpoint: pgBackRest reaches S3 over HTTPS by host name only, not https:\/\/10\.0\.0\.5/],
    [{ region: 'eu-west-1', repoEndpoint: 'https://s3.example/prefix' }, /^--repo-endpoint: pgBackRest reaches S3/],
    [{ region: 'eu-west-1', repoEndpoint: 'not a url' }, /^--repo-endpoint: "not a url" is not a URL \(valid: https:\/\/HOST\[:PORT\]\)$/],
  ])('%j is refused, naming the flag', (given, expected) => {
    expect(repositoryEndpoint(given).problem).toMatch(expected);
  });
});

describe('--target-dir', () => {
  let root: string;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'lifeboat-target-dir-'));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));
  const own = () => statSync(root).uid;

  test('an empty directory, or a new one in an existing directory: accepted; as root, run as its owner', () => {
    mkdirSync(join(root, 'empty'));
    const uid = process.getuid?.();
    // As root, the directories of another user (by number: none need exist for chown).
    if (uid === 0) for (const dir of [root, join(root, 'empty')]) chownSync(dir, 4242, 4243);
    const owner = uid === 0 ? { owner: { uid: 4242, gid: 4243 } } : {};
    expect(inspectTargetDir(join(root, 'empty'), uid)).toEqual({ path: join(root, 'empty'), exists: true, ...owner, ownerName: expect.any(String) });
    expect(inspectTargetDir(join(root, 'new'), uid)).toEqual({ path: join(root, 'new'), exists: false, ...owner, ownerName: expect.any(String) });
  });

  test.each([
    ['a non-empty directory', (dir: string) => {
      mkdirSync(dir);
      writeFileSync(join(dir, 'PG_VERSION'), '15\n');
    }, 'TargetNotEmpty', /is not empty \(1 entry, e\.g\. PG_VERSION\): .*nothing was touched$/],
    ['a file', (dir: string) => writeFileSync(dir, 'x'), 'InvalidInput', /exists and is not a directory .*nothing was touched$/],
    ['a path whose parent does not exist', () => undefined, 'InvalidInput', /does not exist, and neither does its parent/],
  ])('%s is refused before anything is touched', (_what, make, name, message) => {
    const dir = _what.includes('parent') ? join(root, 'missing', 'dir') : join(root, 'dir');
    make(dir);
    expect(() => inspectTargetDir(dir, own())).toThrow(expect.objectContaining({ name, message: expect.stringMatching(message) }));
  });

  test('a relative path is refused', () => {
    expect(() => inspectTargetDir('restored', own())).toThrow(expect.objectContaining({ name: 'InvalidInput', message: '--target-dir: restored is not an absolute path' }));
  });

  test("a directory root owns is refused as root (PostgreSQL does not run as root); another user's, as that user", () => {
    // `/` belongs to root wherever this runs: a new directory in it would be root's.
    expect(() => inspectTargetDir('/lifeboat-restore-probe', 0)).toThrow(expect.objectContaining({
      name: 'InvalidInput', message: expect.stringMatching(/^--target-dir: \/ \(the parent of the new \/lifeboat-restore-probe\) belongs to root, and PostgreSQL refuses to run as root: create \/lifeboat-restore-probe owned by the OS user/),
    }));
    expect(() => inspectTargetDir('/lifeboat-restore-probe', 4242)).toThrow(expect.objectContaining({
      name: 'InvalidInput', message: expect.stringMatching(/belongs to root, not to this user \(uid 4242\): PostgreSQL runs as the directory's owner/),
    }));
  });

  test("the source's configuration files, when it kept them outside its data directory, are written; present ones are left alone", () => {
    mkdirSync(join(root, 'data'));
    writeFileSync(join(root, 'data', 'pg_hba.conf'), 'local all all trust\n');
    expect(completeConfigFiles(join(root, 'data'))).toEqual(['postgresql.conf']);
    expect(readFileSync(join(root, 'data', 'pg_hba.conf'), 'utf8')).toBe('local all all trust\n');
    expect(statSync(join(root, 'data', 'postgresql.conf')).mode & 0o777).toBe(0o600);
    expect(completeConfigFiles(join(root, 'data'))).toEqual([]);
  });
});

test("backup.info's [db] db-version is the repository's major; none when it does not say", () => {
  const info = '[backrest]\nbackrest-format=5\n\n[backup:current]\n20261203-180355F={"backup-type":"full"}\n\n[db]\ndb-catalog-version=202209061\ndb-id=1\ndb-system-id=7445\ndb-version="15"\n\n[db:history]\n1={"db-version":"14"}\n';
  expect(pgMajorOfBackupInfo(info)).toBe(15);
  expect(pgMajorOfBackupInfo('[db]\ndb-version="9.6"\n')).toBe(9);
  expect(pgMajorOfBackupInfo('[backrest]\nbackrest-format=5\n')).toBeUndefined();
});

test.each([
  ['0/5000060', 1, '000000010000000000000005'],
  ['0/FFFFFFF', 1, '00000001000000000000000F'],
  ['1/0', 2, '000000020000000100000000'],
  ['A/FF000028', 1, '000000010000000A000000FF'],
])('LSN %s on timeline %d lies in segment %s', (lsn, timeline, segment) => {
  expect(segmentOfLsn(lsn, timeline)).toBe(segment);
});

test('the estimate is the newest PITR drill among the reports (newest first): a logical drill is not one', () => {
  const report = (drillId: string, engine: string) => ({ drillId, engine } as unknown as DrillReport);
  expect(lastPitrDrill([report('20261203T030000Z', 'postgres'), report('20261202T030000Z', PITR_DRILL_ENGINE), report('20261201T030000Z', PITR_DRILL_ENGINE)])?.drillId).toBe('20261202T030000Z');
  expect(lastPitrDrill([report('20261203T030000Z', 'postgres')])).toBeUndefined();
});
