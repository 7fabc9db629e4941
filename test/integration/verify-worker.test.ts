/**
 * The Fargate verifier (worker/verify-main.ts): the task-token protocol around a real
 * verification (the SFN client is a recording fake), exit codes, and the entrypoint as a real
 * process without a task token.
 */
import { SendTaskFailureCommand, SendTaskHeartbeatCommand, SendTaskSuccessCommand } from '@aws-sdk/client-sfn';
import * as path from 'node:path';
import { verificationKey } from '../../lib/domain/layout';
import type { TaskTokenClient } from '../../worker/task-token';
import { main, runVerifyJob, verifyJobFromEnv, type VerifyJob } from '../../worker/verify-main';
import { run } from '../harness/processes';
import { startS3, TEST_CREDENTIALS, type S3Server } from '../harness/s3';
import { getBytes } from '../harness/s3-objects';
import { writeSqlRun } from '../fixtures/verify-runs';

const BUCKET = 'primary';
let s3: S3Server;

beforeAll(async () => {
  s3 = await startS3();
  await s3.createBucket(BUCKET);
}, 60_000);

afterAll(async () => s3?.stop());

function recordingSfn() {
  const calls: { command: string; input: Record<string, unknown> }[] = [];
  const client = {
    send: async (command: { constructor: { name: string }; input: Record<string, unknown> }) => {
      calls.push({ command: command.constructor.name, input: { ...command.input } });
      return {};
    },
  } as unknown as TaskTokenClient;
  return { client, calls };
}

const job = (runId: string, taskToken?: string): VerifyJob => ({
  bucket: BUCKET, source: 'ledger', runId, suspiciousShrink: 0.5, s3Endpoint: s3.endpoint, region: 'us-east-1', taskToken,
});

test('SendTaskSuccess with the ok verdict document (verifiedBy fargate), exit 0', async () => {
  const manifest = await writeSqlRun(s3.client(), BUCKET, 'ledger', '20261126T010000Z', { padBytes: 2_000_000 });
  const sfn = recordingSfn();
  const outcome = await runVerifyJob(job('20261126T010000Z', 'token-ok'), { s3: s3.client(), sfn: sfn.client, heartbeatIntervalMs: 5, log: () => undefined });
  expect(outcome).toMatchObject({ code: 0, result: { verdict: 'ok', verifiedBy: 'fargate', source: 'ledger', runId: '20261126T010000Z' } });
  const success = sfn.calls.filter((call) => call.command === SendTaskSuccessCommand.name);
  expect(success).toHaveLength(1);
  expect(JSON.parse(success[0]?.input.output as string)).toMatchObject({
    verdict: 'ok', artifacts: [{ key: manifest.artifacts[0]?.key, sha256: manifest.artifacts[0]?.sha256 }],
  });
  expect(sfn.calls.some((call) => call.command === SendTaskFailureCommand.name)).toBe(false);
  expect(sfn.calls.filter((call) => call.command === SendTaskHeartbeatCommand.name).length).toBeGreaterThanOrEqual(1);
});

test('a failed verdict: delivered with SendTaskSuccess for Commit to record, exit 1, nothing written by the verifier', async () => {
  await writeSqlRun(s3.client(), BUCKET, 'ledger', '20261126T020000Z', { tamper: true });
  const sfn = recordingSfn();
  const outcome = await runVerifyJob(job('20261126T020000Z', 'token-bad'), { s3: s3.client(), sfn: sfn.client, log: () => undefined });
  expect(outcome).toMatchObject({ code: 1, error: { name: 'ChecksumMismatch' } });
  expect(sfn.calls.some((call) => call.command === SendTaskFailureCommand.name)).toBe(false);
  const delivered = sfn.calls.filter((call) => call.command === SendTaskSuccessCommand.name).map((call) => JSON.parse(String(call.input.output)));
  expect(delivered).toEqual([expect.objectContaining({
    verdict: 'failed', verifiedBy: 'fargate', error: { name: 'ChecksumMismatch', message: expect.stringMatching(/^run ledger\/20261126T020000Z: .*has SHA-256/) },
  })]);
  await expect(getBytes(s3.client(), BUCKET, verificationKey('ledger', '20261126T020000Z'))).rejects.toMatchObject({ name: 'NoSuchKey' });
});

test('without a task token: the failure\'s name and exit 1; a missing run is ArtifactMissing', async () => {
  const outcome = await runVerifyJob(job('20261126T050000Z'), { s3: s3.client(), log: () => undefined });
  expect(outcome).toMatchObject({ code: 1, error: { name: 'ArtifactMissing' } });
});

test('an invalid environment: every problem named, exit 2', async () => {
  expect(() => verifyJobFromEnv({ LIFEBOAT_SOURCE: 'Ledger', LIFEBOAT_RUN_ID: 'now', LIFEBOAT_SUSPICIOUS_SHRINK: '-1' })).toThrow(
    expect.objectContaining({
      name: 'InvalidInput',
      message: expect.stringMatching(/LIFEBOAT_BUCKET: required[\s\S]*LIFEBOAT_SOURCE: "Ledger"[\s\S]*LIFEBOAT_RUN_ID: "now"[\s\S]*LIFEBOAT_SUSPICIOUS_SHRINK: "-1"/),
    }));
  const errors: string[] = [];
  const spy = jest.spyOn(console, 'error').mockImplementation((line: string) => void errors.push(line));
  try {
    expect(await main({})).toBe(2);
  } finally {
    spy.mockRestore();
  }
  expect(errors.join('\n')).toMatch(/LIFEBOAT_BUCKET: required/);
});

test('the entrypoint as a process: prints the verdict as JSON and exits 0', async () => {
  await writeSqlRun(s3.client(), BUCKET, 'ledger', '20261126T030000Z');
  const root = path.resolve(__dirname, '../..');
  const result = await run(process.execPath, [path.join(root, 'node_modules/tsx/dist/cli.mjs'), path.join(root, 'worker/verify-main.ts')], {
    env: {
      PATH: process.env.PATH, LIFEBOAT_BUCKET: BUCKET, LIFEBOAT_SOURCE: 'ledger', LIFEBOAT_RUN_ID: '20261126T030000Z',
      LIFEBOAT_S3_ENDPOINT: s3.endpoint, AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
    },
  });
  expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
  const json = result.stdout.trim().split('\n').at(-1) as string;
  expect(JSON.parse(json)).toMatchObject({ verdict: 'ok', source: 'ledger', runId: '20261126T030000Z', verifiedBy: 'fargate' });
}, 60_000);
