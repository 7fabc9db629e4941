import { Duration, RemovalPolicy, TimeZone, Validations } from 'aws-cdk-lib';
import type * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as targets from 'aws-cdk-lib/aws-scheduler-targets';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import type { Construct } from 'constructs';
import type { Source } from '../config/types';

/**
 * A Standard state machine as Lifeboat runs them: X-Ray tracing, every event logged with its
 * data (nothing secret travels through the states) to a log group kept three months.
 * Construct ids `StateMachine` and `ExecutionLogs` under `scope`.
 */
export function loggedStateMachine(
  scope: Construct,
  props: { readonly name: string; readonly definition: sfn.IChainable; readonly timeout: Duration },
): sfn.StateMachine {
  return new sfn.StateMachine(scope, 'StateMachine', {
    stateMachineName: props.name,
    definitionBody: sfn.DefinitionBody.fromChainable(props.definition),
    stateMachineType: sfn.StateMachineType.STANDARD,
    timeout: props.timeout,
    tracingEnabled: true,
    logs: {
      destination: new logs.LogGroup(scope, 'ExecutionLogs', {
        logGroupName: `/aws/vendedlogs/states/${props.name}`,
        retention: logs.RetentionDays.THREE_MONTHS,
        removalPolicy: RemovalPolicy.RETAIN,
      }),
      level: sfn.LogLevel.ALL,
      includeExecutionData: true,
    },
  });
}

/**
 * The dead-letter queue of a group of schedules (construct id `DeadLetters` under `scope`):
 * encrypted, TLS-only, messages kept 14 days. A message here is an alarm, not work to retry.
 *
 * SQS-managed encryption, not the backup key: EventBridge Scheduler delivers dead letters with
 * the schedule's role, which then needs no KMS permission, and whoever reads the queue (a person
 * on call) needs no key that could decrypt the backups.
 */
export function scheduleDeadLetterQueue(scope: Construct, what: string): sqs.Queue {
  const queue = new sqs.Queue(scope, 'DeadLetters', {
    encryption: sqs.QueueEncryption.SQS_MANAGED,
    enforceSSL: true,
    retentionPeriod: Duration.days(14),
  });
  Validations.of(queue).acknowledge({
    id: 'AwsSolutions-SQS3',
    reason: `This queue is itself the dead-letter queue of the ${what}: a message here is an alarm (LifeboatAlarms watches its depth), not work to retry.`,
  });
  return queue;
}

/** What a tier's schedule becomes: a cron in the tier's timezone where the interval allows one. */
export interface ScheduleSpec {
  /** `cron(…)` or `rate(…)`, as EventBridge Scheduler takes it. */
  readonly expression: string;
  /** Undefined for rate expressions, which have no timezone. */
  readonly timezone?: string;
}

/** What the backup and the drill schedules both take. */
export interface WorkflowSchedulesProps {
  readonly sources: readonly Source[];
  readonly stateMachine: sfn.IStateMachine;
  /**
   * The dead-letter queue and schedule group to use instead of this construct's own: the
   * source shards (nested stacks) share the parent's.
   * @default - a queue and a group of its own
   */
  readonly shared?: { readonly deadLetterQueue: sqs.IQueue; readonly group: scheduler.IScheduleGroup };
  /**
   * Attempts after the first, for a failed StartExecution.
   * @default 3 (Scheduler's own default is 185)
   */
  readonly retryAttempts?: number;
}

/**
 * One schedule that starts an execution of `stateMachine` with `input` plus the source's name
 * and the slot's scheduled time; failed starts retried, then sent to `deadLetterQueue`.
 */
export function startExecutionSchedule(
  scope: Construct,
  id: string,
  opts: {
    readonly description: string;
    readonly group: scheduler.IScheduleGroup;
    readonly spec: ScheduleSpec;
    readonly window: Duration;
    readonly stateMachine: sfn.IStateMachine;
    readonly source: string;
    readonly input: Record<string, unknown>;
    readonly deadLetterQueue: sqs.IQueue;
    readonly retryAttempts: number | undefined;
    readonly maxEventAge: Duration;
    /** The role Scheduler starts the execution with. @default - the stack's one role per target (aws-scheduler-targets) */
    readonly role?: iam.IRole;
  },
): scheduler.Schedule {
  return new scheduler.Schedule(scope, id, {
    description: opts.description,
    scheduleGroup: opts.group,
    schedule: scheduler.ScheduleExpression.expression(opts.spec.expression, opts.spec.timezone ? TimeZone.of(opts.spec.timezone) : undefined),
    timeWindow: scheduler.TimeWindow.flexible(opts.window),
    target: new targets.StepFunctionsStartExecution(opts.stateMachine, {
      input: scheduler.ScheduleTargetInput.fromObject({
        source: opts.source,
        scheduledTime: scheduler.ContextAttribute.scheduledTime,
        ...opts.input,
      }),
      deadLetterQueue: opts.deadLetterQueue,
      retryAttempts: opts.retryAttempts ?? 3,
      maxEventAge: opts.maxEventAge,
      ...(opts.role ? { role: opts.role } : {}),
    }),
  });
}
