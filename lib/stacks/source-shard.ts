import { NestedStack, type NestedStackProps } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as ecs from 'aws-cdk-lib/aws-ecs';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as scheduler from 'aws-cdk-lib/aws-scheduler';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import type { Construct } from 'constructs';
import type { LifeboatConfig, Source } from '../config/types';
import { BackupSchedules, type SourceTarget } from '../constructs/backup-schedules';
import type { OffsiteTarget } from '../constructs/backup-workflow';
import { DrillSchedules } from '../constructs/drill-schedules';
import { DrillTask } from '../constructs/drill-task';
import { drillTargets } from '../constructs/drill-workflow';
import { backupStateMachineName, DumpTask } from '../constructs/dump-task';
import { LifeboatDashboard } from '../constructs/dashboard';
import { WatchdogAlarms } from '../constructs/watchdog';

/**
 * Sources per shard: each source adds about 17 resources (two task definitions with their
 * roles, policies and log groups, two or three schedules, two alarms), so 25 sources stay far
 * below CloudFormation's 500 resources per stack, parameters included.
 */
export const SOURCES_PER_SHARD = 25;

/** The sources of each shard, in config order: `SOURCES_PER_SHARD` at most per shard. */
export function shardSources(sources: readonly Source[], perShard = SOURCES_PER_SHARD): Source[][] {
  const shards: Source[][] = [];
  for (let start = 0; start < sources.length; start += perShard) shards.push(sources.slice(start, start + perShard));
  return shards;
}

export interface SourceShardProps extends NestedStackProps {
  readonly config: LifeboatConfig;
  /** The sources of this shard. */
  readonly sources: readonly Source[];
  readonly bucket: s3.IBucket;
  readonly bucketKey: kms.IKey;
  readonly image: ecs.ContainerImage;
  readonly offsite: OffsiteTarget;
  readonly alarmTopic: sns.ITopic;
  readonly backup: {
    readonly stateMachine: sfn.IStateMachine;
    readonly deadLetterQueue: sqs.IQueue;
    readonly group: scheduler.IScheduleGroup;
  };
  readonly drill: {
    readonly stateMachine: sfn.IStateMachine;
    readonly deadLetterQueue: sqs.IQueue;
    readonly group: scheduler.IScheduleGroup;
  };
  /** Prefix of the watchdog alarms' names (`watchdogAlarmNames`): a contract, since renaming an alarm replaces it. */
  readonly alarmNamePrefix: string;
  /** Prefix of the name of the shard's dashboard (`<prefix>-1`), unique in the account: dashboards are global. */
  readonly dashboardNamePrefix: string;
}

/**
 * The per-source resources of up to `SOURCES_PER_SHARD` sources, as a nested stack of the
 * primary stack: dump and drill tasks, backup and drill schedules, the watchdog's alarms and
 * the dashboard of these sources.
 *
 * The shard takes the shared resources from the parent (CDK passes them as parameters) and the
 * parent never references the shard: the state machines grant RunTask and PassRole by task
 * family and role path, and the tasks answer task tokens to the state machines by name.
 */
export class SourceShard extends NestedStack {
  public readonly dumpTasks: Readonly<Record<string, DumpTask>>;
  public readonly drillTasks: Readonly<Record<string, DrillTask>>;
  public readonly schedules: BackupSchedules;
  public readonly drillSchedules: DrillSchedules;
  /** PITR sources' drill tasks (kind 'pitr'), by source name, and their schedules. */
  public readonly pitrDrillTasks: Readonly<Record<string, DrillTask>>;
  public readonly pitrDrillSchedules: DrillSchedules;
  public readonly watchdogAlarms: WatchdogAlarms;
  public readonly dashboard: LifeboatDashboard;

