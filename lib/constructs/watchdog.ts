import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as targets from 'aws-cdk-lib/aws-scheduler-targets';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { flexibleWindowFor } from './backup-schedules';
import * as path from 'node:path';
import type { Source } from '../config/types';
import type { WatchedSource } from '../steps/watchdog';
import { acknowledgeWildcardResource } from './nag';
import { RunGrants } from './run-grants';

const REPO_ROOT = path.join(__dirname, '..', '..');
export const DEFAULT_WATCHDOG_NAMESPACE = 'Lifeboat';
/** How often the watchdog measures, and the period of the alarms on what it publishes. */
export const WATCHDOG_INTERVAL = Duration.minutes(5);
/** S3 Replication Time Control's window: the offsite copy may lag the primary by this much. */
export const OFFSITE_GRACE = Duration.minutes(15);

export interface WatchdogProps {
  /** The resolved sources: each one's tier RPO is its alarm threshold. */
  readonly sources: readonly Source[];
  /** The primary bucket (read only: `runs/*`). */
  readonly bucket: s3.IBucket;
  /** The bucket's key (kms:Decrypt only). */
  readonly bucketKey: kms.IKey;
  /** Receives ALARM and OK of every watchdog alarm. */
  readonly alarmTopic: sns.ITopic;
  /**
   * CloudWatch namespace of the metrics.
   * @default 'Lifeboat'
   */
  readonly namespace?: string;
  /**
   * How long a run may take from its slot to its verification (schedule window, dump,
   * verify) before its absence is alarming.
   * @default - 10 minutes
   */
  readonly runAllowance?: Duration;
  /**
   * Whether the watchdog holds the two alarms per source; false when they live elsewhere
   * (`WatchdogAlarms` in the source shards).
   * @default true
   */
  readonly perSourceAlarms?: boolean;
}

/**
 * The age above which a source's newest verified backup is alarming: its RPO, but never less
 * than one schedule interval plus the flexible window plus the run allowance — with a 15-minute
 * schedule and a 15-minute RPO the newest backup is legitimately older than 15 minutes while
 * the next one runs, and an alarm at exactly the RPO would flap every cycle.
 */
export function rpoAlarmThresholdSeconds(tier: { readonly rpoSeconds: number; readonly scheduleSeconds: number }, runAllowanceSeconds = 600): number {
  return Math.max(tier.rpoSeconds, tier.scheduleSeconds + flexibleWindowFor(tier).toSeconds() + runAllowanceSeconds);
}

/**
 * The RPO watchdog (lib/steps/watchdog.ts): a Lambda run every 5 minutes by EventBridge
 * Scheduler publishes, per source, the age of its newest verified backup; one alarm per
 * source fires when that age passes the tier's RPO. Missing data breaches, so the same alarm
 * fires when the watchdog is dead, its schedule disabled, or the source never backed up.
 * A second alarm per source fires when the newest offsite-confirmed backup is older than the
 * RPO plus the 15 minutes replication may take (missing data there is not breaching).
 * Per source: two alarms. Shared: the function, its role and log group, the schedule and its role.
 */
export class Watchdog extends Construct {
  public readonly function: nodejs.NodejsFunction;
  public readonly schedule: scheduler.Schedule;
  /** The age alarm of each source (newest verified backup older than the RPO), by source name. */
  public readonly alarms: Readonly<Record<string, cloudwatch.Alarm>>;
  /** The offsite alarm of each source (newest offsite-confirmed backup older than RPO + 15 minutes), by source name. */
  public readonly offsiteAlarms: Readonly<Record<string, cloudwatch.Alarm>>;

