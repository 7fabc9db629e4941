/**
 * A fake Amazon RDS, answered at the SDK-client edge through aws-sdk-client-mock: RDS cannot run
 * here. Its answers are shaped like the real API's (the RDS API reference's DBInstance,
 * DBCluster, DBInstanceAutomatedBackup, DBClusterSnapshot) and its errors are the SDK's own
 * exception classes (`DBInstanceNotFoundFault`, `PointInTimeRestoreNotEnabledFault`, …).
 *
 * State is per region: DB instances, DB clusters with their member instances, instance
 * automated backups (and their replicated copies in another region), cluster snapshots
 * (automated `rds:<cluster>-<yyyy-mm-dd-hh-mm>` and manual), subnet groups and tags. The clock is
 * the test's (`fake.now`). Transitions are driven by calls, as a poller sees them: a created or
 * restored instance or cluster is `creating` until it has been described `describesUntilAvailable`
 * times, then `available`; a deleted one `deleting`, then gone; a snapshot copy `copying`, then
 * `available`; a started replication `pending`, then `replicating`.
 *
 * `mockRdsIamTrue` evaluates each call made in a principal's scope (local/iam `asPrincipal`)
 * against the synthesized policies before answering, in the region of the client that makes
 * it; a denial is RDS's AccessDenied, naming principal, action and resource.
 *
 * How the fake reads what the documentation leaves open (named, so a test can be checked
 * against it): an instance's automated backup is `active` in its own region; a replicated copy
 * in the destination region is `pending` then `replicating`, and `retained` once replication was
 * stopped (the source then lists no replication). A disabled KMS key stops replication silently:
 * the copy stays `replicating` and its RestoreWindow.LatestTime stops advancing.
 */
import {
  AddTagsToResourceCommand, CopyDBClusterSnapshotCommand, CreateDBInstanceCommand, DBClusterAlreadyExistsFault, DBClusterNotFoundFault,
  DBClusterSnapshotAlreadyExistsFault, DBClusterSnapshotNotFoundFault, DBInstanceAlreadyExistsFault, DBInstanceAutomatedBackupNotFoundFault,
  DBInstanceNotFoundFault, DBSnapshotNotFoundFault, DBSubnetGroupNotFoundFault, DeleteDBClusterCommand, DeleteDBClusterSnapshotCommand,
  DeleteDBInstanceCommand, DescribeDBClusterAutomatedBackupsCommand, DescribeDBClustersCommand, DescribeDBClusterSnapshotAttributesCommand,
  DescribeDBClusterSnapshotsCommand, DescribeDBInstanceAutomatedBackupsCommand, DescribeDBInstancesCommand, DescribeDBSnapshotsCommand,
  DescribeDBSubnetGroupsCommand, InsufficientDBInstanceCapacityFault, InvalidDBClusterSnapshotStateFault, InvalidDBClusterStateFault,
  InvalidDBInstanceStateFault, InvalidRestoreFault, KMSKeyNotAccessibleFault, ListTagsForResourceCommand, ModifyDBClusterCommand,
  ModifyDBClusterSnapshotAttributeCommand, ModifyDBInstanceCommand, PointInTimeRestoreNotEnabledFault, RDSClient, RDSServiceException,
  RestoreDBClusterToPointInTimeCommand, RestoreDBInstanceToPointInTimeCommand, StartDBInstanceAutomatedBackupsReplicationCommand,
  StopDBInstanceAutomatedBackupsReplicationCommand, type DBCluster, type DBClusterSnapshot, type DBInstance, type DBInstanceAutomatedBackup,
  type Tag,
} from '@aws-sdk/client-rds';
import { mockClient } from 'aws-sdk-client-mock';
import { createHash } from 'node:crypto';
import { AccessDeniedError, currentPrincipal, requestsForCall, type AwsRequest, type IamEvaluator, type IamModel } from '../../local/iam';

const DAY_MS = 86_400_000;

export interface FakeInstanceSpec {
  readonly identifier: string;
  /** @default the fake's primary region */
  readonly region?: string;
  /** @default 'postgres' */
  readonly engine?: string;
  /** @default '15.8' */
  readonly engineVersion?: string;
  /** @default 'db.t4g.micro' */
  readonly instanceClass?: string;
  /** @default 7 (0: automated backups off) */
  readonly backupRetentionPeriod?: number;
  /** @default false */
  readonly storageEncrypted?: boolean;
  /** The instance's KMS key ARN (encrypted instances). */
  readonly kmsKeyId?: string;
  /** @default '<identifier>-subnets' */
  readonly subnetGroup?: string;
  /** @default ['sg-0a1b2c3d4e5f60718'] */
  readonly securityGroupIds?: readonly string[];
  /** @default 5432 (3306 for MySQL/MariaDB engines) */
  readonly port?: number;
  /** Member of this cluster (Aurora, Multi-AZ DB cluster). */
  readonly clusterIdentifier?: string;
  /** @default 30 days before the fake's clock */
  readonly createdAt?: Date;
  readonly tags?: readonly Tag[];
  /** @default false */
  readonly multiAz?: boolean;
  /** @default 'available' */
  readonly status?: string;
}

export interface FakeClusterSpec {
  readonly identifier: string;
  readonly region?: string;
  /** @default 'aurora-postgresql' */
  readonly engine?: string;
  /** @default '15.8' */
  readonly engineVersion?: string;
  /** @default 7 (clusters cannot go below 1) */
  readonly backupRetentionPeriod?: number;
  readonly storageEncrypted?: boolean;
  readonly kmsKeyId?: string;
  readonly subnetGroup?: string;
  readonly securityGroupIds?: readonly string[];
  readonly port?: number;
  readonly createdAt?: Date;
  readonly tags?: readonly Tag[];
  /** Member instances to create with it (writer first). @default [`<identifier>-1`] */
  readonly members?: readonly string[];
  readonly status?: string;
}

interface Instance {
  id: string;
  region: string;
  engine: string;
  engineVersion: string;
  instanceClass: string;
  status: string;
  retention: number;
  encrypted: boolean;
  kmsKeyId?: string;
  subnetGroup: string;
  securityGroupIds: string[];
  port: number;
  address?: string;
  clusterId?: string;
  createdAt: Date;
  tags: Tag[];
  multiAz: boolean;
  dbiResourceId: string;
  /** Describe calls left before `creating` becomes `available` (or `deleting` becomes gone). */
  countdown: number;
  neverAvailable: boolean;
  /** LatestRestorableTime no longer advances past this (a stalled log archive). */
  stalledAt?: Date;
  restoredFrom?: { readonly source: string; readonly time: Date };
  deletionProtection: boolean;
}

interface Cluster {
  id: string;
  region: string;
  engine: string;
  engineVersion: string;
  status: string;
  retention: number;
  encrypted: boolean;
  kmsKeyId?: string;
  subnetGroup: string;
  securityGroupIds: string[];
  port: number;
  createdAt: Date;
  tags: Tag[];
  resourceId: string;
  countdown: number;
  neverAvailable: boolean;
  stalledAt?: Date;
  restoredFrom?: { readonly source: string; readonly time: Date };
  deletionProtection: boolean;
}

interface Replication {
  readonly arn: string;
  readonly region: string;
  readonly sourceArn: string;
  retention: number;
  readonly kmsKeyId?: string;
  status: 'pending' | 'replicating' | 'retained';
  countdown: number;
  readonly startedAt: Date;
  /** The copy's LatestTime stops here (replication stopped, silently or not). */
  frozenAt?: Date;
}

interface Snapshot {
  readonly id: string;
  readonly region: string;
  readonly clusterId: string;
  readonly type: 'automated' | 'manual';
  readonly createdAt: Date;
  status: string;
  readonly encrypted: boolean;
  readonly kmsKeyId?: string;
  restoreAccounts: string[];
  tags: Tag[];
  countdown: number;
  readonly sourceArn?: string;
  readonly engine: string;
  readonly engineVersion: string;
  readonly port: number;
  readonly clusterCreatedAt: Date;
}

export interface RecordedRdsCall {
  readonly command: string;
  readonly input: Record<string, unknown>;
  readonly region: string;
  /** The principal in whose scope the call was made, if any. */
  readonly principal?: string;
  /** The error's name, when the call failed. */
  readonly error?: string;
}

