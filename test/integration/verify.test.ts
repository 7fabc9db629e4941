/**
 * The verifier against real artifacts: runs dumped by the worker from throwaway PostgreSQL and
 * MariaDB servers into the local S3 server, then tampered with the way storage, a bug or a
 * person could (the local server has no Object Lock, so PutObject rewrites an artifact).
 * "Manifest adjusted" means the manifest's sha256 and bytes were rewritten to match the
 * tampered object, so only the archive read itself can notice.
 */
import { DeleteObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { constants as zlibConstants, zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import { dumpCommand } from '../../cli/dump';
import { globalsKey, manifestKey, verificationKey } from '../../lib/domain/layout';
import { parseManifest, serializeManifest, type Manifest } from '../../lib/domain/manifest';
import { parseVerification, serializeVerification, type Verification } from '../../lib/domain/verification';
import { PG_CLIENT_MAJOR, pgClientTooOldHint } from '../../lib/domain/versions';
import { verifyRun } from '../../lib/verify/verify-run';
import { startMariaDb, type MariaDbServer } from '../harness/mariadb';
import { startPostgres, type PgServer } from '../harness/postgres';
import { run } from '../harness/processes';
import { startS3, type S3Server } from '../harness/s3';
import { getBytes, listKeys } from '../harness/s3-objects';

const BUCKET = 'primary';
const PG_SEED = readFileSync(path.join(__dirname, '../fixtures/seed-postgres.sql'), 'utf8');
const MARIADB_SEED = readFileSync(path.join(__dirname, '../fixtures/seed-mariadb.sql'), 'utf8');
// Enough rows that the middle of the archive is compressed table data, not the TOC.
const PG_BULK = `CREATE TABLE public.bulk (id bigserial PRIMARY KEY, payload text NOT NULL);
  INSERT INTO public.bulk (payload) SELECT md5(g::text) || md5((g * 7)::text) FROM generate_series(1, 100000) g;`;
const PG_RUN = '20261126T030000Z';
const MARIADB_RUN = '20261126T030000Z';

let pg: PgServer;
let mariadb: MariaDbServer;
let s3: S3Server;
let client: S3Client;
let cloneCounter = 0;

beforeAll(async () => {
  [pg, mariadb, s3] = await Promise.all([startPostgres(), startMariaDb(), startS3()]);
  client = s3.client();
  await s3.createBucket(BUCKET);
  await pg.createDatabase('shop');
  await pg.psql(PG_SEED, 'shop');
  await pg.psql(PG_BULK, 'shop');
  await mariadb.sql(MARIADB_SEED);
  const log: string[] = [];
  const pgCode = await dumpCommand([
    '--source-url', `postgres://${pg.user}@${pg.host}:${pg.port}/shop`, '--source', 'shop', '--bucket', BUCKET,
    '--tier', 'tier1', '--run-id', PG_RUN, '--retention', 'none',
  ], {}, { s3: client, log: (line) => log.push(line) });
  const myCode = await dumpCommand([
    '--source-url', `mariadb://${mariadb.user}@${mariadb.host}:${mariadb.port}/shop`, '--source', 'crm', '--bucket', BUCKET,
    '--tier', 'tier1', '--run-id', MARIADB_RUN, '--retention', 'none',
  ], {}, { s3: client, log: (line) => log.push(line) });
  if (pgCode !== 0 || myCode !== 0) throw new Error(`the fixtures' dumps failed:\n${log.join('\n')}`);
}, 180_000);

afterAll(async () => {
  client?.destroy();
  await Promise.all([pg?.stop(), mariadb?.stop(), s3?.stop()]);
});

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

async function readManifest(source: string, runId: string): Promise<Manifest> {
  return parseManifest((await getBytes(client, BUCKET, manifestKey(source, runId))).toString('utf8'));
}

async function put(key: string, body: Buffer | string): Promise<void> {
  await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }));
}