  constructor(scope: Construct, id: string, props: SourceShardProps) {
    super(scope, id, {
      ...props,
      description: props.description ?? `${props.config.appName}: dump and drill tasks, schedules and alarms of ${props.sources.map((source) => source.name).join(', ')}`.slice(0, 1024),
    });
    const { config, sources } = props;

    const dumpTasks: Record<string, DumpTask> = {};
    const drillTasks: Record<string, DrillTask> = {};
    const targets: Record<string, SourceTarget> = {};
    const drillTask = (source: Source, kind: 'logical' | 'pitr') => new DrillTask(this, `${kind === 'pitr' ? 'PitrDrill' : 'Drill'}-${source.name}`, {
      source, bucket: props.bucket, bucketKey: props.bucketKey, offsite: props.offsite, image: props.image, appName: config.appName, kind,
    });
    // Dumps and their drills are the logical method's; a PITR-only source has neither (its runs are PitrWorkflow's).
    const logical = sources.filter((source) => source.methods.includes('logical'));
    for (const source of logical) {
      dumpTasks[source.name] = new DumpTask(this, `Dump-${source.name}`, {
        source,
        bucket: props.bucket,
        bucketKey: props.bucketKey,
        image: props.image,
        objectLockMode: config.objectLock.mode,
        stateMachineName: backupStateMachineName(config.appName),
      });
      targets[source.name] = {
        taskDefinitionArn: dumpTasks[source.name].taskDefinition.taskDefinitionArn,
        ...this.networkOf(source),
      };
      // Restore drills run in each source's network (the backup targets'), on the same cluster.
      drillTasks[source.name] = drillTask(source, 'logical');
    }
    this.dumpTasks = dumpTasks;
    this.drillTasks = drillTasks;

    this.schedules = new BackupSchedules(this, 'Schedules', {
      sources: logical,
      stateMachine: props.backup.stateMachine,
      targets,
      shared: { deadLetterQueue: props.backup.deadLetterQueue, group: props.backup.group },
    });
    this.drillSchedules = new DrillSchedules(this, 'DrillSchedules', {
      sources: logical,
      stateMachine: props.drill.stateMachine,
      targets: drillTargets(logical, drillTasks, (source) => ({
        subnets: targets[source.name].subnets,
        securityGroups: targets[source.name].securityGroups,
      })),
      shared: { deadLetterQueue: props.drill.deadLetterQueue, group: props.drill.group },
    });

    // PITR sources: a drill task of their own (their repository restored to a point), on the
    // same drill state machine and cadence, from the primary and (daily-drilled tiers) the offsite copy.
    const pitrSources = sources.filter((source) => source.pitr !== undefined);
    const pitrDrillTasks: Record<string, DrillTask> = {};
    for (const source of pitrSources) {
      pitrDrillTasks[source.name] = drillTask(source, 'pitr');
    }
    this.pitrDrillTasks = pitrDrillTasks;
    this.pitrDrillSchedules = new DrillSchedules(this, 'PitrDrillSchedules', {
      sources: pitrSources,
      stateMachine: props.drill.stateMachine,
      targets: drillTargets(pitrSources, pitrDrillTasks, (source) => ({ subnets: source.network.subnetIds, securityGroups: source.network.securityGroupIds })),
      shared: { deadLetterQueue: props.drill.deadLetterQueue, group: props.drill.group },
      label: 'point-in-time restore drill (pgBackRest)',
    });

    // Silence is an alarm: the watchdog (in the parent) measures, the shard alarms.
    this.watchdogAlarms = new WatchdogAlarms(this, 'Watchdog', {
      sources,
      alarmTopic: props.alarmTopic,
      alarmNamePrefix: props.alarmNamePrefix,
    });

    // The shard's sources in detail, next to their alarms (so the body references them
    // directly): one row per source against its own RPO and RTO, about 2.4 KB each.
    this.dashboard = new LifeboatDashboard(this, 'SourcesDashboard', {
      sources,
      alarms: [],
      sourceAlarms: this.watchdogAlarms.bySource,
      sourcesPerDashboard: Math.max(1, sources.length),
      dashboardNamePrefix: props.dashboardNamePrefix,
    });
  }

  private readonly networks = new Map<string, Pick<SourceTarget, 'subnets' | 'securityGroups'>>();

  /**
   * A source's network, made once: its dump task's, which its binary-log archiver (in a binlog
   * shard) shares, a looked-up VPC's security group included.
   */
  public networkOf(source: Source): Pick<SourceTarget, 'subnets' | 'securityGroups'> {
    let network = this.networks.get(source.name);
    if (!network) {
      network = this.networkFor(source);
      this.networks.set(source.name, network);
    }
    return network;
  }

  /**
   * Where a source's dump task runs. Without subnets and security groups in the config, the
   * VPC is looked up (the stack then needs an account and region, and cdk.context.json keeps
   * the answer) and the task runs in its private subnets with a security group of its own,
   * which the database's security group must then admit.
   */
  private networkFor(source: Source): Pick<SourceTarget, 'subnets' | 'securityGroups'> {
    if (source.network.subnetIds.length > 0) {
      return { subnets: source.network.subnetIds, securityGroups: source.network.securityGroupIds };
    }
    const vpc = ec2.Vpc.fromLookup(this, `Vpc-${source.name}`, { vpcId: source.network.vpcId });
    const group = new ec2.SecurityGroup(this, `DumpSecurityGroup-${source.name}`, {
      vpc,
      description: `Lifeboat dump task of ${source.name}: admit it on the database's port`,
      allowAllOutbound: true,
    });
    return {
      subnets: vpc.selectSubnets({ subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS }).subnetIds,
      securityGroups: [group.securityGroupId],
    };
  }
}
