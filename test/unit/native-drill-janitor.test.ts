/**
 * The RDS drill janitor (lib/rds/drill-janitor.ts) on the fake RDS, as the janitor Lambda's
 * synthesized role (NativeDrillJanitor), every call evaluated IAM-true: a tagged drill instance
 * or cluster older than the maximum age is deleted without a final snapshot, a young one is kept
 * (a drill may still be running), an untagged one is never touched — even named `lbd-` — and the
 * role could not delete it if the janitor tried.
 */
import { DeleteDBInstanceCommand } from '@aws-sdk/client-rds';
import { Stack } from 'aws-cdk-lib';
import type { Source } from '../../lib/config/types';
import { NativeDrillJanitor } from '../../lib/constructs/native-drill';
import { createRdsClient } from '../../lib/rds/client';
import { cleanDrillLeftovers, decideLeftovers } from '../../lib/rds/drill-janitor';
import { DRILL_CREATED_TAG, DRILL_TAG } from '../../lib/rds/drill-target';
import { ResolvedStack, type CfnTemplate } from '../../local/cfn/resolve';
import { asPrincipal, IamEvaluator, IamModel } from '../../local/iam';
import { testApp } from '../fixtures/cdk-app';
import { testConfig } from '../fixtures/config';
import { FakeRds, mockRdsIamTrue, type RdsMock } from '../harness/rds';

const ACCOUNT = '111111111111';
const REGION = 'eu-west-1';
const HOUR = 3_600_000;
const NOW = new Date('2026-12-04T12:00:00Z');
const credentials = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'not-a-secret' };

const source: Source = {
  ...testConfig.sources[0],
  name: 'orders',
  rds: { kind: 'instance', identifier: 'orders-db', detected: false, region: REGION, requiredWindowDays: 35, manage: false, drill: { securityGroupIds: [] } },
};

function synthModel(): IamModel {
  const app = testApp();
  const stack = new Stack(app, 'Lifeboat-Primary', { env: { account: ACCOUNT, region: REGION } });
  new NativeDrillJanitor(stack, 'NativeDrillJanitor', { appName: 'Lifeboat', sources: [source], maxAgeHours: 6 });
  const template = app.synth().getStackArtifact(stack.artifactId).template as CfnTemplate;
  const model = new IamModel();
  model.addStack(new ResolvedStack(template, { stackName: stack.stackName, account: ACCOUNT, region: REGION }));
  return model;
}

const model = synthModel();
const JANITOR = (() => {
  const found = [...model.principals.values()].find((principal) => principal.origin.startsWith('Lifeboat-Primary/NativeDrillJanitor'));
  if (!found) throw new Error('no janitor role in the synthesized template');
  return found.arn;
})();

const drillTags = (sourceName: string, created: Date) => [{ Key: DRILL_TAG, Value: sourceName }, { Key: DRILL_CREATED_TAG, Value: created.toISOString() }];

let fake: FakeRds;
let evaluator: IamEvaluator;
let mock: RdsMock;
beforeEach(() => {
  fake = new FakeRds({ account: ACCOUNT, region: REGION, now: NOW });
  evaluator = new IamEvaluator(model);
  mock = mockRdsIamTrue(fake, { evaluator });
  fake.addInstance({ identifier: 'orders-db' });
  // A leftover of a drill 7 hours ago, one of a drill running now, and an untagged instance someone named lbd-.
  fake.addInstance({ identifier: 'lbd-orders-0a1b2c3d', createdAt: new Date(NOW.getTime() - 7 * HOUR), tags: drillTags('orders', new Date(NOW.getTime() - 7 * HOUR)) });
  fake.addInstance({ identifier: 'lbd-orders-9f8e7d6c', createdAt: new Date(NOW.getTime() - HOUR), tags: drillTags('orders', new Date(NOW.getTime() - HOUR)) });
  fake.addInstance({ identifier: 'lbd-not-a-drill', createdAt: new Date(NOW.getTime() - 30 * 24 * HOUR), tags: [{ Key: 'team', Value: 'payments' }] });
  // An Aurora drill's cluster and its instance, 8 hours old.
  fake.addCluster({
    identifier: 'lbd-ledger-11223344', engine: 'aurora-postgresql', createdAt: new Date(NOW.getTime() - 8 * HOUR),
    tags: drillTags('ledger', new Date(NOW.getTime() - 8 * HOUR)), members: [],
  });
  fake.addInstance({
    identifier: 'lbd-ledger-11223344-1', engine: 'aurora-postgresql', clusterIdentifier: 'lbd-ledger-11223344',
    createdAt: new Date(NOW.getTime() - 8 * HOUR), tags: drillTags('ledger', new Date(NOW.getTime() - 8 * HOUR)),
  });
});
afterEach(() => mock.restore());

const run = () => asPrincipal(JANITOR, () => {
  const rds = createRdsClient({ region: REGION, credentials, maxAttempts: 1 });
  return cleanDrillLeftovers({ rds, region: REGION, now: fake.now, maxAgeHours: 6 }).finally(() => rds.destroy());
});

