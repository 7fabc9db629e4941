import * as path from 'node:path';
import { Duration, RemovalPolicy, Stack, TimeZone, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as targets from 'aws-cdk-lib/aws-scheduler-targets';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { Tier } from '../config/types';
import { RUNS_PREFIX } from '../domain/layout';
import { acknowledgeWildcardResource } from './nag';

const REPO_ROOT = path.join(__dirname, '..', '..');

/** Daily at 04:00 UTC: after the 03:00 daily backups have had an hour, before the 05:00 drills. */
export const PRUNE_SCHEDULE = 'cron(0 4 * * ? *)';

export interface PrunerSource {
  readonly name: string;
  readonly tier: Pick<Tier, 'retentionSeconds' | 'scheduleSeconds'>;
}

export interface PrunerProps {
  /** The bucket whose runs it prunes: the primary, or the offsite copy (each bucket is its own catalog). */
  readonly bucket: s3.IBucket;
  /** The bucket's key (reads manifests and verdicts). */
  readonly key: kms.IKey;
  readonly sources: readonly PrunerSource[];
  /**
   * Decide and log only; delete nothing.
   * @default false
   */
  readonly dryRun?: boolean;
  /**
   * Attempts after the first, for a failed invocation of the pruner.
   * @default 2 (Scheduler's own default is 185)
   */
  readonly retryAttempts?: number;
}

/**
 * The only principal allowed to delete runs from its bucket: a Lambda function on a daily
 * schedule that applies each source's tier retention with the invariants of
 * lib/retention/policy.ts, and deletes a run only once no version of it is under Object Lock
 * (lib/retention/prune.ts). One per bucket: the primary stack's prunes the primary, the offsite
 * stack's the offsite copy with a role of that account, so neither account's principal can
 * delete the other's copy. Its role is created here and granted explicitly (no
 * `bucket.grantDelete`, which would also grant every key of the bucket and delete markers), so
 * each stack can check that no other role deletes.
 */
export class Pruner extends Construct {
  public readonly function: nodejs.NodejsFunction;
  public readonly role: iam.Role;
  public readonly schedule: scheduler.Schedule;
  public readonly deadLetterQueue: sqs.Queue;

  constructor(scope: Construct, id: string, props: PrunerProps) {
    super(scope, id);
    const { bucket, key } = props;
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: 'Lifeboat pruner: the only role allowed to delete runs',
    });
    // Its own log group only (AWSLambdaBasicExecutionRole would allow writing every log group).
    const logGroup = new logs.LogGroup(this, 'Logs', { retention: logs.RetentionDays.THREE_MONTHS, removalPolicy: RemovalPolicy.RETAIN });
    logGroup.grantWrite(this.role);

    const runObjects = bucket.arnForObjects(`${RUNS_PREFIX}*`);
    // The catalog (ListObjectsV2) and every version and delete marker of a run (ListObjectVersions).
    this.role.addToPrincipalPolicy(new iam.PolicyStatement({
      actions: ['s3:ListBucket', 's3:ListBucketVersions'], resources: [bucket.bucketArn], conditions: { StringLike: { 's3:prefix': [`${RUNS_PREFIX}*`] } },
    }));
    // The catalog reads verdicts, and manifests by the version the verdict names; then each
    // version's Object Lock, which decides whether the run can go yet.
    this.role.addToPrincipalPolicy(new iam.PolicyStatement({
      actions: ['s3:GetObject', 's3:GetObjectVersion', 's3:GetObjectRetention', 's3:GetObjectLegalHold'], resources: [runObjects],
    }));
    // Exact versions only: no s3:DeleteObject, so this role cannot lay a delete marker over a run
    // (which would hide it from the catalog while its versions stay), and no
    // s3:BypassGovernanceRetention (the bucket policy denies it too).
    this.role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['s3:DeleteObjectVersion'], resources: [runObjects] }));
    this.role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['kms:Decrypt'], resources: [key.keyArn] }));
    acknowledgeWildcardResource(this.role, runObjects,
      'Reads the objects of runs (current and exact versions, their retention and legal hold) and deletes exact versions of the runs the retention policy removes once no lock holds them; run keys are created at run time under runs/, and nothing outside runs/ is granted.');

    this.function = new nodejs.NodejsFunction(this, 'Function', {
      entry: path.join(REPO_ROOT, 'lambdas', 'prune', 'handler.ts'),
      handler: 'handler',
      description: 'Lifeboat: applies each source\'s retention, never deleting its newest verified runs',
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: 512,
      timeout: Duration.minutes(15),
      role: this.role,
      // One prune at a time: two overlapping prunes would race on the same runs.
      reservedConcurrentExecutions: 1,
      environment: {
        LIFEBOAT_BUCKET: bucket.bucketName,
        LIFEBOAT_SOURCES_JSON: JSON.stringify(props.sources.map((source) => ({
          name: source.name,
          tier: { retentionSeconds: source.tier.retentionSeconds, scheduleSeconds: source.tier.scheduleSeconds },
        }))),
        LIFEBOAT_DRY_RUN: String(props.dryRun ?? false),
        POWERTOOLS_SERVICE_NAME: 'lifeboat-prune',
        POWERTOOLS_METRICS_NAMESPACE: 'Lifeboat',
      },
      logGroup,
      bundling: { minify: true, sourceMap: true, externalModules: [] },
    });
    Validations.of(this.function).acknowledge({
      id: 'AwsSolutions-L1',
      reason: 'Lifeboat pins Node 22 everywhere (the worker image, the CLI, the tests); the runtime moves with that pin.',
    });

    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetters', {
      // Not the backup key: the schedule's role delivers without KMS, readers need no backup key.
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    Validations.of(this.deadLetterQueue).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason: 'This queue is itself the dead-letter queue of the prune schedule: a message here is an alarm, not work to retry.',
    });

    // Its own role: the stack's shared Scheduler role would carry this grant for everyone.
    const scheduleRole = new iam.Role(this, 'ScheduleRole', {
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', { conditions: { StringEquals: { 'aws:SourceAccount': Stack.of(this).account } } }),
      description: 'Lifeboat: lets EventBridge Scheduler invoke the pruner',
    });
    acknowledgeWildcardResource(scheduleRole, `${this.function.functionArn}:*`,
      'Invoking the pruner function is granted on the function and its versions (ARN:*); nothing else.');
    this.schedule = new scheduler.Schedule(this, 'Schedule', {
      description: 'Lifeboat: daily retention of every source\'s runs',
      schedule: scheduler.ScheduleExpression.expression(PRUNE_SCHEDULE, TimeZone.of('UTC')),
      timeWindow: scheduler.TimeWindow.flexible(Duration.minutes(15)),
      target: new targets.LambdaInvoke(this.function, {
        role: scheduleRole,
        deadLetterQueue: this.deadLetterQueue,
        retryAttempts: props.retryAttempts ?? 2,
        maxEventAge: Duration.hours(2),
      }),
    });
  }
}
