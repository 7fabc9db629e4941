/**
 * IAM-true for the database host's physical backups (issue 15): every S3 request the AWS CLI made
 * for the document `<app>-binlog-physical` — a full, an incremental, and a backup whose tool
 * failed (its upload aborted) — recorded on the wire by a proxy in front of the local S3 server,
 * then replayed against the synthesized primary bucket's policy and key policy with the host's
 * instance-profile policy (binlogPhysicalHostPolicy), through the evaluator the local runs use
 * (local/iam). Every one must be allowed; the bucket's write-once rule is met because the script
 * sends If-None-Match on every object it creates; the run's documents, another source's runs and
 * deletes are denied. The wire also shows what the CLI sends: each part's and object's SHA-256
 * (an Object Lock bucket refuses a write with neither Content-MD5 nor a checksum) and SSE-KMS.
 */
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { loadConfig } from '../../lib/config';
import { binlogPhysicalHostPolicy, parseCheckpoints, physicalObjectKey } from '../../lib/binlog/physical';
import { BinlogPhysicalDocument, binlogPhysicalDocumentName } from '../../lib/constructs/binlog-physical-document';
import { pitrCatalogName, runPrefix } from '../../lib/domain/layout';
import { IamEvaluator, IamModel, requestsForCall } from '../../local/iam';
import { LocalSsm, type LocalDocument } from '../../local/ssm';
import { synthApp } from '../../local/synth';
import { startMariaDb, type MariaDbServer } from '../harness/mariadb';
import { startS3, TEST_CREDENTIALS, type S3Server } from '../harness/s3';
import type { RecordedRequest } from '../harness/s3-tls';
import { recordedCall } from '../harness/s3-requests';

const HOST = 'arn:aws:iam::111111111111:role/shop-db-host';
const LOCAL_BUCKET = 'lifeboat-physical-iam';
const SOURCE = 'shop';

let model: IamModel;
let bucket: string;
let s3server: S3Server;
let client: S3Client;
let source: MariaDbServer;
let proxy: Server;
let scratch: string;
const recorded: RecordedRequest[] = [];
const outputs: { type: string; code: number; output: string }[] = [];

