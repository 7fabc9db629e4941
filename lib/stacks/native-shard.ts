import { NestedStack, type NestedStackProps } from 'aws-cdk-lib';
import type * as ecs from 'aws-cdk-lib/aws-ecs';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as scheduler from 'aws-cdk-lib/aws-scheduler';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import type { LifeboatConfig, Source } from '../config/types';
import { NativeDrill } from '../constructs/native-drill';
import { NativePitrAlarms, NativePitrChecks } from '../constructs/native-pitr';
import { NativeSnapshotCopy } from '../constructs/native-snapshot-copy';

/**
 * RDS/Aurora sources per native shard. Each adds about 16 resources (its drill state machine,
 * checker task definition and their roles, policies and log groups, its schedule, three alarms)
 * and about 43 KB of template (its drill's definition is most of it), the shard its checks
 * function: 12 keep a shard near 200 resources and 520 KB, within 80% of CloudFormation's 500
 * resources and 1 MB (template-limits.test.ts). The checks function's environment (4 KB) holds
 * its shard's sources.
 */
export const RDS_SOURCES_PER_SHARD = 12;

export interface NativeShardProps extends NestedStackProps {
  readonly config: LifeboatConfig;
  /** The RDS/Aurora sources of this shard (each with `rds`). */
  readonly sources: readonly Source[];
  readonly bucket: s3.IBucket;
  readonly bucketKey: kms.IKey;
  readonly image: ecs.ContainerImage;
  /** The cluster the drill checkers run on. */
  readonly cluster: ecs.CfnCluster;
  /**
   * The offsite region, its account when another, and its key (its alias ARN): a managed
   * instance's automated backups are replicated under it, and the DB clusters' snapshots copied.
   */
  readonly offsite: { readonly region: string; readonly account?: string; readonly keyArn: string };
  readonly alarmTopic: sns.ITopic;
  /** The drill schedules' shared group and dead-letter queue. */
  readonly drill: { readonly group: scheduler.IScheduleGroup; readonly deadLetterQueue: sqs.IQueue };
  /** Prefix of the alarms' names (`nativeAlarmNames`): a contract, since renaming an alarm replaces it. */
  readonly alarmNamePrefix: string;
}

/**
 * The engine's own point-in-time recovery of up to `RDS_SOURCES_PER_SHARD` RDS/Aurora sources,
 * as a nested stack of the primary stack beside the source shards (which stay as they were, so
 * that adding RDS governance moves no existing resource): each source's drill state machine, the
 * checks function of these sources and their alarms, and the copier of their DB clusters' snapshots.
 */
export class NativeShard extends NestedStack {
  public readonly drills: Readonly<Record<string, NativeDrill>>;
  public readonly checks: NativePitrChecks;
  public readonly alarms: NativePitrAlarms;
  /** The offsite copy of the shard's DB clusters' snapshots (no cluster: undefined). */
  public readonly snapshotCopy?: NativeSnapshotCopy;

  constructor(scope: Construct, id: string, props: NativeShardProps) {
    super(scope, id, {
      ...props,
      description: props.description ?? `${props.config.appName}: native point-in-time recovery checks, alarms and drills of ${props.sources.map((source) => source.name).join(', ')}`.slice(0, 1024),
    });
    const { config, sources } = props;
    const drills: Record<string, NativeDrill> = {};
    for (const source of sources) {
      drills[source.name] = new NativeDrill(this, `NativeDrill-${source.name}`, {
        appName: config.appName, source, cluster: props.cluster, image: props.image, bucket: props.bucket, bucketKey: props.bucketKey,
        alarmTopic: props.alarmTopic, schedules: props.drill,
      });
    }
    this.drills = drills;
    this.checks = new NativePitrChecks(this, 'NativePitrChecks', {
      appName: config.appName, sources, offsite: { region: props.offsite.region, keyArn: props.offsite.keyArn },
    });
    const clusters = sources.filter((source) => source.rds?.kind === 'cluster');
    if (clusters.length > 0) {
      this.snapshotCopy = new NativeSnapshotCopy(this, 'NativeSnapshotCopy', {
        appName: config.appName, sources: clusters, offsite: props.offsite, primaryAccount: this.account,
      });
    }
    this.alarms = new NativePitrAlarms(this, 'NativePitrAlarms', {
      sources, alarmTopic: props.alarmTopic, alarmNamePrefix: props.alarmNamePrefix, offsiteRegion: props.offsite.region,
    });
  }
}
