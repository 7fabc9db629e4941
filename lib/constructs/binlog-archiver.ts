/**
 * The binary-log archiver of a MySQL/MariaDB point-in-time source (issue 15): a Fargate task
 * (the worker image's `/app/binlog-archive.js`, worker/binlog-archive-main.ts) that copies the
 * server's binary logs under `binlog/<source>/` with the source's own connection, and an
 * EventBridge Scheduler schedule every `plan.archiveEverySeconds` that runs it.
 *
 * The schedule's target is ECS RunTask as a universal target (`aws-sdk:ecs:runTask`): its input
 * is the RunTask request itself (PascalCase, as the SDK integrations take it), so the slot's time
 * reaches the task as `LIFEBOAT_SCHEDULED_TIME` in a container override, as the dump task's does
 * through the backup run. One run per slot, bounded by the worker; failed invocations go to the
 * backup schedules' dead-letter queue, as every Lifeboat schedule's.
 */
import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as targets from 'aws-cdk-lib/aws-scheduler-targets';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { BINLOG_ARCHIVE_ENTRY, BINLOG_ARCHIVE_ENV } from '../binlog/archive-env';
import type { BinlogSource, ObjectLockMode, Source } from '../config/types';
import { binlogPrefix } from '../domain/layout';
import { DUMP_SCRATCH_PATH, LIFEBOAT_ROLE_PATH } from './dump-task';
import { acknowledgeWildcardResource } from './nag';

/** Family of every archiver task definition: `lifeboat-binlog-<source>`. */
export const BINLOG_ARCHIVER_FAMILY_PREFIX = 'lifeboat-binlog-';
/** IAM path of the archiver tasks' roles. */
export const BINLOG_ARCHIVER_ROLE_PATH = `${LIFEBOAT_ROLE_PATH}binlog/`;
/** The archiver's container name (the schedule's container override names it). */
export const BINLOG_ARCHIVER_CONTAINER = 'Worker';

export interface BinlogArchiverProps {
  /** A MySQL/MariaDB source with `binlog` (method 'pitr'). */
  readonly source: Source;
  /** The primary bucket the archive is written into. */
  readonly bucket: s3.IBucket;
  /** The bucket's key (SSE-KMS: GenerateDataKey to write, Decrypt to read back and complete multipart uploads). */
  readonly bucketKey: kms.IKey;
  /** The worker image (worker/Dockerfile). */
  readonly image: ecs.ContainerImage;
  /** Object Lock mode of every archived object, with the tier's retention. */
  readonly objectLockMode: ObjectLockMode;
  /** The ARN of the cluster the task runs on (the backup run's). */
  readonly clusterArn: string;
  /** Where the task runs: the source's dump task's subnets and security groups. */
  readonly subnets: readonly string[];
  readonly securityGroups: readonly string[];
  /** The schedule group and dead-letter queue (the backup schedules'). */
  readonly group: scheduler.IScheduleGroup;
  readonly deadLetterQueue: sqs.IQueue;
  /**
   * How long the archiver's logs are kept.
   * @default - three months
   */
  readonly logRetention?: logs.RetentionDays;
}

/** The schedule of a plan: a rate (the archive is continuous, slots need no clock alignment). */
export function binlogArchiveSchedule(plan: Pick<BinlogSource['plan'], 'archiveEverySeconds'>): scheduler.ScheduleExpression {
  return scheduler.ScheduleExpression.rate(Duration.seconds(plan.archiveEverySeconds));
}

/**
 * A source's archiver: task definition, its two roles (under `/lifeboat/binlog/`), log group and
 * schedule. The task role may write, read back and list `binlog/<source>/` only and never
 * delete; the schedule's role may run only this task definition on the cluster and pass only its
 * two roles.
 */
export class BinlogArchiver extends Construct {
  public readonly taskDefinition: ecs.FargateTaskDefinition;
  public readonly container: ecs.ContainerDefinition;
  public readonly taskRole: iam.IRole;
  public readonly executionRole: iam.IRole;
  public readonly logGroup: logs.LogGroup;
  public readonly schedule: scheduler.Schedule;

