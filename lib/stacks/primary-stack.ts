import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as path from 'node:path';
import type { Construct } from 'constructs';
import type { LifeboatConfig } from '../config/types';
import { AlarmTopic } from '../constructs/alarm-topic';
import { BackupBucket } from '../constructs/backup-bucket';
import { BackupSchedules } from '../constructs/backup-schedules';
import { BackupWorkflow } from '../constructs/backup-workflow';
import { DrillSchedules } from '../constructs/drill-schedules';
import type { DrillTask } from '../constructs/drill-task';
import { DrillWorkflow } from '../constructs/drill-workflow';
import { LifeboatAlarms } from '../constructs/alarms';
import { LifeboatOverviewDashboard } from '../constructs/dashboard';
import type { DumpTask } from '../constructs/dump-task';
import { Heartbeats } from '../constructs/heartbeats';
import { NativeDrillJanitor } from '../constructs/native-drill';
import { PitrMarker } from '../constructs/pitr-marker';
import { PitrSetupDocuments } from '../constructs/pitr-setup-documents';
import { PitrWorkflow } from '../constructs/pitr-workflow';
import { BinlogPhysicalWorkflow } from '../constructs/binlog-physical-workflow';
import { Pruner } from '../constructs/pruner';
import { Watchdog } from '../constructs/watchdog';
import { OffsiteReplication } from '../constructs/offsite-replication';
import { configurationAdmins, shortestRetentionDays, storageNames } from './naming';
import { KeyWatch } from '../constructs/key-watch';
import { OperatorAccess } from '../constructs/operator-access';
import { OFFSITE_READER_PATHS } from '../constructs/dump-task';
import { BINLOG_PREFIX, DRILLS_PREFIX, pitrCatalogName, RUNS_PREFIX } from '../domain/layout';
import { imageBuildArgs } from '../domain/versions';
import { SOURCES_PER_SHARD, SourceShard, shardSources } from './source-shard';
import { NativeShard, RDS_SOURCES_PER_SHARD } from './native-shard';
import { BINLOG_SOURCES_PER_SHARD, BinlogShard } from './binlog-shard';
import { BINLOG_DRILL_SOURCES_PER_SHARD, BinlogDrillShard } from './binlog-drill-shard';

export interface PrimaryStackProps extends Omit<StackProps, 'env'> {
  /** The environment (primary region and account) comes from here. */
  readonly config: LifeboatConfig;
}

/**
 * The primary region: the backup bucket (the catalog), its replication to the offsite bucket,
 * and the alarm topic.
 */
export class PrimaryStack extends Stack {
  public readonly backupBucket: BackupBucket;
  public readonly replication: OffsiteReplication;
  public readonly alarmTopic: AlarmTopic;
  /** One dump task definition per source, by source name. */
  public readonly dumpTasks: Readonly<Record<string, DumpTask>>;
  public readonly workflow: BackupWorkflow;
  /** Point-in-time recovery runs of the sources with method 'pitr' (none: undefined). */
  public readonly pitr?: PitrWorkflow;
  /** The physical backups (mariadb-backup / xtrabackup through SSM) of MySQL/MariaDB sources with `binlog.physical`. */
  public readonly binlogPhysical?: BinlogPhysicalWorkflow;
  public readonly watchdog: Watchdog;
  public readonly pruner: Pruner;
  public readonly heartbeats: Heartbeats;
  public readonly alarms: LifeboatAlarms;
  public readonly schedules: BackupSchedules;
  /** The operator commands' role and managed policy. */
  public readonly operators: OperatorAccess;
  /** The nested stacks holding the per-source resources, `SOURCES_PER_SHARD` sources each. */
  public readonly shards: readonly SourceShard[];
  /**
   * RDS/Aurora sources' own point-in-time recovery (none: undefined): the drills' janitor here;
   * the checks, alarms, the DB clusters' offsite snapshot copier and each source's drill state
   * machine in native shards (nested stacks beside the source shards).
   */
  public readonly native?: { readonly shards: readonly NativeShard[]; readonly janitor: NativeDrillJanitor };
  /** MySQL/MariaDB PITR sources' binary-log archivers, in binlog shards (none: empty). */
  public readonly binlogShards: readonly BinlogShard[];
  /** MySQL/MariaDB PITR sources' binary-log drills (drill tasks of kind 'binlog' and their schedules), in binlog drill shards. */
  public readonly binlogDrillShards: readonly BinlogDrillShard[];
  /** Restore drills: one drill task per source (in the shards), the drill state machine and the schedules' shared queue and group. */
  public readonly drills: { readonly tasks: Readonly<Record<string, DrillTask>>; readonly workflow: DrillWorkflow; readonly schedules: DrillSchedules };

