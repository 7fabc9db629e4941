/**
 * runBackup's commit gate with a scripted engine (the dump side is given; S3 is the real local
 * server, behind a proxy that fails part uploads where a test says): the orderings between a
 * dump client's exit and its upload that real clients make hard to pin down.
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { runPrefix } from '../../lib/domain/layout';
import type { DumpEngine, DumpProcess, Preflight } from '../../worker/engines';
import type { BackupJob } from '../../worker/job';
import { runBackup } from '../../worker/run-backup';
import { startFaultyS3Proxy } from '../harness/faulty-s3-proxy';
import { startS3, type S3Server } from '../harness/s3';
import { listKeys, uploadsInProgress } from '../harness/s3-objects';

const BUCKET = 'gate';
const MiB = 1024 * 1024;
let s3: S3Server;

beforeAll(async () => {
  s3 = await startS3();
  await s3.createBucket(BUCKET);
});

afterAll(async () => s3?.stop());

const PREFLIGHT: Preflight = {
  engine: 'mariadb',
  server: { version: '10.11.6', major: 10, versionString: '10.11.6-MariaDB' },
  client: { tool: 'mariadb-dump', path: '/bin/false', version: '10.11.6', major: 10, flavor: 'mariadb', versionString: 'mariadb-dump 10.11.6' },
  databaseSizeBytes: 0,
  encoding: 'utf8mb4',
  databases: [],
  extensions: [],
  tls: false,
  warnings: [],
};

/** An engine whose every dump is `bytes` written at once by a client that has already exited 0. */
function exitedEngine(bytes: number): DumpEngine {
  return {
    preflight: async () => PREFLIGHT,
    startDump: (): DumpProcess => ({
      stdout: Readable.from([randomBytes(bytes)]),
      completion: Promise.resolve(),
      tables: Promise.resolve([]),
      rowCountConsistency: Promise.resolve('separate-snapshot'),
      kill: () => undefined,
      artifact: { fileExtension: '.sql.zst', format: 'sql', compression: 'zstd:3' },
    }),
  };
}

function job(runId: string, databases: string[]): BackupJob {
  return {
    source: 'gate', engine: 'mariadb', tier: 'tier2', runId, bucket: BUCKET,
    target: { host: '127.0.0.1', port: 1, databases, username: 'backup', tls: { mode: 'disable' } },
    objectLockMode: 'GOVERNANCE', excludeTables: [], sizeHintBytes: 20e6,
  };
}

/**
 * Runs a backup of `databases` (each dump `bytes` long) through a proxy that refuses every part
 * upload after the first `failAfterParts`; expects UploadFailed with `message` and nothing at
 * the run's keys, committed or in progress.
 */
async function expectFailedRun(runId: string, databases: string[], bytes: number, failures: { afterParts: number; maxAttempts: number }, message: RegExp) {
  const proxy = await startFaultyS3Proxy(s3.endpoint, { failAfterParts: failures.afterParts });
  const client = s3.client();
  try {
    const outcome = runBackup(job(runId, databases), {
      s3: s3.client({ endpoint: proxy.endpoint, maxAttempts: failures.maxAttempts }), engines: { mariadb: exitedEngine(bytes) }, log: () => undefined,
    });
    await expect(outcome).rejects.toMatchObject({ name: 'UploadFailed', message: expect.stringMatching(message) });
    expect(proxy.partsFailed).toBeGreaterThanOrEqual(failures.maxAttempts);
    expect(await listKeys(client, BUCKET, runPrefix('gate', runId))).toEqual([]);
    expect(await uploadsInProgress(client, BUCKET, runPrefix('gate', runId))).toEqual([]);
  } finally {
    client.destroy();
    await proxy.close();
  }
}

test('a part upload failing after the dump client exited 0: UploadFailed at once, nothing at the run\'s keys', async () => {
  // 3 parts of 5 MiB; the third is refused (after the SDK's attempts) when the client is long gone.
  await expectFailedRun('20261126T120000Z', ['shop'], 12 * MiB, { afterParts: 2, maxAttempts: 2 }, /part 3.*(ServiceUnavailable|503)/);
}, 60_000);

test('the second database\'s upload failing: the first, stored and waiting at the gate, is aborted too', async () => {
  // shop: 2 parts go through; crm: its first part is refused.
  await expectFailedRun('20261126T121500Z', ['shop', 'crm'], 10 * MiB, { afterParts: 2, maxAttempts: 1 }, /crm\.sql\.zst failed at part 1/);
}, 60_000);