/**
 * A copy of a run under a fresh run id (objects and manifest), with the first artifact's bytes
 * replaced by `tamper(bytes)`. `adjustManifest` rewrites the manifest's sha256 and bytes to the
 * tampered object's; `editManifest` changes anything else.
 */
async function cloneRun(
  source: string,
  fromRunId: string,
  opts: { tamper?: (bytes: Buffer) => Buffer; adjustManifest?: boolean; editManifest?: (manifest: Manifest) => void } = {},
): Promise<{ runId: string; manifest: Manifest; artifact: Buffer }> {
  const runId = `20261127T${String(Math.floor(cloneCounter / 60)).padStart(2, '0')}${String(cloneCounter++ % 60).padStart(2, '0')}00Z`;
  const original = await readManifest(source, fromRunId);
  const rekey = (key: string) => key.replace(`/${fromRunId}/`, `/${runId}/`);
  const manifest: Manifest = structuredClone({ ...original, runId });
  let artifact: Buffer = Buffer.alloc(0);
  for (const [index, entry] of manifest.artifacts.entries()) {
    let bytes = await getBytes(client, BUCKET, entry.key);
    entry.key = rekey(entry.key);
    if (index === 0 && opts.tamper) {
      bytes = opts.tamper(bytes);
      if (opts.adjustManifest) Object.assign(entry, { bytes: bytes.length, sha256: sha256(bytes) });
    }
    if (index === 0) artifact = bytes;
    await put(entry.key, bytes);
  }
  if (manifest.globals) {
    const bytes = await getBytes(client, BUCKET, manifest.globals.key);
    manifest.globals.key = rekey(manifest.globals.key);
    await put(manifest.globals.key, bytes);
  }
  opts.editManifest?.(manifest);
  await put(manifestKey(source, runId), serializeManifest(manifest));
  return { runId, manifest, artifact };
}

const verify = (source: string, runId: string, previousVerifiedSizes?: number[]) =>
  verifyRun({ s3: client, bucket: BUCKET, source, runId, verifiedBy: 'lambda', previousVerifiedSizes });

/**
 * The verdict must be failed with `name`; returns its error and the verdict. The verifier writes
 * nothing (Commit is the one writer of verification.json): no verdict appears in the bucket.
 */
async function expectFailure(source: string, runId: string, name: string, previous?: number[]) {
  const recorded = await verify(source, runId, previous);
  expect(recorded).toMatchObject({ verdict: 'failed', source, runId, error: { name, message: expect.stringContaining(`run ${source}/${runId}: `) } });
  expect(await listKeys(client, BUCKET, verificationKey(source, runId))).toEqual([]);
  return { error: recorded.error as { name: string; message: string }, recorded };
}

const flipByte = (at: (bytes: Buffer) => number) => (bytes: Buffer) => {
  const copy = Buffer.from(bytes);
  const index = at(copy);
  copy[index] = (copy[index] as number) ^ 0xff;
  return copy;
};

/** pg_restore with `args` on a file holding `archive`: what stock tools alone would say. */
async function pgRestoreAlone(archive: Buffer, args: string[]) {
  const file = path.join(tmpdir(), `lifeboat-verify-${process.pid}-${cloneCounter}.pgdump`);
  writeFileSync(file, archive);
  try {
    return await run('pg_restore', [...args, file]);
  } finally {
    rmSync(file, { force: true });
  }
}

