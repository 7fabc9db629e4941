/**
 * The Lambda handlers of Commit, AwaitOffsite, Record and RecordFailure as Lambda runs them:
 * configuration from the environment at load, the real SDK clients against a local S3 server
 * and a local stand-in for EventBridge's PutEvents, middy + Powertools around the cores.
 */
import type { Context } from 'aws-lambda';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { S3Client } from '@aws-sdk/client-s3';
import { readRun } from '../../lib/catalog/catalog';
import { manifestSummary } from '../../worker/main';
import { buildRun, put, verificationFor, writeRun } from '../fixtures/runs';
import { getBytes, listKeys } from '../harness/s3-objects';
import { startS3, TEST_CREDENTIALS, type S3Server } from '../harness/s3';

type Handler = (event: unknown, context: Context) => Promise<unknown>;

const PRIMARY = 'primary';
const OFFSITE = 'offsite';
let server: S3Server;
let s3: S3Client;
let events: Server;
const received: { target?: string; body: { Entries: { Source: string; DetailType: string; Detail: string; EventBusName: string }[] } }[] = [];

const context = { functionName: 'test', awsRequestId: 'request-1', getRemainingTimeInMillis: () => 60_000 } as unknown as Context;

/** Answers PutEvents like EventBridge (awsJson1_1), recording what it was sent. */
function startEvents(): Promise<Server> {
  const http = createServer((request: IncomingMessage, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      received.push({ target: request.headers['x-amz-target'] as string | undefined, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
      response.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
      response.end(JSON.stringify({ FailedEntryCount: 0, Entries: [{ EventId: `event-${received.length}` }] }));
    });
  });
  return new Promise((resolve) => http.listen(0, '127.0.0.1', () => resolve(http)));
}

/**
 * Loads a handler module afresh with `overrides` on top of the base environment (which stays
 * set, as in Lambda: the SDK reads region and credentials when a request is made).
 */
function load(name: string, overrides: Record<string, string | undefined> = {}): Handler {
  const saved = { ...process.env };
  Object.assign(process.env, overrides);
  for (const [key, value] of Object.entries(overrides)) if (value === undefined) delete process.env[key];
  try {
    let handler: Handler | undefined;
    jest.isolateModules(() => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      handler = (require(`../../lambdas/${name}/handler`) as { handler: Handler }).handler;
    });
    return handler as Handler;
  } finally {
    process.env = saved;
  }
}

/** stdout lines written while `fn` runs (Powertools writes EMF and logs there). */
async function capturingStdout<T>(fn: () => Promise<T>): Promise<{ result: T; lines: string[] }> {
  const lines: string[] = [];
  const write = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    lines.push(...chunk.toString().split('\n').filter(Boolean));
    return true;
  });
  try {
    return { result: await fn(), lines };
  } finally {
    write.mockRestore();
  }
}

let env: Record<string, string>;

beforeAll(async () => {
  server = await startS3();
  s3 = server.client();
  await server.createBucket(PRIMARY);
  await server.createBucket(OFFSITE);
  events = await startEvents();
  env = {
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
    LIFEBOAT_BUCKET: PRIMARY,
    LIFEBOAT_S3_ENDPOINT: server.endpoint,
    LIFEBOAT_OFFSITE_BUCKET: OFFSITE,
    LIFEBOAT_OFFSITE_REGION: 'eu-west-1',
    LIFEBOAT_OFFSITE_S3_ENDPOINT: server.endpoint,
    LIFEBOAT_EVENTS_ENDPOINT: `http://127.0.0.1:${(events.address() as AddressInfo).port}`,
    POWERTOOLS_LOG_LEVEL: 'SILENT',
    POWERTOOLS_SERVICE_NAME: 'lifeboat-test',
  };
  Object.assign(process.env, env);
});

afterAll(async () => {
  s3?.destroy();
  await server?.stop();
  await new Promise((resolve) => events?.close(resolve));
});

test.each<[string, string, string]>([
  ['commit', 'LIFEBOAT_BUCKET', 'environment variable LIFEBOAT_BUCKET is not set'],
  ['await-offsite', 'LIFEBOAT_OFFSITE_BUCKET', 'environment variable LIFEBOAT_OFFSITE_BUCKET is not set'],
  ['await-offsite', 'LIFEBOAT_OFFSITE_REGION', 'environment variable LIFEBOAT_OFFSITE_REGION is not set'],
])('%s fails at load without %s', (name, variable, message) => {
  expect(() => load(name, { [variable]: undefined })).toThrow(message);
});

test('await-offsite fails at load with a malformed LIFEBOAT_OFFSITE_MAX_ATTEMPTS', () => {
  expect(() => load('await-offsite', { LIFEBOAT_OFFSITE_MAX_ATTEMPTS: 'lots' })).toThrow('LIFEBOAT_OFFSITE_MAX_ATTEMPTS: expected a whole number');
});

