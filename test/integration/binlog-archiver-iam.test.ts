/**
 * IAM-true for the binary-log archiver (issue 15): the calls the archiver makes in AWS — PutObject
 * of a completed file, its index entry, a partial and a state, each with its Object Lock headers;
 * GetObject and HeadObject of its own keys; ListObjectsV2 under its prefix — evaluated as its
 * synthesized task role against the synthesized role, bucket and key policies (local/iam), and
 * the schedule's RunTask and PassRole as the schedule's role. Every one must be allowed; a call
 * outside its prefix, a delete, or another task definition must be denied, naming principal,
 * action and resource.
 */
import type { Source } from '../../lib/config';
import { binlogFileKey, binlogIndexKey, binlogPartialKey, binlogStateKey } from '../../lib/domain/layout';
import { IamEvaluator, IamModel, requestsForCall } from '../../local/iam';
import { AccessDeniedError, type AwsRequest } from '../../local/iam/evaluator';
import { synthApp, type SynthesizedApp } from '../../local/synth';
import { binlogConfig } from '../fixtures/binlog-config';

let app: SynthesizedApp;
let model: IamModel;
let evaluator: IamEvaluator;
let bucket: string;
let taskRole: string;
const shop = binlogConfig.sources.find((source) => source.name === 'shop') as Source;
const RUN = '20261204T120500Z';
const lock = () => ({ IfNoneMatch: '*', ObjectLockMode: binlogConfig.objectLock.mode, ObjectLockRetainUntilDate: new Date(Date.now() + shop.tier.retentionSeconds * 1000) });

/** The IAM requests of one S3 call made by `principal`, each evaluated; the denials' explanations. */
async function denialsOf(principal: string, command: string, input: Record<string, unknown>): Promise<{ requests: AwsRequest[]; denied: string[] }> {
  const { requests } = requestsForCall(model, principal, 'S3', command, { Bucket: bucket, ...input });
  const decisions = await Promise.all(requests.map((request) => evaluator.evaluate(request)));
  return { requests, denied: decisions.filter((decision) => !decision.allowed).map((decision) => new AccessDeniedError(decision, 'AccessDenied').message) };
}

beforeAll(() => {
  app = synthApp(binlogConfig);
  model = IamModel.fromApp(app);
  evaluator = new IamEvaluator(model);
  const primary = [...model.buckets.values()].find((candidate) => candidate.account === app.primary.account && candidate.objectLockEnabled && candidate.keyArn && candidate.origin.startsWith(`${app.primary.stackName}/`));
  if (!primary) throw new Error('no primary backup bucket in the synthesized templates');
  bucket = primary.name;
  const task = [...model.taskDefinitions.values()].find((candidate) => candidate.family === 'lifeboat-binlog-shop');
  if (!task?.taskRoleArn) throw new Error('no archiver task definition of shop (with a task role) in the synthesized templates');
  taskRole = task.taskRoleArn;
}, 120_000);

