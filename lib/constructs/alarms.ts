import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { Source } from '../config/types';
import { OFFSITE_GRACE } from './watchdog';

/** The period of every alarm here: one bad execution or message is seen within 5 minutes. */
export const ALARM_PERIOD = Duration.minutes(5);

export interface DeadLetterQueueToWatch {
  /** What sends to the queue, in words and as part of the alarm's construct id, e.g. `BackupSchedules`. */
  readonly name: string;
  readonly queue: sqs.IQueue;
}

export interface LifeboatAlarmsProps {
  /** The backup-run state machine (`BackupWorkflow.stateMachine`). */
  readonly backupStateMachine: sfn.IStateMachine;
  /** The restore-drill state machine (`DrillWorkflow.stateMachine`). */
  readonly drillStateMachine: sfn.IStateMachine;
  /** Every schedule dead-letter queue: a message there is a run or a prune that never started. */
  readonly deadLetterQueues: readonly DeadLetterQueueToWatch[];
  /** The primary bucket, the source of the replication. */
  readonly primaryBucket: s3.IBucket;
  /** The id of the replication rule (`OffsiteReplication.rule.id`). */
  readonly replicationRuleId: string;
  /** The physical name of the offsite bucket. */
  readonly offsiteBucketName: string;
  /** Receives ALARM and OK of every alarm. */
  readonly alarmTopic: sns.ITopic;
  /**
   * The resolved sources, named in the descriptions of the shared alarms. No alarm here is
   * per source: the watchdog already has two per source and method, and 200 sources must fit in one stack.
   */
  readonly sources: readonly Source[];
}

/**
 * The alarms of Lifeboat that are not per source: backup runs that failed, timed out or were
 * aborted; drills that failed (a failed check, or a measured RTO above the tier's RTO); runs,
 * drills or prunes that never started (a message in a schedule dead-letter queue); replication
 * that fails or lags. Every alarm sends ALARM and OK to the topic, so on-call sees recovery.
 *
 * Resources: 6 fixed alarms plus 1 per dead-letter queue; none per source.
 */
export class LifeboatAlarms extends Construct {
  public readonly backupRunFailed: cloudwatch.Alarm;
  public readonly backupRunTimedOut: cloudwatch.Alarm;
  public readonly backupRunAborted: cloudwatch.Alarm;
  public readonly drillFailed: cloudwatch.Alarm;
  /** One alarm per dead-letter queue, by its name. */
  public readonly deadLetterAlarms: Readonly<Record<string, cloudwatch.Alarm>>;
  public readonly replicationFailed: cloudwatch.Alarm;
  public readonly replicationLatency: cloudwatch.Alarm;
  public readonly suspiciousDumpSize: cloudwatch.Alarm;
  /** Every alarm above, for an `AlarmStatusWidget`. */
  public readonly alarms: readonly cloudwatch.Alarm[];

