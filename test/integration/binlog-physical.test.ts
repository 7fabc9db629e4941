/**
 * Physical full + incremental backups of MariaDB (issue 15, acceptance 2), on real components:
 * MariaDB 10.11 binary-logging (ROW, server id 1), Debian's mariadb-backup and mbstream, the AWS
 * CLI on this machine, the local S3 server (Object Lock bucket). The synthesized document
 * `<app>-binlog-physical` runs as SSM would run it (local/ssm.ts: its own script, parameters
 * validated by its allowedPattern): full, writes, incremental, writes, incremental; each run
 * verified by the verifier's code (prepare of the chain) and committed by the run's own Commit;
 * then the chain plus the archived binary logs restored to a second between the two
 * incrementals equals the snapshot of the source taken then. A kill of the host's script
 * mid-stream leaves no stream, no manifest, and the verifier refuses the run.
 *
 * The archived binary logs are uploaded by this test in the archive's index layout (the
 * archiver, lib/binlog/archive.ts, was not committed when this was written): each file the
 * server completed, its facts read by lib/binlog/events.ts, as the archiver stores them.
 */
import { GetObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { BINLOG_DOCUMENT_SCHEMA_VERSION, binlogSequence, serializeBinlogIndexEntry } from '../../lib/binlog/documents';
import { scanBinlog } from '../../lib/binlog/events';
import { nextPhysicalBackup, physicalObjectKey, PHYSICAL_HOST_OBJECTS, type PhysicalType } from '../../lib/binlog/physical';
import { restorePhysicalToPoint } from '../../lib/binlog/physical-restore';
import { readPhysicalRuns, verifyPhysicalRun, type PhysicalRunResult } from '../../lib/binlog/physical-verify';
import { BinlogPhysicalDocument, binlogPhysicalDocumentName } from '../../lib/constructs/binlog-physical-document';
import { binlogFileKey, binlogIndexKey, manifestKey, pitrCatalogName, runPrefix } from '../../lib/domain/layout';
import { parseManifest } from '../../lib/domain/manifest';
import { commit } from '../../lib/steps/commit';
import { LocalSsm, type LocalDocument } from '../../local/ssm';
import { BINLOG_PHYSICAL_VERIFY_ENV, physicalVerifyJobFromEnv, runPhysicalVerifyJob } from '../../worker/binlog-physical-verify-main';
import { descendantProcesses } from '../contract/engine-contract';
import { mariaDbTableDigests } from '../harness/digests';
import { startMariaDb, type MariaDbServer } from '../harness/mariadb';
import { startFaultyS3Proxy } from '../harness/faulty-s3-proxy';
import { delay } from '../harness/processes';
import { startS3, TEST_CREDENTIALS, type S3Server } from '../harness/s3';

const BUCKET = 'lifeboat-physical-test';
const KEY_ARN = 'arn:aws:kms:us-east-1:111111111111:key/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0';
const SOURCE = 'shop';
const INSTANCE = 'i-0a1b2c3d4e5f60718';
const TOOLS = { tool: 'mariadb-backup', streamTool: 'mbstream', binlogClient: 'mariadb-binlog', sqlClient: 'mariadb' };

let s3server: S3Server;
let client: S3Client;
let source: MariaDbServer;
let ssm: LocalSsm;
let scratch: string;
let home: string;

/** The document as the CDK app synthesizes it. */
function synthesizedDocument(): LocalDocument {
  const app = new App();
  const stack = new Stack(app, 'Physical', { env: { account: '111111111111', region: 'us-east-1' } });
  new BinlogPhysicalDocument(stack, 'BinlogPhysical', {
    appName: 'lifeboat',
    bucket: s3.Bucket.fromBucketName(stack, 'Bucket', BUCKET),
    bucketKey: kms.Key.fromKeyArn(stack, 'Key', KEY_ARN),
  });
  const resources = Template.fromStack(stack).findResources('AWS::SSM::Document');
  const [resource] = Object.values(resources) as { Properties: { Name: string; Content: LocalDocument['content'] } }[];
  return { name: resource.Properties.Name, content: resource.Properties.Content };
}

beforeAll(async () => {
  [s3server, source] = await Promise.all([startS3(), startMariaDb({ binlog: {} })]);
  await s3server.createBucket(BUCKET, { objectLock: true });
  client = s3server.client();
  scratch = mkdtempSync(join(tmpdir(), 'lifeboat-physical-'));
  home = mkdtempSync(join(tmpdir(), 'lifeboat-physical-home-'));
  ssm = new LocalSsm([synthesizedDocument()]);
  ssm.register({
    instanceId: INSTANCE,
    tags: {},
    // The instance profile's stand-in: the local S3 server's keys, in the environment only.
    env: { AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey, HOME: home, TMPDIR: scratch },
    // This machine's server instead of the host's /var/lib/mysql and mysql user; the local S3 endpoint.
    parameterOverrides: { osUser: userInfo().username, socket: source.socket, dataDirectory: source.dataDir, endpointUrl: s3server.endpoint },
  });
  await source.sql(`CREATE DATABASE shop;
    CREATE TABLE shop.orders (id INT PRIMARY KEY AUTO_INCREMENT, customer VARCHAR(40) NOT NULL, amount DECIMAL(10,2), note TEXT) ENGINE=InnoDB;
    CREATE TABLE shop.events (id BIGINT PRIMARY KEY, kind VARCHAR(20), at DATETIME(6)) ENGINE=InnoDB;
    CREATE TABLE shop.tags (name VARCHAR(40) PRIMARY KEY) ENGINE=Aria;`);
  await writes(0, 3000);
}, 120_000);

afterAll(async () => {
  await ssm?.settle();
  client?.destroy();
  await Promise.all([source?.stop(), s3server?.stop()]);
  for (const dir of [scratch, home]) if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Inserts, updates and deletes, each batch its own transactions. */
async function writes(from: number, count: number): Promise<void> {
  const values = Array.from({ length: count }, (_, i) => `('c${(from + i) % 97}', ${(from + i) * 1.25}, REPEAT('x', ${(from + i) % 300}))`);
  await source.sql(`INSERT INTO shop.orders (customer, amount, note) VALUES ${values.join(',')};
    INSERT INTO shop.events SELECT id + ${from * 10}, 'created', NOW(6) FROM shop.orders WHERE id > ${from} AND id <= ${from + count};
    UPDATE shop.orders SET amount = amount + 1 WHERE id % 7 = ${from % 7};
    DELETE FROM shop.orders WHERE id % 13 = ${from % 13} AND id <= ${from};
    INSERT IGNORE INTO shop.tags VALUES ('t${from}');`);
}

async function sendBackup(runId: string, type: PhysicalType, lsn?: string): Promise<{ status: string; code: number; output: string }> {
  const { Command } = ssm.sendCommand({
    DocumentName: binlogPhysicalDocumentName('lifeboat'),
    Targets: [{ Key: 'InstanceIds', Values: [INSTANCE] }],
    Parameters: { runPrefix: [runPrefix(pitrCatalogName(SOURCE), runId)], type: [type], ...(lsn ? { incrementalLsn: [lsn] } : {}) },
  });
  await ssm.settle();
  const [invocation] = ssm.listCommandInvocations({ CommandId: String(Command.CommandId), Details: true }).CommandInvocations as { Status: string; CommandPlugins: { ResponseCode: number; Output: string }[] }[];
  return { status: invocation.Status, code: invocation.CommandPlugins[0].ResponseCode, output: invocation.CommandPlugins[0].Output };
}

/** The physical run as the state machine would make it: what the next backup needs, the host, the verifier, Commit. */
async function physicalRun(runId: string, wanted: PhysicalType): Promise<PhysicalRunResult> {
  const next = nextPhysicalBackup(await readPhysicalRuns(client, BUCKET, SOURCE), wanted);
  const host = await sendBackup(runId, next.type, next.prior?.toLsn);
  if (host.code !== 0) throw new Error(`the host's backup failed (${host.code}): ${host.output}`);
  // The verifier's task as ECS starts it: its environment, the engine's tools (worker/binlog-physical-verify-main.ts).
  const E = BINLOG_PHYSICAL_VERIFY_ENV;
  const job = physicalVerifyJobFromEnv({
    AWS_REGION: 'us-east-1', [E.bucket]: BUCKET, [E.source]: SOURCE, [E.engine]: 'mariadb', [E.tier]: 'tier2', [E.runId]: runId, [E.type]: next.type,
    ...(next.prior ? { [E.prior]: next.prior.runId } : {}), [E.scratch]: scratch,
  });
  const outcome = await runPhysicalVerifyJob(job, { s3: client, log: () => undefined });
  if (!outcome.result) throw new Error(`the verifier failed (${outcome.code}): ${outcome.error?.name}: ${outcome.error?.message}`);
  expect(outcome.code).toBe(0);
  await commit({ dump: outcome.result.dump, verification: outcome.result.verification }, { s3: client, bucket: BUCKET });
  return outcome.result;
}

/** The archive as the archiver stores it: each completed binary log once, with its index entry. */
async function archiveCompletedBinlogs(): Promise<string[]> {
  await source.sql('FLUSH BINARY LOGS;');
  const files = (await source.sql('SHOW BINARY LOGS;')).split('\n').filter(Boolean).map((line) => line.split('\t')[0] as string);
  const completed = files.slice(0, -1);
  for (const file of completed) {
    const content = readFileSync(join(source.dataDir, file));
    const { wholeBytes: _whole, problems, ...facts } = scanBinlog(file, content);
    expect(problems).toEqual([]);
    const put = await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: binlogFileKey(SOURCE, file), Body: content, IfNoneMatch: '*' }));
    await client.send(new PutObjectCommand({
      Bucket: BUCKET, Key: binlogIndexKey(SOURCE, file), IfNoneMatch: '*',
      Body: serializeBinlogIndexEntry({
        schemaVersion: BINLOG_DOCUMENT_SCHEMA_VERSION, source: SOURCE, file, sequence: binlogSequence(file), key: binlogFileKey(SOURCE, file),
        ...(put.VersionId ? { versionId: put.VersionId } : {}), archivedAt: new Date().toISOString(), runId: '20261204T120000Z', facts,
      }),
    }));
  }
  return completed;
}