describe('PostgreSQL', () => {
  test('a good run verifies ok: every check passes, the TOC is counted, nothing is written', async () => {
    const manifest = await readManifest('shop', PG_RUN);
    const verification = await verify('shop', PG_RUN);
    expect(verification).toMatchObject({ verdict: 'ok', source: 'shop', runId: PG_RUN, verifiedBy: 'lambda' });
    expect(verification.error).toBeUndefined();
    const [artifact, globals] = verification.artifacts;
    expect(artifact).toMatchObject({ key: manifest.artifacts[0]?.key, bytes: manifest.artifacts[0]?.bytes, sha256: manifest.artifacts[0]?.sha256 });
    expect(artifact?.checks.map((check) => [check.name, check.ok])).toEqual([
      ['bytes', true], ['sha256', true], ['toc', true], ['table-set', true], ['full-read', true], ['size', true],
    ]);
    expect(artifact?.checks.find((check) => check.name === 'table-set')?.detail).toMatch(/the same 11 in the artifact, 1 of them without rows of their own \(partitioned\)/);
    expect(artifact?.objectCounts).toMatchObject({ TABLE: 11, 'TABLE DATA': 10, SCHEMA: 2, BLOB: 5 });
    expect(globals).toMatchObject({ key: globalsKey('shop', PG_RUN), bytes: manifest.globals?.bytes, sha256: manifest.globals?.sha256 });
    expect(globals?.checks.every((check) => check.ok)).toBe(true);
    expect(manifest.tables).toHaveLength(11);
    expect(await listKeys(client, BUCKET, verificationKey('shop', PG_RUN))).toEqual([]);
  });

  test('a flipped byte inside the compressed data, manifest adjusted: ArchiveCorrupt from the full read (pg_restore -l passes it)', async () => {
    const { runId, artifact } = await cloneRun('shop', PG_RUN, { tamper: flipByte((b) => Math.floor(b.length / 2)), adjustManifest: true });
    expect((await pgRestoreAlone(artifact, ['-l'])).code).toBe(0);
    const { error, recorded } = await expectFailure('shop', runId, 'ArchiveCorrupt');
    expect(error.message).toMatch(/cannot be read to its end by pg_restore/);
    const checks = recorded.artifacts[0]?.checks ?? [];
    expect(checks.filter((check) => !check.ok).map((check) => check.name)).toEqual(['full-read']);
  });

  test('a flipped byte with the manifest untouched: ChecksumMismatch names both hashes', async () => {
    const { runId, manifest, artifact } = await cloneRun('shop', PG_RUN, { tamper: flipByte((b) => Math.floor(b.length / 2)) });
    const { error } = await expectFailure('shop', runId, 'ChecksumMismatch');
    expect(error.message).toContain(`${manifest.artifacts[0]?.key} has SHA-256 ${sha256(artifact)}, the manifest says ${manifest.artifacts[0]?.sha256}`);
    expect(error.message).toMatch(/also: ArchiveCorrupt/);
  });

  test('a corrupted length inside the TOC, manifest adjusted: ArchiveCorrupt', async () => {
    // The 4-byte length before the first "TABLE DATA" desc string.
    const { runId } = await cloneRun('shop', PG_RUN, { tamper: flipByte((b) => b.indexOf('TABLE DATA') - 4), adjustManifest: true });
    const { recorded } = await expectFailure('shop', runId, 'ArchiveCorrupt');
    expect(recorded.artifacts[0]?.checks.find((check) => check.name === 'toc')).toMatchObject({ ok: false });
  });

  test('a corrupted entry type inside the TOC, manifest adjusted: TableSetMismatch though both pg_restore runs pass it', async () => {
    const { runId, artifact, manifest } = await cloneRun('shop', PG_RUN, {
      adjustManifest: true,
      tamper: (bytes) => {
        const copy = Buffer.from(bytes);
        const at = copy.indexOf('TABLE DATA');
        copy.write('TABLE DATB', at, 'latin1');
        return copy;
      },
    });
    const listing = await pgRestoreAlone(artifact, ['-l']);
    expect(listing.code).toBe(0);
    expect((await pgRestoreAlone(artifact, ['-f', '/dev/null'])).code).toBe(0);
    const damaged = manifest.tables.filter((t) => listing.stdout.includes(`TABLE DATB ${t.schema} ${t.name} `));
    expect(damaged).toHaveLength(1);
    const { error } = await expectFailure('shop', runId, 'TableSetMismatch');
    expect(error.message).toMatch(new RegExp(`missing from the artifact: "?${damaged[0]?.schema}"?\\."?${damaged[0]?.name}"?`));
  });

  test('a truncated artifact, manifest adjusted: ArchiveCorrupt, though pg_restore -l alone exits 0', async () => {
    const { runId, artifact } = await cloneRun('shop', PG_RUN, { tamper: (b) => b.subarray(0, Math.floor(b.length * 0.6)), adjustManifest: true });
    const listing = await pgRestoreAlone(artifact, ['-l']);
    expect({ code: listing.code, stderr: listing.stderr }).toEqual({ code: 0, stderr: '' });
    const { error } = await expectFailure('shop', runId, 'ArchiveCorrupt');
    expect(error.message).toMatch(/pg_restore --file=\/dev\/null exited 1/);
  });

  test('a truncated artifact with the manifest untouched: SizeMismatch says truncated', async () => {
    const { runId, manifest } = await cloneRun('shop', PG_RUN, { tamper: (b) => b.subarray(0, 1000) });
    const { error } = await expectFailure('shop', runId, 'SizeMismatch');
    expect(error.message).toContain(`${manifest.artifacts[0]?.key} is 1000 bytes, the manifest says ${manifest.artifacts[0]?.bytes} (truncated)`);
  });

  test('a zero-length object: SizeMismatch; and with the manifest adjusted to 0 bytes, ArchiveCorrupt', async () => {
    const untouched = await cloneRun('shop', PG_RUN, { tamper: () => Buffer.alloc(0) });
    await expectFailure('shop', untouched.runId, 'SizeMismatch');
    const adjusted = await cloneRun('shop', PG_RUN, { tamper: () => Buffer.alloc(0), adjustManifest: true });
    const { recorded } = await expectFailure('shop', adjusted.runId, 'ArchiveCorrupt');
    expect(recorded.artifacts[0]?.checks.filter((check) => !check.ok).map((check) => check.name)).toEqual(['toc', 'full-read']);
  });

  test('a table in the manifest that the archive lacks, and one the manifest lacks: TableSetMismatch names both', async () => {
    const { runId } = await cloneRun('shop', PG_RUN, {
      editManifest: (manifest) => {
        manifest.tables = manifest.tables.filter((table) => table.name !== 'customers');
        manifest.tables.push({ database: 'shop', schema: 'sales', name: 'ghost', rows: 3, exact: true });
      },
    });
    const { error } = await expectFailure('shop', runId, 'TableSetMismatch');
    expect(error.message).toMatch(/missing from the artifact: sales\.ghost; not in the manifest: public\.customers/);
  });

  test('an artifact listed in the manifest but not in the bucket: ArtifactMissing; no manifest at all: ArtifactMissing', async () => {
    const { runId, manifest } = await cloneRun('shop', PG_RUN);
    await client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: manifest.artifacts[0]?.key }));
    const { error } = await expectFailure('shop', runId, 'ArtifactMissing');
    expect(error.message).toContain(`${manifest.artifacts[0]?.key} is listed in the manifest but not in the bucket`);

    const { error: noManifest } = await expectFailure('shop', '20261128T000000Z', 'ArtifactMissing');
    expect(noManifest.message).toMatch(/manifest\.json is missing/);
  });

  test('an unreadable manifest: InvalidManifest', async () => {
    const runId = '20261128T010000Z';
    await put(manifestKey('shop', runId), '{"schemaVersion": 1, "source": "shop"');
    const { error } = await expectFailure('shop', runId, 'InvalidManifest');
    expect(error.message).toMatch(/not JSON/);
  });

  test('a manifest of an engine Lifeboat does not know, or with artifacts its engine does not write: InvalidManifest', async () => {
    const unknown = await cloneRun('shop', PG_RUN, { editManifest: (manifest) => Object.assign(manifest, { engine: 'oracle' }) });
    const { error } = await expectFailure('shop', unknown.runId, 'InvalidManifest');
    expect(error.message).toMatch(/: unknown engine "oracle" \(known: postgres, mysql, mariadb\)$/);

    const foreign = await cloneRun('shop', PG_RUN, { editManifest: (manifest) => Object.assign(manifest, { engine: 'mariadb' }) });
    const { error: mismatch } = await expectFailure('shop', foreign.runId, 'InvalidManifest');
    expect(mismatch.message).toMatch(/: a mariadb run with artifacts of format pg_dump-custom \(MariaDB writes sql\)$/);
  });

  test('suspicious size: below half the trailing median of 3+ verified runs fails with the figures; with 2 it is not judged', async () => {
    const { runId, manifest } = await cloneRun('shop', PG_RUN);
    const bytes = manifest.artifacts[0]?.bytes as number;
    const previous = [bytes * 3, bytes * 2, bytes * 4];
    const { error } = await expectFailure('shop', runId, 'SuspiciousSize', previous);
    expect(error.message).toContain(`${bytes} bytes is 33% of the median ${bytes * 3} bytes of the last 3 verified runs`);

    const lenient = await cloneRun('shop', PG_RUN);
    const verification = await verify('shop', lenient.runId, [bytes * 3, bytes * 3]);
    expect(verification.verdict).toBe('ok');
    expect(verification.artifacts[0]?.checks.find((check) => check.name === 'size')?.detail).toMatch(/not compared \(2 previous/);
  });

  test('a run dumped by a newer pg_dump than this pg_restore: ClientTooOld (no verdict), naming both majors and PG_CLIENT_MAJOR', async () => {
    const local = Number(/\(PostgreSQL\) (\d+)/.exec((await run('pg_restore', ['--version'])).stdout)?.[1]);
    for (const major of [local + 1, PG_CLIENT_MAJOR + 1]) {
      const { runId } = await cloneRun('shop', PG_RUN, { editManifest: (manifest) => Object.assign(manifest.client, { version: `${major}.1`, major }) });
      const error = await verify('shop', runId).then(() => undefined, (thrown: unknown) => thrown as Error);
      expect(error?.name).toBe('ClientTooOld');
      expect(error?.message).toContain(`run shop/${runId} was dumped by pg_dump ${major}.1; `);
      expect(error?.message).toContain(`is version ${local} and cannot read it; ${pgClientTooOldHint('pg_restore', local, major)}`);
      expect(error?.message).toContain(major > PG_CLIENT_MAJOR ? 'raise PG_CLIENT_MAJOR in lib/domain/versions.ts' : `the Lifeboat images carry PostgreSQL ${PG_CLIENT_MAJOR} clients`);
      expect(await listKeys(client, BUCKET, verificationKey('shop', runId))).toEqual([]);
    }
  });

  test('a re-verification that fails leaves an existing verdict as it is: the verifier writes nothing', async () => {
    const { runId } = await cloneRun('shop', PG_RUN, { tamper: flipByte((b) => Math.floor(b.length / 2)) });
    const ok: Verification = {
      schemaVersion: 1, lifeboatVersion: '0.1.0', source: 'shop', runId, verdict: 'ok', verifiedAt: '2026-11-27T00:00:00.000Z',
      durationMs: 1, verifiedBy: 'lambda', artifacts: [],
    };
    await put(verificationKey('shop', runId), serializeVerification(ok));
    await expect(verify('shop', runId)).resolves.toMatchObject({ verdict: 'failed', error: { name: 'ChecksumMismatch' } });
    expect(parseVerification((await getBytes(client, BUCKET, verificationKey('shop', runId))).toString('utf8'))).toEqual(ok);
  });
});

