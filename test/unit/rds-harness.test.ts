/**
 * The fake RDS (test/harness/rds.ts) behaves as the tests that lean on it assume: transitions
 * driven by Describe calls, the faults a test arms, answers shaped like the API's, the real SDK
 * exception classes, and IAM-true evaluation of calls made in a principal's scope.
 */
import {
  CopyDBClusterSnapshotCommand, CreateDBInstanceCommand, DBInstanceAlreadyExistsFault, DeleteDBClusterCommand, DeleteDBInstanceCommand,
  DescribeDBClustersCommand, DescribeDBClusterSnapshotsCommand, DescribeDBInstanceAutomatedBackupsCommand, DescribeDBInstancesCommand,
  InsufficientDBInstanceCapacityFault, InvalidDBClusterStateFault, KMSKeyNotAccessibleFault, ModifyDBInstanceCommand, PointInTimeRestoreNotEnabledFault,
  RDSServiceException, RestoreDBClusterToPointInTimeCommand, RestoreDBInstanceToPointInTimeCommand, StartDBInstanceAutomatedBackupsReplicationCommand,
  DBInstanceNotFoundFault,
} from '@aws-sdk/client-rds';
import { createRdsClient } from '../../lib/rds/client';
import { ResolvedStack, type CfnTemplate } from '../../local/cfn/resolve';
import { asPrincipal, IamEvaluator, IamModel } from '../../local/iam';
import { FakeRds, mockRdsIamTrue, type RdsMock } from '../harness/rds';

const PRIMARY = 'eu-west-1';
const OFFSITE = 'eu-central-1';
const OFFSITE_KEY = 'arn:aws:kms:eu-central-1:111111111111:key/0f0e0d0c-0b0a-4909-8807-060504030201';

let fake: FakeRds;
let rds: RdsMock;
const primary = createRdsClient({ region: PRIMARY });
const offsite = createRdsClient({ region: OFFSITE });

beforeEach(() => {
  fake = new FakeRds({ region: PRIMARY, describesUntilAvailable: 2 });
  fake.addInstance({ identifier: 'orders', backupRetentionPeriod: 7 });
});
afterEach(() => rds?.restore());

const status = async (id: string) => (await primary.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: id }))).DBInstances?.[0]?.DBInstanceStatus;