/** Forwards every request to the S3 server and records its method, path and headers. */
async function startRecordingProxy(upstream: string): Promise<{ server: Server; endpoint: string }> {
  const target = new URL(upstream);
  const server = createServer((req, res) => {
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers)) headers[name.toLowerCase()] = Array.isArray(value) ? String(value.at(-1)) : String(value);
    recorded.push({ method: req.method ?? 'GET', path: req.url ?? '/', headers });
    const forward = httpRequest({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (upstreamRes) => {
      res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers);
      upstreamRes.pipe(res);
    });
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

function document(keyArn: string): LocalDocument {
  const app = new App();
  const stack = new Stack(app, 'Physical', { env: { account: '111111111111', region: 'eu-west-1' } });
  new BinlogPhysicalDocument(stack, 'BinlogPhysical', { appName: 'lifeboat', bucket: s3.Bucket.fromBucketName(stack, 'Bucket', LOCAL_BUCKET), bucketKey: kms.Key.fromKeyArn(stack, 'Key', keyArn) });
  const [resource] = Object.values(Template.fromStack(stack).findResources('AWS::SSM::Document')) as { Properties: { Name: string; Content: LocalDocument['content'] } }[];
  return { name: resource.Properties.Name, content: resource.Properties.Content };
}

beforeAll(async () => {
  const config = loadConfig('lifeboat.config.ts');
  const app = synthApp(config);
  model = IamModel.fromApp(app);
  const primary = [...model.buckets.values()].find((candidate) => candidate.account === app.primary.account && candidate.objectLockEnabled && candidate.keyArn && candidate.origin.startsWith(`${app.primary.stackName}/`));
  if (!primary?.keyArn) throw new Error('no primary backup bucket with a key in the synthesized templates');
  bucket = primary.name;
  const keyArn = model.key(primary.keyArn).arn;
  model.addPrincipal({
    arn: HOST, name: 'shop-db-host', account: primary.account, origin: 'the database host\'s instance profile (binlogPhysicalHostPolicy)', assumedBy: ['ec2.amazonaws.com'],
    policies: [{ name: 'lifeboat-binlog-physical-shop', document: binlogPhysicalHostPolicy(SOURCE, { bucket, region: primary.region, keyArn }) as never }],
  });

  [s3server, source] = await Promise.all([startS3(), startMariaDb({ binlog: {} })]);
  await s3server.createBucket(LOCAL_BUCKET, { objectLock: true });
  client = s3server.client();
  const recording = await startRecordingProxy(s3server.endpoint);
  proxy = recording.server;
  scratch = mkdtempSync(join(tmpdir(), 'lifeboat-physical-iam-'));
  await source.sql('CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY, v TEXT) ENGINE=InnoDB; INSERT INTO shop.t VALUES (1, \'a\'), (2, \'b\');');

  const ssm = new LocalSsm([document(keyArn)]);
  const env = { AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey, HOME: scratch, TMPDIR: scratch };
  const overrides = { osUser: userInfo().username, socket: source.socket, dataDirectory: source.dataDir, endpointUrl: recording.endpoint };
  ssm.register({ instanceId: 'i-0a1b2c3d4e5f60718', tags: {}, env, parameterOverrides: overrides });
  // The same host with its server unreachable: the tool fails, the upload is aborted.
  ssm.register({ instanceId: 'i-0a1b2c3d4e5f60719', tags: {}, env, parameterOverrides: { ...overrides, socket: join(scratch, 'no-such.sock') } });
  const backup = async (instanceId: string, runId: string, type: string, lsn?: string) => {
    const { Command } = ssm.sendCommand({
      DocumentName: binlogPhysicalDocumentName('lifeboat'), Targets: [{ Key: 'InstanceIds', Values: [instanceId] }],
      Parameters: { runPrefix: [runPrefix(pitrCatalogName(SOURCE), runId)], type: [type], ...(lsn ? { incrementalLsn: [lsn] } : {}) },
    });
    await ssm.settle();
    const [invocation] = ssm.listCommandInvocations({ CommandId: String(Command.CommandId), Details: true }).CommandInvocations as { CommandPlugins: { ResponseCode: number; Output: string }[] }[];
    outputs.push({ type, code: invocation.CommandPlugins[0].ResponseCode, output: invocation.CommandPlugins[0].Output });
  };
  await backup('i-0a1b2c3d4e5f60718', '20261204T100000Z', 'full');
  const checkpoints = await client.send(new GetObjectCommand({ Bucket: LOCAL_BUCKET, Key: physicalObjectKey(SOURCE, '20261204T100000Z', 'xtrabackup_checkpoints') }));
  const { toLsn } = parseCheckpoints((await checkpoints.Body?.transformToString()) ?? '');
  await source.sql('INSERT INTO shop.t VALUES (3, \'c\');');
  await backup('i-0a1b2c3d4e5f60718', '20261204T110000Z', 'incr', toLsn);
  await backup('i-0a1b2c3d4e5f60719', '20261204T120000Z', 'full');
}, 240_000);

afterAll(async () => {
  client?.destroy();
  await new Promise<void>((resolve) => (proxy ? proxy.close(() => resolve()) : resolve()));
  await Promise.all([source?.stop(), s3server?.stop()]);
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

/** The SDK call a recorded request is, with the conditional header the evaluator reads. */
function asCall(request: RecordedRequest): { command: string; input: Record<string, unknown> } {
  const call = recordedCall(request, bucket);
  return { command: call.command, input: { ...call.input, ...(request.headers['if-none-match'] ? { IfNoneMatch: request.headers['if-none-match'] } : {}) } };
}

test('the host\'s backups: two stored, one refused by its tool and aborted', () => {
  expect(outputs.map(({ type, code }) => ({ type, code }))).toEqual([{ type: 'full', code: 0 }, { type: 'incr', code: 0 }, { type: 'full', code: 1 }]);
  expect(outputs[2]?.output).toMatch(/upload aborted: nothing was stored/);
  expect(outputs[2]?.output).toMatch(/the backup or its upload failed: no backup was stored/);
});

test('every request the host made is allowed to it by its policy and the synthesized bucket and key policies', async () => {
  const evaluator = new IamEvaluator(model);
  const calls = recorded.map(asCall);
  expect([...new Set(calls.map((call) => call.command))].sort()).toEqual(['AbortMultipartUpload', 'CompleteMultipartUpload', 'CreateMultipartUpload', 'PutObject', 'UploadPart']);
  const denied: string[] = [];
  for (const { command, input } of calls) {
    for (const request of requestsForCall(model, HOST, 'S3', command, input).requests) {
      const decision = await evaluator.evaluate(request);
      if (!decision.allowed) denied.push(`${request.action} ${request.resource}: ${decision.explanation}`);
    }
  }
  expect([...new Set(denied)]).toEqual([]);
});

test('on the wire: every object created with If-None-Match, every byte with its SHA-256, SSE-KMS with the backup key', () => {
  const calls = recorded.map((request) => ({ request, command: recordedCall(request, bucket).command }));
  for (const { request, command } of calls) {
    if (command === 'CompleteMultipartUpload' || command === 'PutObject') expect({ command, ifNoneMatch: request.headers['if-none-match'] }).toEqual({ command, ifNoneMatch: '*' });
    if (command === 'UploadPart' || command === 'PutObject') expect({ command, sha256: request.headers['x-amz-checksum-sha256'] }).toEqual({ command, sha256: expect.stringMatching(/^[A-Za-z0-9+/]{43}=$/) });
    if (command === 'CreateMultipartUpload' || command === 'PutObject') {
      expect({ command, sse: request.headers['x-amz-server-side-encryption'], key: request.headers['x-amz-server-side-encryption-aws-kms-key-id'] })
        .toEqual({ command, sse: 'aws:kms', key: expect.stringMatching(/^arn:aws:kms:/) });
    }
  }
});

test.each([
  ['write the run\'s manifest', 'PutObject', { Key: 'runs/shop-pitr/20261204T100000Z/manifest.json', IfNoneMatch: '*' }],
  ['write the run\'s verdict', 'PutObject', { Key: 'runs/shop-pitr/20261204T100000Z/verification.json', IfNoneMatch: '*' }],
  ['replace its stream (no If-None-Match)', 'CompleteMultipartUpload', { Key: 'runs/shop-pitr/20261204T100000Z/backup.xbstream' }],
  ['write another source\'s run', 'PutObject', { Key: 'runs/billing-pitr/20261204T100000Z/backup.xbstream', IfNoneMatch: '*' }],
  ['write a logical run', 'PutObject', { Key: 'runs/shop/20261204T100000Z/backup.xbstream', IfNoneMatch: '*' }],
  ['delete its stream', 'DeleteObject', { Key: 'runs/shop-pitr/20261204T100000Z/backup.xbstream' }],
  ['read a run', 'GetObject', { Key: 'runs/shop-pitr/20261204T100000Z/manifest.json' }],
])('the host may not %s', async (_what, command, input) => {
  const evaluator = new IamEvaluator(model);
  const { requests } = requestsForCall(model, HOST, 'S3', command, { Bucket: bucket, ...input });
  const decisions = await Promise.all(requests.map((request) => evaluator.evaluate(request)));
  expect(decisions.some((decision) => !decision.allowed)).toBe(true);
});
