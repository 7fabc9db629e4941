import { NestedStack, type NestedStackProps } from 'aws-cdk-lib';
import type * as ecs from 'aws-cdk-lib/aws-ecs';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as scheduler from 'aws-cdk-lib/aws-scheduler';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import type { LifeboatConfig, Source } from '../config/types';
import type { SourceTarget } from '../constructs/backup-schedules';
import { BinlogArchiver } from '../constructs/binlog-archiver';

/**
 * MySQL/MariaDB PITR sources per binlog shard. Each archiver adds 9 resources (its task
 * definition, task and execution roles with their policies, log group, schedule and the
 * schedule's role and policy): 40 keep a shard near 360 of CloudFormation's 500.
 */
export const BINLOG_SOURCES_PER_SHARD = 40;

export interface BinlogShardProps extends NestedStackProps {
  readonly config: LifeboatConfig;
  /** The sources of this shard (each with `binlog`). */
  readonly sources: readonly Source[];
  readonly bucket: s3.IBucket;
  readonly bucketKey: kms.IKey;
  readonly image: ecs.ContainerImage;
  /** The cluster the archivers run on (the backup run's). */
  readonly cluster: ecs.CfnCluster;
  /** The backup schedules' shared group and dead-letter queue. */
  readonly schedules: { readonly group: scheduler.IScheduleGroup; readonly deadLetterQueue: sqs.IQueue };
  /** Each source's network: its dump task's (the source shard's `networkOf`). */
  readonly networkOf: (source: Source) => Pick<SourceTarget, 'subnets' | 'securityGroups'>;
}

/**
 * The binary-log archivers of up to `BINLOG_SOURCES_PER_SHARD` MySQL/MariaDB PITR sources, as a
 * nested stack of the primary stack beside the source shards (which stay as they were, so that
 * archiving a source's binary logs moves none of its existing resources, and a shard of 25 such
 * sources stays within 500 resources). Their alarms are in the source shards, with the source's
 * other watchdog alarms.
 */
export class BinlogShard extends NestedStack {
  public readonly archivers: Readonly<Record<string, BinlogArchiver>>;

  constructor(scope: Construct, id: string, props: BinlogShardProps) {
    super(scope, id, {
      ...props,
      description: props.description ?? `${props.config.appName}: binary-log archivers of ${props.sources.map((source) => source.name).join(', ')}`.slice(0, 1024),
    });
    const archivers: Record<string, BinlogArchiver> = {};
    for (const source of props.sources) {
      archivers[source.name] = new BinlogArchiver(this, `BinlogArchiver-${source.name}`, {
        source,
        bucket: props.bucket,
        bucketKey: props.bucketKey,
        image: props.image,
        objectLockMode: props.config.objectLock.mode,
        clusterArn: props.cluster.attrArn,
        ...props.networkOf(source),
        group: props.schedules.group,
        deadLetterQueue: props.schedules.deadLetterQueue,
      });
    }
    this.archivers = archivers;
  }
}