async function keysOf(prefix: string): Promise<string[]> {
  const listed = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }));
  return (listed.Contents ?? []).map((object) => object.Key as string).sort();
}

test('full, writes, incremental, writes, incremental: the chain verified, and restored with the binary logs to a second between the incrementals equals the source then', async () => {
  const full = await physicalRun('20261204T100000Z', 'full');
  expect(full.verification).toMatchObject({ verdict: 'ok' });
  const fullManifest = parseManifest(await text(manifestKey(pitrCatalogName(SOURCE), '20261204T100000Z')));
  expect(fullManifest.physical).toMatchObject({ tool: 'mariadb-backup', type: 'full', fromLsn: '0', binlog: { file: expect.stringMatching(/^binlog\.\d{6}$/) } });
  expect(fullManifest.dependsOn).toBeUndefined();
  expect(await keysOf(runPrefix(pitrCatalogName(SOURCE), '20261204T100000Z'))).toEqual(
    [...PHYSICAL_HOST_OBJECTS, 'manifest.json', 'verification.json'].map((name) => `${runPrefix(pitrCatalogName(SOURCE), '20261204T100000Z')}${name}`).sort());

  await writes(3000, 2000);
  const incr1 = await physicalRun('20261204T110000Z', 'incr');
  expect(incr1.verification).toMatchObject({ verdict: 'ok' });
  expect(incr1.verification.artifacts[0]?.checks.find((check) => check.name === 'prepare')?.detail).toMatch(/prepare full, prepare incremental 1/);
  const incr1Manifest = parseManifest(await text(manifestKey(pitrCatalogName(SOURCE), '20261204T110000Z')));
  expect(incr1Manifest.physical).toMatchObject({ type: 'incr', prior: '20261204T100000Z', fromLsn: fullManifest.physical?.toLsn });
  expect(incr1Manifest.dependsOn).toEqual(['20261204T100000Z']);

  // Writes, then the target: the first whole second after them; the snapshot is the source then.
  await writes(5000, 1500);
  const target = new Date(Math.floor(Date.now() / 1000) * 1000 + 1000);
  while (Date.now() < target.getTime()) await delay(20);
  const snapshot = await mariaDbTableDigests(source, ['shop']);
  await writes(6500, 1500);

  const incr2 = await physicalRun('20261204T120000Z', 'incr');
  expect(incr2.verification).toMatchObject({ verdict: 'ok' });
  expect(incr2.dump.physical.chain).toEqual(['20261204T100000Z', '20261204T110000Z', '20261204T120000Z']);
  const incr2Manifest = parseManifest(await text(manifestKey(pitrCatalogName(SOURCE), '20261204T120000Z')));
  expect(incr2Manifest.dependsOn).toEqual(['20261204T100000Z', '20261204T110000Z']);
  const after = await mariaDbTableDigests(source, ['shop']);
  expect(after).not.toEqual(snapshot);

  const archived = await archiveCompletedBinlogs();
  const dataDir = join(scratch, 'restored-data');
  const restored = await restorePhysicalToPoint({ s3: client, bucket: BUCKET, source: SOURCE, ...TOOLS, at: target, dataDir, scratchDir: scratch });
  try {
    // The base is the newest chain that ended before the target: the full and the first incremental.
    expect(restored.chain).toEqual(['20261204T100000Z', '20261204T110000Z']);
    expect(restored.from).toEqual(incr1Manifest.physical?.binlog);
    expect(restored.replay.files.length).toBeGreaterThan(0);
    expect(archived).toEqual(expect.arrayContaining(restored.replay.files));
    expect(await mariaDbTableDigests(restored.server, ['shop'])).toEqual(snapshot);
  } finally {
    await restored.server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }

  // A run whose stream cannot follow the chain (the full's stream, described as an incremental on
  // the last run): the verdict is failed, naming the step and mariadb-backup's own words, Commit
  // records it, and the next incremental still builds on the last good run.
  const bad = '20261204T123000Z';
  const badKey = (object: string) => physicalObjectKey(SOURCE, bad, object);
  const incr2Lsn = incr2Manifest.physical?.toLsn as string;
  await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: badKey('backup.xbstream'), Body: await bytes(physicalObjectKey(SOURCE, '20261204T100000Z', 'backup.xbstream')), IfNoneMatch: '*' }));
  await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: badKey('xtrabackup_checkpoints'), IfNoneMatch: '*', Body: `backup_type = incremental\nfrom_lsn = ${incr2Lsn}\nto_lsn = ${incr2Lsn}\nlast_lsn = ${incr2Lsn}\n` }));
  await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: badKey('xtrabackup_info'), Body: await text(physicalObjectKey(SOURCE, '20261204T120000Z', 'xtrabackup_info')), IfNoneMatch: '*' }));
  const failed = await runPhysicalVerifyJob(physicalVerifyJobFromEnv({
    AWS_REGION: 'us-east-1', [BINLOG_PHYSICAL_VERIFY_ENV.bucket]: BUCKET, [BINLOG_PHYSICAL_VERIFY_ENV.source]: SOURCE, [BINLOG_PHYSICAL_VERIFY_ENV.engine]: 'mariadb',
    [BINLOG_PHYSICAL_VERIFY_ENV.tier]: 'tier2', [BINLOG_PHYSICAL_VERIFY_ENV.runId]: bad, [BINLOG_PHYSICAL_VERIFY_ENV.type]: 'incr',
    [BINLOG_PHYSICAL_VERIFY_ENV.prior]: '20261204T120000Z', [BINLOG_PHYSICAL_VERIFY_ENV.scratch]: scratch,
  }), { s3: client, log: () => undefined });
  expect(failed.code).toBe(1);
  expect(failed.result?.verification).toMatchObject({ verdict: 'failed', error: { name: 'ArchiveCorrupt' } });
  expect(failed.result?.verification.error?.message).toMatch(/^prepare incremental 3 failed \(mariadb-backup exit \d+\) after prepare full, prepare incremental 1, prepare incremental 2: [\s\S]*incremental/);
  await expect(commit({ dump: failed.result?.dump, verification: failed.result?.verification }, { s3: client, bucket: BUCKET })).rejects.toMatchObject({ name: 'ArchiveCorrupt' });
  expect(JSON.parse(await text(`${runPrefix(pitrCatalogName(SOURCE), bad)}verification.json`))).toMatchObject({ verdict: 'failed', error: { name: 'ArchiveCorrupt' } });
  expect(nextPhysicalBackup(await readPhysicalRuns(client, BUCKET, SOURCE), 'incr')).toEqual({ type: 'incr', prior: { runId: '20261204T120000Z', toLsn: incr2Lsn } });
}, 300_000);