  constructor(scope: Construct, id: string, props: WatchdogProps) {
    super(scope, id);
    const namespace = props.namespace ?? DEFAULT_WATCHDOG_NAMESPACE;
    const watched: WatchedSource[] = props.sources.map((source) => ({ name: source.name, rpoSeconds: source.tier.rpoSeconds }));

    this.function = new nodejs.NodejsFunction(this, 'Function', {
      entry: path.join(REPO_ROOT, 'lambdas', 'watchdog', 'handler.ts'),
      handler: 'handler',
      description: 'Lifeboat: publishes the age of the newest verified backup of each source',
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: 256,
      timeout: Duration.minutes(1),
      environment: {
        LIFEBOAT_BUCKET: props.bucket.bucketName,
        LIFEBOAT_SOURCES_JSON: JSON.stringify(watched),
        POWERTOOLS_METRICS_NAMESPACE: namespace,
        POWERTOOLS_SERVICE_NAME: 'lifeboat-watchdog',
      },
      logGroup: new logs.LogGroup(this, 'Logs', { retention: logs.RetentionDays.THREE_MONTHS, removalPolicy: RemovalPolicy.RETAIN }),
      bundling: { minify: true, sourceMap: true, externalModules: [] },
    });
    Validations.of(this.function).acknowledge({
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
      reason: 'AWSLambdaBasicExecutionRole allows only logs:CreateLogGroup, logs:CreateLogStream and logs:PutLogEvents (on any log group: it cannot read or delete logs); everything else is granted per function.',
    });
    Validations.of(this.function).acknowledge({
      id: 'AwsSolutions-L1',
      reason: 'Lifeboat pins Node 22 everywhere (the worker image, the CLI, the tests); the runtime moves with that pin.',
    });

    // Read only: the catalog lists runs/<source>/ and reads the JSON files of a few runs.
    const role = this.function.role as iam.IRole;
    // The age of a source's newest verified and offsite-confirmed run: its JSON documents only.
    new RunGrants(props.bucket, props.bucketKey).readDocuments(role, ['manifest.json', 'verification.json', 'offsite.json']);

    // A missed invocation is not worth a dead-letter queue: the alarms treat the missing
    // data as breaching, and the next invocation is 5 minutes away.
    const scheduleRole = new iam.Role(this, 'ScheduleRole', {
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', { conditions: { StringEquals: { 'aws:SourceAccount': Stack.of(this).account } } }),
      description: 'Lifeboat: lets EventBridge Scheduler invoke the RPO watchdog',
    });
    acknowledgeWildcardResource(scheduleRole, `${this.function.functionArn}:*`,
      'Invoking the watchdog function is granted on the function and its versions (ARN:*); nothing else.');
    this.schedule = new scheduler.Schedule(this, 'Schedule', {
      description: 'Lifeboat: the RPO watchdog, every 5 minutes',
      schedule: scheduler.ScheduleExpression.rate(WATCHDOG_INTERVAL),
      target: new targets.LambdaInvoke(this.function, {
        role: scheduleRole,
        retryAttempts: 2,
        maxEventAge: Duration.minutes(4),
      }),
    });

    const created = props.perSourceAlarms === false
      ? { alarms: {}, offsiteAlarms: {} }
      : createWatchdogAlarms(this, props);
    this.alarms = created.alarms;
    this.offsiteAlarms = created.offsiteAlarms;
  }
}

export interface WatchdogAlarmsProps {
  /** The sources to alarm on (a shard's). */
  readonly sources: readonly Source[];
  /** Receives ALARM and OK of every alarm. */
  readonly alarmTopic: sns.ITopic;
  /** @default 'Lifeboat' */
  readonly namespace?: string;
  /** @default - 10 minutes */
  readonly runAllowance?: Duration;
  /**
   * Prefix of the alarms' names (`<prefix>-rpo-<source>`, `<prefix>-offsite-rpo-<source>`), so
   * that a stack that does not hold them can name them (see `watchdogAlarmNames`).
   * @default - names generated by CloudFormation
   */
  readonly alarmNamePrefix?: string;
}

/** The names of a source's two watchdog alarms, given the `alarmNamePrefix`. */
export function watchdogAlarmNames(prefix: string, source: string): { readonly rpo: string; readonly offsite: string } {
  return { rpo: `${prefix}-rpo-${source}`, offsite: `${prefix}-offsite-rpo-${source}` };
}

/**
 * The watchdog's two alarms per source, apart from its function and schedule: the source
 * shards (nested stacks) hold the alarms of their sources, the parent the watchdog itself
 * (created with `perSourceAlarms: false`).
 */
export class WatchdogAlarms extends Construct {
  public readonly alarms: Readonly<Record<string, cloudwatch.Alarm>>;
  public readonly offsiteAlarms: Readonly<Record<string, cloudwatch.Alarm>>;

