/**
 * IAM-true for the offsite copy of DB clusters' PITR: the copiers run as their synthesized roles
 * (a CDK app with both constructs, primary and offsite in different accounts and regions) and
 * every RDS call they make is evaluated against those roles' policies and the offsite key's
 * policy (local/iam) before the fake RDS answers it (test/harness/rds.ts). A denied call fails
 * with RDS's AccessDenied naming principal, action and resource.
 */
import {
  CopyDBClusterSnapshotCommand, DeleteDBClusterSnapshotCommand, DescribeDBClusterSnapshotAttributesCommand, DescribeDBClusterSnapshotsCommand, RDSClient, type DBClusterSnapshot,
} from '@aws-sdk/client-rds';
import { Stack } from 'aws-cdk-lib';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import { mockClient } from 'aws-sdk-client-mock';
import type { Source } from '../../lib/config/types';
import { NativeSnapshotCopy, OffsiteSnapshotCopy } from '../../lib/constructs/native-snapshot-copy';
import { createRdsClient } from '../../lib/rds/client';
import { advanceOffsiteCopies, advancePrimaryCopies, type ClusterCopySource, type PrimaryCopyDeps } from '../../lib/rds/snapshot-copy';
import { ResolvedStack, type CfnTemplate } from '../../local/cfn/resolve';
import { AccessDeniedError, asPrincipal, currentPrincipal, IamEvaluator, IamModel, requestsForCall } from '../../local/iam';
import { testApp } from '../fixtures/cdk-app';
import { testConfig } from '../fixtures/config';
import { FakeRds, mockRdsIamTrue, type RdsMock } from '../harness/rds';

const PRIMARY_ACCOUNT = '111111111111';
const OFFSITE_ACCOUNT = '222222222222';
const PRIMARY = 'eu-west-1';
const OFFSITE = 'eu-central-1';
const OFFSITE_KEY_ALIAS = `arn:aws:kms:${OFFSITE}:${OFFSITE_ACCOUNT}:alias/lifeboat-offsite`;
const OTHER_KEY_ALIAS = `arn:aws:kms:${OFFSITE}:${OFFSITE_ACCOUNT}:alias/not-for-lifeboat`;
const DAY = 86_400_000;
const HOUR = 3_600_000;
const credentials = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'not-a-secret' };
const rds = (region: string) => createRdsClient({ region, credentials, maxAttempts: 1 });

const source: Source = {
  ...testConfig.sources[0],
  name: 'orders',
  rds: { kind: 'cluster', identifier: 'orders-aurora', detected: false, region: PRIMARY, requiredWindowDays: 35, manage: false, drill: { securityGroupIds: [] } },
};
const orders: ClusterCopySource = { name: 'orders', identifier: 'orders-aurora', region: PRIMARY, retentionSeconds: source.tier.retentionSeconds };

/** Both stacks, synthesized as they would deploy, read into the IAM model. */
function synthModel(): IamModel {
  const app = testApp();
  const primaryStack = new Stack(app, 'Lifeboat-Primary', { env: { account: PRIMARY_ACCOUNT, region: PRIMARY } });
  new NativeSnapshotCopy(primaryStack, 'NativeSnapshotCopy', {
    appName: 'Lifeboat', sources: [source], primaryAccount: PRIMARY_ACCOUNT,
    offsite: { region: OFFSITE, account: OFFSITE_ACCOUNT, keyArn: OFFSITE_KEY_ALIAS },
  });
  const offsiteStack = new Stack(app, 'Lifeboat-Offsite', { env: { account: OFFSITE_ACCOUNT, region: OFFSITE } });
  const key = new kms.Key(offsiteStack, 'OffsiteKey', { enableKeyRotation: true, alias: 'alias/lifeboat-offsite' });
  // A key of the offsite account whose policy says nothing of the primary copier.
  new kms.Key(offsiteStack, 'OtherKey', { enableKeyRotation: true, alias: 'alias/not-for-lifeboat' });
  const topic = new sns.Topic(offsiteStack, 'Alarms', { enforceSSL: true, masterKey: key });
  new OffsiteSnapshotCopy(offsiteStack, 'OffsiteSnapshotCopy', { appName: 'Lifeboat', sources: [source], primaryAccount: PRIMARY_ACCOUNT, primaryRegion: PRIMARY, key, alarmTopic: topic });
  const assembly = app.synth();
  const resolved = (stack: Stack, account: string, region: string) =>
    new ResolvedStack(assembly.getStackArtifact(stack.artifactId).template as CfnTemplate, { stackName: stack.stackName, account, region });
  return IamModel.fromApp({ config: undefined as never, primary: resolved(primaryStack, PRIMARY_ACCOUNT, PRIMARY), offsite: resolved(offsiteStack, OFFSITE_ACCOUNT, OFFSITE) });
}

