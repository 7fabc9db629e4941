/**
 * The Verify Lambda as Step Functions invokes it: the middy-wrapped handler, configured from
 * the environment at import, against the local S3 server. Runs are written by hand (a gzip SQL
 * dump and its manifest), with verified history for the suspicious-size rule, which the handler
 * reads through the catalog.
 */
import type { Context } from 'aws-lambda';
import { verificationKey } from '../../lib/domain/layout';
import { startS3, TEST_CREDENTIALS, type S3Server } from '../harness/s3';
import { getBytes } from '../harness/s3-objects';
import * as verifyRuns from '../fixtures/verify-runs';

const BUCKET = 'primary';
type Handler = (event: unknown, context: Context) => Promise<Record<string, unknown>>;

let s3: S3Server;
let handler: Handler;
const savedEnv = { ...process.env };
const context = { functionName: 'verify', awsRequestId: 'test-request', invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:verify' } as Context;

beforeAll(async () => {
  s3 = await startS3();
  await s3.createBucket(BUCKET);
  // The handler reads its configuration once, at import: set it first.
  Object.assign(process.env, {
    LIFEBOAT_BUCKET: BUCKET,
    LIFEBOAT_S3_ENDPOINT: s3.endpoint,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
    POWERTOOLS_LOG_LEVEL: 'SILENT',
    POWERTOOLS_METRICS_DISABLED: 'true',
    POWERTOOLS_SERVICE_NAME: 'verify',
  });
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  handler = (require('../../lambdas/verify/handler') as { handler: Handler }).handler;
}, 60_000);

afterAll(async () => {
  process.env = savedEnv;
  await s3?.stop();
});

const writeSqlRun = (source: string, runId: string, opts?: verifyRuns.SqlRunOptions) =>
  verifyRuns.writeSqlRun(s3.client(), BUCKET, source, runId, opts);

test('an ok run: the verdict document, with the size compared with the verified history the catalog finds', async () => {
  for (const runId of ['20261123T030000Z', '20261124T030000Z', '20261125T030000Z']) {
    await writeSqlRun('ledger', runId, { padBytes: 20_000, verified: true });
  }
  const manifest = await writeSqlRun('ledger', '20261126T030000Z', { padBytes: 20_000 });
  const result = await handler({ source: 'ledger', runId: '20261126T030000Z', bucket: BUCKET }, context);
  expect(result).toMatchObject({
    verdict: 'ok', source: 'ledger', runId: '20261126T030000Z', verifiedBy: 'lambda',
    artifacts: [{ key: manifest.artifacts[0]?.key, sha256: manifest.artifacts[0]?.sha256, bytes: manifest.artifacts[0]?.bytes }],
  });
  expect(typeof result.durationMs).toBe('number');
  const checks = (result as { artifacts: { checks: { name: string; ok: boolean; detail: string }[] }[] }).artifacts[0]?.checks ?? [];
  expect(checks.every((check) => check.ok)).toBe(true);
  expect(checks.find((check) => check.name === 'size')?.detail).toMatch(/of the last 3 verified runs/);
  // The ok verdict is Commit's to write.
  await expect(getBytes(s3.client(), BUCKET, verificationKey('ledger', '20261126T030000Z'))).rejects.toMatchObject({ name: 'NoSuchKey' });
});

test('a run far smaller than its verified history: the failed verdict SuspiciousSize is returned, and nothing written', async () => {
  for (const runId of ['20261123T030000Z', '20261124T030000Z', '20261125T030000Z']) {
    await writeSqlRun('payroll', runId, { padBytes: 50_000, verified: true });
  }
  await writeSqlRun('payroll', '20261126T030000Z');
  await expect(handler({ source: 'payroll', runId: '20261126T030000Z' }, context)).resolves.toMatchObject({
    verdict: 'failed',
    error: {
      name: 'SuspiciousSize',
      message: expect.stringMatching(/^run payroll\/20261126T030000Z: suspicious size: \d+ bytes is \d+% of the median \d+ bytes of the last 3 verified runs/),
    },
  });
  // Commit records it (RecordFailedVerdict); the verifier may not write verification.json at all.
  await expect(getBytes(s3.client(), BUCKET, verificationKey('payroll', '20261126T030000Z'))).rejects.toMatchObject({ name: 'NoSuchKey' });
});

test('a corrupted artifact: the failed verdict ChecksumMismatch is returned for Commit to record', async () => {
  await writeSqlRun('ledger', '20261126T040000Z', { tamper: true });
  await expect(handler({ source: 'ledger', runId: '20261126T040000Z', bucket: BUCKET }, context)).resolves.toMatchObject({
    verdict: 'failed', error: { name: 'ChecksumMismatch' },
  });
});

test('malformed input: InvalidInput naming every field', async () => {
  await expect(handler({ source: 'Bad Name', runId: 'yesterday' }, context)).rejects.toMatchObject({
    name: 'InvalidInput',
    message: expect.stringMatching(/source: "Bad Name" is not valid[\s\S]*runId: "yesterday" is not valid/),
  });
});

test('a missing or malformed environment fails at import, naming the variables', () => {
  const env = process.env;
  process.env = { ...env, LIFEBOAT_BUCKET: '', LIFEBOAT_SUSPICIOUS_SHRINK: '2' };
  try {
    jest.isolateModules(() => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      expect(() => require('../../lambdas/verify/handler')).toThrow(
        expect.objectContaining({ name: 'InvalidConfiguration', message: expect.stringMatching(/LIFEBOAT_BUCKET: required[\s\S]*LIFEBOAT_SUSPICIOUS_SHRINK: "2" is not valid/) }));
    });
  } finally {
    process.env = env;
  }
});
