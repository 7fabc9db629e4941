/**
 * IAM-true for the physical run's tasks (lib/constructs/binlog-physical-workflow.ts): the Plan
 * and Verify task roles, synthesized against the deployment's primary bucket and key, evaluated
 * on every S3 call their code really made (a full and an incremental made by the host's script
 * on a real MariaDB, then planned and verified: listing, the catalog's documents, the chain's
 * streams, the manifest written once) with the bucket and key policies of the synthesized app,
 * through local/iam. Every call is allowed; what the roles must not do is denied.
 */
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import type { S3Client } from '@aws-sdk/client-s3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { loadConfig, parseConfig } from '../../lib/config';
import { verifyPhysicalRun } from '../../lib/binlog/physical-verify';
import { BinlogPhysicalWorkflow } from '../../lib/constructs/binlog-physical-workflow';
import { binlogPhysicalDocumentName } from '../../lib/constructs/binlog-physical-document';
import { pitrCatalogName, runPrefix } from '../../lib/domain/layout';
import { commit } from '../../lib/steps/commit';
import { ResolvedStack } from '../../local/cfn/resolve';
import { IamEvaluator, IamModel, requestsForCall } from '../../local/iam';
import { LocalSsm, type LocalDocument } from '../../local/ssm';
import { synthApp } from '../../local/synth';
import { planPhysicalBackup } from '../../worker/binlog-physical-plan-main';
import { startMariaDb, type MariaDbServer } from '../harness/mariadb';
import { startS3, TEST_CREDENTIALS, type S3Server } from '../harness/s3';

const LOCAL_BUCKET = 'lifeboat-physical-roles';
const SOURCE = 'shop';

let model: IamModel;
let bucket: string;
let planRole: string;
let verifyRole: string;
let s3server: S3Server;
let source: MariaDbServer;
let scratch: string;
const calls: Record<'plan' | 'verify', { command: string; input: Record<string, unknown> }[]> = { plan: [], verify: [] };

/** A client of the local server that records each command it sends, as the SDK call it is. */
function recordingClient(into: { command: string; input: Record<string, unknown> }[]): S3Client {
  const client = s3server.client();
  const send = client.send.bind(client) as (command: unknown, options?: unknown) => Promise<unknown>;
  (client as unknown as { send: typeof send }).send = (command: unknown, options?: unknown) => {
    const { constructor, input } = command as { constructor: { name: string }; input: Record<string, unknown> };
    into.push({ command: constructor.name.replace(/Command$/, ''), input: { ...input } });
    return send(command, options);
  };
  return client;
}

beforeAll(async () => {
  const app = synthApp(loadConfig('lifeboat.config.ts'));
  model = IamModel.fromApp(app);
  const primary = [...model.buckets.values()].find((candidate) => candidate.account === app.primary.account && candidate.objectLockEnabled && candidate.keyArn && candidate.origin.startsWith(`${app.primary.stackName}/`));
  if (!primary?.keyArn) throw new Error('no primary backup bucket with a key in the synthesized templates');
  bucket = primary.name;
  const keyArn = model.key(primary.keyArn).arn;

  // The workflow synthesized against the deployment's bucket and key, its roles added to the model.
  const cdkApp = new App();
  const stack = new Stack(cdkApp, 'PhysicalRun', { env: { account: primary.account, region: primary.region } });
  const sources = parseConfig({
    primary: { region: primary.region, account: primary.account }, offsite: { region: 'eu-central-1', account: primary.account },
    sources: [{
      name: SOURCE, engine: 'mariadb', tier: 'tier2', method: ['logical', 'pitr'], binlog: { physical: { host: { instanceId: 'i-0a1b2c3d4e5f60718' } } },
      connection: { host: 'shop.example.internal', database: 'shop', username: 'backup', passwordSecretArn: `arn:aws:secretsmanager:${primary.region}:${primary.account}:secret:shop-AbCdEf` },
      network: { vpcId: 'vpc-0a1b2c3d', subnetIds: ['subnet-0a1b2c3d4e5f60718'], securityGroupIds: ['sg-0a1b2c3d4e5f60718'] },
    }],
  }).sources;
  const fn = (name: string) => lambda.Function.fromFunctionArn(stack, name, `arn:aws:lambda:${primary.region}:${primary.account}:function:lifeboat-${name}`);
  const workflow = new BinlogPhysicalWorkflow(stack, 'BinlogPhysicalRun', {
    appName: 'lifeboat', sources,
    bucket: s3.Bucket.fromBucketName(stack, 'Bucket', bucket),
    bucketKey: kms.Key.fromKeyArn(stack, 'Key', keyArn),
    alarmTopic: sns.Topic.fromTopicArn(stack, 'Topic', `arn:aws:sns:${primary.region}:${primary.account}:lifeboat-alarms`),
    workerImage: ecs.ContainerImage.fromRegistry('lifeboat-worker'),
    cluster: new ecs.CfnCluster(stack, 'Cluster'),
    functions: { commit: fn('commit'), awaitOffsite: fn('await-offsite'), record: fn('record'), recordFailure: fn('record-failure') },
    objectLockMode: 'GOVERNANCE',
    schedules: { group: new scheduler.ScheduleGroup(stack, 'Group'), deadLetterQueue: new sqs.Queue(stack, 'Dlq', { enforceSSL: true }) },
  });
  const resolved = new ResolvedStack(Template.fromStack(stack).toJSON() as never, { stackName: 'PhysicalRun', account: primary.account, region: primary.region });
  model.addStack(resolved);
  const roleArn = (role: iam.IRole) => resolved.arn(stack.getLogicalId((role as iam.Role).node.defaultChild as iam.CfnRole));
  planRole = roleArn(workflow.planTask.taskRole);
  verifyRole = roleArn(workflow.verifyTask.taskRole);
  const [documentResource] = Object.values(Template.fromStack(stack).findResources('AWS::SSM::Document')) as { Properties: { Name: string; Content: LocalDocument['content'] } }[];

  // A real chain: the host's script makes a full and an incremental; Plan and Verify as the tasks run them.
  [s3server, source] = await Promise.all([startS3(), startMariaDb({ binlog: {} })]);
  await s3server.createBucket(LOCAL_BUCKET, { objectLock: true });
  scratch = mkdtempSync(join(tmpdir(), 'lifeboat-physical-roles-'));
  await source.sql('CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY, v TEXT) ENGINE=InnoDB; INSERT INTO shop.t VALUES (1, \'a\');');
  const ssm = new LocalSsm([{ name: documentResource.Properties.Name, content: documentResource.Properties.Content }]);
  ssm.register({
    instanceId: 'i-0a1b2c3d4e5f60718', tags: {},
    env: { AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey, HOME: scratch, TMPDIR: scratch },
    parameterOverrides: { bucket: LOCAL_BUCKET, osUser: userInfo().username, socket: source.socket, dataDirectory: source.dataDir, endpointUrl: s3server.endpoint },
  });
  const plain = s3server.client();
  for (const [index, [runId, asked]] of ([['20261204T100000Z', 'full'], ['20261204T110000Z', 'incr']] as const).entries()) {
    const plan = await planPhysicalBackup(recordingClient(calls.plan), { bucket: LOCAL_BUCKET, source: SOURCE, type: asked });
    const { Command } = ssm.sendCommand({
      DocumentName: binlogPhysicalDocumentName('lifeboat'), Targets: [{ Key: 'InstanceIds', Values: ['i-0a1b2c3d4e5f60718'] }],
      Parameters: { runPrefix: [runPrefix(pitrCatalogName(SOURCE), runId)], type: [plan.type], incrementalLsn: [plan.incrementalLsn], expectedSize: [plan.expectedSize] },
    });
    await ssm.settle();
    expect(ssm.listCommands({ CommandId: String(Command.CommandId) }).Commands[0]?.Status).toBe('Success');
    const result = await verifyPhysicalRun(
      { source: SOURCE, engine: 'mariadb', tier: 'tier2', runId, type: plan.type, ...(plan.prior ? { prior: plan.prior } : {}) },
      { s3: recordingClient(calls.verify), bucket: LOCAL_BUCKET, tool: 'mariadb-backup', streamTool: 'mbstream', scratch, verifiedBy: 'fargate', objectLock: { mode: 'GOVERNANCE', retentionSeconds: 86_400 } },
    );
    expect(result.verification.verdict).toBe('ok');
    await commit({ dump: result.dump, verification: result.verification }, { s3: plain, bucket: LOCAL_BUCKET });
    await source.sql(`INSERT INTO shop.t VALUES (${index + 2}, 'b');`);
  }
}, 240_000);

