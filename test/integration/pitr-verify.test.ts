/**
 * The verdict on a pgBackRest set (lib/pitr/verify-set.ts), on real components (test/harness/pitr.ts):
 * a sound set passes; a WAL segment the set needs, removed from the archive, fails WalGap naming
 * it — which `pgbackrest verify` alone does not see (it checks only what is there); a backup
 * file damaged in place (its stored bytes, as bit rot would) fails ArchiveCorrupt naming it; a
 * set written by another pgBackRest than the images' fails VersionMismatch.
 */
import { DeleteObjectCommand, GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { PGBACKREST_VERSION } from '../../lib/domain/versions';
import type { BackupSet } from '../../lib/pitr/pgbackrest';
import { verifySet } from '../../lib/pitr/verify-set';
import { startPitrStack, type PitrStack } from '../harness/pitr';
import { tamperStoredObject } from '../harness/s3';
import { listKeys } from '../harness/s3-objects';

let stack: PitrStack;
let s3: S3Client;
let full: BackupSet;
let incr: BackupSet;

const verify = (set: BackupSet) => verifySet({ s3, bucket: stack.bucket, repoPath: stack.repository.path, stanza: stack.stanza, runner: stack.runner, set });

beforeAll(async () => {
  stack = await startPitrStack();
  s3 = stack.s3.client();
  await stack.seed('CREATE TABLE orders AS SELECT g AS id, md5(g::text) AS item FROM generate_series(1, 20000) g;');
  full = await stack.runner.backup({ type: 'full' });
  await stack.source.psql('INSERT INTO orders SELECT g, md5(g::text) FROM generate_series(20001, 40000) g;', 'shop');
  incr = await stack.runner.backup({ type: 'incr' });
}, 180_000);

afterAll(async () => {
  s3?.destroy();
  await stack?.stop();
});

test('a sound set passes: pgBackRest read every file, and every WAL segment it needs is in the archive', async () => {
  const verdict = await verify(full);
  expect(verdict).toMatchObject({ verdict: 'ok', set: full.label, findings: [], wal: { from: full.walStart, to: full.walStop, missingCount: 0 } });
  expect(verdict.wal.expected).toBeGreaterThan(0);
  expect(verdict.report).toMatch(/backup: \S+, status: valid, total files checked: \d+/);
}, 60_000);

test('a set written by another pgBackRest than the images\' fails VersionMismatch, naming both versions and the fix', async () => {
  const installed = await stack.runner.version();
  expect(full.writtenBy).toBe(`${installed.major}.${installed.minor}`);
  const same = await verifySet({ s3, bucket: stack.bucket, repoPath: stack.repository.path, stanza: stack.stanza, runner: stack.runner, set: full, expectedVersion: full.writtenBy });
  expect(same.findings).toEqual([]);
  const images = await verifySet({ s3, bucket: stack.bucket, repoPath: stack.repository.path, stanza: stack.stanza, runner: stack.runner, set: full, expectedVersion: PGBACKREST_VERSION });
  expect(images.verdict).toBe('failed');
  expect(images.findings).toEqual([{
    name: 'VersionMismatch',
    message: `set ${full.label} was written by pgBackRest ${full.writtenBy}, Lifeboat's images run ${PGBACKREST_VERSION}: ` +
      `install pgBackRest ${PGBACKREST_VERSION} on the host (lifeboat pitr setup prints the line)`,
  }]);
}, 60_000);

test('a WAL segment the incremental needs, removed from the archive: WalGap naming it, which pgbackrest verify alone misses', async () => {
  const segment = (await listKeys(s3, stack.bucket, `pitr/${stack.stanza}/archive/`)).find((key) => key.includes(`/${incr.walStop}-`));
  expect(segment).toBeDefined();
  // A delete without a version id: a delete marker hides it, as an operator's `aws s3 rm` would.
  await s3.send(new DeleteObjectCommand({ Bucket: stack.bucket, Key: segment }));

  const verdict = await verify(incr);
  expect(verdict.verdict).toBe('failed');
  expect(verdict.findings).toEqual([{
    name: 'WalGap',
    message: expect.stringContaining(`1 missing from s3://${stack.bucket}/pitr/${stack.stanza}/archive/${stack.stanza}/: ${incr.walStop}; the set cannot be restored`),
  }]);
  expect(verdict.wal.missing).toEqual([incr.walStop]);
  // pgBackRest's own verify counted only the segments it found: no missing one, status ok.
  expect(verdict.report).toMatch(/missing: 0, checksum invalid: 0/);
  expect(verdict.report).not.toMatch(/status: error/);
  // The full's own range is intact: its verdict does not change.
  expect((await verify(full)).verdict).toBe('ok');
}, 60_000);

test('a backup file damaged in place: ArchiveCorrupt naming the file', async () => {
  const file = (await listKeys(s3, stack.bucket, `pitr/${stack.stanza}/backup/${stack.stanza}/${full.label}/pg_data/base/`))[0];
  const stored = await s3.send(new GetObjectCommand({ Bucket: stack.bucket, Key: file }));
  const bytes = Buffer.from(await stored.Body!.transformToByteArray());
  bytes[Math.floor(bytes.length / 2)] ^= 0xff;
  await tamperStoredObject(stack.s3.endpoint, { bucket: stack.bucket, key: file, versionId: stored.VersionId }, bytes);

  const verdict = await verify(full);
  expect(verdict.verdict).toBe('failed');
  const relative = file.slice(`pitr/${stack.stanza}/backup/${stack.stanza}/`.length);
  expect(verdict.findings).toEqual([{
    name: 'ArchiveCorrupt',
    message: expect.stringContaining(`invalid checksum ${relative}; set ${full.label} invalid (missing: 0, checksum invalid: 1`),
  }]);
}, 60_000);