test('a run through the handlers: Commit, AwaitOffsite twice (the copy arrives), Record', async () => {
  const run = buildRun('orders', '20261126T030000Z');
  await writeRun(s3, PRIMARY, run, { verification: 'none' });
  const dump = manifestSummary(run.manifest, PRIMARY);
  const commit = load('commit');
  const awaitOffsite = load('await-offsite', { LIFEBOAT_OFFSITE_MAX_ATTEMPTS: '5' });
  const record = load('record');

  const committed = await commit({ dump, verification: verificationFor(run.manifest) }, context);
  expect(committed).toMatchObject({ committed: true, alreadyCommitted: false });
  expect((await readRun(s3, PRIMARY, 'orders', run.manifest.runId)).status).toBe('verified');

  const notYet = await awaitOffsite({ dump, offsite: { attempts: 0, present: false } }, context);
  expect(notYet).toMatchObject({ present: false, attempts: 1 });
  for (const key of await listKeys(s3, PRIMARY, 'runs/orders/20261126T030000Z/')) {
    await put(s3, OFFSITE, key, await getBytes(s3, PRIMARY, key));
  }
  const offsite = await awaitOffsite({ dump, offsite: notYet }, context);
  expect(offsite).toMatchObject({ present: true, attempts: 2 });

  received.length = 0;
  const { result, lines } = await capturingStdout(() => record({ source: 'orders', dump, commit: committed, offsite }, context));
  expect(result).toMatchObject({ eventId: 'event-1', metrics: { BackupSucceeded: 1 } });
  expect(received).toHaveLength(1);
  expect(received[0].target).toBe('AWSEvents.PutEvents');
  expect(received[0].body.Entries[0]).toMatchObject({ Source: 'lifeboat', DetailType: 'Backup Verified', EventBusName: 'default' });
  expect(JSON.parse(received[0].body.Entries[0].Detail)).toMatchObject({ source: 'orders', runId: '20261126T030000Z', offsite: { present: true } });
  const emf = lines.map((line) => JSON.parse(line)).find((doc) => doc._aws);
  expect(emf).toMatchObject({ source: 'orders', service: 'lifeboat-test', BackupSucceeded: 1, _aws: { CloudWatchMetrics: [{ Namespace: 'Lifeboat' }] } });
});

test('RecordFailure through its handler: the age of the last verified backup against the RPO, the event, the metric', async () => {
  const recordFailure = load('record-failure', { LIFEBOAT_RPO_SECONDS: '{"billing": 900}' });
  const run = buildRun('billing', '20261126T000000Z');
  await writeRun(s3, PRIMARY, run);
  received.length = 0;

  const { result, lines } = await capturingStdout(() => recordFailure({
    source: 'billing',
    scheduledTime: '2026-11-26T03:15:00Z',
    failedState: 'Dump',
    failure: { Error: 'AuthenticationFailed', Cause: 'password authentication failed for user "backup"' },
  }, context));

  const notification = result as { subject: string; message: string };
  expect(notification.subject).toBe('Lifeboat: billing backup failed at Dump: AuthenticationFailed');
  expect(notification.message).toContain('The last verified backup of billing is run 20261126T000000Z');
  expect(notification.message).toMatch(/old; the RPO is 15m: it is breached by /);
  expect(notification.message).toContain("the source's password secret in Secrets Manager");
  expect(received.map((entry) => entry.body.Entries[0].DetailType)).toEqual(['Backup Failed']);
  const emf = lines.map((line) => JSON.parse(line)).find((doc) => doc._aws);
  expect(emf).toMatchObject({ source: 'billing', BackupFailed: 1, error: 'AuthenticationFailed', failedState: 'Dump' });
});

test('RecordFailure with EventBridge unreachable and a malformed RPO setting still returns the notification', async () => {
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const port = (closed.address() as AddressInfo).port;
  await new Promise((resolve) => closed.close(resolve));
  const recordFailure = load('record-failure', { LIFEBOAT_EVENTS_ENDPOINT: `http://127.0.0.1:${port}`, LIFEBOAT_RPO_SECONDS: 'fifteen minutes' });

  const { result } = await capturingStdout(() => recordFailure({ source: 'orders', failedState: 'Dump', failure: { Error: 'DumpFailed' } }, context));

  const notification = result as { subject: string; message: string };
  expect(notification.subject).toBe('Lifeboat: orders backup failed at Dump: DumpFailed');
  expect(notification.message).toMatch(/Also: the "Backup Failed" EventBridge event could not be sent: .*ECONNREFUSED/);
});