export type RestoreFault = 'PointInTimeRestoreNotEnabledFault' | 'DBInstanceAlreadyExistsFault' | 'InsufficientDBInstanceCapacityFault' | 'DBClusterAlreadyExistsFault';

export interface FakeRdsOptions {
  readonly account?: string;
  /** @default 'eu-west-1' */
  readonly region?: string;
  /** @default '2026-12-04T03:00:00Z' */
  readonly now?: Date;
  /** Describe calls a created/restored instance or cluster stays `creating` (and a deleted one `deleting`). @default 2 */
  readonly describesUntilAvailable?: number;
  /** Describe calls a snapshot copy stays `copying`, a started replication `pending`. @default 1 */
  readonly describesUntilCopied?: number;
  /** How far LatestRestorableTime trails the clock (RDS uploads the transaction logs every 5 minutes). @default 5 minutes */
  readonly restorableLagMs?: number;
  /** How far a replicated copy's LatestTime trails its source's. @default 10 minutes */
  readonly replicationLagMs?: number;
}

export class FakeRds {
  readonly account: string;
  readonly region: string;
  now: Date;
  describesUntilAvailable: number;
  describesUntilCopied: number;
  restorableLagMs: number;
  replicationLagMs: number;
  /** Points a newly available instance's Endpoint somewhere (a local stand-in server). */
  onAvailable?: (instance: DBInstance) => { address: string; port: number } | undefined;

  private readonly instances = new Map<string, Instance>();
  private readonly clusters = new Map<string, Cluster>();
  private readonly replications: Replication[] = [];
  private readonly snapshots = new Map<string, Snapshot>();
  private readonly subnetGroups = new Map<string, { name: string; region: string; vpcId: string }>();
  private readonly disabledKeys = new Set<string>();
  private readonly armed: { command: string; fault: () => Error }[] = [];

  constructor(opts: FakeRdsOptions = {}) {
    this.account = opts.account ?? '111111111111';
    this.region = opts.region ?? 'eu-west-1';
    this.now = opts.now ?? new Date('2026-12-04T03:00:00Z');
    this.describesUntilAvailable = opts.describesUntilAvailable ?? 2;
    this.describesUntilCopied = opts.describesUntilCopied ?? 1;
    this.restorableLagMs = opts.restorableLagMs ?? 5 * 60_000;
    this.replicationLagMs = opts.replicationLagMs ?? 10 * 60_000;
  }

  /** Moves the clock on. */
  advance(ms: number): void {
    this.now = new Date(this.now.getTime() + ms);
  }

  arn(region: string, type: string, id: string): string {
    return `arn:aws:rds:${region}:${this.account}:${type}:${id}`;
  }

  addSubnetGroup(name: string, region = this.region, vpcId = 'vpc-0a1b2c3d'): void {
    this.subnetGroups.set(`${region}/${name}`, { name, region, vpcId });
  }

  addInstance(spec: FakeInstanceSpec): DBInstance {
    const region = spec.region ?? this.region;
    const engine = spec.engine ?? 'postgres';
    const instance: Instance = {
      id: spec.identifier, region, engine, engineVersion: spec.engineVersion ?? '15.8', instanceClass: spec.instanceClass ?? 'db.t4g.micro',
      status: spec.status ?? 'available', retention: spec.backupRetentionPeriod ?? 7, encrypted: spec.storageEncrypted ?? false, kmsKeyId: spec.kmsKeyId,
      subnetGroup: spec.subnetGroup ?? `${spec.identifier}-subnets`, securityGroupIds: [...(spec.securityGroupIds ?? ['sg-0a1b2c3d4e5f60718'])],
      port: spec.port ?? defaultPort(engine), clusterId: spec.clusterIdentifier, createdAt: spec.createdAt ?? new Date(this.now.getTime() - 30 * DAY_MS),
      tags: [...(spec.tags ?? [])], multiAz: spec.multiAz ?? false, dbiResourceId: `db-${hash(`${region}/${spec.identifier}`, 26).toUpperCase()}`,
      countdown: 0, neverAvailable: false, deletionProtection: false,
    };
    if (instance.status === 'available') instance.address = endpointHost(instance.id, region);
    this.instances.set(key(region, instance.id), instance);
    if (!this.subnetGroups.has(key(region, instance.subnetGroup))) this.addSubnetGroup(instance.subnetGroup, region);
    return this.dbInstance(instance);
  }

  addCluster(spec: FakeClusterSpec): DBCluster {
    const region = spec.region ?? this.region;
    const engine = spec.engine ?? 'aurora-postgresql';
    const cluster: Cluster = {
      id: spec.identifier, region, engine, engineVersion: spec.engineVersion ?? '15.8', status: spec.status ?? 'available',
      retention: spec.backupRetentionPeriod ?? 7, encrypted: spec.storageEncrypted ?? false, kmsKeyId: spec.kmsKeyId,
      subnetGroup: spec.subnetGroup ?? `${spec.identifier}-subnets`, securityGroupIds: [...(spec.securityGroupIds ?? ['sg-0a1b2c3d4e5f60718'])],
      port: spec.port ?? defaultPort(engine), createdAt: spec.createdAt ?? new Date(this.now.getTime() - 30 * DAY_MS), tags: [...(spec.tags ?? [])],
      resourceId: `cluster-${hash(`${region}/${spec.identifier}`, 26).toUpperCase()}`, countdown: 0, neverAvailable: false, deletionProtection: false,
    };
    this.clusters.set(key(region, cluster.id), cluster);
    if (!this.subnetGroups.has(key(region, cluster.subnetGroup))) this.addSubnetGroup(cluster.subnetGroup, region);
    for (const member of spec.members ?? [`${spec.identifier}-1`]) {
      this.addInstance({
        identifier: member, region, engine, engineVersion: cluster.engineVersion, clusterIdentifier: cluster.id, subnetGroup: cluster.subnetGroup,
        securityGroupIds: cluster.securityGroupIds, port: cluster.port, storageEncrypted: cluster.encrypted, kmsKeyId: cluster.kmsKeyId,
        backupRetentionPeriod: cluster.retention, createdAt: cluster.createdAt, instanceClass: 'db.r6g.large',
      });
    }
    return this.dbCluster(cluster);
  }

  /** An automated cluster snapshot, as RDS takes them daily: `rds:<cluster>-<yyyy-mm-dd-hh-mm>`. */
  addAutomatedClusterSnapshot(clusterIdentifier: string, at: Date, opts: { region?: string; status?: string } = {}): DBClusterSnapshot {
    const region = opts.region ?? this.region;
    const cluster = this.cluster(region, clusterIdentifier);
    const stamp = at.toISOString().slice(0, 16).replace(/[T:]/g, '-');
    const snapshot: Snapshot = {
      id: `rds:${cluster.id}-${stamp}`, region, clusterId: cluster.id, type: 'automated', createdAt: at, status: opts.status ?? 'available',
      encrypted: cluster.encrypted, kmsKeyId: cluster.kmsKeyId, restoreAccounts: [], tags: [], countdown: 0, engine: cluster.engine,
      engineVersion: cluster.engineVersion, port: cluster.port, clusterCreatedAt: cluster.createdAt,
    };
    this.snapshots.set(key(region, snapshot.id), snapshot);
    return this.dbClusterSnapshot(snapshot);
  }

  /** Starts a replication as though it had been set up before the test (no call recorded). */
  addReplication(sourceIdentifier: string, destinationRegion: string, opts: { retention?: number; kmsKeyId?: string; startedAt?: Date; sourceRegion?: string } = {}): DBInstanceAutomatedBackup {
    const source = this.instance(opts.sourceRegion ?? this.region, sourceIdentifier);
    const replication = this.startReplication(source, destinationRegion, opts.retention ?? source.retention, opts.kmsKeyId, opts.startedAt);
    replication.status = 'replicating';
    replication.countdown = 0;
    return this.automatedBackupOfReplication(replication);
  }

  // Faults and conditions a test arms.