  constructor(scope: Construct, id: string, props: PrimaryStackProps) {
    const { config, ...stackProps } = props;
    const names = storageNames(config);
    super(scope, id, {
      ...stackProps,
      env: { region: config.primary.region, account: names.primaryAccount },
      description: stackProps.description ?? `${config.appName}: backup repository, offsite replication and alarms`,
    });

    this.replication = new OffsiteReplication(this, 'OffsiteReplication', {
      destinationBucketName: names.offsiteBucketName,
      destinationRegion: config.offsite.region,
      destinationAccount: names.offsiteAccount,
      destinationKeyAlias: names.offsiteKeyAlias,
      storageClass: new s3.StorageClass(config.offsite.storageClass),
      roleName: names.replicationRoleName,
    });

    this.backupBucket = new BackupBucket(this, 'Backups', {
      objectLockMode: s3.ObjectLockMode[config.objectLock.mode],
      defaultRetentionDays: shortestRetentionDays(config),
      configurationAdmins: configurationAdmins(this, config),
      writeOncePrefixes: [RUNS_PREFIX, DRILLS_PREFIX, BINLOG_PREFIX],
      // No lifecycle expiration of runs here: S3 cannot keep "the newest verified runs of a
      // source", so a long outage of a source would expire its last good backup. In the
      // primary, a run's retention is its Object Lock date (the tier's retention, set at
      // upload) and the pruner, which never deletes the newest verified runs.
      replication: this.replication,
    });

    this.alarmTopic = new AlarmTopic(this, 'Alarms', {
      displayName: `${config.appName} alarms`,
      emails: config.notifications.emails,
      httpsEndpoints: config.notifications.httpsEndpoints,
    });

    // One worker image for every source (worker/Dockerfile), built by `cdk deploy`, with the
    // PostgreSQL major of lib/domain/versions.ts (the verifier's image takes the same).
    const workerImage = ecs.ContainerImage.fromAsset(path.join(__dirname, '..', '..'), {
      file: 'worker/Dockerfile',
      platform: Platform.LINUX_AMD64,
      buildArgs: imageBuildArgs(),
    });

    this.workflow = new BackupWorkflow(this, 'BackupRun', {
      appName: config.appName,
      bucket: this.backupBucket.bucket,
      bucketKey: this.backupBucket.key,
      offsite: { bucketName: names.offsiteBucketName, region: config.offsite.region, account: names.offsiteAccount },
      alarmTopic: this.alarmTopic.topic,
      // A PITR source's runs are cataloged as <source>-pitr (lib/domain/layout.ts).
      rpoSecondsBySource: Object.fromEntries(config.sources.flatMap((source) => [
        [source.name, source.tier.rpoSeconds],
        ...(source.methods.includes('pitr') ? [[pitrCatalogName(source.name), source.tier.rpoSeconds]] : []),
      ])),
      workerImage,
    });
    // The shared dead-letter queues and schedule groups; the schedules live in the shards.
    this.schedules = new BackupSchedules(this, 'Schedules', {
      sources: [],
      stateMachine: this.workflow.stateMachine,
      targets: {},
    });
    // pgBackRest's sources (a MySQL/MariaDB source's method 'pitr' archives binary logs: binlog shards below).
    const pitrSources = config.sources.filter((source) => source.pitr !== undefined);
    // What a run on a host (pgBackRest's, or mariadb-backup's) shares with the backup run: its bucket, cluster, steps and schedules.
    const { commit, awaitOffsite, record, recordFailure } = this.workflow.functions;
    const hostRun = {
      appName: config.appName,
      bucket: this.backupBucket.bucket,
      bucketKey: this.backupBucket.key,
      alarmTopic: this.alarmTopic.topic,
      workerImage,
      cluster: this.workflow.cluster,
      functions: { commit, awaitOffsite, record, recordFailure },
      objectLockMode: config.objectLock.mode,
      schedules: { group: this.schedules.group, deadLetterQueue: this.schedules.deadLetterQueue },
    };
    if (pitrSources.length > 0) {
      this.pitr = new PitrWorkflow(this, 'PitrRun', { ...hostRun, sources: pitrSources, offsite: { bucketName: names.offsiteBucketName } });
      // What lifeboat pitr setup prints, as an SSM document per source with this deployment's bucket and key.
      new PitrSetupDocuments(this, 'PitrSetup', { appName: config.appName, sources: pitrSources, bucket: this.backupBucket.bucket, bucketKey: this.backupBucket.key });
      // The exact check of PITR drills, for the sources that ask for it (pitr.marker).
      if (pitrSources.some((source) => source.pitr?.marker)) {
        new PitrMarker(this, 'PitrMarker', { appName: config.appName, sources: pitrSources, group: this.schedules.group, deadLetterQueue: this.schedules.deadLetterQueue });
      }
    }
    // MySQL/MariaDB sources with a physical host: mariadb-backup / xtrabackup fulls and incrementals through SSM.
    const physicalSources = config.sources.filter((source) => source.binlog?.physical !== undefined);
    if (physicalSources.length > 0) this.binlogPhysical = new BinlogPhysicalWorkflow(this, 'BinlogPhysicalRun', { ...hostRun, sources: physicalSources });
    // One writer per JSON document of a run, enforced by the bucket: Commit writes the verdict,
    // AwaitOffsite the offsite confirmation, the drill tasks their reports.
    this.backupBucket.restrictWriters('Verification', `${RUNS_PREFIX}*/verification.json`, [this.workflow.functions.commit.role!.roleArn]);
    this.backupBucket.restrictWriters('Offsite', `${RUNS_PREFIX}*/offsite.json`, [this.workflow.functions.awaitOffsite.role!.roleArn]);
    this.backupBucket.restrictWriters('Drills', `${DRILLS_PREFIX}*`, [`arn:${this.partition}:iam::${this.account}:role${OFFSITE_READER_PATHS.drill}*`]);
    const drillWorkflow = new DrillWorkflow(this, 'RestoreDrill', {
      appName: config.appName,
      cluster: this.workflow.cluster,
      alarmTopic: this.alarmTopic.topic,
      sources: config.sources,
    });
    const drillSchedules = new DrillSchedules(this, 'DrillSchedules', {
      sources: [],
      stateMachine: drillWorkflow.stateMachine,
      targets: {},
    });

    // Silence is an alarm: the age of each source's newest verified backup, every 5 minutes.
    // The function is shared; the two alarms per source live in the shards.
    this.watchdog = new Watchdog(this, 'Watchdog', {
      sources: config.sources,
      bucket: this.backupBucket.bucket,
      bucketKey: this.backupBucket.key,
      alarmTopic: this.alarmTopic.topic,
      perSourceAlarms: false,
    });

    // Per-source resources, SOURCES_PER_SHARD sources per nested stack: CloudFormation takes
    // at most 500 resources per stack. The parent never references a shard.
    const offsite = { bucketName: names.offsiteBucketName, region: config.offsite.region, account: names.offsiteAccount };
    const alarmNamePrefix = config.appName;
    const dashboardName = `${config.appName}-${config.primary.region}`;
    this.shards = shardSources(config.sources).map((sources, index) => new SourceShard(this, `Sources-${index + 1}`, {
      config,
      sources,
      bucket: this.backupBucket.bucket,
      bucketKey: this.backupBucket.key,
      image: workerImage,
      offsite,
      alarmTopic: this.alarmTopic.topic,
      backup: { stateMachine: this.workflow.stateMachine, deadLetterQueue: this.schedules.deadLetterQueue, group: this.schedules.group },
      drill: { stateMachine: drillWorkflow.stateMachine, deadLetterQueue: drillSchedules.deadLetterQueue, group: drillSchedules.group },
      alarmNamePrefix,
      // Dashboards are global to the account: the region keeps two deployments apart.
      dashboardNamePrefix: `${dashboardName}-Sources-${index + 1}`,
    }));
    this.dumpTasks = Object.assign({}, ...this.shards.map((shard) => shard.dumpTasks)) as Record<string, DumpTask>;
    this.drills = {
      tasks: Object.assign({}, ...this.shards.map((shard) => shard.drillTasks)) as Record<string, DrillTask>,
      workflow: drillWorkflow,
      schedules: drillSchedules,
    };

    // MySQL/MariaDB point-in-time recovery: each source's binary-log archiver (task and schedule) in
    // binlog shards beside the source shards, in the network of the source's dump task.
    const shardOf = new Map(this.shards.flatMap((shard, index) => shardSources(config.sources)[index].map((source) => [source.name, shard] as const)));
    const binlogSources = config.sources.filter((source) => source.binlog !== undefined);
    this.binlogShards = shardSources(binlogSources, BINLOG_SOURCES_PER_SHARD).map((sources, index) => new BinlogShard(this, `Binlog-${index + 1}`, {
      config, sources, bucket: this.backupBucket.bucket, bucketKey: this.backupBucket.key, image: workerImage, cluster: this.workflow.cluster,
      schedules: { group: this.schedules.group, deadLetterQueue: this.schedules.deadLetterQueue },
      networkOf: (source) => (shardOf.get(source.name) as SourceShard).networkOf(source),
    }));
    // Their point-in-time drills, on the restore-drill state machine at the tier's drill cadence, in the same network.
    this.binlogDrillShards = shardSources(binlogSources, BINLOG_DRILL_SOURCES_PER_SHARD).map((sources, index) => new BinlogDrillShard(this, `BinlogDrill-${index + 1}`, {
      config, sources, bucket: this.backupBucket.bucket, bucketKey: this.backupBucket.key, image: workerImage, offsite,
      drill: { stateMachine: drillWorkflow.stateMachine, deadLetterQueue: drillSchedules.deadLetterQueue, group: drillSchedules.group },
      networkOf: (source) => (shardOf.get(source.name) as SourceShard).networkOf(source),
    }));

    // RDS/Aurora: the engine's own point-in-time recovery, checked, copied offsite (DB clusters,
    // which have no automated-backup replication) and drilled, in native shards; the janitor
    // deletes any drill instance or cluster a failed execution left behind.
    const rdsSources = config.sources.filter((source) => source.rds !== undefined);
    if (rdsSources.length > 0) {
      this.native = {
        shards: shardSources(rdsSources, RDS_SOURCES_PER_SHARD).map((sources, index) => new NativeShard(this, `Native-${index + 1}`, {
          config, sources, bucket: this.backupBucket.bucket, bucketKey: this.backupBucket.key, image: workerImage, cluster: this.workflow.cluster,
          offsite: { region: config.offsite.region, account: names.offsiteAccount, keyArn: this.replication.destinationKeyArn }, alarmTopic: this.alarmTopic.topic,
          drill: { group: drillSchedules.group, deadLetterQueue: drillSchedules.deadLetterQueue }, alarmNamePrefix,
        })),
        janitor: new NativeDrillJanitor(this, 'NativeDrillJanitor', { appName: config.appName, sources: rdsSources }),
      };
    }

    // External monitors hear from every run: start, success, failure.
    this.heartbeats = new Heartbeats(this, 'Heartbeats', {
      heartbeatUrls: config.notifications.heartbeatUrls,
    });
    // The only role that deletes runs; it never deletes the newest verified ones.
    this.pruner = new Pruner(this, 'Pruner', {
      bucket: this.backupBucket.bucket,
      key: this.backupBucket.key,
      sources: config.sources,
    });

    // Every failure mode that is not a missing backup (the watchdog's), to the alarm topic.
    this.alarms = new LifeboatAlarms(this, 'LifeboatAlarms', {
      backupStateMachine: this.workflow.stateMachine,
      drillStateMachine: this.drills.workflow.stateMachine,
      deadLetterQueues: [
        { name: 'BackupSchedules', queue: this.schedules.deadLetterQueue },
        { name: 'DrillSchedules', queue: this.drills.schedules.deadLetterQueue },
        { name: 'Pruner', queue: this.pruner.deadLetterQueue },
        ...(this.heartbeats.deadLetterQueue ? [{ name: 'Heartbeats', queue: this.heartbeats.deadLetterQueue }] : []),
      ],
      primaryBucket: this.backupBucket.bucket,
      replicationRuleId: this.replication.rule.id as string,
      offsiteBucketName: this.replication.destination.bucketName,
      alarmTopic: this.alarmTopic.topic,
      sources: config.sources,
    });
    // One dashboard over every source, whose size does not grow with them (Metrics Insights
    // queries over the `source` dimension); each shard has the dashboard of its own sources.
    new LifeboatOverviewDashboard(this, 'Dashboard', {
      dashboardName,
      alarms: this.alarms.alarms,
      tiers: [...new Map(config.sources.map((source) => [source.tier.name, source.tier])).values()],
      defaultSource: config.sources[0]?.name,
      notes: `Each source's two watchdog alarms (\`${alarmNamePrefix}-rpo-<source>\`, \`${alarmNamePrefix}-offsite-rpo-<source>\`) and its graphs against its own RPO and RTO `
        + `are on the dashboard of its source shard, \`${dashboardName}-Sources-<n>-1\`: ${SOURCES_PER_SHARD} sources each, in config order.`,
    });

    this.operators = new OperatorAccess(this, 'Operators', {
      bucket: this.backupBucket.bucket,
      key: this.backupBucket.key,
      offsite: { ...offsite, account: offsite.account ?? this.account },
      outputsStackName: this.stackName,
      roleName: names.operatorRoleName,
      rdsSources: config.sources.flatMap((source) => (source.rds ? [source.rds] : [])),
      description: `${config.appName}: what the operator commands need (status, runbook, restore, prune without --apply); reads only`,
    });
    // Silence about the keys is not an option either: disabling or scheduling the deletion of
    // the backup key (or the alarm topic's) makes every backup unreadable.
    this.alarmTopic.allowEventRules();
    new KeyWatch(this, 'KeyWatch', { keys: [this.backupBucket.key, this.alarmTopic.key], topic: this.alarmTopic.topic, what: 'the primary backup bucket or the alarm topic' });

    new CfnOutput(this, 'OperatorRoleArn', {
      description: 'Role for the operator commands (lifeboat status, runbook, restore): reads only',
      value: this.operators.role.roleArn,
    });
    new CfnOutput(this, 'OperatorPolicyArn', {
      description: 'The same access as a managed policy, for a team\'s own (SSO) role',
      value: this.operators.policy.managedPolicyArn,
    });
    new CfnOutput(this, 'PrimaryBucketName', {
      description: 'Bucket holding every run (the catalog)',
      value: this.backupBucket.bucket.bucketName,
    });
    new CfnOutput(this, 'PrimaryBucketRegion', { value: this.region });
    new CfnOutput(this, 'OffsiteBucketName', {
      description: 'Bucket the runs are replicated to',
      value: this.replication.destination.bucketName,
    });
    new CfnOutput(this, 'OffsiteBucketRegion', { value: config.offsite.region });
    new CfnOutput(this, 'ObjectLockMode', {
      description: 'Object Lock mode applied to each object at upload, with its tier retention',
      value: this.backupBucket.objectLockMode,
    });
    new CfnOutput(this, 'AlarmTopicArn', { value: this.alarmTopic.topic.topicArn });
  }
}