  constructor(scope: Construct, id: string, props: LifeboatAlarmsProps) {
    super(scope, id);
    validateDeadLetterQueues(props.deadLetterQueues);
    const action = new actions.SnsAction(props.alarmTopic);
    const alarm = (alarmId: string, metric: cloudwatch.IMetric, threshold: number,
      comparisonOperator: cloudwatch.ComparisonOperator, description: string): cloudwatch.Alarm => {
      const created = new cloudwatch.Alarm(this, alarmId, {
        alarmDescription: description,
        metric,
        threshold,
        comparisonOperator,
        evaluationPeriods: 1,
        // No executions, no messages, no replication: nothing is wrong. A backup that does
        // not run at all is the watchdog's RPO alarm (missing data breaching there).
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
      created.addAlarmAction(action);
      created.addOkAction(action);
      return created;
    };
    const atLeastOne = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD;
    const above = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD;
    const sum = { period: ALARM_PERIOD, statistic: cloudwatch.Stats.SUM };
    const sources = sourceList(props.sources);

    this.backupRunFailed = alarm('BackupRunFailed', props.backupStateMachine.metricFailed(sum), 1, atLeastOne, [
      `Lifeboat: a backup run failed (sources: ${sources}); that run does not count as a backup.`,
      'The SNS message sent by the run names the source, the failed state, the error and the first thing to check.',
      'First check: the failed executions of the backup-run state machine in Step Functions (their RecordFailure step has the explanation).',
    ].join(' '));
    this.backupRunTimedOut = alarm('BackupRunTimedOut', props.backupStateMachine.metricTimedOut(sum), 1, atLeastOne, [
      `Lifeboat: a backup run timed out (sources: ${sources}): the state machine's own timeout ended it, so no failure message was sent`,
      'and that run does not count as a backup.',
      'First check: the timed-out executions of the backup-run state machine: which state was running (dump, verify, AwaitOffsite) and for how long.',
    ].join(' '));
    this.backupRunAborted = alarm('BackupRunAborted', props.backupStateMachine.metricAborted(sum), 1, atLeastOne, [
      `Lifeboat: a backup run was aborted (sources: ${sources}): someone or something stopped the execution, no failure message was sent`,
      'and that run does not count as a backup.',
      'First check: CloudTrail StopExecution events on the backup-run state machine (who stopped it, a deployment?).',
    ].join(' '));
    this.drillFailed = alarm('DrillFailed', props.drillStateMachine.metricFailed(sum), 1, atLeastOne, [
      `Lifeboat: a restore drill failed (sources: ${sources}): a backup could not be restored, a check failed,`,
      "or the measured RTO was above the tier's RTO (RtoExceeded).",
      'First check: the SNS message of the drill and its report, drills/<source>/<drillId>/report.json in the primary bucket',
      '(or `lifeboat status`); then the failed execution of the restore-drill state machine.',
    ].join(' '));

    const deadLetterAlarms: Record<string, cloudwatch.Alarm> = {};
    for (const { name, queue } of props.deadLetterQueues) {
      deadLetterAlarms[name] = alarm(`DeadLetters-${name}`,
        queue.metricApproximateNumberOfMessagesVisible({ period: ALARM_PERIOD, statistic: cloudwatch.Stats.MAXIMUM }), 0, above, [
          `Lifeboat: the dead-letter queue of ${name} is not empty: EventBridge Scheduler could not start at least one execution`,
          'after its retries, so a run, a drill or a prune did not happen at all.',
          `First check: the messages in the queue (their attributes carry the error code and message, e.g. an AccessDenied of the schedule's role`,
          'or a throttled StartExecution), then purge it once the cause is fixed so that the alarm returns to OK.',
        ].join(' '));
    }
    this.deadLetterAlarms = deadLetterAlarms;

    const replicationDimensions = {
      SourceBucket: props.primaryBucket.bucketName,
      DestinationBucket: props.offsiteBucketName,
      RuleId: props.replicationRuleId,
    };
    this.replicationFailed = alarm('ReplicationFailed', new cloudwatch.Metric({
      namespace: 'AWS/S3',
      metricName: 'OperationsFailedReplication',
      dimensionsMap: replicationDimensions,
      ...sum,
    }), 0, above, [
      `Lifeboat: S3 replication to the offsite bucket ${props.offsiteBucketName} failed for at least one object:`,
      'backups are verified in the primary region but their offsite copy is missing.',
      'First check: the replication role and its permissions on the offsite bucket and the offsite KMS key (policies in the offsite account),',
      'and objects under runs/ with x-amz-replication-status FAILED.',
    ].join(' '));
    this.replicationLatency = alarm('ReplicationLatency', new cloudwatch.Metric({
      namespace: 'AWS/S3',
      metricName: 'ReplicationLatency',
      dimensionsMap: replicationDimensions,
      period: ALARM_PERIOD,
      statistic: cloudwatch.Stats.MAXIMUM,
    }), OFFSITE_GRACE.toSeconds(), above, [
      `Lifeboat: S3 replication to the offsite bucket ${props.offsiteBucketName} lags more than ${OFFSITE_GRACE.toMinutes()} minutes,`,
      'the Replication Time Control window: a loss of the primary region now would lose the newest backups.',
      'First check: the AWS Health Dashboard for S3 in both regions, then OperationsPendingReplication and the size of recent runs.',
    ].join(' '));

    // One alarm for every source: a Metrics Insights query over RecordFailure's metric.
    this.suspiciousDumpSize = alarm('SuspiciousDumpSize', new cloudwatch.MathExpression({
      expression: 'SELECT SUM(SuspiciousDumpSize) FROM SCHEMA("Lifeboat", service, source)',
      period: ALARM_PERIOD,
      label: 'Runs that failed verification as SuspiciousSize',
    }), 1, atLeastOne, [
      `Lifeboat: a dump was much smaller than the recent verified runs of its source (sources: ${sources}) and failed verification as SuspiciousSize:`,
      'a table may have been truncated, a database dropped, or the dump may be pointed at the wrong database.',
      'First check: the SNS message of the failed run (it names the source and the figures), then the source database itself.',
    ].join(' '));

    this.alarms = [
      this.backupRunFailed, this.backupRunTimedOut, this.backupRunAborted, this.drillFailed,
      ...Object.values(deadLetterAlarms), this.replicationFailed, this.replicationLatency, this.suspiciousDumpSize,
    ];
  }
}

/** Alarm descriptions are at most 1024 characters: name a few sources, count the rest. */
function sourceList(sources: readonly Source[], shown = 5): string {
  const names = sources.slice(0, shown).map((source) => source.name);
  const rest = sources.length - names.length;
  return rest > 0 ? `${names.join(', ')} and ${rest} more` : names.join(', ') || 'none configured';
}

function validateDeadLetterQueues(queues: readonly DeadLetterQueueToWatch[]): void {
  const problems: string[] = [];
  const seen = new Set<string>();
  queues.forEach(({ name }, index) => {
    if (!/^[A-Za-z0-9]+$/.test(name)) problems.push(`deadLetterQueues[${index}].name: "${name}" must be letters and digits (it is part of a construct id)`);
    else if (seen.has(name)) problems.push(`deadLetterQueues[${index}].name: "${name}" is used twice`);
    seen.add(name);
  });
  if (problems.length > 0) throw new Error(`LifeboatAlarms: ${problems.join('; ')}`);
}