  /** The next `command` (e.g. 'RestoreDBInstanceToPointInTime') fails with `fault`, before anything changes. */
  failNext(command: string, fault: RestoreFault | (() => Error)): void {
    this.armed.push({ command, fault: typeof fault === 'function' ? fault : () => restoreFault(fault) });
  }

  /** The next RestoreDBInstanceToPointInTime fails with `fault`. */
  failNextRestore(fault: RestoreFault): void {
    this.failNext('RestoreDBInstanceToPointInTime', fault);
  }

  /** This instance (or one about to be made with this identifier) stays `creating` for ever. */
  neverAvailable(identifier: string, region = this.region): void {
    this.stuck.add(key(region, identifier));
    const instance = this.instances.get(key(region, identifier));
    if (instance) instance.neverAvailable = true;
    const cluster = this.clusters.get(key(region, identifier));
    if (cluster) cluster.neverAvailable = true;
  }

  /** LatestRestorableTime stops advancing at `at` (default: now): the logs are no longer archived. */
  stallRestorable(identifier: string, at: Date = this.now, region = this.region): void {
    const instance = this.instances.get(key(region, identifier));
    const cluster = this.clusters.get(key(region, identifier));
    if (!instance && !cluster) throw new Error(`FakeRds: no instance or cluster ${identifier} in ${region}`);
    if (instance) instance.stalledAt = at;
    if (cluster) cluster.stalledAt = at;
  }

  /**
   * A KMS key is disabled: replications that encrypt with it stop silently (the copy stays
   * `replicating`, its LatestTime frozen now), and new calls naming it fail KMSKeyNotAccessibleFault.
   */
  disableKey(keyArn: string): void {
    this.disabledKeys.add(keyArn);
    for (const replication of this.replications) if (replication.kmsKeyId === keyArn && !replication.frozenAt) replication.frozenAt = this.now;
  }

  /** Replication stopped outside Lifeboat (as StopDBInstanceAutomatedBackupsReplication does). */
  replicationStopped(sourceIdentifier: string, region = this.region): void {
    const source = this.instance(region, sourceIdentifier);
    const replication = this.activeReplication(this.arn(region, 'db', source.id));
    if (!replication) throw new Error(`FakeRds: ${sourceIdentifier} has no replication`);
    this.stopReplication(replication);
  }

  setRetention(identifier: string, days: number, region = this.region): void {
    const found = this.instances.get(key(region, identifier)) ?? this.clusters.get(key(region, identifier));
    if (!found) throw new Error(`FakeRds: no instance or cluster ${identifier} in ${region}`);
    found.retention = days;
  }

  // What a test reads back.

  describeInstance(identifier: string, region = this.region): DBInstance | undefined {
    const instance = this.instances.get(key(region, identifier));
    return instance ? this.dbInstance(instance) : undefined;
  }

  describeCluster(identifier: string, region = this.region): DBCluster | undefined {
    const cluster = this.clusters.get(key(region, identifier));
    return cluster ? this.dbCluster(cluster) : undefined;
  }

  replicationsOf(sourceIdentifier: string, region = this.region): DBInstanceAutomatedBackup[] {
    const sourceArn = this.arn(region, 'db', sourceIdentifier);
    return this.replications.filter((replication) => replication.sourceArn === sourceArn).map((replication) => this.automatedBackupOfReplication(replication));
  }

  clusterSnapshots(region = this.region): DBClusterSnapshot[] {
    return [...this.snapshots.values()].filter((snapshot) => snapshot.region === region).map((snapshot) => this.dbClusterSnapshot(snapshot));
  }

  instanceIdentifiers(region = this.region): string[] {
    return [...this.instances.values()].filter((instance) => instance.region === region).map((instance) => instance.id);
  }

  // The API.

  /** Answers one command in `region`, as RDS would. */
  async handle(command: string, input: Record<string, unknown>, region: string): Promise<Record<string, unknown>> {
    const armed = this.armed.findIndex((entry) => entry.command === command);
    if (armed >= 0) {
      const [{ fault }] = this.armed.splice(armed, 1);
      throw fault();
    }
    switch (command) {
      case 'DescribeDBInstances': return this.describeDBInstances(input, region);
      case 'DescribeDBClusters': return this.describeDBClusters(input, region);
      case 'DescribeDBInstanceAutomatedBackups': return this.describeDBInstanceAutomatedBackups(input, region);
      case 'DescribeDBClusterAutomatedBackups': return { DBClusterAutomatedBackups: [] };
      case 'StartDBInstanceAutomatedBackupsReplication': return this.startDBInstanceAutomatedBackupsReplication(input, region);
      case 'StopDBInstanceAutomatedBackupsReplication': return this.stopDBInstanceAutomatedBackupsReplication(input, region);
      case 'ModifyDBInstance': return this.modifyDBInstance(input, region);
      case 'ModifyDBCluster': return this.modifyDBCluster(input, region);
      case 'DescribeDBClusterSnapshots': return this.describeDBClusterSnapshots(input, region);
      case 'DescribeDBSnapshots':
        if (input.DBSnapshotIdentifier !== undefined) throw new DBSnapshotNotFoundFault({ message: `DBSnapshot ${String(input.DBSnapshotIdentifier)} not found.`, $metadata: meta(404) });
        return { DBSnapshots: [] };
      case 'CopyDBClusterSnapshot': return this.copyDBClusterSnapshot(input, region);
      case 'ModifyDBClusterSnapshotAttribute': return this.modifyDBClusterSnapshotAttribute(input, region);
      case 'DescribeDBClusterSnapshotAttributes': return this.describeDBClusterSnapshotAttributes(input, region);
      case 'DeleteDBClusterSnapshot': return this.deleteDBClusterSnapshot(input, region);
      case 'RestoreDBInstanceToPointInTime': return this.restoreDBInstanceToPointInTime(input, region);
      case 'RestoreDBClusterToPointInTime': return this.restoreDBClusterToPointInTime(input, region);
      case 'CreateDBInstance': return this.createDBInstance(input, region);
      case 'DeleteDBInstance': return this.deleteDBInstance(input, region);
      case 'DeleteDBCluster': return this.deleteDBCluster(input, region);
      case 'AddTagsToResource': this.tagsOf(String(input.ResourceName)).push(...((input.Tags as Tag[] | undefined) ?? [])); return {};
      case 'ListTagsForResource': return { TagList: [...this.tagsOf(String(input.ResourceName))] };
      case 'DescribeDBSubnetGroups': return this.describeDBSubnetGroups(input, region);
      default: throw new Error(`FakeRds: ${command} is not answered by the fake (add it to test/harness/rds.ts)`);
    }
  }

  private readonly stuck = new Set<string>();

  private describeDBInstances(input: Record<string, unknown>, region: string): Record<string, unknown> {
    const id = input.DBInstanceIdentifier === undefined ? undefined : idOf(String(input.DBInstanceIdentifier));
    const filters = (input.Filters as { Name: string; Values: string[] }[] | undefined) ?? [];
    let found = [...this.instances.values()].filter((instance) => instance.region === region);
    if (id !== undefined) {
      found = found.filter((instance) => instance.id === id);
      if (found.length === 0) throw new DBInstanceNotFoundFault({ message: `DBInstance ${id} not found.`, $metadata: meta(404) });
    }
    for (const filter of filters) {
      if (filter.Name === 'db-cluster-id') found = found.filter((instance) => instance.clusterId !== undefined && filter.Values.map(idOf).includes(instance.clusterId));
      else if (filter.Name === 'db-instance-id') found = found.filter((instance) => filter.Values.map(idOf).includes(instance.id));
      else throw new Error(`FakeRds: DescribeDBInstances filter ${filter.Name} is not answered by the fake`);
    }
    const answered = found.map((instance) => this.tickInstance(instance)).filter((instance): instance is Instance => instance !== undefined);
    if (id !== undefined && answered.length === 0) throw new DBInstanceNotFoundFault({ message: `DBInstance ${id} not found.`, $metadata: meta(404) });
    return { DBInstances: answered.map((instance) => this.dbInstance(instance)) };
  }