const model = synthModel();
const roleArn = (predicate: (name: string, origin: string) => boolean) => {
  const found = [...model.principals.values()].find((principal) => predicate(principal.name, principal.origin));
  if (!found) throw new Error('no such role in the synthesized templates');
  return found.arn;
};
const COPIER = roleArn((_name, origin) => origin.startsWith('Lifeboat-Primary/NativeSnapshotCopyRole'));
const OFFSITE_COPIER = roleArn((_name, origin) => origin.startsWith('Lifeboat-Offsite/OffsiteSnapshotCopyRole'));
const SCHEDULE_ROLE = roleArn((_name, origin) => origin.startsWith('Lifeboat-Primary/NativeSnapshotCopyScheduleRole'));

let fake: FakeRds;
let evaluator: IamEvaluator;
let mock: RdsMock;
beforeEach(() => {
  fake = new FakeRds({ account: PRIMARY_ACCOUNT, region: PRIMARY, now: new Date('2026-12-04T05:00:00Z') });
  fake.addCluster({ identifier: 'orders-aurora', storageEncrypted: true, kmsKeyId: `arn:aws:kms:${PRIMARY}:${PRIMARY_ACCOUNT}:key/aaaa` });
  evaluator = new IamEvaluator(model);
  mock = mockRdsIamTrue(fake, { evaluator });
});
afterEach(() => mock.restore());

const deps = (keyArn = OFFSITE_KEY_ALIAS): PrimaryCopyDeps => ({
  rds, primaryAccount: PRIMARY_ACCOUNT, now: fake.now, offsite: { region: OFFSITE, account: OFFSITE_ACCOUNT, keyArn },
});
const denialMessages = () => evaluator.denials.map((decision) => `${decision.request.principal} ${decision.request.action} ${decision.request.resource}`);

test('a week of the primary copier as its synthesized role: every call allowed (copy with the offsite key, share, delete staging copies)', async () => {
  for (let day = 0; day < 6; day += 1) {
    fake.addAutomatedClusterSnapshot('orders-aurora', new Date(fake.now.getTime() - HOUR));
    for (let run = 0; run < 3; run += 1) {
      const reports = await asPrincipal(COPIER, () => advancePrimaryCopies(deps(), [orders]));
      expect(reports[0].error).toBeUndefined();
      fake.advance(HOUR);
    }
    fake.advance(DAY - 3 * HOUR);
  }
  expect(denialMessages()).toEqual([]);
  const made = new Set(mock.calls.filter((call) => call.principal === COPIER && !call.error).map((call) => call.command));
  expect([...made].sort()).toEqual([
    'CopyDBClusterSnapshot', 'DeleteDBClusterSnapshot', 'DescribeDBClusterSnapshotAttributes', 'DescribeDBClusterSnapshots', 'ModifyDBClusterSnapshotAttribute',
  ]);
  // The KMS requests of the copies were evaluated, cross-account, against the offsite key's policy.
  expect(evaluator.decisions.some((decision) => decision.request.action === 'kms:CreateGrant' && decision.allowed && decision.request.resource.includes(`:${OFFSITE_ACCOUNT}:key/`))).toBe(true);
});

