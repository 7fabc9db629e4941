/**
 * IAM-true: the whole local cycle of the example config (offsite copy in its own account) with
 * every AWS call evaluated against the synthesized policies of the role that makes it, then
 * the defects found in the templates re-introduced one at a time. Each must be denied, naming
 * the principal, the action and the resource, as AWS would deny it.
 *
 * Re-introduced in a whole run (the run fails, naming the call), and replayed: every request
 * the green cycles made is evaluated again against the tampered policies (the calls a run
 * makes do not depend on the policies, until the first denial).
 */
import * as path from 'node:path';
import { loadConfig } from '../../lib/config';
import type { LocalAws } from '../../local/aws';
import { runLocalCycle } from '../../local/cycle';
import { faultHooks } from '../../local/faults';
import { AccessDeniedError, IamEvaluator, IamModel, type Decision } from '../../local/iam';
import { synthApp, type SynthesizedApp } from '../../local/synth';
import { allows, cloneApp, removeStatements, type StatementMatch } from '../fixtures/tamper';

const config = loadConfig(path.resolve(__dirname, '../../lifeboat.config.ts'));
const PRIMARY = '111111111111';
const OFFSITE = '222222222222';
/** A slot per cycle: each is a new run of the same source. */
const slot = (n: number) => new Date(Date.UTC(2026, 10, 26, 3, 15 * n, 0));

let app: SynthesizedApp;
/** Every decision of the green cycles: a successful run with its drill, and a failed run. */
const recorded: Decision[] = [];

beforeAll(() => {
  app = synthApp(config);
});

async function cycle(opts: Partial<Parameters<typeof runLocalCycle>[0]> & { n: number }) {
  const lines: string[] = [];
  let aws: LocalAws | undefined;
  const code = await runLocalCycle({
    config, log: (line) => lines.push(line), scheduledTime: slot(opts.n), onFinished: (finished) => {
      aws = finished;
    }, ...opts,
  });
  return { code, output: lines.join('\n'), aws: aws as LocalAws };
}

test('the whole cycle across two accounts: every call allowed, each evaluated as the role that makes it', async () => {
  const { code, output, aws } = await cycle({ n: 0 });
  expect(output).toMatch(/Execution SUCCEEDED in/);
  expect(output).toMatch(/measured RTO [\d.]+ s \(target 1h\): OK/);
  expect(output).toMatch(new RegExp(`IAM-true: every AWS call is evaluated against the synthesized policies of the role that makes it \\(\\d+ roles, accounts ${PRIMARY} and ${OFFSITE}\\)`));
  const summary = /IAM-true: (\d+) AWS calls by (\d+) roles evaluated \((\d+) IAM requests\) .*: none denied/.exec(output);
  expect(summary).not.toBeNull();
  expect(Number(summary?.[1])).toBeGreaterThan(40);
  expect(code).toBe(0);

  const decisions = aws.evaluator?.decisions ?? [];
  recorded.push(...decisions);
  expect(decisions.filter((decision) => !decision.allowed)).toEqual([]);
  // Who called: each piece of the app as its own role, in its own account.
  const principals = new Set(decisions.map((decision) => decision.request.principal));
  const has = (pattern: RegExp) => [...principals].some((principal) => pattern.test(principal));
  for (const pattern of [
    new RegExp(`^arn:aws:iam::${PRIMARY}:role/lifeboat/dump/.*Dumporders`),
    /BackupRunVerifyServiceRole/, /BackupRunCommitServiceRole/, /role\/lifeboat\/await-offsite\//, /BackupRunRecordServiceRole/,
    /BackupRunStateMachineRole/, /role\/Lifeboat-replication-eu-west-1$/,
    /role\/lifeboat\/drill\/.*Drillorders/, /RestoreDrillStateMachineRole/, /role\/lifeboat\/operator\//,
  ]) expect({ pattern: String(pattern), found: has(pattern) }).toEqual({ pattern: String(pattern), found: true });
  // Cross-account: the offsite bucket and key (account 222222222222) were read by primary-account roles.
  const crossAccount = decisions.filter((decision) => decision.request.resource.includes(`:${OFFSITE}:key/`) || decision.request.resource.includes(`-${OFFSITE}-`));
  expect(new Set(crossAccount.map((decision) => decision.request.action))).toEqual(new Set(['s3:GetObjectVersion', 's3:GetObject', 's3:ListBucket', 'kms:Decrypt', 's3:ReplicateObject', 's3:ObjectOwnerOverrideToBucketOwner', 'kms:Encrypt']));
}, 180_000);

test('a failed run: the on-call message is published to the encrypted topic by the state machine\'s role', async () => {
  const { code, output, aws } = await cycle({ n: 1, hooks: faultHooks('corrupt-artifact') });
  expect(output).toMatch(/Execution FAILED in .*: ChecksumMismatch/);
  expect(output).toContain('SNS message on the alarm topic (local SNS) — Lifeboat: orders backup failed at Verify: ChecksumMismatch');
  expect(code).toBe(1);
  const decisions = aws.evaluator?.decisions ?? [];
  recorded.push(...decisions);
  expect(decisions.filter((decision) => !decision.allowed)).toEqual([]);
  const publish = decisions.filter((decision) => /BackupRunStateMachineRole/.test(decision.request.principal) && decision.request.call?.startsWith('SNS Publish'));
  expect(publish.map((decision) => decision.request.action)).toEqual(['sns:Publish', 'kms:GenerateDataKey', 'kms:Decrypt']);
}, 180_000);