  /** One Describe seen by `instance`: creating → available, deleting → gone. */
  private tickInstance(instance: Instance): Instance | undefined {
    if (instance.status === 'creating' && !instance.neverAvailable) {
      if (instance.countdown > 0) instance.countdown -= 1;
      else {
        instance.status = 'available';
        const endpoint = this.onAvailable?.(this.dbInstance(instance));
        instance.address = endpoint?.address ?? endpointHost(instance.id, instance.region);
        if (endpoint) instance.port = endpoint.port;
      }
    } else if (instance.status === 'deleting') {
      if (instance.countdown > 0) instance.countdown -= 1;
      else {
        this.instances.delete(key(instance.region, instance.id));
        return undefined;
      }
    }
    return instance;
  }

  private describeDBClusters(input: Record<string, unknown>, region: string): Record<string, unknown> {
    const id = input.DBClusterIdentifier === undefined ? undefined : idOf(String(input.DBClusterIdentifier));
    let found = [...this.clusters.values()].filter((cluster) => cluster.region === region);
    if (id !== undefined) {
      found = found.filter((cluster) => cluster.id === id);
      if (found.length === 0) throw new DBClusterNotFoundFault({ message: `DBCluster ${id} not found.`, $metadata: meta(404) });
    }
    const answered: Cluster[] = [];
    for (const cluster of found) {
      if (cluster.status === 'creating' && !cluster.neverAvailable) {
        if (cluster.countdown > 0) cluster.countdown -= 1;
        else cluster.status = 'available';
      } else if (cluster.status === 'deleting') {
        if (cluster.countdown > 0) cluster.countdown -= 1;
        else {
          this.clusters.delete(key(cluster.region, cluster.id));
          continue;
        }
      }
      answered.push(cluster);
    }
    if (id !== undefined && answered.length === 0) throw new DBClusterNotFoundFault({ message: `DBCluster ${id} not found.`, $metadata: meta(404) });
    return { DBClusters: answered.map((cluster) => this.dbCluster(cluster)) };
  }

  private describeDBInstanceAutomatedBackups(input: Record<string, unknown>, region: string): Record<string, unknown> {
    const own = [...this.instances.values()].filter((instance) => instance.region === region && instance.retention > 0 && !instance.clusterId)
      .map((instance) => this.ownAutomatedBackup(instance));
    const replicas = this.replications.filter((replication) => replication.region === region).map((replication) => {
      if (replication.status === 'pending') {
        if (replication.countdown > 0) replication.countdown -= 1;
        else replication.status = 'replicating';
      }
      return this.automatedBackupOfReplication(replication);
    });
    let found = [...own, ...replicas];
    if (input.DBInstanceAutomatedBackupsArn !== undefined) found = found.filter((backup) => backup.DBInstanceAutomatedBackupsArn === input.DBInstanceAutomatedBackupsArn);
    if (input.DBInstanceIdentifier !== undefined) found = found.filter((backup) => backup.DBInstanceIdentifier === idOf(String(input.DBInstanceIdentifier)));
    if (input.DbiResourceId !== undefined) found = found.filter((backup) => backup.DbiResourceId === input.DbiResourceId);
    const filtered = input.DBInstanceAutomatedBackupsArn !== undefined || input.DBInstanceIdentifier !== undefined || input.DbiResourceId !== undefined;
    if (filtered && found.length === 0) {
      throw new DBInstanceAutomatedBackupNotFoundFault({ message: `No automated backup found for ${String(input.DBInstanceIdentifier ?? input.DbiResourceId ?? input.DBInstanceAutomatedBackupsArn)}.`, $metadata: meta(404) });
    }
    return { DBInstanceAutomatedBackups: found };
  }

  private startDBInstanceAutomatedBackupsReplication(input: Record<string, unknown>, region: string): Record<string, unknown> {
    const sourceArn = String(input.SourceDBInstanceArn);
    const [, , , sourceRegion, , , sourceId] = sourceArn.split(':');
    if (sourceRegion === region) throw invalidParameter('The source and destination Regions must be different.');
    const source = this.instance(sourceRegion, sourceId);
    if (source.retention === 0) throw new InvalidDBInstanceStateFault({ message: `Automated backups are not enabled for ${source.id}.`, $metadata: meta(400) });
    if (this.activeReplication(sourceArn)) throw new InvalidDBInstanceStateFault({ message: `Automated backups of ${source.id} are already replicated.`, $metadata: meta(400) });
    const kmsKeyId = input.KmsKeyId === undefined ? undefined : String(input.KmsKeyId);
    if (source.encrypted && !kmsKeyId) throw invalidParameter('KmsKeyId is required to replicate the automated backups of an encrypted DB instance.');
    if (kmsKeyId && this.disabledKeys.has(kmsKeyId)) throw new KMSKeyNotAccessibleFault({ message: `The specified KMS key ${kmsKeyId} is disabled.`, $metadata: meta(400) });
    const replication = this.startReplication(source, region, Number(input.BackupRetentionPeriod ?? 7), kmsKeyId);
    return { DBInstanceAutomatedBackup: this.automatedBackupOfReplication(replication) };
  }

  private startReplication(source: Instance, region: string, retention: number, kmsKeyId?: string, startedAt?: Date): Replication {
    const replication: Replication = {
      arn: this.arn(region, 'auto-backup', `ab-${hash(`${source.dbiResourceId}/${region}/${this.replications.length}`, 30)}`),
      region, sourceArn: this.arn(source.region, 'db', source.id), retention, kmsKeyId, status: 'pending', countdown: this.describesUntilCopied,
      startedAt: startedAt ?? this.now,
    };
    this.replications.push(replication);
    return replication;
  }

  private stopDBInstanceAutomatedBackupsReplication(input: Record<string, unknown>, region: string): Record<string, unknown> {
    const sourceArn = String(input.SourceDBInstanceArn);
    const replication = this.replications.find((candidate) => candidate.sourceArn === sourceArn && candidate.region === region && candidate.status !== 'retained');
    if (!replication) throw new InvalidDBInstanceStateFault({ message: `Automated backups of ${sourceArn} are not replicated to ${region}.`, $metadata: meta(400) });
    this.stopReplication(replication);
    return { DBInstanceAutomatedBackup: this.automatedBackupOfReplication(replication) };
  }

  private stopReplication(replication: Replication): void {
    replication.status = 'retained';
    replication.frozenAt ??= this.now;
  }

  private activeReplication(sourceArn: string): Replication | undefined {
    return this.replications.find((replication) => replication.sourceArn === sourceArn && replication.status !== 'retained');
  }

  private modifyDBInstance(input: Record<string, unknown>, region: string): Record<string, unknown> {
    const instance = this.instance(region, idOf(String(input.DBInstanceIdentifier)));
    if (input.BackupRetentionPeriod !== undefined) {
      const days = Number(input.BackupRetentionPeriod);
      if (!Number.isInteger(days) || days < 0 || days > 35) throw invalidParameter(`Invalid backup retention period: ${days}. It must be between 0 and 35.`);
      if (instance.clusterId) throw invalidParameter(`The backup retention of ${instance.id} is its cluster's (${instance.clusterId}): modify the DB cluster.`);
      instance.retention = days;
    }
    if (input.DeletionProtection !== undefined) instance.deletionProtection = Boolean(input.DeletionProtection);
    return { DBInstance: this.dbInstance(instance) };
  }

  private modifyDBCluster(input: Record<string, unknown>, region: string): Record<string, unknown> {
    const cluster = this.cluster(region, idOf(String(input.DBClusterIdentifier)));
    if (input.BackupRetentionPeriod !== undefined) {
      const days = Number(input.BackupRetentionPeriod);
      if (!Number.isInteger(days) || days < 1 || days > 35) throw invalidParameter(`Invalid backup retention period: ${days}. It must be between 1 and 35.`);
      cluster.retention = days;
    }
    if (input.DeletionProtection !== undefined) cluster.deletionProtection = Boolean(input.DeletionProtection);
    return { DBCluster: this.dbCluster(cluster) };
  }