test.each<[string, string, () => Promise<unknown>, RegExp]>([
  ['copy into a name that is not lifeboat-<source>-*', 'rds:CopyDBClusterSnapshot',
    () => rds(OFFSITE).send(new CopyDBClusterSnapshotCommand({
      SourceDBClusterSnapshotIdentifier: fake.clusterSnapshots(PRIMARY)[0].DBClusterSnapshotArn, TargetDBClusterSnapshotIdentifier: 'keep-forever',
      KmsKeyId: OFFSITE_KEY_ALIAS,
    })),
    /cluster-snapshot:keep-forever/],
  ['delete a snapshot that is not a Lifeboat copy', 'rds:DeleteDBClusterSnapshot',
    () => rds(OFFSITE).send(new DeleteDBClusterSnapshotCommand({ DBClusterSnapshotIdentifier: 'orders-before-migration' })),
    /cluster-snapshot:orders-before-migration/],
  ['read another snapshot\'s sharing', 'rds:DescribeDBClusterSnapshotAttributes',
    () => rds(OFFSITE).send(new DescribeDBClusterSnapshotAttributesCommand({ DBClusterSnapshotIdentifier: 'billing-manual' })),
    /cluster-snapshot:billing-manual/],
  ['encrypt a copy with a key of the offsite account whose policy does not admit it', 'kms:CreateGrant',
    () => rds(OFFSITE).send(new CopyDBClusterSnapshotCommand({
      SourceDBClusterSnapshotIdentifier: fake.clusterSnapshots(PRIMARY)[0].DBClusterSnapshotArn, TargetDBClusterSnapshotIdentifier: 'lifeboat-orders-202612040400',
      KmsKeyId: OTHER_KEY_ALIAS,
    })),
    /:kms:eu-central-1:222222222222:key\//],
])('the copier may not %s: AccessDenied naming principal, action and resource', async (_what, action, call, resource) => {
  fake.addAutomatedClusterSnapshot('orders-aurora', new Date('2026-12-04T04:00:00Z'));
  const error = await asPrincipal(COPIER, call).then(() => undefined, (caught: unknown) => caught as Error);
  expect(error?.name).toBe('AccessDenied');
  expect(error?.message).toContain(`User: ${COPIER} is not authorized to perform: ${action} on resource: `);
  expect(error?.message).toMatch(resource);
  expect(fake.clusterSnapshots(OFFSITE)).toEqual([]);
});

test('another role of the primary stack (the schedule\'s) may not run the copier: the run fails on its first listing', async () => {
  fake.addAutomatedClusterSnapshot('orders-aurora', new Date('2026-12-04T04:00:00Z'));
  await expect(asPrincipal(SCHEDULE_ROLE, () => advancePrimaryCopies(deps(), [orders])))
    .rejects.toThrow(`User: ${SCHEDULE_ROLE} is not authorized to perform: rds:DescribeDBClusterSnapshots on resource: arn:aws:rds:${OFFSITE}:${PRIMARY_ACCOUNT}:cluster-snapshot:*`);
  expect(fake.clusterSnapshots(OFFSITE)).toEqual([]);
});

/**
 * RDS as the offsite account sees it, IAM-true: each call is authorized as the offsite copier's
 * role before it is answered. The primary's staging copies shared with this account (read off
 * the primary FakeRds's restore attributes) are listed as shared; copies made are this account's.
 * A shared snapshot's restore attribute is RDS's resource-side permission: the model holds no
 * such resource policy, so a request on a shared snapshot of the primary account is allowed on
 * the resource side exactly when the fake says it is shared with this account (and the identity
 * side is still evaluated).
 */
function offsiteAccountRds(shared: DBClusterSnapshot[]) {
  const stub = mockClient(RDSClient);
  const own = new Map<string, DBClusterSnapshot>();
  const sharedArns = new Set(shared.map((snapshot) => snapshot.DBClusterSnapshotArn));
  const authorize = async (command: string, input: Record<string, unknown>) => {
    const principal = currentPrincipal();
    if (!principal) throw new Error('offsite RDS called outside a principal scope');
    const { requests, errorName } = requestsForCall(model, principal, 'RDS', command, input, OFFSITE);
    for (const request of requests) {
      const onShared = sharedArns.has(request.resource) && model.principal(principal).account === OFFSITE_ACCOUNT;
      const decision = onShared ? await evaluateIdentityOnly(request) : await evaluator.evaluate(request);
      if (!decision.allowed) throw new AccessDeniedError(decision, errorName);
    }
  };
  const evaluateIdentityOnly = (request: Parameters<IamEvaluator['evaluate']>[0]) =>
    // The same evaluation with the resource in the caller's account: identity policies decide, as with a resource policy that allows.
    evaluator.evaluate({ ...request, resource: request.resource.replace(`:${PRIMARY_ACCOUNT}:`, `:${OFFSITE_ACCOUNT}:`) });
  stub.on(CopyDBClusterSnapshotCommand).callsFake(async (input: Record<string, unknown>) => {
    await authorize('CopyDBClusterSnapshot', input);
    const id = String(input.TargetDBClusterSnapshotIdentifier);
    const copy: DBClusterSnapshot = {
      DBClusterSnapshotIdentifier: id, DBClusterSnapshotArn: `arn:aws:rds:${OFFSITE}:${OFFSITE_ACCOUNT}:cluster-snapshot:${id}`, SnapshotType: 'manual',
      Status: 'available', SnapshotCreateTime: fake.now, KmsKeyId: String(input.KmsKeyId), StorageEncrypted: true, DBClusterIdentifier: 'orders-aurora',
    };
    own.set(id, copy);
    return { DBClusterSnapshot: copy };
  });
  stub.on(DeleteDBClusterSnapshotCommand).callsFake(async (input: Record<string, unknown>) => {
    await authorize('DeleteDBClusterSnapshot', input);
    own.delete(String(input.DBClusterSnapshotIdentifier));
    return {};
  });
  stub.on(DescribeDBClusterSnapshotsCommand).callsFake(async (input: Record<string, unknown>) => {
    await authorize('DescribeDBClusterSnapshots', input);
    if (input.SnapshotType === 'shared') {
      return { DBClusterSnapshots: shared.map((snapshot) => ({ ...snapshot, DBClusterSnapshotIdentifier: snapshot.DBClusterSnapshotArn, SnapshotType: 'shared' })) };
    }
    return { DBClusterSnapshots: [...own.values()] };
  });
  return { stub, own };
}

test('cross-account end to end: the primary shares its staging copy, the offsite copier (its own role) copies it with its key, every call allowed', async () => {
  fake.addAutomatedClusterSnapshot('orders-aurora', new Date('2026-12-04T04:00:00Z'));
  for (let run = 0; run < 3; run += 1) {
    await asPrincipal(COPIER, () => advancePrimaryCopies(deps(), [orders]));
    fake.advance(HOUR);
  }
  const staged = fake.clusterSnapshots(OFFSITE);
  const shared = [];
  for (const snapshot of staged) {
    const attributes = await fake.handle('DescribeDBClusterSnapshotAttributes', { DBClusterSnapshotIdentifier: snapshot.DBClusterSnapshotIdentifier }, OFFSITE) as
      { DBClusterSnapshotAttributesResult: { DBClusterSnapshotAttributes: { AttributeValues: string[] }[] } };
    if (attributes.DBClusterSnapshotAttributesResult.DBClusterSnapshotAttributes[0].AttributeValues.includes(OFFSITE_ACCOUNT)) shared.push(snapshot);
  }
  expect(shared.map((snapshot) => snapshot.DBClusterSnapshotIdentifier)).toEqual(['lifeboat-orders-202612040400']);
  mock.restore();

  const { stub, own } = offsiteAccountRds(shared);
  try {
    const offsiteKey = [...model.keys.values()].find((key) => key.aliases.includes('alias/lifeboat-offsite'))?.arn as string;
    const [report] = await asPrincipal(OFFSITE_COPIER, () => advanceOffsiteCopies(
      { rds: rds(OFFSITE), primaryAccount: PRIMARY_ACCOUNT, keyArn: offsiteKey, now: fake.now }, [{ name: 'orders', retentionSeconds: orders.retentionSeconds }],
    ));
    expect(report.error).toBeUndefined();
    expect([...own.keys()]).toEqual(['lifeboat-orders-202612040400']);
    expect(own.get('lifeboat-orders-202612040400')?.KmsKeyId).toBe(offsiteKey);
    expect(denialMessages()).toEqual([]);

    // The offsite copier may not delete the primary account's staging copies (nor any snapshot not its own copy).
    const error = await asPrincipal(OFFSITE_COPIER, () => rds(OFFSITE).send(new DeleteDBClusterSnapshotCommand({ DBClusterSnapshotIdentifier: 'orders-before-migration' })))
      .then(() => undefined, (caught: unknown) => caught as Error);
    expect(error?.message).toContain(`User: ${OFFSITE_COPIER} is not authorized to perform: rds:DeleteDBClusterSnapshot on resource: arn:aws:rds:${OFFSITE}:${OFFSITE_ACCOUNT}:cluster-snapshot:orders-before-migration`);
  } finally {
    stub.restore();
  }
});
