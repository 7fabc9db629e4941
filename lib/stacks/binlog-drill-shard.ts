import { NestedStack, type NestedStackProps } from 'aws-cdk-lib';
import type * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as scheduler from 'aws-cdk-lib/aws-scheduler';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import type { Construct } from 'constructs';
import type { LifeboatConfig, Source } from '../config/types';
import type { SourceTarget } from '../constructs/backup-schedules';
import type { OffsiteTarget } from '../constructs/backup-workflow';
import { DrillSchedules } from '../constructs/drill-schedules';
import { DrillTask } from '../constructs/drill-task';
import { drillTargets } from '../constructs/drill-workflow';

/**
 * MySQL/MariaDB PITR sources per binlog drill shard. Each drill adds about 8 resources (its task
 * definition, task and execution roles with their policies, log group, its schedule and, for a
 * daily-drilled tier, the weekly offsite one): 40 keep a shard near 320 of CloudFormation's 500.
 */
export const BINLOG_DRILL_SOURCES_PER_SHARD = 40;

export interface BinlogDrillShardProps extends NestedStackProps {
  readonly config: LifeboatConfig;
  /** The sources of this shard (each with `binlog`). */
  readonly sources: readonly Source[];
  readonly bucket: s3.IBucket;
  readonly bucketKey: kms.IKey;
  readonly image: ecs.ContainerImage;
  readonly offsite: OffsiteTarget;
  /** The restore-drill state machine, and the drill schedules' shared group and dead-letter queue. */
  readonly drill: {
    readonly stateMachine: sfn.IStateMachine;
    readonly deadLetterQueue: sqs.IQueue;
    readonly group: scheduler.IScheduleGroup;
  };
  /** Each source's network: its dump task's (the source shard's `networkOf`), as its archiver's. */
  readonly networkOf: (source: Source) => Pick<SourceTarget, 'subnets' | 'securityGroups'>;
}

/**
 * The binary-log PITR drills of up to `BINLOG_DRILL_SOURCES_PER_SHARD` MySQL/MariaDB sources, as a
 * nested stack of the primary stack beside the source and binlog shards: per source a drill task
 * of kind 'binlog' (`lifeboat-drill-<source>-binlog`) and its schedules on the restore-drill state
 * machine at the tier's drill cadence (and weekly from the offsite copy for daily-drilled tiers).
 * Not in the source shards: a shard of 25 such sources is already near 500 resources with their
 * dumps, logical drills and alarms. The parent never references this shard.
 */
export class BinlogDrillShard extends NestedStack {
  public readonly drillTasks: Readonly<Record<string, DrillTask>>;
  public readonly drillSchedules: DrillSchedules;

  constructor(scope: Construct, id: string, props: BinlogDrillShardProps) {
    super(scope, id, {
      ...props,
      description: props.description ?? `${props.config.appName}: binary-log PITR drills of ${props.sources.map((source) => source.name).join(', ')}`.slice(0, 1024),
    });
    const drillTasks: Record<string, DrillTask> = {};
    for (const source of props.sources) {
      drillTasks[source.name] = new DrillTask(this, `BinlogDrill-${source.name}`, {
        source, bucket: props.bucket, bucketKey: props.bucketKey, offsite: props.offsite, image: props.image, appName: props.config.appName, kind: 'binlog',
      });
    }
    this.drillTasks = drillTasks;
    // A role of its own: the stack-wide role aws-scheduler-targets would make per state machine has
    // the same logical id as the source shards' drill schedules' (it hashes the state machine's
    // parameter, the same in every shard), which a template merged from the shards could not hold.
    const role = new iam.Role(this, 'BinlogDrillSchedulesRole', {
      description: `Lifeboat: starts the binary-log PITR drills of ${props.sources.map((source) => source.name).join(', ')}`.slice(0, 1000),
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': this.account, 'aws:SourceArn': props.drill.group.scheduleGroupArn } },
      }),
    });
    this.drillSchedules = new DrillSchedules(this, 'BinlogDrillSchedules', {
      role,
      sources: props.sources,
      stateMachine: props.drill.stateMachine,
      targets: drillTargets(props.sources, drillTasks, props.networkOf),
      shared: { deadLetterQueue: props.drill.deadLetterQueue, group: props.drill.group },
      label: 'point-in-time restore drill (binary logs)',
    });
  }
}