  private describeDBClusterSnapshots(input: Record<string, unknown>, region: string): Record<string, unknown> {
    let found = [...this.snapshots.values()].filter((snapshot) => snapshot.region === region);
    if (input.DBClusterSnapshotIdentifier !== undefined) {
      const id = idOf(String(input.DBClusterSnapshotIdentifier));
      found = found.filter((snapshot) => snapshot.id === id);
      if (found.length === 0) throw new DBClusterSnapshotNotFoundFault({ message: `DBClusterSnapshot ${id} not found.`, $metadata: meta(404) });
    }
    if (input.DBClusterIdentifier !== undefined) found = found.filter((snapshot) => snapshot.clusterId === idOf(String(input.DBClusterIdentifier)));
    if (input.SnapshotType !== undefined) found = found.filter((snapshot) => snapshot.type === input.SnapshotType);
    for (const snapshot of found) {
      if (snapshot.status === 'copying') {
        if (snapshot.countdown > 0) snapshot.countdown -= 1;
        else snapshot.status = 'available';
      }
    }
    return { DBClusterSnapshots: found.map((snapshot) => this.dbClusterSnapshot(snapshot)) };
  }

  private copyDBClusterSnapshot(input: Record<string, unknown>, region: string): Record<string, unknown> {
    const sourceName = String(input.SourceDBClusterSnapshotIdentifier);
    const sourceRegion = sourceName.startsWith('arn:') ? sourceName.split(':')[3] : region;
    const source = this.snapshots.get(key(sourceRegion, idOf(sourceName)));
    if (!source) throw new DBClusterSnapshotNotFoundFault({ message: `DBClusterSnapshot ${sourceName} not found.`, $metadata: meta(404) });
    if (source.status !== 'available') throw new InvalidDBClusterSnapshotStateFault({ message: `DBClusterSnapshot ${source.id} is ${source.status}, not available.`, $metadata: meta(400) });
    const targetId = String(input.TargetDBClusterSnapshotIdentifier);
    if (this.snapshots.has(key(region, targetId))) throw new DBClusterSnapshotAlreadyExistsFault({ message: `DBClusterSnapshot ${targetId} already exists.`, $metadata: meta(400) });
    const kmsKeyId = input.KmsKeyId === undefined ? (sourceRegion === region ? source.kmsKeyId : undefined) : String(input.KmsKeyId);
    if (source.encrypted && !kmsKeyId) throw invalidParameter('KmsKeyId is required to copy an encrypted DB cluster snapshot to another Region.');
    if (kmsKeyId && this.disabledKeys.has(kmsKeyId)) throw new KMSKeyNotAccessibleFault({ message: `The specified KMS key ${kmsKeyId} is disabled.`, $metadata: meta(400) });
    const copy: Snapshot = {
      id: targetId, region, clusterId: source.clusterId, type: 'manual', createdAt: this.now, status: 'copying', encrypted: source.encrypted || kmsKeyId !== undefined,
      kmsKeyId, restoreAccounts: [], tags: [...(input.CopyTags ? source.tags : []), ...((input.Tags as Tag[] | undefined) ?? [])], countdown: this.describesUntilCopied,
      sourceArn: this.arn(source.region, 'cluster-snapshot', source.id), engine: source.engine, engineVersion: source.engineVersion, port: source.port,
      clusterCreatedAt: source.clusterCreatedAt,
    };
    this.snapshots.set(key(region, copy.id), copy);
    return { DBClusterSnapshot: this.dbClusterSnapshot(copy) };
  }

  private modifyDBClusterSnapshotAttribute(input: Record<string, unknown>, region: string): Record<string, unknown> {
    const snapshot = this.snapshot(region, String(input.DBClusterSnapshotIdentifier));
    if (input.AttributeName !== 'restore') throw invalidParameter(`Invalid attribute name ${String(input.AttributeName)}: only restore is modifiable.`);
    if (snapshot.type === 'automated') throw new InvalidDBClusterSnapshotStateFault({ message: `Automated snapshot ${snapshot.id} cannot be shared: copy it first.`, $metadata: meta(400) });
    const add = (input.ValuesToAdd as string[] | undefined) ?? [];
    const remove = new Set((input.ValuesToRemove as string[] | undefined) ?? []);
    snapshot.restoreAccounts = [...new Set([...snapshot.restoreAccounts, ...add])].filter((account) => !remove.has(account));
    return { DBClusterSnapshotAttributesResult: this.attributes(snapshot) };
  }

  private describeDBClusterSnapshotAttributes(input: Record<string, unknown>, region: string): Record<string, unknown> {
    return { DBClusterSnapshotAttributesResult: this.attributes(this.snapshot(region, String(input.DBClusterSnapshotIdentifier))) };
  }

  private attributes(snapshot: Snapshot): Record<string, unknown> {
    return { DBClusterSnapshotIdentifier: snapshot.id, DBClusterSnapshotAttributes: [{ AttributeName: 'restore', AttributeValues: [...snapshot.restoreAccounts] }] };
  }

  private deleteDBClusterSnapshot(input: Record<string, unknown>, region: string): Record<string, unknown> {
    const snapshot = this.snapshot(region, String(input.DBClusterSnapshotIdentifier));
    if (snapshot.type === 'automated') throw new InvalidDBClusterSnapshotStateFault({ message: `Automated snapshot ${snapshot.id} cannot be deleted.`, $metadata: meta(400) });
    if (snapshot.status !== 'available') throw new InvalidDBClusterSnapshotStateFault({ message: `DBClusterSnapshot ${snapshot.id} is ${snapshot.status}.`, $metadata: meta(400) });
    this.snapshots.delete(key(region, snapshot.id));
    snapshot.status = 'deleted';
    return { DBClusterSnapshot: this.dbClusterSnapshot(snapshot) };
  }

  private restoreDBInstanceToPointInTime(input: Record<string, unknown>, region: string): Record<string, unknown> {
    const source = this.instance(region, idOf(String(input.SourceDBInstanceIdentifier)));
    if (source.retention === 0) throw restoreFault('PointInTimeRestoreNotEnabledFault', source.id);
    const target = String(input.TargetDBInstanceIdentifier).toLowerCase();
    if (this.instances.has(key(region, target))) throw restoreFault('DBInstanceAlreadyExistsFault', target);
    const time = this.restoreTime(input, this.latestRestorable(source), this.earliestRestorable(source.createdAt, source.retention), source.id);
    const subnetGroup = input.DBSubnetGroupName === undefined ? 'default' : String(input.DBSubnetGroupName);
    this.requireSubnetGroup(region, subnetGroup);
    const instance = this.newInstance({
      identifier: target, region, engine: source.engine, engineVersion: source.engineVersion,
      instanceClass: input.DBInstanceClass === undefined ? source.instanceClass : String(input.DBInstanceClass),
      backupRetentionPeriod: source.retention, storageEncrypted: source.encrypted, kmsKeyId: source.kmsKeyId, subnetGroup,
      securityGroupIds: (input.VpcSecurityGroupIds as string[] | undefined) ?? source.securityGroupIds, port: source.port, tags: (input.Tags as Tag[] | undefined) ?? [],
    });
    instance.restoredFrom = { source: source.id, time };
    instance.deletionProtection = Boolean(input.DeletionProtection ?? false);
    return { DBInstance: this.dbInstance(instance) };
  }

  private restoreDBClusterToPointInTime(input: Record<string, unknown>, region: string): Record<string, unknown> {
    const source = this.cluster(region, idOf(String(input.SourceDBClusterIdentifier)));
    const target = String(input.DBClusterIdentifier).toLowerCase();
    if (this.clusters.has(key(region, target))) throw restoreFault('DBClusterAlreadyExistsFault', target);
    const time = this.restoreTime(input, this.latestRestorableOf(source), this.earliestRestorable(source.createdAt, source.retention), source.id, 'RestoreToTime');
    const subnetGroup = input.DBSubnetGroupName === undefined ? 'default' : String(input.DBSubnetGroupName);
    this.requireSubnetGroup(region, subnetGroup);
    const kmsKeyId = input.KmsKeyId === undefined ? source.kmsKeyId : String(input.KmsKeyId);
    if (kmsKeyId && this.disabledKeys.has(kmsKeyId)) throw new KMSKeyNotAccessibleFault({ message: `The specified KMS key ${kmsKeyId} is disabled.`, $metadata: meta(400) });
    const cluster: Cluster = {
      id: target, region, engine: source.engine, engineVersion: source.engineVersion, status: 'creating', retention: source.retention, encrypted: source.encrypted,
      kmsKeyId, subnetGroup, securityGroupIds: (input.VpcSecurityGroupIds as string[] | undefined) ?? [...source.securityGroupIds], port: source.port, createdAt: this.now,
      tags: [...((input.Tags as Tag[] | undefined) ?? [])], resourceId: `cluster-${hash(`${region}/${target}/${this.now.toISOString()}`, 26).toUpperCase()}`,
      countdown: this.describesUntilAvailable, neverAvailable: this.stuck.has(key(region, target)), restoredFrom: { source: source.id, time },
      deletionProtection: Boolean(input.DeletionProtection ?? false),
    };
    this.clusters.set(key(region, target), cluster);
    return { DBCluster: this.dbCluster(cluster) };
  }

