/**
 * `lifeboat verify` and `lifeboat list` against a real run: made by the real worker into the
 * local S3 server and judged by the real verifier; then read back on demand, damaged in place
 * as storage corruption would, and read back again.
 */
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { dumpCommand } from '../../cli/dump';
import { listCommand } from '../../cli/list';
import { verifyCommand } from '../../cli/verify';
import { manifestKey, verificationKey } from '../../lib/domain/layout';
import { parseManifest } from '../../lib/domain/manifest';
import { serializeVerification } from '../../lib/domain/verification';
import { verifyRun } from '../../lib/verify/verify-run';
import { startPostgres, type PgServer } from '../harness/postgres';
import { startS3, tamperStoredObject, type S3Server } from '../harness/s3';
import { getBytes } from '../harness/s3-objects';

const BUCKET = 'primary';
const CONFIG = path.resolve(__dirname, '../../lifeboat.config.ts');
const RUN = '20261126T100000Z';
const FAILED_RUN = '20261126T110000Z';
let s3: S3Server;
let pg: PgServer;

beforeAll(async () => {
  [s3, pg] = await Promise.all([startS3(), startPostgres()]);
  await s3.createBucket(BUCKET, { objectLock: true });
  await pg.createDatabase('orders');
  await pg.psql(readFileSync(path.resolve(__dirname, '../../local/demo-seed.sql'), 'utf8'), 'orders');
  for (const runId of [RUN, FAILED_RUN]) {
    const code = await dumpCommand(['--source-url', `postgres://${pg.user}@${pg.host}:${pg.port}/orders`, '--source', 'orders', '--tier', 'tier1',
      '--bucket', BUCKET, '--run-id', runId, '--retention', 'none'], {}, { s3: s3.client(), log: () => undefined });
    expect(code).toBe(0);
  }
  const verification = await verifyRun({ s3: s3.client(), bucket: BUCKET, source: 'orders', runId: RUN, verifiedBy: 'lambda' });
  await s3.client().send(new PutObjectCommand({ Bucket: BUCKET, Key: verificationKey('orders', RUN), Body: serializeVerification(verification) }));
}, 120_000);

afterAll(async () => {
  await Promise.all([s3?.stop(), pg?.stop()]);
});

async function cli(command: typeof verifyCommand | typeof listCommand, args: string[]) {
  const lines: string[] = [];
  const code = await command([...args, '--config', CONFIG, '--bucket', BUCKET], {}, { s3: s3.client(), log: (line) => lines.push(line) });
  return { code, out: lines.join('\n') };
}

test('list: newest first, the verified run with its size, the unverified one with why', async () => {
  const { code, out } = await cli(listCommand, ['orders']);
  expect(out.split('\n').slice(3).map((line) => line.split(/\s+/).slice(0, 2).join(' '))).toEqual([`${FAILED_RUN} unverified`, `${RUN} verified`]);
  expect(out).toMatch(new RegExp(`^${FAILED_RUN}\\s+unverified .* not verified: no verification\\.json$`, 'm'));
  expect(out).toMatch(new RegExp(`^${RUN}\\s+verified\\s+\\d+ KB\\s+not confirmed\\s+-`, 'm'));
  expect(code).toBe(0);
});

test('verify: the latest verified run reads back ok, every check named; nothing is written', async () => {
  const { code, out } = await cli(verifyCommand, ['orders']);
  expect(out).toContain(`verify orders/${RUN} in s3://${BUCKET}/ (primary): recorded verdict ok`);
  for (const check of ['bytes', 'sha256', 'toc', 'table-set', 'full-read']) expect(out).toMatch(new RegExp(`ok {5}${check}: `));
  expect(out).toContain(`verify orders/${RUN}: ok`);
  expect(code).toBe(0);
  // The recorded verdict is unchanged: on-demand verification writes nothing.
  expect(JSON.parse((await getBytes(s3.client(), BUCKET, verificationKey('orders', RUN))).toString()).verifiedBy).toBe('lambda');
}, 60_000);

test('verify: a verified run damaged in place fails, and says not to restore from this copy', async () => {
  const manifest = parseManifest((await getBytes(s3.client(), BUCKET, manifestKey('orders', RUN))).toString('utf8'));
  const { key, versionId } = manifest.artifacts[0];
  const stored = await getBytes(s3.client(), BUCKET, key);
  stored[Math.floor(stored.length / 2)] ^= 1;
  await tamperStoredObject(s3.endpoint, { bucket: BUCKET, key, versionId }, stored);
  const { code, out } = await cli(verifyCommand, ['orders', '--run', RUN]);
  expect(out).toMatch(/FAILED sha256: manifest [0-9a-f]{64}, object [0-9a-f]{64}/);
  expect(out).toContain('no longer reads back: do not restore from this copy');
  expect(out).toContain(`verify orders/${RUN}: FAILED`);
  expect(code).toBe(1);
}, 60_000);

test('verify: an unverified run is judged too; a missing run and bad arguments are said so', async () => {
  const unverified = await cli(verifyCommand, ['orders', '--run', FAILED_RUN]);
  expect(unverified.out).toContain('recorded status unverified: not verified: no verification.json');
  expect(unverified.out).toContain(`verify orders/${FAILED_RUN}: ok`);
  expect(unverified.code).toBe(0);
  const missing = await cli(verifyCommand, ['orders', '--run', '20261126T120000Z']);
  expect(missing.out).toBe(`verify orders: run 20261126T120000Z does not exist in s3://${BUCKET}/runs/orders/`);
  expect(missing.code).toBe(1);
  const bad = await cli(verifyCommand, ['nope', '--from', 'elsewhere', '--run', 'yesterday']);
  expect(bad.out).toContain('SOURCE: unknown source "nope" (known: orders, catalogue, ledger)');
  expect(bad.out).toContain('--run: "yesterday" is not valid (valid: a run id such as 20261126T030000Z)');
  expect(bad.out).toContain('--from: "elsewhere" is not valid (valid: primary, offsite)');
  expect(bad.code).toBe(2);
}, 60_000);
