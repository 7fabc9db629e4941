/**
 * The native PITR checks as deployed, IAM-true: NativePitrChecks synthesized in a small app (the
 * primary stack holding it, the offsite stack holding the offsite key; the stacks' own wiring
 * comes with the lead's commit), its handler run as the function's role against the fake RDS,
 * every RDS call (and the KMS requests replication with the offsite key implies) evaluated
 * against the synthesized policies. Asserted: the EMF documents the handler writes, the managed
 * source fixed, and a permission removed from the role denied naming principal, action and
 * resource.
 */
import { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as kms from 'aws-cdk-lib/aws-kms';
import type { Source } from '../../lib/config/types';
import { NativePitrChecks } from '../../lib/constructs/native-pitr';
import { ResolvedStack, type CfnTemplate } from '../../local/cfn/resolve';
import { asPrincipal, IamEvaluator, IamModel, requestsForCall } from '../../local/iam';
import { testApp } from '../fixtures/cdk-app';
import { testConfig, tier1 } from '../fixtures/config';
import { FakeRds, mockRdsIamTrue, type RdsMock } from '../harness/rds';

const ACCOUNT = '111111111111';
const PRIMARY = 'eu-west-1';
const OFFSITE = 'eu-central-1';

function rdsSource(name: string, kind: 'instance' | 'cluster', identifier: string, manage: boolean): Source {
  return {
    ...testConfig.sources[0], name, tier: { ...tier1, manageNativeBackups: manage },
    rds: { kind, identifier, detected: true, region: PRIMARY, requiredWindowDays: 14, manage, drill: { securityGroupIds: [] } },
  };
}
const sources = [rdsSource('orders', 'instance', 'orders-db', true), rdsSource('ledger', 'cluster', 'ledger', false)];

/** The offsite stack (its key), then the primary stack given that key's ARN, as the stacks' wiring passes it. */
function synth(): { primary: ResolvedStack; offsite: ResolvedStack; offsiteKeyArn: string } {
  const offsiteApp = testApp();
  const offsiteStack = new Stack(offsiteApp, 'Lifeboat-Offsite', { env: { account: ACCOUNT, region: OFFSITE } });
  const key = new kms.Key(offsiteStack, 'OffsiteKey', { enableKeyRotation: true });
  const offsite = new ResolvedStack(Template.fromStack(offsiteStack).toJSON() as CfnTemplate, { stackName: 'Lifeboat-Offsite', account: ACCOUNT, region: OFFSITE });
  const offsiteKeyArn = offsite.resolve({ 'Fn::GetAtt': [offsiteStack.getLogicalId(key.node.defaultChild as never), 'Arn'] }) as string;

  const app = testApp();
  const stack = new Stack(app, 'Lifeboat-Primary', { env: { account: ACCOUNT, region: PRIMARY } });
  new NativePitrChecks(stack, 'NativePitrChecks', { appName: 'Lifeboat', sources, offsite: { region: OFFSITE, keyArn: offsiteKeyArn } });
  const primary = new ResolvedStack(Template.fromStack(stack).toJSON() as CfnTemplate, { stackName: 'Lifeboat-Primary', account: ACCOUNT, region: PRIMARY });
  return { primary, offsite, offsiteKeyArn };
}
const { primary, offsite, offsiteKeyArn } = synth();

/** The same templates with one statement (by Sid) taken out of the checks role's policy. */
function without(sid: string): IamModel {
  const template = JSON.parse(JSON.stringify(primary.template)) as CfnTemplate;
  let removed = 0;
  for (const resource of Object.values(template.Resources)) {
    if (resource.Type !== 'AWS::IAM::Policy') continue;
    const document = (resource.Properties as { PolicyDocument: { Statement: { Sid?: string }[] } }).PolicyDocument;
    const before = document.Statement.length;
    document.Statement = document.Statement.filter((statement) => statement.Sid !== sid);
    removed += before - document.Statement.length;
  }
  if (removed !== 1) throw new Error(`expected one statement ${sid}, found ${removed}`);
  return IamModel.fromApp({ config: undefined as never, primary: new ResolvedStack(template, { stackName: 'Lifeboat-Primary', account: ACCOUNT, region: PRIMARY }), offsite });
}

const model = IamModel.fromApp({ config: undefined as never, primary, offsite });
const fn = [...model.functions.values()].find((candidate) => candidate.logicalId.startsWith('NativePitrChecksFunction'));
if (!fn) throw new Error('no native checks function in the synthesized template');
const role = fn.roleArn;
const environment = (primary.properties(fn.logicalId).Environment as { Variables: Record<string, string> }).Variables;

type Handler = (event: unknown, context: unknown) => Promise<unknown>;
interface Emf { source?: string; _aws: { Timestamp: number; CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string; Unit: string }[] }[] }; [metric: string]: unknown }

