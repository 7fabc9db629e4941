import { ArnFormat, Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import type { ObjectLockMode, Source } from '../config/types';
import { sourcePrefix } from '../domain/layout';
import { JOB_ENV } from '../../worker/job';
import { acknowledgeWildcardResource } from './nag';

/**
 * Where the dump task mounts a writable volume (its ephemeral storage) when its CA bundle comes
 * from a secret: the worker writes the PEM there for the clients, which read CA bundles from
 * files (the root filesystem is read-only). worker/Dockerfile creates it for the unprivileged user.
 */
export const DUMP_SCRATCH_PATH = '/scratch';

export interface DumpTaskProps {
  /** The source this task dumps (resolved config). */
  readonly source: Source;
  /** The primary bucket the dump streams into. */
  readonly bucket: s3.IBucket;
  /** The primary bucket's KMS key (SSE-KMS multipart uploads need GenerateDataKey and Decrypt). */
  readonly bucketKey: kms.IKey;
  /** The worker image (worker/Dockerfile). One image serves every source. */
  readonly image: ecs.ContainerImage;
  /** Object Lock mode given to each uploaded object, with the tier's retention. */
  readonly objectLockMode: ObjectLockMode;
  /**
   * Name of the state machine this task answers task tokens to (the backup run's).
   * @default - "Lifeboat-backup-run"
   */
  readonly stateMachineName?: string;
  /**
   * CPU architecture of the task.
   * @default - X86_64: the image is built where `cdk deploy` runs, usually x86_64, without emulation
   */
  readonly cpuArchitecture?: ecs.CpuArchitecture;
  /**
   * How long the worker's logs are kept.
   * @default - three months
   */
  readonly logRetention?: logs.RetentionDays;
}

/** The backup-run state machine's name. */
export function backupStateMachineName(appName: string): string {
  return `${appName}-backup-run`;
}

/** Family of every dump task definition: `lifeboat-dump-<source>` (the state machine's RunTask grant names it). */
export const DUMP_FAMILY_PREFIX = 'lifeboat-dump-';
/** IAM path of the dump and drill tasks' roles: the state machines may pass the roles under it. */
export const LIFEBOAT_ROLE_PATH = '/lifeboat/';

/**
 * IAM paths of the primary account's roles that read the offsite copy: the offsite bucket and
 * key policies admit exactly these (by `aws:PrincipalArn` pattern, as the roles may not exist
 * when the offsite stack is deployed).
 */
export const OFFSITE_READER_PATHS = {
  awaitOffsite: `${LIFEBOAT_ROLE_PATH}await-offsite/`,
  drill: `${LIFEBOAT_ROLE_PATH}drill/`,
  operator: `${LIFEBOAT_ROLE_PATH}operator/`,
} as const;

/** A task or execution role of a Lifeboat task, under `/lifeboat/<kind>/`. */
export function lifeboatTaskRole(scope: Construct, id: string, kind: 'dump' | 'drill', description: string): iam.Role {
  return new iam.Role(scope, id, {
    assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com'),
    path: `${LIFEBOAT_ROLE_PATH}${kind}/`,
    description,
  });
}

/**
 * How long a run of a tier may take before the worker gives up (aborting its upload): a dump
 * that outlives the schedule interval would overlap the next slot. At least 15 minutes.
 */
export function dumpDeadlineSeconds(tier: { readonly scheduleSeconds: number }): number {
  return Math.max(900, tier.scheduleSeconds);
}

/** Fargate CPU units and memory for a database of the given size (bytes). */
export interface TaskSize {
  readonly cpu: number;
  readonly memoryMiB: number;
}

/**
 * The dump streams (client → hash → S3 parts), so memory stays flat whatever the database
 * size: what grows with size is compression work, which is CPU. Part buffers are at most
 * 4 parts in flight; the largest part size (for a 10 TB hint) needs the 8 GiB tier.
 */
export function taskSizeFor(sizeHintBytes: number | undefined): TaskSize {
  const GB = 1e9;
  if (sizeHintBytes === undefined || sizeHintBytes <= 10 * GB) return { cpu: 1024, memoryMiB: 2048 };
  if (sizeHintBytes <= 100 * GB) return { cpu: 2048, memoryMiB: 4096 };
  return { cpu: 4096, memoryMiB: 8192 };
}

/**
 * The Fargate task definition that dumps one source into the primary bucket.
 *
 * Permissions are those of the commit protocol: the task may create objects under its own
 * source's prefix (and abort its own multipart uploads), read them back to refuse a slot
 * that is already committed, and answer its task token; it can never delete or overwrite
 * history (explicit deny, so that no later grant can widen it).
 */
export class DumpTask extends Construct {
  public readonly taskDefinition: ecs.FargateTaskDefinition;
  public readonly container: ecs.ContainerDefinition;
  public readonly logGroup: logs.LogGroup;
  public readonly taskRole: iam.IRole;

  constructor(scope: Construct, id: string, props: DumpTaskProps) {
    super(scope, id);
    const { source, bucket } = props;
    const size = taskSizeFor(source.sizeHintBytes);
    const objects = bucket.arnForObjects(`${sourcePrefix(source.name)}*`);

    this.taskDefinition = new ecs.FargateTaskDefinition(this, 'TaskDefinition', {
      family: `${DUMP_FAMILY_PREFIX}${source.name}`,
      taskRole: lifeboatTaskRole(this, 'TaskRole', 'dump', `Lifeboat: the dump task of ${source.name}`),
      executionRole: lifeboatTaskRole(this, 'ExecutionRole', 'dump', `Lifeboat: starts the dump task of ${source.name}`),
      cpu: size.cpu,
      memoryLimitMiB: size.memoryMiB,
      runtimePlatform: {
        cpuArchitecture: props.cpuArchitecture ?? ecs.CpuArchitecture.X86_64,
        operatingSystemFamily: ecs.OperatingSystemFamily.LINUX,
      },
    });
    this.taskRole = this.taskDefinition.taskRole;

    this.logGroup = new logs.LogGroup(this, 'Logs', {
      logGroupName: `/lifeboat/dump/${source.name}`,
      retention: props.logRetention ?? logs.RetentionDays.THREE_MONTHS,
      removalPolicy: RemovalPolicy.RETAIN,
    });

    const secret = secretsmanager.Secret.fromSecretCompleteArn(this, 'Password', source.connection.passwordSecretArn);
    const { tls, tlsCa } = source.connection;
    // The CA bundle of a secret arrives as PEM text in the environment (ECS reads it at start).
    const caSecret = tlsCa?.kind === 'secret' ? secretsmanager.Secret.fromSecretCompleteArn(this, 'TlsCa', tlsCa.secretArn) : undefined;
    this.container = this.taskDefinition.addContainer('Worker', {
      image: props.image,
      essential: true,
      readonlyRootFilesystem: true,
      // ECS sends SIGTERM, waits this long, then SIGKILL: time to abort the upload and
      // report the failure to Step Functions.
      stopTimeout: Duration.seconds(30),
      logging: ecs.LogDrivers.awsLogs({ logGroup: this.logGroup, streamPrefix: 'dump' }),
      environment: {
        [JOB_ENV.source]: source.name,
        [JOB_ENV.engine]: source.engine,
        [JOB_ENV.tier]: source.tier.name,
        [JOB_ENV.host]: source.connection.host,
        [JOB_ENV.port]: String(source.connection.port),
        [JOB_ENV.databases]: source.connection.databases.join(','),
        [JOB_ENV.username]: source.connection.username,
        [JOB_ENV.tlsMode]: tls,
        ...(tlsCa?.kind === 'file' ? { [JOB_ENV.tlsCaFile]: tlsCa.path } : {}),
        ...(caSecret ? { TMPDIR: DUMP_SCRATCH_PATH } : {}),
        [JOB_ENV.bucket]: bucket.bucketName,
        [JOB_ENV.retentionSeconds]: String(source.tier.retentionSeconds),
        [JOB_ENV.objectLockMode]: props.objectLockMode,
        [JOB_ENV.deadlineSeconds]: String(dumpDeadlineSeconds(source.tier)),
        ...(source.sizeHintBytes ? { [JOB_ENV.sizeHintBytes]: String(source.sizeHintBytes) } : {}),
        ...(source.dumpOptions.compression ? { [JOB_ENV.compression]: source.dumpOptions.compression } : {}),
        ...(source.dumpOptions.exactCountMaxBytes !== undefined
          ? { [JOB_ENV.exactCountMaxBytes]: String(source.dumpOptions.exactCountMaxBytes) }
          : {}),
        ...(source.dumpOptions.excludeTables.length > 0 ? { [JOB_ENV.excludeTables]: source.dumpOptions.excludeTables.join(',') } : {}),
        // A binary-log source's dumps are its point-in-time bases: they record their coordinates.
        ...(source.binlog ? { [JOB_ENV.binlogCoordinates]: '1' } : {}),
      },
      // Injected by ECS from Secrets Manager at start; never in the task definition.
      secrets: {
        [JOB_ENV.password]: ecs.Secret.fromSecretsManager(secret),
        ...(caSecret ? { [JOB_ENV.tlsCaPem]: ecs.Secret.fromSecretsManager(caSecret) } : {}),
      },
    });
    if (caSecret) {
      // A bind mount without a host path lives on the task's ephemeral storage.
      this.taskDefinition.addVolume({ name: 'scratch' });
      this.container.addMountPoints({ sourceVolume: 'scratch', containerPath: DUMP_SCRATCH_PATH, readOnly: false });
    }

    this.taskRole.addToPrincipalPolicy(new iam.PolicyStatement({
      sid: 'WriteOwnRuns',
      actions: ['s3:PutObject', 's3:PutObjectRetention', 's3:AbortMultipartUpload', 's3:ListMultipartUploadParts', 's3:GetObject'],
      resources: [objects],
    }));
    this.taskRole.addToPrincipalPolicy(new iam.PolicyStatement({
      sid: 'ListOwnRuns',
      actions: ['s3:ListBucket'],
      resources: [bucket.bucketArn],
      conditions: { StringLike: { 's3:prefix': [`${sourcePrefix(source.name)}*`] } },
    }));
    this.taskRole.addToPrincipalPolicy(new iam.PolicyStatement({
      sid: 'EncryptUploads',
      actions: ['kms:GenerateDataKey', 'kms:Decrypt'],
      resources: [props.bucketKey.keyArn],
    }));
    this.taskRole.addToPrincipalPolicy(new iam.PolicyStatement({
      sid: 'NeverDelete',
      effect: iam.Effect.DENY,
      actions: ['s3:DeleteObject', 's3:DeleteObjectVersion', 's3:BypassGovernanceRetention', 's3:PutLifecycleConfiguration', 's3:PutBucketPolicy'],
      resources: [bucket.bucketArn, bucket.arnForObjects('*')],
    }));
    const stateMachines = Stack.of(this).formatArn({
      service: 'states',
      resource: 'stateMachine',
      resourceName: props.stateMachineName ?? backupStateMachineName('Lifeboat'),
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    this.taskRole.addToPrincipalPolicy(new iam.PolicyStatement({
      sid: 'AnswerTaskToken',
      actions: ['states:SendTaskSuccess', 'states:SendTaskFailure', 'states:SendTaskHeartbeat'],
      resources: [stateMachines],
    }));

    Validations.of(this.taskDefinition).acknowledge({
      id: 'AwsSolutions-ECS2',
      reason: 'The environment holds only non-secret identifiers (source, host, database names, bucket, retention, TLS mode and CA path); the password (and a CA bundle kept in a secret) is injected by ECS from Secrets Manager.',
    });
    if (props.image instanceof ecs.AssetImage) {
      acknowledgeWildcardResource(this.taskDefinition.obtainExecutionRole(), '*',
        'ecr:GetAuthorizationToken, which ECS needs to pull the worker image, has no resource-level permissions; the pull itself is limited to the image repository.');
    }
    acknowledgeWildcardResource(this.taskRole, objects,
      'The worker writes the objects of new runs of its own source, whose keys are made at run time: runs/<source>/ only; the bucket policy refuses any write that would replace an object (If-None-Match), and lets only Commit and AwaitOffsite write verification.json and offsite.json; deletes are explicitly denied.');

  }
}