describe('transitions', () => {
  beforeEach(() => {
    rds = mockRdsIamTrue(fake);
  });

  test('a restored instance is creating, with no endpoint, until described twice; then available at the endpoint the hook gives', async () => {
    fake.onAvailable = (instance) => ({ address: `127.0.0.1`, port: instance.DBInstanceIdentifier === 'drill-1' ? 54321 : 1 });
    const { DBInstance } = await primary.send(new RestoreDBInstanceToPointInTimeCommand({
      SourceDBInstanceIdentifier: 'orders', TargetDBInstanceIdentifier: 'drill-1', UseLatestRestorableTime: true, DBSubnetGroupName: 'orders-subnets',
      Tags: [{ Key: 'lifeboat:drill', Value: 'orders' }],
    }));
    expect(DBInstance).toMatchObject({ DBInstanceStatus: 'creating', DBInstanceArn: `arn:aws:rds:${PRIMARY}:111111111111:db:drill-1`, TagList: [{ Key: 'lifeboat:drill', Value: 'orders' }] });
    expect(DBInstance?.Endpoint).toBeUndefined();
    expect(await status('drill-1')).toBe('creating');
    expect(await status('drill-1')).toBe('creating');
    const { DBInstances } = await primary.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: 'drill-1' }));
    expect(DBInstances?.[0]).toMatchObject({ DBInstanceStatus: 'available', Endpoint: { Address: '127.0.0.1', Port: 54321 } });
  });

  test('a deleted instance is deleting, then gone (DBInstanceNotFoundFault)', async () => {
    const { DBInstance } = await primary.send(new DeleteDBInstanceCommand({ DBInstanceIdentifier: 'orders', SkipFinalSnapshot: true }));
    expect(DBInstance?.DBInstanceStatus).toBe('deleting');
    expect(await status('orders')).toBe('deleting');
    expect(await status('orders')).toBe('deleting');
    await expect(status('orders')).rejects.toBeInstanceOf(DBInstanceNotFoundFault);
  });

  test('LatestRestorableTime trails the clock by 5 minutes, and stops when stalled', async () => {
    const latest = async () => (await primary.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: 'orders' }))).DBInstances?.[0]?.LatestRestorableTime;
    expect(await latest()).toEqual(new Date(fake.now.getTime() - 5 * 60_000));
    fake.stallRestorable('orders');
    const stalled = fake.now;
    fake.advance(3_600_000);
    expect(await latest()).toEqual(stalled);
  });

  test('replication: pending, then replicating with a restore window trailing the source; a disabled key freezes it silently', async () => {
    const sourceArn = `arn:aws:rds:${PRIMARY}:111111111111:db:orders`;
    const { DBInstanceAutomatedBackup } = await offsite.send(new StartDBInstanceAutomatedBackupsReplicationCommand({ SourceDBInstanceArn: sourceArn, BackupRetentionPeriod: 7, KmsKeyId: OFFSITE_KEY }));
    expect(DBInstanceAutomatedBackup).toMatchObject({ Status: 'pending', DBInstanceArn: sourceArn, KmsKeyId: OFFSITE_KEY });
    expect(DBInstanceAutomatedBackup?.DBInstanceAutomatedBackupsArn).toMatch(new RegExp(`^arn:aws:rds:${OFFSITE}:111111111111:auto-backup:ab-[0-9a-f]+$`));
    const replicas = async () => (await offsite.send(new DescribeDBInstanceAutomatedBackupsCommand({ DBInstanceIdentifier: 'orders' }))).DBInstanceAutomatedBackups ?? [];
    expect((await replicas())[0].Status).toBe('pending');
    fake.advance(3_600_000);
    const [replicating] = await replicas();
    expect(replicating.Status).toBe('replicating');
    expect(replicating.RestoreWindow?.LatestTime).toEqual(new Date(fake.now.getTime() - 15 * 60_000));
    const source = (await primary.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: 'orders' }))).DBInstances?.[0];
    expect(source?.DBInstanceAutomatedBackupsReplications).toEqual([{ DBInstanceAutomatedBackupsArn: replicating.DBInstanceAutomatedBackupsArn }]);

    fake.disableKey(OFFSITE_KEY);
    const frozen = fake.now;
    fake.advance(6 * 3_600_000);
    const [silent] = await replicas();
    expect(silent.Status).toBe('replicating');
    expect(silent.RestoreWindow?.LatestTime).toEqual(frozen);
  });

  test('replication stopped: the copy is retained and the source lists no replication', async () => {
    fake.addReplication('orders', OFFSITE, { kmsKeyId: OFFSITE_KEY });
    fake.replicationStopped('orders');
    expect((await offsite.send(new DescribeDBInstanceAutomatedBackupsCommand({ DBInstanceIdentifier: 'orders' }))).DBInstanceAutomatedBackups?.[0]?.Status).toBe('retained');
    expect((await primary.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: 'orders' }))).DBInstances?.[0]?.DBInstanceAutomatedBackupsReplications).toEqual([]);
  });

  test('a cluster snapshot copy to the offsite region is copying, then available, with the offsite key', async () => {
    fake.addCluster({ identifier: 'ledger', storageEncrypted: true, kmsKeyId: 'arn:aws:kms:eu-west-1:111111111111:key/primary' });
    const automated = fake.addAutomatedClusterSnapshot('ledger', new Date('2026-12-04T02:10:00Z'));
    expect(automated.DBClusterSnapshotIdentifier).toBe('rds:ledger-2026-12-04-02-10');
    await expect(offsite.send(new CopyDBClusterSnapshotCommand({ SourceDBClusterSnapshotIdentifier: automated.DBClusterSnapshotArn, TargetDBClusterSnapshotIdentifier: 'lifeboat-ledger-1' })))
      .rejects.toMatchObject({ name: 'InvalidParameterValue' });
    const { DBClusterSnapshot } = await offsite.send(new CopyDBClusterSnapshotCommand({
      SourceDBClusterSnapshotIdentifier: automated.DBClusterSnapshotArn, TargetDBClusterSnapshotIdentifier: 'lifeboat-ledger-1', KmsKeyId: OFFSITE_KEY,
    }));
    expect(DBClusterSnapshot).toMatchObject({ Status: 'copying', SnapshotType: 'manual', KmsKeyId: OFFSITE_KEY, SourceDBClusterSnapshotArn: automated.DBClusterSnapshotArn });
    const described = async () => (await offsite.send(new DescribeDBClusterSnapshotsCommand({ DBClusterSnapshotIdentifier: 'lifeboat-ledger-1' }))).DBClusterSnapshots?.[0]?.Status;
    expect(await described()).toBe('copying');
    expect(await described()).toBe('available');
  });

  test('Aurora: a cluster restored to a point, an instance created in it; the cluster cannot go while it has one', async () => {
    fake.addCluster({ identifier: 'ledger' });
    const { DBCluster } = await primary.send(new RestoreDBClusterToPointInTimeCommand({ SourceDBClusterIdentifier: 'ledger', DBClusterIdentifier: 'drill-ledger', UseLatestRestorableTime: true, DBSubnetGroupName: 'ledger-subnets' }));
    expect(DBCluster).toMatchObject({ Status: 'creating', DBClusterMembers: [] });
    await primary.send(new CreateDBInstanceCommand({ DBInstanceIdentifier: 'drill-ledger-1', DBClusterIdentifier: 'drill-ledger', DBInstanceClass: 'db.t4g.medium', Engine: 'aurora-postgresql' }));
    const cluster = (await primary.send(new DescribeDBClustersCommand({ DBClusterIdentifier: 'drill-ledger' }))).DBClusters?.[0];
    expect(cluster?.DBClusterMembers?.map((member) => member.DBInstanceIdentifier)).toEqual(['drill-ledger-1']);
    await expect(primary.send(new DeleteDBClusterCommand({ DBClusterIdentifier: 'drill-ledger', SkipFinalSnapshot: true }))).rejects.toBeInstanceOf(InvalidDBClusterStateFault);
    await primary.send(new DeleteDBInstanceCommand({ DBInstanceIdentifier: 'drill-ledger-1', SkipFinalSnapshot: true }));
    expect((await primary.send(new DeleteDBClusterCommand({ DBClusterIdentifier: 'drill-ledger', SkipFinalSnapshot: true }))).DBCluster?.Status).toBe('deleting');
  });
});