afterAll(async () => {
  await Promise.all([source?.stop(), s3server?.stop()]);
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

async function denials(role: string, made: readonly { command: string; input: Record<string, unknown> }[]): Promise<string[]> {
  const evaluator = new IamEvaluator(model);
  const denied: string[] = [];
  for (const { command, input } of made) {
    for (const request of requestsForCall(model, role, 'S3', command, { ...input, Bucket: bucket }).requests) {
      const decision = await evaluator.evaluate(request);
      if (!decision.allowed) denied.push(`${request.action} ${request.resource}: ${decision.explanation}`);
    }
  }
  return [...new Set(denied)];
}

test('every call of the Plan task is allowed to its role', async () => {
  expect([...new Set(calls.plan.map((call) => call.command))].sort()).toEqual(['GetObject', 'ListObjectsV2']);
  expect(await denials(planRole, calls.plan)).toEqual([]);
});

test('every call of the verifier is allowed to its role: the catalog, the chain\'s streams, the manifest written once', async () => {
  expect([...new Set(calls.verify.map((call) => call.command))].sort()).toEqual(['GetObject', 'ListObjectsV2', 'PutObject']);
  expect(calls.verify.filter((call) => call.command === 'PutObject').map((call) => [call.input.Key, call.input.IfNoneMatch])).toEqual([
    ['runs/shop-pitr/20261204T100000Z/manifest.json', '*'], ['runs/shop-pitr/20261204T110000Z/manifest.json', '*'],
  ]);
  expect(await denials(verifyRole, calls.verify)).toEqual([]);
});

test.each([
  ['verify', 'write a verdict', 'PutObject', { Key: 'runs/shop-pitr/20261204T100000Z/verification.json', IfNoneMatch: '*' }],
  ['verify', 'write a stream', 'PutObject', { Key: 'runs/shop-pitr/20261204T120000Z/backup.xbstream', IfNoneMatch: '*' }],
  ['verify', 'write a logical run\'s manifest', 'PutObject', { Key: 'runs/shop/20261204T100000Z/manifest.json', IfNoneMatch: '*' }],
  ['verify', 'delete a run\'s object', 'DeleteObject', { Key: 'runs/shop-pitr/20261204T100000Z/backup.xbstream' }],
  ['plan', 'read a stream', 'GetObject', { Key: 'runs/shop-pitr/20261204T100000Z/backup.xbstream' }],
  ['plan', 'write anything', 'PutObject', { Key: 'runs/shop-pitr/20261204T100000Z/manifest.json', IfNoneMatch: '*' }],
])('the %s role may not %s', async (who, _what, command, input) => {
  expect(await denials(who === 'plan' ? planRole : verifyRole, [{ command, input }])).not.toEqual([]);
});