  constructor(scope: Construct, id: string, props: BinlogArchiverProps) {
    super(scope, id);
    const { source, bucket } = props;
    const binlog = source.binlog;
    if (!binlog) {
      throw new Error(`BinlogArchiver: source ${source.name} has no binlog (valid: a MySQL or MariaDB source with method 'pitr')`);
    }
    const role = (roleId: string, description: string) => new iam.Role(this, roleId, {
      assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com'),
      path: BINLOG_ARCHIVER_ROLE_PATH,
      description,
    });
    const taskRole = role('TaskRole', `Lifeboat: the binary-log archiver of ${source.name}`);
    const executionRole = role('ExecutionRole', `Lifeboat: starts the binary-log archiver of ${source.name}`);
    this.taskDefinition = new ecs.FargateTaskDefinition(this, 'TaskDefinition', {
      family: `${BINLOG_ARCHIVER_FAMILY_PREFIX}${source.name}`,
      taskRole,
      executionRole,
      cpu: 256,
      memoryLimitMiB: 512,
      runtimePlatform: { cpuArchitecture: ecs.CpuArchitecture.X86_64, operatingSystemFamily: ecs.OperatingSystemFamily.LINUX },
    });
    this.taskRole = taskRole;
    this.executionRole = executionRole;

    this.logGroup = new logs.LogGroup(this, 'Logs', {
      logGroupName: `/lifeboat/binlog/${source.name}`,
      retention: props.logRetention ?? logs.RetentionDays.THREE_MONTHS,
      removalPolicy: RemovalPolicy.RETAIN,
    });

    // The connection as the dump task's: the password (and a CA kept in a secret) injected by ECS.
    const secret = secretsmanager.Secret.fromSecretCompleteArn(this, 'Password', source.connection.passwordSecretArn);
    const { tls, tlsCa } = source.connection;
    const caSecret = tlsCa?.kind === 'secret' ? secretsmanager.Secret.fromSecretCompleteArn(this, 'TlsCa', tlsCa.secretArn) : undefined;
    this.container = this.taskDefinition.addContainer(BINLOG_ARCHIVER_CONTAINER, {
      image: props.image,
      entryPoint: ['node', '--enable-source-maps', BINLOG_ARCHIVE_ENTRY],
      essential: true,
      readonlyRootFilesystem: true,
      // SIGTERM, then this long before SIGKILL: time to finish the partial object of the run.
      stopTimeout: Duration.seconds(30),
      logging: ecs.LogDrivers.awsLogs({ logGroup: this.logGroup, streamPrefix: 'binlog' }),
      environment: {
        [BINLOG_ARCHIVE_ENV.source]: source.name,
        [BINLOG_ARCHIVE_ENV.engine]: source.engine,
        [BINLOG_ARCHIVE_ENV.host]: source.connection.host,
        [BINLOG_ARCHIVE_ENV.port]: String(source.connection.port),
        [BINLOG_ARCHIVE_ENV.username]: source.connection.username,
        [BINLOG_ARCHIVE_ENV.tlsMode]: tls,
        ...(tlsCa?.kind === 'file' ? { [BINLOG_ARCHIVE_ENV.tlsCaFile]: tlsCa.path } : {}),
        ...(caSecret ? { TMPDIR: DUMP_SCRATCH_PATH } : {}),
        [BINLOG_ARCHIVE_ENV.bucket]: bucket.bucketName,
        [BINLOG_ARCHIVE_ENV.objectLockMode]: props.objectLockMode,
        [BINLOG_ARCHIVE_ENV.retentionSeconds]: String(source.tier.retentionSeconds),
        [BINLOG_ARCHIVE_ENV.minServerRetentionSeconds]: String(binlog.plan.minServerRetentionSeconds),
      },
      secrets: {
        [BINLOG_ARCHIVE_ENV.password]: ecs.Secret.fromSecretsManager(secret),
        ...(caSecret ? { [BINLOG_ARCHIVE_ENV.tlsCaPem]: ecs.Secret.fromSecretsManager(caSecret) } : {}),
      },
    });
    // The archiver writes the binary logs it reads to its scratch volume (the root filesystem is read-only).
    this.taskDefinition.addVolume({ name: 'scratch' });
    this.container.addMountPoints({ sourceVolume: 'scratch', containerPath: DUMP_SCRATCH_PATH, readOnly: false });

    const objects = bucket.arnForObjects(`${binlogPrefix(source.name)}*`);
    taskRole.addToPrincipalPolicy(new iam.PolicyStatement({
      sid: 'WriteOwnBinlogArchive',
      // GetObject also authorizes HeadObject: the archiver reads back its own index and states. A binary log
      // larger than a part goes up in parts (worker/upload.ts); a failed one is aborted, leaving nothing.
      actions: ['s3:PutObject', 's3:PutObjectRetention', 's3:GetObject', 's3:AbortMultipartUpload', 's3:ListMultipartUploadParts'],
      resources: [objects],
    }));
    taskRole.addToPrincipalPolicy(new iam.PolicyStatement({
      sid: 'ListOwnBinlogArchive',
      actions: ['s3:ListBucket'],
      resources: [bucket.bucketArn],
      conditions: { StringLike: { 's3:prefix': [`${binlogPrefix(source.name)}*`] } },
    }));
    taskRole.addToPrincipalPolicy(new iam.PolicyStatement({
      sid: 'EncryptBinlogArchive',
      actions: ['kms:GenerateDataKey', 'kms:Decrypt'],
      resources: [props.bucketKey.keyArn],
    }));
    taskRole.addToPrincipalPolicy(new iam.PolicyStatement({
      sid: 'NeverDelete',
      effect: iam.Effect.DENY,
      actions: ['s3:DeleteObject', 's3:DeleteObjectVersion', 's3:BypassGovernanceRetention', 's3:PutLifecycleConfiguration', 's3:PutBucketPolicy'],
      resources: [bucket.bucketArn, bucket.arnForObjects('*')],
    }));

    // The schedule: RunTask of exactly this task definition on the cluster, passing exactly its
    // roles, with a role of its own (Scheduler's targets would otherwise share one per stack).
    const scheduleRole = new iam.Role(this, 'ScheduleRole', {
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', { conditions: { StringEquals: { 'aws:SourceAccount': Stack.of(this).account } } }),
      description: `Lifeboat: lets EventBridge Scheduler run the binary-log archiver of ${source.name}`,
    });
    this.schedule = new scheduler.Schedule(this, 'Schedule', {
      description: `Lifeboat: archive the binary logs of ${source.name} (${source.tier.name}) every ${binlog.plan.archiveEverySeconds}s`,
      scheduleGroup: props.group,
      schedule: binlogArchiveSchedule(binlog.plan),
      // A late run is a late archive: no flexible window, and an invocation older than one interval is dropped (the next slot runs).
      timeWindow: scheduler.TimeWindow.off(),
      target: new targets.Universal({
        role: scheduleRole,
        service: 'ecs',
        action: 'runTask',
        input: scheduler.ScheduleTargetInput.fromObject({
          Cluster: props.clusterArn,
          TaskDefinition: this.taskDefinition.taskDefinitionArn,
          LaunchType: 'FARGATE',
          Count: 1,
          NetworkConfiguration: {
            AwsvpcConfiguration: { Subnets: [...props.subnets], SecurityGroups: [...props.securityGroups], AssignPublicIp: 'DISABLED' },
          },
          Overrides: {
            ContainerOverrides: [{
              Name: BINLOG_ARCHIVER_CONTAINER,
              Environment: [{ Name: BINLOG_ARCHIVE_ENV.scheduledTime, Value: scheduler.ContextAttribute.scheduledTime }],
            }],
          },
        }),
        policyStatements: [
          new iam.PolicyStatement({
            sid: 'RunTheArchiver',
            actions: ['ecs:RunTask'],
            resources: [this.taskDefinition.taskDefinitionArn],
            conditions: { ArnEquals: { 'ecs:cluster': props.clusterArn } },
          }),
          new iam.PolicyStatement({
            sid: 'PassTheArchiverRoles',
            actions: ['iam:PassRole'],
            resources: [taskRole.roleArn, executionRole.roleArn],
            conditions: { StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } },
          }),
        ],
        deadLetterQueue: props.deadLetterQueue,
        retryAttempts: 2,
        maxEventAge: Duration.seconds(Math.max(60, binlog.plan.archiveEverySeconds)),
      }),
    });

    Validations.of(this.taskDefinition).acknowledge({
      id: 'AwsSolutions-ECS2',
      reason: 'The environment holds only non-secret identifiers (source, host, user, bucket, retention, TLS mode and CA path); the password (and a CA bundle kept in a secret) is injected by ECS from Secrets Manager.',
    });
    if (props.image instanceof ecs.AssetImage) {
      acknowledgeWildcardResource(executionRole, '*',
        'ecr:GetAuthorizationToken, which ECS needs to pull the worker image, has no resource-level permissions; the pull itself is limited to the image repository.');
    }
    acknowledgeWildcardResource(taskRole, objects,
      'The archiver writes its source\'s binary logs, index entries, partials and states under binlog/<source>/ only, keys made at run time (the server\'s file names, the run id); each object is written once with its Object Lock; deletes are explicitly denied.');
  }
}