describe('faults a test arms', () => {
  beforeEach(() => {
    rds = mockRdsIamTrue(fake);
  });
  const restore = (target = 'drill-1') => primary.send(new RestoreDBInstanceToPointInTimeCommand({ SourceDBInstanceIdentifier: 'orders', TargetDBInstanceIdentifier: target, UseLatestRestorableTime: true }));

  test.each([
    ['PointInTimeRestoreNotEnabledFault', PointInTimeRestoreNotEnabledFault],
    ['DBInstanceAlreadyExistsFault', DBInstanceAlreadyExistsFault],
    ['InsufficientDBInstanceCapacityFault', InsufficientDBInstanceCapacityFault],
  ] as const)('the next restore fails %s (the SDK class), once, and creates nothing', async (name, Fault) => {
    fake.failNextRestore(name);
    const error = await restore().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(Fault);
    expect(error).toMatchObject({ name, $fault: 'client' });
    expect(fake.instanceIdentifiers()).toEqual(['orders']);
    await expect(restore()).resolves.toMatchObject({ DBInstance: { DBInstanceStatus: 'creating' } });
  });

  test('real conditions fail the same way: a source with backups off, an identifier taken', async () => {
    await restore('drill-1');
    await expect(restore('drill-1')).rejects.toBeInstanceOf(DBInstanceAlreadyExistsFault);
    fake.setRetention('orders', 0);
    await expect(restore('drill-2')).rejects.toBeInstanceOf(PointInTimeRestoreNotEnabledFault);
  });

  test('an instance that never becomes available', async () => {
    fake.neverAvailable('drill-1');
    await restore('drill-1');
    for (let i = 0; i < 10; i += 1) expect(await status('drill-1')).toBe('creating');
  });

  test('a disabled key refuses a new replication with KMSKeyNotAccessibleFault', async () => {
    fake.disableKey(OFFSITE_KEY);
    await expect(offsite.send(new StartDBInstanceAutomatedBackupsReplicationCommand({ SourceDBInstanceArn: `arn:aws:rds:${PRIMARY}:111111111111:db:orders`, KmsKeyId: OFFSITE_KEY })))
      .rejects.toBeInstanceOf(KMSKeyNotAccessibleFault);
  });
});