  private createDBInstance(input: Record<string, unknown>, region: string): Record<string, unknown> {
    const id = String(input.DBInstanceIdentifier).toLowerCase();
    if (this.instances.has(key(region, id))) throw restoreFault('DBInstanceAlreadyExistsFault', id);
    const clusterId = input.DBClusterIdentifier === undefined ? undefined : idOf(String(input.DBClusterIdentifier));
    const cluster = clusterId === undefined ? undefined : this.cluster(region, clusterId);
    const subnetGroup = cluster?.subnetGroup ?? (input.DBSubnetGroupName === undefined ? 'default' : String(input.DBSubnetGroupName));
    this.requireSubnetGroup(region, subnetGroup);
    const engine = String(input.Engine ?? cluster?.engine ?? 'postgres');
    const instance = this.newInstance({
      identifier: id, region, engine, engineVersion: cluster?.engineVersion ?? String(input.EngineVersion ?? '15.8'), instanceClass: String(input.DBInstanceClass),
      clusterIdentifier: cluster?.id, subnetGroup, securityGroupIds: cluster?.securityGroupIds ?? (input.VpcSecurityGroupIds as string[] | undefined) ?? [],
      port: cluster?.port ?? (input.Port === undefined ? defaultPort(engine) : Number(input.Port)), storageEncrypted: cluster?.encrypted ?? Boolean(input.StorageEncrypted),
      kmsKeyId: cluster?.kmsKeyId ?? (input.KmsKeyId as string | undefined), backupRetentionPeriod: cluster?.retention ?? Number(input.BackupRetentionPeriod ?? 1),
      tags: (input.Tags as Tag[] | undefined) ?? [],
    });
    return { DBInstance: this.dbInstance(instance) };
  }

  private newInstance(spec: FakeInstanceSpec & { region: string }): Instance {
    this.addInstance({ ...spec, status: 'creating', createdAt: this.now });
    const instance = this.instance(spec.region, spec.identifier);
    instance.countdown = this.describesUntilAvailable;
    instance.neverAvailable = this.stuck.has(key(spec.region, spec.identifier));
    return instance;
  }

  private deleteDBInstance(input: Record<string, unknown>, region: string): Record<string, unknown> {
    const instance = this.instance(region, idOf(String(input.DBInstanceIdentifier)));
    if (instance.deletionProtection) throw invalidParameter(`Cannot delete protected DB instance ${instance.id}, please disable deletion protection and try again.`, 'InvalidParameterCombination');
    if (!instance.clusterId && !input.SkipFinalSnapshot && input.FinalDBSnapshotIdentifier === undefined) {
      throw invalidParameter('FinalDBSnapshotIdentifier is required unless SkipFinalSnapshot is specified.', 'InvalidParameterCombination');
    }
    if (instance.status === 'deleting') throw new InvalidDBInstanceStateFault({ message: `Instance ${instance.id} is already being deleted.`, $metadata: meta(400) });
    instance.status = 'deleting';
    instance.countdown = this.describesUntilAvailable;
    const answer = this.dbInstance(instance);
    // A cluster member leaves its cluster's member list at once (so the cluster can then be deleted).
    instance.clusterId = undefined;
    return { DBInstance: answer };
  }

  private deleteDBCluster(input: Record<string, unknown>, region: string): Record<string, unknown> {
    const cluster = this.cluster(region, idOf(String(input.DBClusterIdentifier)));
    if (cluster.deletionProtection) throw invalidParameter(`Cannot delete protected Cluster ${cluster.id}, please disable deletion protection and try again.`, 'InvalidParameterCombination');
    if (this.members(cluster).length > 0) {
      throw new InvalidDBClusterStateFault({ message: 'Cluster cannot be deleted, it still contains DB instances in non-deleting state.', $metadata: meta(400) });
    }
    if (!input.SkipFinalSnapshot && input.FinalDBSnapshotIdentifier === undefined) {
      throw invalidParameter('FinalDBSnapshotIdentifier is required unless SkipFinalSnapshot is specified.', 'InvalidParameterCombination');
    }
    cluster.status = 'deleting';
    cluster.countdown = this.describesUntilAvailable;
    return { DBCluster: this.dbCluster(cluster) };
  }

  private describeDBSubnetGroups(input: Record<string, unknown>, region: string): Record<string, unknown> {
    let found = [...this.subnetGroups.values()].filter((group) => group.region === region);
    if (input.DBSubnetGroupName !== undefined) {
      found = found.filter((group) => group.name === input.DBSubnetGroupName);
      if (found.length === 0) throw new DBSubnetGroupNotFoundFault({ message: `DB Subnet group '${String(input.DBSubnetGroupName)}' not found.`, $metadata: meta(404) });
    }
    return { DBSubnetGroups: found.map((group) => this.subnetGroupShape(group.region, group.name)) };
  }

  // Shapes.

  private dbInstance(instance: Instance): DBInstance {
    const backupsOn = instance.retention > 0;
    const arn = this.arn(instance.region, 'db', instance.id);
    return {
      DBInstanceIdentifier: instance.id, DBInstanceArn: arn, DbiResourceId: instance.dbiResourceId, DBInstanceClass: instance.instanceClass,
      Engine: instance.engine, EngineVersion: instance.engineVersion, DBInstanceStatus: instance.status, MasterUsername: 'postgres',
      ...(instance.address && instance.status !== 'creating' ? { Endpoint: { Address: instance.address, Port: instance.port, HostedZoneId: 'Z29XKXDKYMONMX' } } : {}),
      AllocatedStorage: 20, InstanceCreateTime: instance.createdAt, PreferredBackupWindow: '03:00-03:30', BackupRetentionPeriod: instance.retention,
      DBSecurityGroups: [], VpcSecurityGroups: instance.securityGroupIds.map((id) => ({ VpcSecurityGroupId: id, Status: 'active' })),
      AvailabilityZone: `${instance.region}a`, DBSubnetGroup: this.subnetGroupShape(instance.region, instance.subnetGroup),
      ...(backupsOn && instance.status !== 'creating' && !instance.clusterId ? { LatestRestorableTime: this.latestRestorable(instance) } : {}),
      MultiAZ: instance.multiAz, StorageEncrypted: instance.encrypted, ...(instance.kmsKeyId ? { KmsKeyId: instance.kmsKeyId } : {}),
      ...(instance.clusterId ? { DBClusterIdentifier: instance.clusterId } : {}), TagList: [...instance.tags], DeletionProtection: instance.deletionProtection,
      BackupTarget: 'region',
      DBInstanceAutomatedBackupsReplications: this.replications.filter((replication) => replication.sourceArn === arn && replication.status !== 'retained')
        .map((replication) => ({ DBInstanceAutomatedBackupsArn: replication.arn })),
    };
  }

