/**
 * The Step Functions task-token protocol around a real dump (the client edge is a recording
 * fake of the SFN client), and SIGTERM delivered to the real worker process.
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { SendTaskFailureCommand, SendTaskHeartbeatCommand, SendTaskSuccessCommand } from '@aws-sdk/client-sfn';
import { runPrefix } from '../../lib/domain/layout';
import type { BackupJob } from '../../worker/job';
import { runJob } from '../../worker/main';
import type { BackupProgress } from '../../worker/run-backup';
import type { TaskTokenClient } from '../../worker/task-token';
import { startPostgres, type PgServer } from '../harness/postgres';
import { delay } from '../harness/processes';
import { startS3, TEST_CREDENTIALS, type S3Server } from '../harness/s3';
import { listKeys, uploadsInProgress } from '../harness/s3-objects';

const BUCKET = 'primary';
let pg: PgServer;
let s3: S3Server;

beforeAll(async () => {
  [pg, s3] = await Promise.all([startPostgres(), startS3()]);
  await pg.createDatabase('app');
  await pg.psql(`CREATE TABLE events (id bigserial PRIMARY KEY, payload text NOT NULL);
    INSERT INTO events (payload) SELECT md5(g::text) || md5((g * 3)::text) FROM generate_series(1, 1200000) g;`, 'app');
  await s3.createBucket(BUCKET);
}, 120_000);

afterAll(async () => {
  await Promise.all([pg?.stop(), s3?.stop()]);
});

function job(runId: string, taskToken?: string): BackupJob {
  return {
    source: 'app', engine: 'postgres', tier: 'tier2', runId, bucket: BUCKET, s3Endpoint: s3.endpoint, region: 'us-east-1',
    target: { host: pg.host, port: pg.port, databases: ['app'], username: pg.user, tls: { mode: 'disable' } },
    objectLockMode: 'GOVERNANCE', excludeTables: [], taskToken,
  };
}

function recordingSfn() {
  const calls: { command: string; input: Record<string, unknown> }[] = [];
  const client = {
    send: async (command: { constructor: { name: string }; input: Record<string, unknown> }) => {
      calls.push({ command: command.constructor.name, input: command.input });
      return {};
    },
  } as unknown as TaskTokenClient;
  return { client, calls };
}

test('heartbeats during the dump, then SendTaskSuccess with the manifest summary', async () => {
  const sfn = recordingSfn();
  const outcome = await runJob(job('20261126T010000Z', 'token-ok'), {
    s3: s3.client(), sfn: sfn.client, heartbeatIntervalMs: 100, log: () => undefined,
  });
  expect(outcome.code).toBe(0);
  const heartbeats = sfn.calls.filter((call) => call.command === SendTaskHeartbeatCommand.name);
  expect(heartbeats.length).toBeGreaterThanOrEqual(2);
  const success = sfn.calls.filter((call) => call.command === SendTaskSuccessCommand.name);
  expect(success).toHaveLength(1);
  expect(sfn.calls.at(-1)?.command).toBe(SendTaskSuccessCommand.name);
  const output = JSON.parse(success[0].input.output as string);
  expect(output).toMatchObject({
    source: 'app', runId: '20261126T010000Z', engine: 'postgres', bucket: BUCKET,
    manifestKey: 'runs/app/20261126T010000Z/manifest.json', tables: 1, rows: 1_200_000,
  });
  expect(output.artifacts[0]).toEqual({ key: 'runs/app/20261126T010000Z/app.pgdump', bytes: expect.any(Number), sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
}, 60_000);

test('a failure is reported with SendTaskFailure and the error name the state machine matches', async () => {
  const sfn = recordingSfn();
  const broken = { ...job('20261126T020000Z', 'token-fail'), target: { ...job('x').target, databases: ['no_such_db'] } };
  const outcome = await runJob(broken, { s3: s3.client(), sfn: sfn.client, log: () => undefined });
  expect(outcome.code).toBe(1);
  expect(sfn.calls).toEqual([{
    command: SendTaskFailureCommand.name,
    input: { taskToken: 'token-fail', error: 'DatabaseNotFound', cause: expect.stringContaining('no_such_db') },
  }]);
}, 60_000);

test('an abort mid-dump (SIGTERM in the container) aborts the upload and reports Aborted', async () => {
  const sfn = recordingSfn();
  const stop = new AbortController();
  const progress: BackupProgress = { phase: 'preflight', bytesUploaded: 0 };
  const running = runJob(job('20261126T030000Z', 'token-term'), {
    s3: s3.client(), sfn: sfn.client, signal: stop.signal, progress, log: () => undefined,
  });
  while (progress.bytesUploaded === 0) await delay(5);
  stop.abort(Object.assign(new Error('SIGTERM received'), { name: 'Aborted' }));
  const outcome = await running;
  expect(outcome.code).toBe(1);
  expect(sfn.calls.at(-1)).toMatchObject({ command: SendTaskFailureCommand.name, input: { error: 'Aborted', cause: expect.stringContaining('SIGTERM received') } });
  const client = s3.client();
  expect(await listKeys(client, BUCKET, runPrefix('app', '20261126T030000Z'))).toEqual([]);
  expect(await uploadsInProgress(client, BUCKET, runPrefix('app', '20261126T030000Z'))).toEqual([]);
}, 60_000);

test('SIGTERM to the worker process: exit 1, the upload aborted, nothing committed, no dump client left', async () => {
  const runId = '20261126T040000Z';
  const child = spawn(process.execPath, [require.resolve('tsx/cli'), path.resolve(__dirname, '../../worker/main.ts')], {
    env: {
      PATH: process.env.PATH,
      AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey, AWS_REGION: 'us-east-1',
      LIFEBOAT_SOURCE: 'app', LIFEBOAT_ENGINE: 'postgres', LIFEBOAT_TIER: 'tier2', LIFEBOAT_RUN_ID: runId,
      LIFEBOAT_DB_HOST: pg.host, LIFEBOAT_DB_PORT: String(pg.port), LIFEBOAT_DB_NAMES: 'app', LIFEBOAT_DB_USER: pg.user,
      // The throwaway server offers no TLS; the worker's default is verify-full.
      LIFEBOAT_DB_TLS_MODE: 'disable',
      LIFEBOAT_BUCKET: BUCKET, LIFEBOAT_S3_ENDPOINT: s3.endpoint,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk) => { output += chunk; });
  child.stderr.on('data', (chunk) => { output += chunk; });
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const client = s3.client();
  const deadline = Date.now() + 30_000;
  while ((await uploadsInProgress(client, BUCKET, runPrefix('app', runId))).length === 0) {
    if (Date.now() > deadline) throw new Error(`the worker never started its upload:\n${output}`);
    await delay(20);
  }
  child.kill('SIGTERM');
  expect(await exited).toBe(1);
  expect(output).toContain('SIGTERM received');
  expect(output).toMatch(/failed: Aborted: /);
  expect(await listKeys(client, BUCKET, runPrefix('app', runId))).toEqual([]);
  expect(await uploadsInProgress(client, BUCKET, runPrefix('app', runId))).toEqual([]);
  // pg_dump was a child of the worker: it must not outlive it.
  // (The server notices a closed connection within moments; allow it a few seconds.)
  let dumping = -1;
  for (let tries = 0; tries < 50 && dumping !== 0; tries++) {
    if (tries > 0) await delay(100);
    dumping = Number(await pg.psql(`SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pg_dump'`));
  }
  expect(dumping).toBe(0);
}, 60_000);