test('the old tagged drills are deleted without a final snapshot (the Aurora instance before its cluster), the young one and the untagged one kept; every call allowed', async () => {
  const result = await run();
  expect(evaluator.denials.map((denial) => `${denial.request.action} ${denial.request.resource}`)).toEqual([]);
  expect(result.failed).toEqual([]);
  expect(result.deleted.map((leftover) => `${leftover.kind} ${leftover.identifier} ${leftover.source}`)).toEqual([
    'instance lbd-ledger-11223344-1 ledger', 'instance lbd-orders-0a1b2c3d orders', 'cluster lbd-ledger-11223344 ledger',
  ]);
  expect(result.young.map((leftover) => leftover.identifier)).toEqual(['lbd-orders-9f8e7d6c']);
  const deletes = mock.calls.filter((call) => call.command.startsWith('Delete'));
  expect(deletes.map((call) => [call.command, call.input.DBInstanceIdentifier ?? call.input.DBClusterIdentifier, call.input.SkipFinalSnapshot, call.principal, call.error]))
    .toEqual([
      ['DeleteDBInstance', 'lbd-ledger-11223344-1', true, JANITOR, undefined],
      ['DeleteDBInstance', 'lbd-orders-0a1b2c3d', true, JANITOR, undefined],
      ['DeleteDBCluster', 'lbd-ledger-11223344', true, JANITOR, undefined],
    ]);
  expect(fake.describeInstance('lbd-orders-0a1b2c3d')?.DBInstanceStatus).toBe('deleting');
  expect(fake.describeCluster('lbd-ledger-11223344')?.Status).toBe('deleting');
  expect(fake.describeInstance('lbd-orders-9f8e7d6c')?.DBInstanceStatus).toBe('available');
  expect(fake.describeInstance('lbd-not-a-drill')?.DBInstanceStatus).toBe('available');
  expect(fake.describeInstance('orders-db')?.DBInstanceStatus).toBe('available');
});

test('a second run deletes nothing more (what is being deleted is skipped), and the untagged lbd- instance is still never touched', async () => {
  await run();
  const before = mock.calls.length;
  const second = await run();
  expect(second.deleted).toEqual([]);
  expect(second.failed).toEqual([]);
  expect(mock.calls.slice(before).filter((call) => call.command.startsWith('Delete'))).toEqual([]);
  expect(mock.calls.some((call) => call.command === 'DeleteDBInstance' && call.input.DBInstanceIdentifier === 'lbd-not-a-drill')).toBe(false);
});

test('the janitor\'s role itself may not delete an untagged instance named lbd-: AccessDenied naming principal, action and resource', async () => {
  const rds = createRdsClient({ region: REGION, credentials, maxAttempts: 1 });
  try {
    const error = await asPrincipal(JANITOR, () => rds.send(new DeleteDBInstanceCommand({ DBInstanceIdentifier: 'lbd-not-a-drill', SkipFinalSnapshot: true })))
      .then(() => undefined, (caught: unknown) => caught as Error);
    expect(error?.name).toBe('AccessDenied');
    expect(error?.message).toContain(`User: ${JANITOR} is not authorized to perform: rds:DeleteDBInstance on resource: arn:aws:rds:${REGION}:${ACCOUNT}:db:lbd-not-a-drill`);
    // Nor the source itself, tagged or not.
    const source = await asPrincipal(JANITOR, () => rds.send(new DeleteDBInstanceCommand({ DBInstanceIdentifier: 'orders-db', SkipFinalSnapshot: true })))
      .then(() => undefined, (caught: unknown) => caught as Error);
    expect(source?.message).toContain(`rds:DeleteDBInstance on resource: arn:aws:rds:${REGION}:${ACCOUNT}:db:orders-db`);
  } finally {
    rds.destroy();
  }
  expect(fake.describeInstance('lbd-not-a-drill')?.DBInstanceStatus).toBe('available');
  expect(fake.describeInstance('orders-db')?.DBInstanceStatus).toBe('available');
});

describe('decideLeftovers', () => {
  const instance = (id: string, ageHours: number | undefined, tags: { Key: string; Value: string }[], status = 'available') => ({
    DBInstanceIdentifier: id, DBInstanceStatus: status, TagList: tags,
    ...(ageHours === undefined ? {} : { InstanceCreateTime: new Date(NOW.getTime() - ageHours * HOUR) }),
  });
  test.each<[string, 'leftover' | 'young' | 'ignored', ReturnType<typeof instance>]>([
    ['tagged, at the maximum age', 'leftover', instance('lbd-a-1', 6, drillTags('a', NOW))],
    ['tagged, just under it', 'young', instance('lbd-a-2', 5.99, drillTags('a', NOW))],
    ['untagged, old, named lbd-', 'ignored', instance('lbd-a-3', 100, [])],
    ['tagged and already deleting', 'ignored', instance('lbd-a-4', 100, drillTags('a', NOW), 'deleting')],
    ['tagged, no RDS creation time: the created tag counts', 'leftover', instance('lbd-a-5', undefined, drillTags('a', new Date(NOW.getTime() - 7 * HOUR)))],
    ['tagged, no time at all: old', 'leftover', instance('lbd-a-6', undefined, [{ Key: DRILL_TAG, Value: 'a' }])],
  ])('%s: %s', (_what, expected, candidate) => {
    const decision = decideLeftovers([candidate], [], NOW, 6);
    const found = decision.leftovers.length > 0 ? 'leftover' : decision.young.length > 0 ? 'young' : 'ignored';
    expect(found).toBe(expected);
  });
});
