import { ArnFormat, Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import type { Source } from '../config/types';
import { binlogPrefix, DRILLS_PREFIX, pitrCatalogName, sourcePrefix } from '../domain/layout';
import { pitrPrefix } from '../pitr/setup';
import type { OffsiteTarget } from './backup-workflow';
import { DRILL_ENV } from '../../worker/drill-job';
import { acknowledgeWildcardResource } from './nag';
import { lifeboatTaskRole } from './dump-task';

/** What a drill task drills (DrillTaskProps.kind). */
export type DrillTaskKind = 'logical' | 'pitr' | 'binlog';

/** Per kind: the family's and log group's suffix, the image's entry point, what the report calls it. */
const DRILL_KINDS: Readonly<Record<DrillTaskKind, { readonly suffix: string; readonly entryPoint: string; readonly label: string }>> = {
  logical: { suffix: '', entryPoint: '/app/drill.js', label: '' },
  pitr: { suffix: '-pitr', entryPoint: '/app/pitr-drill.js', label: 'PITR ' },
  binlog: { suffix: '-binlog', entryPoint: '/app/binlog-drill.js', label: 'binlog PITR ' },
};

/** Family of every drill task definition: `lifeboat-drill-<source>` (the state machine's RunTask grant names it). */
export const DRILL_FAMILY_PREFIX = 'lifeboat-drill-';

/** The restore-drill state machine's name. */
export function drillStateMachineName(appName: string): string {
  return `${appName}-restore-drill`;
}

/** Where the drill downloads the artifacts and keeps the throwaway server's data (the ephemeral storage). */
export const DRILL_SCRATCH_PATH = '/scratch';

export interface DrillTaskProps {
  /** The source whose runs this task restores (resolved config). */
  readonly source: Source;
  /** The primary bucket: runs are read from it, the drill report is written to it. */
  readonly bucket: s3.IBucket;
  readonly bucketKey: kms.IKey;
  /** The offsite bucket, read by disaster-recovery drills (`from: 'offsite'`). */
  readonly offsite: OffsiteTarget;
  /** The worker image (worker/Dockerfile): it carries the PostgreSQL and MariaDB servers. */
  readonly image: ecs.ContainerImage;
  /**
   * The app name: the drill state machine (`<appName>-restore-drill`) receives this task's
   * task-token calls, granted by name.
   * @default - "Lifeboat"
   */
  readonly appName?: string;
  /**
   * CPU architecture of the task.
   * @default - X86_64, as the dump task
   */
  readonly cpuArchitecture?: ecs.CpuArchitecture;
  /**
   * How long the drill's logs are kept.
   * @default - three months
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * What the task drills: the source's logical runs, or its point-in-time recovery (its
   * pgBackRest repository, `pitr/<source>/`, restored to a point: worker/pitr-drill-main.ts;
   * family `lifeboat-drill-<source>-pitr`), or a MySQL/MariaDB source's binary-log PITR (its
   * dumps under `runs/<source>/` and its archive `binlog/<source>/`, restored to a point:
   * worker/binlog-drill-main.ts; family `lifeboat-drill-<source>-binlog`).
   * @default 'logical'
   */
  readonly kind?: DrillTaskKind;
}

export interface DrillTaskSize {
  readonly cpu: number;
  readonly memoryMiB: number;
  /** Fargate ephemeral storage, 21–200 GiB. */
  readonly ephemeralStorageGiB: number;
}

const GB = 1e9;
const GIB = 1024 ** 3;
/** Ephemeral storage when the source declares no size: a restore that runs out of disk proves nothing. */
export const DEFAULT_DRILL_STORAGE_GIB = 100;

/**
 * A restore builds indexes and replays the whole dump into a live server: it needs more than
 * the streaming dump (at least 2 vCPU / 8 GiB). The disk holds the downloaded artifacts and
 * the restored database with its indexes: about three times the database size, within
 * Fargate's 21–200 GiB.
 */
export function drillTaskSizeFor(sizeHintBytes: number | undefined): DrillTaskSize {
  const storage = sizeHintBytes === undefined
    ? DEFAULT_DRILL_STORAGE_GIB
    : Math.min(200, Math.max(21, Math.ceil((sizeHintBytes * 3) / GIB)));
  if (sizeHintBytes === undefined || sizeHintBytes <= 10 * GB) return { cpu: 2048, memoryMiB: 8192, ephemeralStorageGiB: storage };
  if (sizeHintBytes <= 100 * GB) return { cpu: 4096, memoryMiB: 16_384, ephemeralStorageGiB: storage };
  return { cpu: 8192, memoryMiB: 32_768, ephemeralStorageGiB: storage };
}

/**
 * The Fargate task definition that restores one source's latest verified run into a
 * throwaway server inside the task and checks it (worker/drill-main.ts, docs/restore-drill.md).
 *
 * Permissions are those of a restore: read the source's runs (primary, and offsite for a
 * disaster-recovery drill), write only the source's drill reports, never delete (explicit
 * deny). No database credential: the drill starts its own server. Task-token calls are
 * granted on the drill state machine by its name.
 */
export class DrillTask extends Construct {
  public readonly source: Source;
  public readonly taskDefinition: ecs.FargateTaskDefinition;
  public readonly container: ecs.ContainerDefinition;
  public readonly logGroup: logs.LogGroup;
  public readonly taskRole: iam.IRole;
  public readonly size: DrillTaskSize;

  constructor(scope: Construct, id: string, props: DrillTaskProps) {
    super(scope, id);
    this.source = props.source;
    const { source, bucket } = props;
    const stack = Stack.of(this);
    this.size = drillTaskSizeFor(source.sizeHintBytes);
    const kind = props.kind ?? 'logical';
    if (kind === 'binlog' && !source.binlog) {
      throw new Error(`DrillTask: source ${source.name} has no binlog (valid: kind 'binlog' for a MySQL or MariaDB source with method 'pitr')`);
    }
    const { suffix, entryPoint, label } = DRILL_KINDS[kind];
    // A point-in-time drill (either kind) alternates its target: it reads its earlier reports and downloads to the scratch volume.
    const pointInTime = kind !== 'logical';
    // What the drill reads: the source's runs; for PITR its PITR catalog and its repository; for binlog its dumps and its archive.
    const readPrefixes = kind === 'pitr' ? [sourcePrefix(pitrCatalogName(source.name)), pitrPrefix(source.name)]
      : kind === 'binlog' ? [sourcePrefix(source.name), binlogPrefix(source.name)]
        : [sourcePrefix(source.name)];

    this.taskDefinition = new ecs.FargateTaskDefinition(this, 'TaskDefinition', {
      family: `${DRILL_FAMILY_PREFIX}${source.name}${suffix}`,
      taskRole: lifeboatTaskRole(this, 'TaskRole', 'drill', `Lifeboat: the ${label}restore drill task of ${source.name}`),
      executionRole: lifeboatTaskRole(this, 'ExecutionRole', 'drill', `Lifeboat: starts the ${label}restore drill task of ${source.name}`),
      cpu: this.size.cpu,
      memoryLimitMiB: this.size.memoryMiB,
      ephemeralStorageGiB: this.size.ephemeralStorageGiB,
      runtimePlatform: {
        cpuArchitecture: props.cpuArchitecture ?? ecs.CpuArchitecture.X86_64,
        operatingSystemFamily: ecs.OperatingSystemFamily.LINUX,
      },
    });
    this.taskRole = this.taskDefinition.taskRole;
    // A bind mount without a host path lives on the task's ephemeral storage.
    this.taskDefinition.addVolume({ name: 'scratch' });

    this.logGroup = new logs.LogGroup(this, 'Logs', {
      logGroupName: `/lifeboat/drill/${source.name}${suffix}`,
      retention: props.logRetention ?? logs.RetentionDays.THREE_MONTHS,
      removalPolicy: RemovalPolicy.RETAIN,
    });

    this.container = this.taskDefinition.addContainer('Drill', {
      image: props.image,
      entryPoint: ['node', '--enable-source-maps', entryPoint],
      essential: true,
      readonlyRootFilesystem: true,
      // Time to stop the throwaway server and report the failure to Step Functions.
      stopTimeout: Duration.seconds(30),
      logging: ecs.LogDrivers.awsLogs({ logGroup: this.logGroup, streamPrefix: 'drill' }),
      environment: {
        [DRILL_ENV.bucket]: bucket.bucketName,
        [DRILL_ENV.offsiteBucket]: props.offsite.bucketName,
        [DRILL_ENV.offsiteRegion]: props.offsite.region,
        // The resolved source: identifiers, tier and drill checks; the password is an ARN
        // this task cannot read, and the drill never connects to the source.
        [DRILL_ENV.sourceConfig]: JSON.stringify(source),
        TMPDIR: DRILL_SCRATCH_PATH,
        ...(pointInTime ? { LIFEBOAT_SCRATCH_DIR: DRILL_SCRATCH_PATH } : {}),
      },
    });
    this.container.addMountPoints({ sourceVolume: 'scratch', containerPath: DRILL_SCRATCH_PATH, readOnly: false });

    // A point-in-time drill also reads its earlier reports (its target alternates between them).
    const primaryPrefixes = pointInTime ? [...readPrefixes, `${DRILLS_PREFIX}${source.name}/`] : readPrefixes;
    const runs = primaryPrefixes.map((prefix) => bucket.arnForObjects(`${prefix}*`));
    const drills = bucket.arnForObjects(`${DRILLS_PREFIX}${source.name}/*`);
    this.taskRole.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'ReadOwnRuns', actions: ['s3:GetObject', 's3:GetObjectVersion'], resources: runs }));
    this.taskRole.addToPrincipalPolicy(new iam.PolicyStatement({
      sid: 'ListOwnRuns',
      actions: ['s3:ListBucket'],
      resources: [bucket.bucketArn],
      conditions: { StringLike: { 's3:prefix': primaryPrefixes.map((prefix) => `${prefix}*`) } },
    }));
    this.taskRole.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'WriteOwnDrillReports', actions: ['s3:PutObject'], resources: [drills] }));
    this.taskRole.addToPrincipalPolicy(new iam.PolicyStatement({
      sid: 'BucketKey', actions: ['kms:Decrypt', 'kms:GenerateDataKey'], resources: [props.bucketKey.keyArn],
    }));

    // Disaster-recovery drills read the replica: named by bucket, as AwaitOffsite does.
    const offsiteBucketArn = `arn:${stack.partition}:s3:::${props.offsite.bucketName}`;
    const offsiteRuns = readPrefixes.map((prefix) => `${offsiteBucketArn}/${prefix}*`);
    this.taskRole.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'ReadOwnOffsiteRuns', actions: ['s3:GetObject', 's3:GetObjectVersion'], resources: offsiteRuns }));
    this.taskRole.addToPrincipalPolicy(new iam.PolicyStatement({
      sid: 'ListOwnOffsiteRuns',
      actions: ['s3:ListBucket'],
      resources: [offsiteBucketArn],
      conditions: { StringLike: { 's3:prefix': readPrefixes.map((prefix) => `${prefix}*`) } },
    }));
    const offsiteKeys = `arn:${stack.partition}:kms:${props.offsite.region}:${props.offsite.account ?? stack.account}:key/*`;
    this.taskRole.addToPrincipalPolicy(new iam.PolicyStatement({
      sid: 'DecryptOffsiteRuns',
      actions: ['kms:Decrypt'],
      resources: [offsiteKeys],
      conditions: { StringEquals: { 'kms:ViaService': `s3.${props.offsite.region}.amazonaws.com` } },
    }));

    this.taskRole.addToPrincipalPolicy(new iam.PolicyStatement({
      sid: 'NeverDelete',
      effect: iam.Effect.DENY,
      actions: ['s3:DeleteObject', 's3:DeleteObjectVersion', 's3:BypassGovernanceRetention', 's3:PutLifecycleConfiguration', 's3:PutBucketPolicy'],
      resources: [bucket.bucketArn, bucket.arnForObjects('*'), offsiteBucketArn, `${offsiteBucketArn}/*`],
    }));

    // By name: the state machine lives in the parent stack, which must not depend on the drill tasks.
    const drillStateMachine = stack.formatArn({
      service: 'states',
      resource: 'stateMachine',
      resourceName: drillStateMachineName(props.appName ?? 'Lifeboat'),
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    this.taskRole.addToPrincipalPolicy(new iam.PolicyStatement({
      sid: 'AnswerTaskToken',
      actions: ['states:SendTaskSuccess', 'states:SendTaskFailure', 'states:SendTaskHeartbeat'],
      resources: [drillStateMachine],
    }));

    Validations.of(this.taskDefinition).acknowledge({
      id: 'AwsSolutions-ECS2',
      reason: 'The environment holds only non-secret values (bucket names, the resolved source with its password ARN, which this task cannot read); the drill starts its own server and needs no credential.',
    });
    if (props.image instanceof ecs.AssetImage) {
      acknowledgeWildcardResource(this.taskDefinition.obtainExecutionRole(), '*',
        'ecr:GetAuthorizationToken, which ECS needs to pull the worker image, has no resource-level permissions; the pull itself is limited to the image repository.');
    }
    for (const resource of runs) {
      acknowledgeWildcardResource(this.taskRole, resource,
        'The drill reads the runs of its own source (and a PITR drill its pgBackRest repository), whose keys are only known at run time; reads only, under its own prefixes.');
    }
    acknowledgeWildcardResource(this.taskRole, drills,
      'The drill writes its report under drills/<source>/<drillId>/, a key made at run time; no other object can be written and deletes are denied.');
    for (const resource of offsiteRuns) {
      acknowledgeWildcardResource(this.taskRole, resource,
        'A disaster-recovery drill reads the replicas of its own source\'s runs (or repository) in the offsite bucket; reads only.');
    }
    acknowledgeWildcardResource(this.taskRole, offsiteKeys,
      'The offsite key lives in another region and is named by alias; kms:ViaService limits the grant to S3 there.');
  }
}