let handler: Handler;
let fake: FakeRds;
let rds: RdsMock | undefined;

beforeAll(() => {
  const saved = { ...process.env };
  Object.assign(process.env, environment);
  try {
    // Loaded once with the synthesized environment (it reads it at load, as in Lambda), sharing the mocked SDK.
    ({ handler } = jest.requireActual<{ handler: Handler }>('../../lambdas/native-checks/handler'));
  } finally {
    process.env = saved;
  }
});

beforeEach(() => {
  // The handler measures against the real clock.
  fake = new FakeRds({ account: ACCOUNT, region: PRIMARY, now: new Date() });
  fake.addInstance({ identifier: 'orders-db', backupRetentionPeriod: 3, storageEncrypted: true, kmsKeyId: `arn:aws:kms:${PRIMARY}:${ACCOUNT}:key/primary` });
  fake.addCluster({ identifier: 'ledger', backupRetentionPeriod: 7 });
});
afterEach(() => rds?.restore());

/** Runs the handler as the checks role; returns its outcome and the EMF documents it wrote. */
async function invoke(evaluator: IamEvaluator): Promise<{ result?: unknown; error?: Error; emf: Emf[] }> {
  rds = mockRdsIamTrue(fake, { evaluator });
  const lines: string[] = [];
  const write = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    lines.push(...String(chunk).split('\n').filter(Boolean));
    return true;
  });
  try {
    const result = await asPrincipal(role, () => handler({}, { functionName: 'native-checks', awsRequestId: 'r-1', getRemainingTimeInMillis: () => 60_000 }));
    return { result, emf: parse(lines) };
  } catch (error) {
    return { error: error as Error, emf: parse(lines) };
  } finally {
    write.mockRestore();
  }
}
const parse = (lines: string[]) => lines.filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as Emf).filter((doc) => doc._aws !== undefined);

test('as its synthesized role: every call allowed, the managed instance fixed (replication started with the offsite key), the metrics per source', async () => {
  const evaluator = new IamEvaluator(model);
  const { error, emf } = await invoke(evaluator);
  expect(error).toBeUndefined();
  expect(evaluator.denials).toEqual([]);
  // Every call was evaluated as the role, in its region; replication's implied KMS requests too.
  expect(rds?.calls.every((call) => call.principal === role)).toBe(true);
  expect(rds?.calls.map((call) => `${call.command} ${call.region}`)).toEqual([
    `DescribeDBInstances ${PRIMARY}`, `ModifyDBInstance ${PRIMARY}`, `DescribeDBInstanceAutomatedBackups ${PRIMARY}`,
    `StartDBInstanceAutomatedBackupsReplication ${OFFSITE}`, `DescribeDBClusters ${PRIMARY}`,
  ]);
  expect(evaluator.decisions.map((decision) => decision.request.action)).toEqual(expect.arrayContaining(['kms:CreateGrant', 'kms:DescribeKey']));
  expect(fake.describeInstance('orders-db')?.BackupRetentionPeriod).toBe(14);
  expect(fake.replicationsOf('orders-db')).toEqual([expect.objectContaining({ KmsKeyId: offsiteKeyArn, BackupRetentionPeriod: 14 })]);

  expect(emf.map((doc) => doc.source)).toEqual(['orders', 'ledger']);
  for (const doc of emf) {
    expect(doc._aws.CloudWatchMetrics).toHaveLength(1);
    expect(doc._aws.CloudWatchMetrics[0]).toMatchObject({ Namespace: 'Lifeboat', Dimensions: [['source']] });
  }
  const [orders, ledger] = emf;
  expect(orders._aws.CloudWatchMetrics[0].Metrics).toEqual([
    { Name: 'NativeRetentionShortfallDays', Unit: 'Count' }, { Name: 'NativeRestorableAgeSeconds', Unit: 'Seconds' },
  ]);
  expect(orders.NativeRetentionShortfallDays).toBe(0);
  expect(orders.NativeRestorableAgeSeconds).toBeGreaterThanOrEqual(300);
  expect(orders.NativeRestorableAgeSeconds).toBeLessThan(330);
  expect(ledger._aws.CloudWatchMetrics[0].Metrics.map((metric) => metric.Name)).toEqual(['NativeRetentionShortfallDays', 'NativeRestorableAgeSeconds']);
});