test('the host\'s script killed mid-stream leaves no stream and no manifest, and the verifier refuses the run', async () => {
  const runId = '20261204T130000Z';
  const prefix = runPrefix(pitrCatalogName(SOURCE), runId);
  // Enough data that the stream takes a while.
  await source.sql('CREATE TABLE shop.bulk (id INT PRIMARY KEY, pad CHAR(255)) ENGINE=InnoDB;');
  await source.sql('INSERT INTO shop.bulk SELECT seq, REPEAT(\'p\', 255) FROM seq_1_to_200000;', 'shop');
  const { Command } = ssm.sendCommand({
    DocumentName: binlogPhysicalDocumentName('lifeboat'),
    Targets: [{ Key: 'InstanceIds', Values: [INSTANCE] }],
    Parameters: { runPrefix: [prefix], type: ['full'] },
  });
  let killed: number[] = [];
  for (const deadline = Date.now() + 60_000; killed.length === 0;) {
    if (Date.now() > deadline) throw new Error('the backup never started streaming');
    const streaming = descendantProcesses(['mariadb-backup']);
    if (streaming.length > 0) {
      await delay(300);
      const processes = descendantProcesses(['sh', 'bash', 'mariadb-backup', 'head', 'aws', 'pyenv', 'python', 'python3', 'python3.11']);
      for (const { pid } of processes) process.kill(pid, 'SIGKILL');
      killed = processes.map((entry) => entry.pid);
    }
    await delay(20);
  }
  await ssm.settle();
  const [invocation] = ssm.listCommandInvocations({ CommandId: String(Command.CommandId) }).CommandInvocations as { Status: string }[];
  expect(invocation.Status).toBe('Failed');
  // The stream's upload was under way and was never completed: no object, nothing to describe.
  const uploads = await client.send(new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: prefix }));
  expect((uploads.Uploads ?? []).map((upload) => upload.Key)).toEqual([physicalObjectKey(SOURCE, runId, 'backup.xbstream')]);
  expect(await keysOf(prefix)).toEqual([]);
  await expect(verifyPhysicalRun(
    { source: SOURCE, engine: 'mariadb', tier: 'tier2', runId, type: 'full' },
    { s3: client, bucket: BUCKET, tool: TOOLS.tool, streamTool: TOOLS.streamTool, scratch, verifiedBy: 'fargate' },
  )).rejects.toMatchObject({ name: 'ArtifactMissing', message: expect.stringContaining(physicalObjectKey(SOURCE, runId, 'xtrabackup_checkpoints')) });
  expect(await keysOf(prefix)).toEqual([]);
}, 180_000);