  private dbCluster(cluster: Cluster): DBCluster {
    const available = cluster.status !== 'creating';
    return {
      DBClusterIdentifier: cluster.id, DBClusterArn: this.arn(cluster.region, 'cluster', cluster.id), DbClusterResourceId: cluster.resourceId,
      Engine: cluster.engine, EngineVersion: cluster.engineVersion, Status: cluster.status, BackupRetentionPeriod: cluster.retention,
      ...(available ? { EarliestRestorableTime: this.earliestRestorable(cluster.createdAt, cluster.retention), LatestRestorableTime: this.latestRestorableOf(cluster) } : {}),
      Endpoint: `${cluster.id}.cluster-${hash(cluster.region, 12)}.${cluster.region}.rds.amazonaws.com`,
      ReaderEndpoint: `${cluster.id}.cluster-ro-${hash(cluster.region, 12)}.${cluster.region}.rds.amazonaws.com`, Port: cluster.port,
      DBSubnetGroup: cluster.subnetGroup, VpcSecurityGroups: cluster.securityGroupIds.map((id) => ({ VpcSecurityGroupId: id, Status: 'active' })),
      StorageEncrypted: cluster.encrypted, ...(cluster.kmsKeyId ? { KmsKeyId: cluster.kmsKeyId } : {}), ClusterCreateTime: cluster.createdAt,
      DBClusterMembers: this.members(cluster).map((member, index) => ({ DBInstanceIdentifier: member.id, IsClusterWriter: index === 0, DBClusterParameterGroupStatus: 'in-sync', PromotionTier: 1 })),
      TagList: [...cluster.tags], DeletionProtection: cluster.deletionProtection, MasterUsername: 'postgres',
    };
  }

  private members(cluster: Cluster): Instance[] {
    return [...this.instances.values()].filter((instance) => instance.region === cluster.region && instance.clusterId === cluster.id && instance.status !== 'deleting');
  }

  private ownAutomatedBackup(instance: Instance): DBInstanceAutomatedBackup {
    const arn = this.arn(instance.region, 'db', instance.id);
    return {
      DBInstanceArn: arn, DbiResourceId: instance.dbiResourceId, Region: instance.region, DBInstanceIdentifier: instance.id,
      RestoreWindow: { EarliestTime: this.earliestRestorable(instance.createdAt, instance.retention), LatestTime: this.latestRestorable(instance) },
      AllocatedStorage: 20, Status: 'active', Port: instance.port, AvailabilityZone: `${instance.region}a`, VpcId: this.subnetGroupShape(instance.region, instance.subnetGroup).VpcId,
      InstanceCreateTime: instance.createdAt, MasterUsername: 'postgres', Engine: instance.engine, EngineVersion: instance.engineVersion, LicenseModel: 'postgresql-license',
      StorageType: 'gp3', Encrypted: instance.encrypted, ...(instance.kmsKeyId ? { KmsKeyId: instance.kmsKeyId } : {}), BackupRetentionPeriod: instance.retention,
      DBInstanceAutomatedBackupsArn: this.arn(instance.region, 'auto-backup', `ab-${hash(instance.dbiResourceId, 30)}`), BackupTarget: 'region',
      DBInstanceAutomatedBackupsReplications: this.replications.filter((replication) => replication.sourceArn === arn && replication.status !== 'retained')
        .map((replication) => ({ DBInstanceAutomatedBackupsArn: replication.arn })),
    };
  }

  private automatedBackupOfReplication(replication: Replication): DBInstanceAutomatedBackup {
    const [, , , sourceRegion, , , sourceId] = replication.sourceArn.split(':');
    const source = this.instances.get(key(sourceRegion, sourceId));
    const sourceLatest = source ? this.latestRestorable(source) : replication.startedAt;
    const tracking = new Date(Math.max(replication.startedAt.getTime(), sourceLatest.getTime() - this.replicationLagMs));
    const latest = replication.frozenAt && replication.frozenAt < tracking ? replication.frozenAt : tracking;
    const earliest = new Date(Math.max(replication.startedAt.getTime(), this.now.getTime() - replication.retention * DAY_MS));
    return {
      DBInstanceArn: replication.sourceArn, DbiResourceId: source?.dbiResourceId, Region: sourceRegion, DBInstanceIdentifier: sourceId,
      RestoreWindow: replication.status === 'pending' ? {} : { EarliestTime: earliest, LatestTime: latest },
      AllocatedStorage: 20, Status: replication.status, Port: source?.port, Engine: source?.engine, EngineVersion: source?.engineVersion, StorageType: 'gp3',
      Encrypted: replication.kmsKeyId !== undefined, ...(replication.kmsKeyId ? { KmsKeyId: replication.kmsKeyId } : {}), BackupRetentionPeriod: replication.retention,
      DBInstanceAutomatedBackupsArn: replication.arn, BackupTarget: 'region', InstanceCreateTime: source?.createdAt,
    };
  }

  private dbClusterSnapshot(snapshot: Snapshot): DBClusterSnapshot {
    return {
      DBClusterSnapshotIdentifier: snapshot.id, DBClusterSnapshotArn: this.arn(snapshot.region, 'cluster-snapshot', snapshot.id), DBClusterIdentifier: snapshot.clusterId,
      SnapshotCreateTime: snapshot.createdAt, Engine: snapshot.engine, EngineVersion: snapshot.engineVersion, Status: snapshot.status, Port: snapshot.port,
      ClusterCreateTime: snapshot.clusterCreatedAt, MasterUsername: 'postgres', SnapshotType: snapshot.type, PercentProgress: snapshot.status === 'available' ? 100 : 0,
      StorageEncrypted: snapshot.encrypted, ...(snapshot.kmsKeyId ? { KmsKeyId: snapshot.kmsKeyId } : {}), AllocatedStorage: 1, VpcId: 'vpc-0a1b2c3d',
      ...(snapshot.sourceArn ? { SourceDBClusterSnapshotArn: snapshot.sourceArn } : {}), TagList: [...snapshot.tags],
    };
  }

  private subnetGroupShape(region: string, name: string) {
    const group = this.subnetGroups.get(key(region, name));
    return {
      DBSubnetGroupName: name, DBSubnetGroupDescription: name, VpcId: group?.vpcId ?? 'vpc-0a1b2c3d', SubnetGroupStatus: 'Complete',
      Subnets: ['a', 'b'].map((zone) => ({ SubnetIdentifier: `subnet-${hash(`${region}/${name}/${zone}`, 17)}`, SubnetAvailabilityZone: { Name: `${region}${zone}` }, SubnetStatus: 'Active' })),
      DBSubnetGroupArn: this.arn(region, 'subgrp', name),
    };
  }

  // Time.

  latestRestorable(instance: { stalledAt?: Date; createdAt: Date }): Date {
    const tracking = new Date(Math.max(instance.createdAt.getTime(), this.now.getTime() - this.restorableLagMs));
    return instance.stalledAt && instance.stalledAt < tracking ? instance.stalledAt : tracking;
  }

  private latestRestorableOf(cluster: Cluster): Date {
    return this.latestRestorable(cluster);
  }

  private earliestRestorable(createdAt: Date, retentionDays: number): Date {
    return new Date(Math.max(createdAt.getTime(), this.now.getTime() - retentionDays * DAY_MS));
  }

  private restoreTime(input: Record<string, unknown>, latest: Date, earliest: Date, source: string, field = 'RestoreTime'): Date {
    if (input.UseLatestRestorableTime) return latest;
    if (input[field] === undefined) throw invalidParameter(`Specify ${field} or UseLatestRestorableTime.`, 'InvalidParameterCombination');
    const time = new Date(input[field] as string | Date);
    if (time < earliest || time > latest) {
      throw new InvalidRestoreFault({ message: `Restore time ${time.toISOString()} is outside the restorable window of ${source} (${earliest.toISOString()} to ${latest.toISOString()}).`, $metadata: meta(400) });
    }
    return time;
  }

  // Lookups.

  private instance(region: string, id: string): Instance {
    const instance = this.instances.get(key(region, id));
    if (!instance) throw new DBInstanceNotFoundFault({ message: `DBInstance ${id} not found.`, $metadata: meta(404) });
    return instance;
  }

  private cluster(region: string, id: string): Cluster {
    const cluster = this.clusters.get(key(region, id));
    if (!cluster) throw new DBClusterNotFoundFault({ message: `DBCluster ${id} not found.`, $metadata: meta(404) });
    return cluster;
  }

  private snapshot(region: string, name: string): Snapshot {
    const snapshot = this.snapshots.get(key(region, idOf(name)));
    if (!snapshot) throw new DBClusterSnapshotNotFoundFault({ message: `DBClusterSnapshot ${name} not found.`, $metadata: meta(404) });
    return snapshot;
  }