test('once replicating, the offsite age is published for the instance (never for the cluster)', async () => {
  fake.setRetention('orders-db', 14);
  fake.addReplication('orders-db', OFFSITE, { kmsKeyId: offsiteKeyArn, startedAt: new Date(fake.now.getTime() - 86_400_000) });
  const { error, emf } = await invoke(new IamEvaluator(model));
  expect(error).toBeUndefined();
  const [orders, ledger] = emf;
  expect(orders._aws.CloudWatchMetrics[0].Metrics.map((metric) => metric.Name)).toContain('NativeOffsiteAgeSeconds');
  expect(orders.NativeOffsiteAgeSeconds).toBeGreaterThanOrEqual(900);
  expect(orders.NativeOffsiteAgeSeconds).toBeLessThan(930);
  expect(ledger._aws.CloudWatchMetrics[0].Metrics.map((metric) => metric.Name)).not.toContain('NativeOffsiteAgeSeconds');
  expect(rds?.calls.map((call) => `${call.command} ${call.region}`)).toContain(`DescribeDBInstanceAutomatedBackups ${OFFSITE}`);
});

test('a permission removed from the role is denied in the check, naming principal, action and resource; the invocation fails after every source', async () => {
  const evaluator = new IamEvaluator(without('ReplicateAutomatedBackups'));
  const { error, emf } = await invoke(evaluator);
  expect(error).toMatchObject({ name: 'NativeCheckFailed' });
  expect(error?.message).toContain(`orders (AccessDenied: User: ${role} is not authorized to perform: rds:StartDBInstanceAutomatedBackupsReplication on resource: arn:aws:rds:${PRIMARY}:${ACCOUNT}:db:orders-db`);
  expect(evaluator.denials.map((denial) => [denial.request.principal, denial.request.action, denial.request.resource])).toEqual([
    [role, 'rds:StartDBInstanceAutomatedBackupsReplication', `arn:aws:rds:${PRIMARY}:${ACCOUNT}:db:orders-db`],
  ]);
  expect(fake.replicationsOf('orders-db')).toEqual([]);
  // What was measured before the denial is published (the retention raised, LatestRestorableTime), the offsite age is not
  // (its alarm's missing data breaches); the cluster was still measured and published.
  expect(emf.map((doc) => doc.source)).toEqual(['orders', 'ledger']);
  expect(emf[0]._aws.CloudWatchMetrics[0].Metrics.map((metric) => metric.Name)).toEqual(['NativeRetentionShortfallDays', 'NativeRestorableAgeSeconds']);
});

test('the offsite key through RDS in another region is denied', async () => {
  const evaluator = new IamEvaluator(model);
  const requests = requestsForCall(model, role, 'RDS', 'StartDBInstanceAutomatedBackupsReplication', {
    SourceDBInstanceArn: `arn:aws:rds:${PRIMARY}:${ACCOUNT}:db:orders-db`, KmsKeyId: offsiteKeyArn,
  }, 'us-east-1').requests.filter((request) => request.action.startsWith('kms:'));
  const decisions = await Promise.all(requests.map((request) => evaluator.evaluate(request)));
  expect(decisions.map((decision) => [decision.request.action, decision.allowed])).toEqual([['kms:CreateGrant', false], ['kms:DescribeKey', false]]);
});