  constructor(scope: Construct, id: string, props: WatchdogAlarmsProps) {
    super(scope, id);
    const created = createWatchdogAlarms(this, props);
    this.alarms = created.alarms;
    this.offsiteAlarms = created.offsiteAlarms;
  }
}

function createWatchdogAlarms(scope: Construct, props: WatchdogAlarmsProps): {
  alarms: Record<string, cloudwatch.Alarm>;
  offsiteAlarms: Record<string, cloudwatch.Alarm>;
} {
  const namespace = props.namespace ?? DEFAULT_WATCHDOG_NAMESPACE;
  const watched: WatchedSource[] = props.sources.map((source) => ({ name: source.name, rpoSeconds: source.tier.rpoSeconds }));
  const thresholds = new Map(props.sources.map((source) =>
    [source.name, rpoAlarmThresholdSeconds(source.tier, (props.runAllowance ?? Duration.minutes(10)).toSeconds())]));
  const alarm = (alarmId: string, alarmName: string | undefined, source: WatchedSource, metricName: string, threshold: number, description: string, missing: cloudwatch.TreatMissingData) => {
    const created = new cloudwatch.Alarm(scope, alarmId, {
      alarmName,
      alarmDescription: description,
      metric: new cloudwatch.Metric({
        namespace,
        metricName,
        dimensionsMap: { source: source.name },
        statistic: cloudwatch.Stats.MAXIMUM,
        period: WATCHDOG_INTERVAL,
        unit: cloudwatch.Unit.SECONDS,
      }),
      threshold,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: missing,
    });
    created.addAlarmAction(new actions.SnsAction(props.alarmTopic));
    created.addOkAction(new actions.SnsAction(props.alarmTopic));
    return created;
  };
  const alarms: Record<string, cloudwatch.Alarm> = {};
  const offsiteAlarms: Record<string, cloudwatch.Alarm> = {};
  for (const source of watched) {
    const threshold = thresholds.get(source.name) as number;
    const names = props.alarmNamePrefix ? watchdogAlarmNames(props.alarmNamePrefix, source.name) : undefined;
    alarms[source.name] = alarm(`Rpo-${source.name}`, names?.rpo, source, 'SecondsSinceVerifiedBackup', threshold,
      rpoAlarmDescription(source), cloudwatch.TreatMissingData.BREACHING);
    // Missing data is the RPO alarm's business (dead watchdog, never backed up): not paged twice.
    offsiteAlarms[source.name] = alarm(`OffsiteRpo-${source.name}`, names?.offsite, source, 'SecondsSinceOffsiteBackup',
      threshold + OFFSITE_GRACE.toSeconds(), offsiteAlarmDescription(source), cloudwatch.TreatMissingData.NOT_BREACHING);
  }
  return { alarms, offsiteAlarms };
}

/** What the person on call reads first: the source, what is wrong, and where to look. */
export function rpoAlarmDescription(source: WatchedSource): string {
  return [
    `Lifeboat: ${source.name} has no verified backup within its RPO of ${formatSeconds(source.rpoSeconds)}`,
    '(or the watchdog that measures it has stopped reporting, or it has never been backed up).',
    `First check: the backup schedule of ${source.name} may be disabled, a role may have lost a permission, or every run fails:`,
    `see the backup-run executions for ${source.name} in Step Functions. If they are fine, check the watchdog function's logs.`,
  ].join(' ');
}

export function offsiteAlarmDescription(source: WatchedSource): string {
  return [
    `Lifeboat: ${source.name} has no backup confirmed in the offsite region within ${formatSeconds(source.rpoSeconds + OFFSITE_GRACE.toSeconds())}`,
    `(its RPO plus ${OFFSITE_GRACE.toMinutes()} minutes of replication). Backups are verified but the offsite copy is missing or late.`,
    'First check: the replication status of runs/ objects in the primary bucket (FAILED replications, replication role, the offsite key),',
    `and the AwaitOffsite step of the backup-run executions for ${source.name}.`,
  ].join(' ');
}

function formatSeconds(seconds: number): string {
  if (seconds % 86_400 === 0) return `${seconds / 86_400}d`;
  if (seconds % 3600 === 0) return `${seconds / 3600}h`;
  if (seconds % 60 === 0) return `${seconds / 60}m`;
  return `${seconds}s`;
}