test('the offsite read path removed again: the run fails at AwaitOffsite, AccessDenied naming principal, action and resource', async () => {
  const { code, output } = await cycle({
    n: 2, tamper: (tampered) => removeStatements(tampered, { resource: 'OffsiteBackupsBucketPolicy', statement: 'AllowReadsFromPrimaryReaders' }),
  });
  expect(output).toMatch(/Execution FAILED in .*: AccessDenied/);
  expect(output).toMatch(new RegExp(`User: arn:aws:iam::${PRIMARY}:role/lifeboat/await-offsite/\\S+ is not authorized to perform: s3:GetObject(Version)? on resource: arn:aws:s3:::lifeboat-offsite-${OFFSITE}-eu-central-1/runs/orders/`));
  expect(output).toMatch(/denied: .*await-offsite.* s3:GetObject/);
  expect(code).toBe(1);
}, 180_000);

test('the state machine\'s use of the topic key removed again: the run still fails with its own error, the publish is what is denied', async () => {
  const { code, output } = await cycle({
    n: 3,
    hooks: faultHooks('corrupt-artifact'),
    tamper: (tampered) => removeStatements(tampered, { resource: 'BackupRunStateMachineRoleDefaultPolicy', statement: allows('kms:GenerateDataKey') }),
  });
  // Today's NotifyFailure had no Catch: the KMS error replaced the run's. Now the run's error stands.
  expect(output).toMatch(/Execution FAILED in .*: ChecksumMismatch/);
  expect(output).toContain('SNS: nothing published to the alarm topic');
  expect(output).toMatch(/denied: \S+BackupRunStateMachineRole\S+ kms:GenerateDataKey arn:aws:kms:eu-west-1:111111111111:key\//);
  expect(code).toBe(1);
}, 180_000);

test('the state machine may not put events: the start heartbeat is denied, naming the call, and the backup still succeeds', async () => {
  const { code, output, aws } = await cycle({
    n: 4,
    tamper: (tampered) => removeStatements(tampered, { resource: 'BackupRunStateMachineRoleDefaultPolicy', statement: allows('events:PutEvents') }),
  });
  expect(output).toMatch(/Execution SUCCEEDED in/);
  expect(output).toMatch(/denied: \S+BackupRunStateMachineRole\S+ events:PutEvents arn:aws:events:eu-west-1:111111111111:event-bus\/default/);
  expect(output).not.toMatch(/POST \{"event":"start"/);
  expect(output).toMatch(/POST \{"event":"success","source":"orders"/);
  expect(aws.stack.events.events.filter((event) => event.DetailType === 'Backup Started')).toEqual([]);
  expect(code).toBe(0);
}, 180_000);

describe('each defect re-introduced, replayed: denied, naming the call', () => {
  const cases: [string, StatementMatch, { principal: RegExp; action: RegExp; resource: RegExp }][] = [
    ['AwaitOffsite and drills cannot read the offsite bucket (its policy admits only the replication role)',
      { resource: 'OffsiteBackupsBucketPolicy', statement: 'AllowReadsFromPrimaryReaders' },
      { principal: /role\/lifeboat\/(await-offsite|drill)\//, action: /^s3:GetObject(Version)?$/, resource: new RegExp(`^arn:aws:s3:::lifeboat-offsite-${OFFSITE}-eu-central-1/runs/`) }],
    ['the offsite key grants the primary account only Encrypt/GenerateDataKey',
      { resource: 'OffsiteBackupsKey', statement: 'AllowDecryptForPrimaryReaders' },
      { principal: /role\/lifeboat\/(await-offsite|drill)\//, action: /^kms:Decrypt$/, resource: new RegExp(`^arn:aws:kms:eu-central-1:${OFFSITE}:key/`) }],
    ['the drill task has no read of its offsite runs',
      { resource: 'DrillordersTaskRoleDefaultPolicy', statement: 'ReadOwnOffsiteRuns' },
      { principal: /role\/lifeboat\/drill\//, action: /^s3:GetObject(Version)?$/, resource: /lifeboat-offsite-/ }],
    ['the state machine has sns:Publish only, not the topic key',
      { resource: 'BackupRunStateMachineRoleDefaultPolicy', statement: allows('kms:GenerateDataKey') },
      { principal: /BackupRunStateMachineRole/, action: /^kms:GenerateDataKey$/, resource: /^arn:aws:kms:eu-west-1:111111111111:key\// }],
    ['the replication role cannot encrypt replicas with the offsite key',
      { resource: 'OffsiteReplicationRoleDefaultPolicy', statement: 'EncryptReplicasWithOffsiteKey' },
      { principal: /role\/Lifeboat-replication-eu-west-1$/, action: /^kms:Encrypt$/, resource: new RegExp(`^arn:aws:kms:eu-central-1:${OFFSITE}:key/`) }],
    ['the dump task cannot answer its task token',
      { resource: 'DumpordersTaskRoleDefaultPolicy', statement: 'AnswerTaskToken' },
      { principal: /role\/lifeboat\/dump\//, action: /^states:SendTask(Success|Heartbeat)$/, resource: /:stateMachine:Lifeboat-backup-run$/ }],
    ['Commit cannot lock the verdict it writes',
      { resource: 'BackupRunCommitServiceRoleDefaultPolicy', statement: allows('s3:PutObjectRetention') },
      { principal: /BackupRunCommitServiceRole/, action: /^s3:PutObjectRetention$/, resource: /\/runs\/orders\/\d{8}T\d{6}Z\/verification\.json$/ }],
    ['AwaitOffsite has no write of offsite.json',
      { resource: 'BackupRunAwaitOffsiteRoleDefaultPolicy', statement: allows('s3:PutObject') },
      { principal: /role\/lifeboat\/await-offsite\//, action: /^s3:PutObject$/, resource: /\/runs\/orders\/\d{8}T\d{6}Z\/offsite\.json$/ }],
    ['the operators cannot read the runs their status and runbook read',
      { resource: 'OperatorsPolicy', statement: 'ReadRuns' },
      { principal: /role\/lifeboat\/operator\//, action: /^s3:GetObject(Version)?$/, resource: /lifeboat-primary-backupsbucket\w+\/runs\/orders\// }],
  ];

  test.each(cases)('%s', async (_defect, match, expected) => {
    expect(recorded.length).toBeGreaterThan(0);
    const tampered = cloneApp(app);
    removeStatements(tampered, match);
    const evaluator = new IamEvaluator(IamModel.fromApp(tampered));
    const denied: Decision[] = [];
    for (const { request } of recorded) {
      const decision = await evaluator.evaluate(request);
      if (!decision.allowed) denied.push(decision);
    }
    const hit = denied.find((decision) =>
      expected.principal.test(decision.request.principal) && expected.action.test(decision.request.action) && expected.resource.test(decision.request.resource));
    expect(hit).toBeDefined();
    const message = new AccessDeniedError(hit as Decision, 'AccessDenied').message;
    expect(message).toContain(`User: ${hit?.request.principal} is not authorized to perform: ${hit?.request.action} on resource: ${hit?.request.resource} because `);
  });

  test('the untampered policies allow every recorded call', async () => {
    expect(recorded.length).toBeGreaterThan(100);
    const evaluator = new IamEvaluator(IamModel.fromApp(cloneApp(app)));
    for (const { request } of recorded) expect(await evaluator.evaluate(request)).toMatchObject({ allowed: true });
  });
});

test('the dump task is refused by the bucket when it overwrites an earlier run\'s manifest.json (a write without If-None-Match)', async () => {
  const model = IamModel.fromApp(app);
  const principal = [...model.principals.values()].find((candidate) => /role\/lifeboat\/dump\/.*Dumporders/.test(candidate.arn))?.arn as string;
  const bucket = [...model.buckets.values()].find((candidate) => candidate.origin.startsWith('Lifeboat-Primary/Backups') && candidate.objectLockEnabled) as { arn: string };
  const decision = await new IamEvaluator(model).evaluate({
    principal, action: 's3:PutObject', resource: `${bucket.arn}/runs/orders/20261126T030000Z/manifest.json`, context: { 's3:ObjectCreationOperation': 'true' },
  });
  // Its identity policy allows runs/orders/* (new runs): the bucket's explicit deny decides.
  expect(decision).toMatchObject({ allowed: false, explanation: expect.stringMatching(/explicit deny in statement "WriteOnceRuns" of the bucket policy of lifeboat-primary-backupsbucket/) });
});

test.each(['the dump task', 'the verifier'])('%s is refused by the bucket when it writes a verdict, whatever its identity policy', async (who) => {
  const model = IamModel.fromApp(app);
  const evaluator = new IamEvaluator(model);
  const principal = [...model.principals.values()].find((candidate) => (who === 'the dump task' ? /role\/lifeboat\/dump\/.*Dumporders/ : /BackupRunVerifyServiceRole/).test(candidate.arn))?.arn as string;
  const bucket = [...model.buckets.values()].find((candidate) => candidate.origin.startsWith('Lifeboat-Primary/Backups') && candidate.objectLockEnabled) as { arn: string };
  const decision = await evaluator.evaluate({
    principal, action: 's3:PutObject', resource: `${bucket.arn}/runs/orders/20261126T030000Z/verification.json`,
    context: { 's3:if-none-match': '*', 's3:ObjectCreationOperation': 'true' },
  });
  expect(decision.allowed).toBe(false);
  expect(decision.explanation).toMatch(/explicit deny in statement "OnlyWritersVerification" of the bucket policy of lifeboat-primary-backupsbucket/);
});
