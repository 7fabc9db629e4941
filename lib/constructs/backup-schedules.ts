import { Duration } from 'aws-cdk-lib';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { Tier } from '../config/types';
import { scheduleDeadLetterQueue, startExecutionSchedule, type ScheduleSpec, type WorkflowSchedulesProps } from './common';

export type { ScheduleSpec };

/** Hour of the day (in the tier's timezone) at which daily and weekly backups start. */
export const DAILY_START_HOUR = 3;

/**
 * Slots aligned to the clock (every 15 minutes on :00, :15, …; daily at 03:00) give run ids
 * that read well and match what people expect of "every 15 minutes". Intervals that do not
 * divide an hour or a day evenly fall back to a rate expression.
 */
export function scheduleFor(tier: Pick<Tier, 'scheduleSeconds' | 'timezone'>): ScheduleSpec {
  const seconds = tier.scheduleSeconds;
  const minutes = seconds / 60;
  const hours = seconds / 3600;
  const cron = (fields: string) => ({ expression: `cron(${fields})`, timezone: tier.timezone });
  if (Number.isInteger(minutes) && minutes < 60 && 60 % minutes === 0) return cron(`0/${minutes} * * * ? *`);
  if (Number.isInteger(hours) && hours < 24 && 24 % hours === 0) return cron(`0 0/${hours} * * ? *`);
  if (seconds === 86_400) return cron(`0 ${DAILY_START_HOUR} * * ? *`);
  if (seconds === 7 * 86_400) return cron(`0 ${DAILY_START_HOUR} ? * SUN *`);
  const unit = seconds % 86_400 === 0 ? ['day', seconds / 86_400] : seconds % 3600 === 0 ? ['hour', hours] : ['minute', Math.round(minutes)];
  return { expression: `rate(${unit[1]} ${unit[0]}${unit[1] === 1 ? '' : 's'})` };
}

/**
 * The flexible window spreads the sources of one tier over the start of each slot so they
 * do not all hit their databases and S3 at the same second. It eats into the RPO, so it is
 * a fifth of the schedule interval, at most 15 minutes.
 */
export function flexibleWindowFor(tier: Pick<Tier, 'scheduleSeconds'>): Duration {
  return Duration.minutes(Math.max(1, Math.min(15, Math.floor(tier.scheduleSeconds / 60 / 5))));
}

/** Per-source values the state machine reads from the execution input. */
export interface SourceTarget {
  readonly taskDefinitionArn: string;
  readonly subnets: readonly string[];
  readonly securityGroups: readonly string[];
}

export interface BackupSchedulesProps extends WorkflowSchedulesProps {
  /** Per source: the dump task and where it runs. */
  readonly targets: Readonly<Record<string, SourceTarget>>;
}

/**
 * One EventBridge Scheduler schedule per source: the tier's cadence and timezone, a
 * flexible window, bounded retries, and a dead-letter queue for invocations that still fail
 * (alarmed on by the watchdog issue). Each invocation starts one backup-run execution with
 * the slot's time as input, which is what makes a slot idempotent.
 */
export class BackupSchedules extends Construct {
  public readonly schedules: Readonly<Record<string, scheduler.Schedule>>;
  public readonly deadLetterQueue: sqs.IQueue;
  public readonly group: scheduler.IScheduleGroup;

  constructor(scope: Construct, id: string, props: BackupSchedulesProps) {
    super(scope, id);
    this.deadLetterQueue = props.shared?.deadLetterQueue ?? scheduleDeadLetterQueue(this, 'backup schedules');
    this.group = props.shared?.group ?? new scheduler.ScheduleGroup(this, 'Group');

    const schedules: Record<string, scheduler.Schedule> = {};
    for (const source of props.sources) {
      const target = props.targets[source.name];
      const spec = scheduleFor(source.tier);
      schedules[source.name] = startExecutionSchedule(this, `Schedule-${source.name}`, {
        description: `Lifeboat: back up ${source.name} (${source.tier.name}) ${spec.expression}`,
        group: this.group,
        spec,
        window: flexibleWindowFor(source.tier),
        stateMachine: props.stateMachine,
        source: source.name,
        input: { target },
        deadLetterQueue: this.deadLetterQueue,
        retryAttempts: props.retryAttempts,
        maxEventAge: Duration.seconds(Math.max(60, Math.min(source.tier.scheduleSeconds, 3600))),
      });
    }
    this.schedules = schedules;
  }
}