test('the archiver\'s role is its task definition\'s, under /lifeboat/binlog/', () => {
  expect(taskRole).toMatch(/^arn:aws:iam::111111111111:role\/lifeboat\/binlog\//);
});

test.each([
  ['a completed file, with its lock', 'PutObject', { Key: binlogFileKey('shop', 'binlog.000042'), ...lock() }],
  ['its index entry, with its lock', 'PutObject', { Key: binlogIndexKey('shop', 'binlog.000042'), ...lock() }],
  ['the active file as this run read it', 'PutObject', { Key: binlogPartialKey('shop', 'binlog.000043', RUN), ...lock() }],
  ['the run\'s state', 'PutObject', { Key: binlogStateKey('shop', RUN), ...lock() }],
  ['a completed file in parts', 'CreateMultipartUpload', { Key: binlogFileKey('shop', 'binlog.000044'), ...lock() }],
  ['a failed upload in parts, aborted', 'AbortMultipartUpload', { Key: binlogFileKey('shop', 'binlog.000044'), UploadId: 'u1' }],
  ['the newest state, read back', 'GetObject', { Key: binlogStateKey('shop', '20261204T120000Z') }],
  ['an index entry, read back', 'GetObject', { Key: binlogIndexKey('shop', 'binlog.000041') }],
  ['whether a file is there already', 'HeadObject', { Key: binlogFileKey('shop', 'binlog.000041') }],
  ['the list of its index', 'ListObjectsV2', { Prefix: 'binlog/shop/index/' }],
  ['the list of its states', 'ListObjectsV2', { Prefix: 'binlog/shop/state/' }],
])('allowed: %s (%s)', async (_what, command, input) => {
  const { requests, denied } = await denialsOf(taskRole, command, input);
  expect(requests.length).toBeGreaterThan(0);
  if (command === 'PutObject') expect(requests.map((request) => request.action)).toEqual(expect.arrayContaining(['s3:PutObject', 's3:PutObjectRetention', 'kms:GenerateDataKey']));
  expect(denied).toEqual([]);
});

test.each([
  ['replace an archived file (a put without If-None-Match)', 'PutObject', { Key: binlogFileKey('shop', 'binlog.000042') }, 's3:PutObject', 'binlog/shop/files/binlog.000042'],
  ['write a logical run', 'PutObject', { Key: 'runs/shop/20261204T120000Z/manifest.json', IfNoneMatch: '*' }, 's3:PutObject', 'runs/shop/20261204T120000Z/manifest.json'],
  ['write another source\'s archive', 'PutObject', { Key: binlogFileKey('ledger', 'binlog.000001') }, 's3:PutObject', 'binlog/ledger/files/binlog.000001'],
  ['read another source\'s archive', 'GetObject', { Key: binlogStateKey('ledger', RUN) }, 's3:GetObject', `binlog/ledger/state/${RUN}.json`],
  ['read a dump', 'GetObject', { Key: 'runs/shop/20261204T120000Z/shop.sql.zst' }, 's3:GetObject', 'runs/shop/20261204T120000Z/shop.sql.zst'],
  ['list the whole archive root', 'ListObjectsV2', { Prefix: 'binlog/' }, 's3:ListBucket', ''],
  ['delete a file (a delete marker)', 'DeleteObject', { Key: binlogFileKey('shop', 'binlog.000042') }, 's3:DeleteObject', 'binlog/shop/files/binlog.000042'],
  ['remove a version', 'DeleteObject', { Key: binlogFileKey('shop', 'binlog.000042'), VersionId: 'v1' }, 's3:DeleteObjectVersion', 'binlog/shop/files/binlog.000042'],
])('denied: %s, naming principal, action and resource', async (_what, command, input, action, key) => {
  const { denied } = await denialsOf(taskRole, command, input);
  expect(denied.length).toBeGreaterThan(0);
  expect(denied.join('\n')).toContain(`User: ${taskRole} is not authorized to perform: ${action} on resource: arn:aws:s3:::${bucket}${key ? `/${key}` : ''}`);
});

test('the schedule\'s role may run exactly the archiver\'s task definition on the cluster and pass exactly its roles', async () => {
  const task = [...model.taskDefinitions.values()].find((candidate) => candidate.family === 'lifeboat-binlog-shop')!;
  const other = [...model.taskDefinitions.values()].find((candidate) => candidate.family === 'lifeboat-dump-shop')!;
  const schedule = [...model.schedules.values()].find((candidate) => /:aws-sdk:ecs:runTask$/.test(candidate.targetArn) && JSON.parse(candidate.input ?? '{}').TaskDefinition === task.arn);
  if (!schedule) throw new Error('no RunTask schedule of the shop archiver in the synthesized templates');
  const input = JSON.parse(schedule.input as string) as { Cluster: string; TaskDefinition: string; Overrides: unknown };
  expect(input.Overrides).toEqual({ ContainerOverrides: [{ Name: 'Worker', Environment: [{ Name: 'LIFEBOAT_SCHEDULED_TIME', Value: '<aws.scheduler.scheduled-time>' }] }] });
  const run = (resource: string, cluster = input.Cluster): AwsRequest => ({ principal: schedule.roleArn, action: 'ecs:RunTask', resource, context: { 'ecs:cluster': cluster } });
  const pass = (role: string): AwsRequest => ({ principal: schedule.roleArn, action: 'iam:PassRole', resource: role, context: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } });
  const allowed = async (request: AwsRequest) => (await evaluator.evaluate(request)).allowed;
  expect(await allowed(run(input.TaskDefinition))).toBe(true);
  expect(await allowed(pass(task.taskRoleArn!))).toBe(true);
  expect(await allowed(pass(task.executionRoleArn!))).toBe(true);
  // Nothing else: another task definition, another cluster, another role.
  const denied = await evaluator.evaluate(run(other.arn));
  expect(denied.allowed).toBe(false);
  expect(new AccessDeniedError(denied, 'AccessDeniedException').message).toContain(`User: ${schedule.roleArn} is not authorized to perform: ecs:RunTask on resource: ${other.arn}`);
  expect(await allowed(run(input.TaskDefinition, 'arn:aws:ecs:eu-west-1:111111111111:cluster/another'))).toBe(false);
  expect(await allowed(pass(other.taskRoleArn!))).toBe(false);
});