describe('IAM-true', () => {
  const template: CfnTemplate = {
    Resources: {
      Checks: { Type: 'AWS::IAM::Role', Properties: { AssumeRolePolicyDocument: { Statement: [{ Effect: 'Allow', Action: 'sts:AssumeRole', Principal: { Service: 'lambda.amazonaws.com' } }] } } },
      ChecksPolicy: {
        Type: 'AWS::IAM::Policy',
        Properties: {
          Roles: [{ Ref: 'Checks' }],
          PolicyDocument: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'rds:DescribeDBInstances', Resource: `arn:aws:rds:${PRIMARY}:111111111111:db:orders` }] },
        },
      },
    },
  };
  const stack = new ResolvedStack(template, { stackName: 'Lifeboat-Primary', account: '111111111111', region: PRIMARY });
  const model = IamModel.fromApp({ config: undefined as never, primary: stack, offsite: new ResolvedStack({ Resources: {} }, { stackName: 'O', account: '111111111111', region: OFFSITE }) });
  const role = stack.resolve({ 'Fn::GetAtt': ['Checks', 'Arn'] }) as string;

  beforeEach(() => {
    rds = mockRdsIamTrue(fake, { evaluator: new IamEvaluator(model) });
  });

  test('an allowed call is answered and recorded with its principal and region', async () => {
    const answer = await asPrincipal(role, () => primary.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: 'orders' })));
    expect(answer.DBInstances?.[0]?.DBInstanceIdentifier).toBe('orders');
    expect(rds.calls).toEqual([{ command: 'DescribeDBInstances', input: { DBInstanceIdentifier: 'orders' }, region: PRIMARY, principal: role }]);
  });

  test('a denied call is RDS\'s AccessDenied naming principal, action and resource, and changes nothing', async () => {
    const error = await asPrincipal(role, () => primary.send(new ModifyDBInstanceCommand({ DBInstanceIdentifier: 'orders', BackupRetentionPeriod: 1, ApplyImmediately: true })))
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(RDSServiceException);
    expect(error).toMatchObject({ name: 'AccessDenied', $metadata: { httpStatusCode: 403 } });
    expect((error as Error).message).toContain(`User: ${role} is not authorized to perform: rds:ModifyDBInstance on resource: arn:aws:rds:${PRIMARY}:111111111111:db:orders`);
    expect(fake.describeInstance('orders')?.BackupRetentionPeriod).toBe(7);
    expect(rds.calls.at(-1)).toMatchObject({ command: 'ModifyDBInstance', principal: role, error: 'AccessDenied' });
  });

  test('the region is the client\'s: the same describe in the offsite region is denied there', async () => {
    await expect(asPrincipal(role, () => offsite.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: 'orders' }))))
      .rejects.toThrow(`rds:DescribeDBInstances on resource: arn:aws:rds:${OFFSITE}:111111111111:db:orders`);
  });

  test('calls outside a principal scope are set-up: answered unevaluated', async () => {
    await expect(primary.send(new ModifyDBInstanceCommand({ DBInstanceIdentifier: 'orders', BackupRetentionPeriod: 14 }))).resolves.toMatchObject({ DBInstance: { BackupRetentionPeriod: 14 } });
    expect(rds.calls.at(-1)).toMatchObject({ command: 'ModifyDBInstance', principal: undefined });
  });
});