describe('MariaDB', () => {
  const zstd = (sql: Buffer) => zstdCompressSync(sql, { params: { [zlibConstants.ZSTD_c_checksumFlag]: 1 } });

  test('a good run verifies ok: decompressed to the end, completion marker, the same tables', async () => {
    const manifest = await readManifest('crm', MARIADB_RUN);
    const verification = await verify('crm', MARIADB_RUN);
    expect(verification.verdict).toBe('ok');
    const checks = verification.artifacts[0]?.checks ?? [];
    expect(checks.map((check) => [check.name, check.ok])).toEqual([
      ['bytes', true], ['sha256', true], ['decompress', true], ['completion-marker', true], ['table-set', true], ['size', true],
    ]);
    expect(manifest.tables.length).toBeGreaterThan(3);
    expect(checks.find((check) => check.name === 'table-set')?.detail).toBe(
      `${manifest.tables.length} tables in the manifest, the same ${manifest.tables.length} in the artifact`);
    expect(manifest.tables.map((table) => table.name)).toEqual(expect.arrayContaining(['Kunden Ümlaut', 'we`ird']));
  });

  test('a truncated zstd artifact, manifest adjusted: ArchiveCorrupt (the frame ends early); untouched: SizeMismatch', async () => {
    const adjusted = await cloneRun('crm', MARIADB_RUN, { tamper: (b) => b.subarray(0, Math.floor(b.length / 2)), adjustManifest: true });
    // Node's zstd decompressor alone ends quietly on a truncated frame.
    expect(() => zstdDecompressSync(adjusted.artifact)).not.toThrow();
    const { error } = await expectFailure('crm', adjusted.runId, 'ArchiveCorrupt');
    expect(error.message).toMatch(/ends inside frame 1 \(truncated\)/);
    expect(error.message).toMatch(/also: IncompleteDump/);

    const untouched = await cloneRun('crm', MARIADB_RUN, { tamper: (b) => b.subarray(0, b.length - 10) });
    await expectFailure('crm', untouched.runId, 'SizeMismatch');
  });

  test('a flipped byte inside the zstd data, manifest adjusted: ArchiveCorrupt', async () => {
    const { runId } = await cloneRun('crm', MARIADB_RUN, { tamper: flipByte((b) => Math.floor(b.length / 2)), adjustManifest: true });
    const { error } = await expectFailure('crm', runId, 'ArchiveCorrupt');
    expect(error.message).toMatch(/zstd decompression failed/);
  });

  test('a complete zstd stream of a dump without its completion marker: IncompleteDump', async () => {
    const { runId } = await cloneRun('crm', MARIADB_RUN, {
      adjustManifest: true,
      tamper: (b) => {
        const sql = zstdDecompressSync(b).toString('utf8');
        expect(sql).toMatch(/\n-- Dump completed on .*\n*$/);
        return zstd(Buffer.from(sql.replace(/\n-- Dump completed on .*\n*$/, '\n')));
      },
    });
    const { error, recorded } = await expectFailure('crm', runId, 'IncompleteDump');
    expect(error.message).toMatch(/no "-- Dump completed" line at the end/);
    expect(recorded.artifacts[0]?.checks.filter((check) => !check.ok).map((check) => check.name)).toEqual(['completion-marker']);
  });

  test('a table dropped from the dump: TableSetMismatch names it', async () => {
    const { runId } = await cloneRun('crm', MARIADB_RUN, {
      adjustManifest: true,
      tamper: (b) => {
        const sql = zstdDecompressSync(b).toString('utf8');
        const dropped = sql.replace(/^CREATE TABLE `empty_table` \(/m, 'CREATE TABLE IF_GONE (');
        expect(dropped).not.toBe(sql);
        return zstd(Buffer.from(dropped));
      },
    });
    const { error } = await expectFailure('crm', runId, 'TableSetMismatch');
    expect(error.message).toContain('missing from the artifact: shop.empty_table');
  });
});