  private requireSubnetGroup(region: string, name: string): void {
    if (name !== 'default' && !this.subnetGroups.has(key(region, name))) {
      throw new DBSubnetGroupNotFoundFault({ message: `DB Subnet group '${name}' does not exist.`, $metadata: meta(404) });
    }
  }

  /**
   * The tags of an existing instance, cluster or cluster snapshot named by its ARN (what AWS puts
   * in a request's `aws:ResourceTag/<key>` context); undefined for anything else or gone.
   */
  tagsAt(resourceArn: string): readonly Tag[] | undefined {
    const [, , service, region, , type, ...rest] = resourceArn.split(':');
    const id = rest.join(':');
    if (service !== 'rds' || id.includes('*')) return undefined;
    const found = type === 'db' ? this.instances.get(key(region, id))
      : type === 'cluster' ? this.clusters.get(key(region, id))
        : type === 'cluster-snapshot' ? this.snapshots.get(key(region, id)) : undefined;
    return found?.tags;
  }

  private tagsOf(resourceArn: string): Tag[] {
    const [, , , region, , type, ...rest] = resourceArn.split(':');
    const id = rest.join(':');
    if (type === 'db') return this.instance(region, id).tags;
    if (type === 'cluster') return this.cluster(region, id).tags;
    if (type === 'cluster-snapshot') return this.snapshot(region, id).tags;
    throw new Error(`FakeRds: tags of ${resourceArn} are not kept by the fake`);
  }
}

export interface RdsMock {
  /** Every call, in order. */
  readonly calls: RecordedRdsCall[];
  /** Puts RDSClient back. */
  restore(): void;
}

/**
 * Answers every RDSClient's commands from `fake`. Within a principal's scope (asPrincipal) and
 * with an evaluator, each call is first authorized against the synthesized policies as
 * requestsForCall maps it, in the client's region; a denial throws RDS's AccessDenied (an
 * RDSServiceException named AccessDenied, 403) whose message names principal, action and
 * resource, and the fake is left untouched. Calls outside a principal scope are test set-up:
 * answered unevaluated.
 */
export function mockRdsIamTrue(fake: FakeRds, opts: { readonly evaluator?: IamEvaluator; readonly model?: IamModel } = {}): RdsMock {
  const mock = mockClient(RDSClient);
  const calls: RecordedRdsCall[] = [];
  const model = opts.model ?? opts.evaluator?.model;
  for (const [name, Command] of Object.entries(COMMANDS)) {
    mock.on(Command as never).callsFake(async (input: Record<string, unknown>, getClient: () => RDSClient) => {
      const region = await getClient().config.region();
      const principal = currentPrincipal();
      const record = (error?: string) => calls.push({ command: name, input, region, principal, ...(error ? { error } : {}) });
      try {
        if (principal && opts.evaluator && model) {
          const { requests, errorName } = requestsForCall(model, principal, 'RDS', name, input, region);
          try {
            await opts.evaluator.authorize(requests.map((request) => withResourceTags(request, fake.tagsAt(request.resource))), errorName);
          } catch (error) {
            if (!(error instanceof AccessDeniedError)) throw error;
            throw Object.assign(new RDSServiceException({ name: error.name, $fault: 'client', $metadata: meta(403), message: error.message }), { decision: error.decision });
          }
        }
        const answer = await fake.handle(name, input, region);
        record();
        return { ...answer, $metadata: meta(200) };
      } catch (error) {
        record((error as Error).name);
        throw error;
      }
    });
  }
  return { calls, restore: () => mock.restore() };
}

/**
 * A request on an existing resource carries that resource's tags as `aws:ResourceTag/<key>`
 * (the key policies condition deletes on: a drill's `lifeboat:drill`).
 */
function withResourceTags(request: AwsRequest, tags: readonly Tag[] | undefined): AwsRequest {
  if (!tags || tags.length === 0 || !request.action.startsWith('rds:')) return request;
  return { ...request, context: { ...request.context, ...Object.fromEntries(tags.map((tag) => [`aws:ResourceTag/${String(tag.Key)}`, String(tag.Value ?? '')])) } };
}

const COMMANDS = {
  DescribeDBInstances: DescribeDBInstancesCommand,
  DescribeDBClusters: DescribeDBClustersCommand,
  DescribeDBInstanceAutomatedBackups: DescribeDBInstanceAutomatedBackupsCommand,
  DescribeDBClusterAutomatedBackups: DescribeDBClusterAutomatedBackupsCommand,
  StartDBInstanceAutomatedBackupsReplication: StartDBInstanceAutomatedBackupsReplicationCommand,
  StopDBInstanceAutomatedBackupsReplication: StopDBInstanceAutomatedBackupsReplicationCommand,
  ModifyDBInstance: ModifyDBInstanceCommand,
  ModifyDBCluster: ModifyDBClusterCommand,
  DescribeDBClusterSnapshots: DescribeDBClusterSnapshotsCommand,
  DescribeDBSnapshots: DescribeDBSnapshotsCommand,
  CopyDBClusterSnapshot: CopyDBClusterSnapshotCommand,
  ModifyDBClusterSnapshotAttribute: ModifyDBClusterSnapshotAttributeCommand,
  DescribeDBClusterSnapshotAttributes: DescribeDBClusterSnapshotAttributesCommand,
  DeleteDBClusterSnapshot: DeleteDBClusterSnapshotCommand,
  RestoreDBInstanceToPointInTime: RestoreDBInstanceToPointInTimeCommand,
  RestoreDBClusterToPointInTime: RestoreDBClusterToPointInTimeCommand,
  CreateDBInstance: CreateDBInstanceCommand,
  DeleteDBInstance: DeleteDBInstanceCommand,
  DeleteDBCluster: DeleteDBClusterCommand,
  AddTagsToResource: AddTagsToResourceCommand,
  ListTagsForResource: ListTagsForResourceCommand,
  DescribeDBSubnetGroups: DescribeDBSubnetGroupsCommand,
} as const;

function restoreFault(fault: RestoreFault, subject?: string): Error {
  switch (fault) {
    case 'PointInTimeRestoreNotEnabledFault':
      return new PointInTimeRestoreNotEnabledFault({ message: `Point-in-time restore is not enabled for ${subject ?? 'the source DB instance'}: its backup retention period is 0.`, $metadata: meta(400) });
    case 'DBInstanceAlreadyExistsFault':
      return new DBInstanceAlreadyExistsFault({ message: `DB instance ${subject ?? ''} already exists`.replace('  ', ' '), $metadata: meta(400) });
    case 'DBClusterAlreadyExistsFault':
      return new DBClusterAlreadyExistsFault({ message: `DB cluster ${subject ?? ''} already exists`.replace('  ', ' '), $metadata: meta(400) });
    case 'InsufficientDBInstanceCapacityFault':
      return new InsufficientDBInstanceCapacityFault({ message: 'Cannot create a DB instance because there is no capacity for the requested DB instance class in this Availability Zone.', $metadata: meta(400) });
    default:
      throw new Error(`FakeRds: unknown fault ${String(fault)}`);
  }
}

/** A query-protocol error the SDK has no class for (InvalidParameterValue, InvalidParameterCombination). */
function invalidParameter(message: string, name = 'InvalidParameterValue'): Error {
  return new RDSServiceException({ name, $fault: 'client', $metadata: meta(400), message });
}

function meta(httpStatusCode: number) {
  return { httpStatusCode, requestId: '00000000-0000-4000-8000-000000000000', attempts: 1, totalRetryDelay: 0 };
}

const key = (region: string, id: string) => `${region}/${id}`;
const idOf = (name: string) => (name.startsWith('arn:') ? name.split(':').slice(6).join(':') : name).toLowerCase();
const hash = (text: string, length: number) => createHash('sha256').update(text).digest('hex').slice(0, length);
const endpointHost = (id: string, region: string) => `${id}.c${hash(region, 11)}.${region}.rds.amazonaws.com`;
const defaultPort = (engine: string) => (/mysql|mariadb/.test(engine) ? 3306 : 5432);