test('S3 failing mid-upload: the host aborts the upload, stores nothing, and says so', async () => {
  const runId = '20261204T140000Z';
  const prefix = runPrefix(pitrCatalogName(SOURCE), runId);
  const faulty = await startFaultyS3Proxy(s3server.endpoint, { failAfterParts: 0 });
  try {
    const failing = new LocalSsm([synthesizedDocument()]);
    failing.register({
      instanceId: INSTANCE, tags: {},
      env: { AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey, HOME: home, TMPDIR: scratch, AWS_MAX_ATTEMPTS: '2' },
      parameterOverrides: { osUser: userInfo().username, socket: source.socket, dataDirectory: source.dataDir, endpointUrl: faulty.endpoint },
    });
    const { Command } = failing.sendCommand({
      DocumentName: binlogPhysicalDocumentName('lifeboat'), Targets: [{ Key: 'InstanceIds', Values: [INSTANCE] }],
      Parameters: { runPrefix: [prefix], type: ['full'] },
    });
    await failing.settle();
    const [invocation] = failing.listCommandInvocations({ CommandId: String(Command.CommandId), Details: true }).CommandInvocations as { CommandPlugins: { ResponseCode: number; Output: string }[] }[];
    expect(invocation.CommandPlugins[0].ResponseCode).toBe(1);
    expect(invocation.CommandPlugins[0].Output).toMatch(/upload aborted: nothing was stored/);
    expect(faulty.partsFailed).toBeGreaterThan(0);
    expect(await keysOf(prefix)).toEqual([]);
    const uploads = await client.send(new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: prefix }));
    expect(uploads.Uploads ?? []).toEqual([]);
  } finally {
    await faulty.close();
  }
}, 180_000);

async function bytes(key: string): Promise<Uint8Array> {
  const object = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return (await object.Body?.transformToByteArray()) ?? new Uint8Array();
}

async function text(key: string): Promise<string> {
  const object = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return (await object.Body?.transformToString()) ?? '';
}
