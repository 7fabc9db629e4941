import { Duration } from 'aws-cdk-lib';
import type * as iam from 'aws-cdk-lib/aws-iam';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { Source, Tier } from '../config/types';
import type { DrillTarget } from './drill-workflow';
import { scheduleDeadLetterQueue, startExecutionSchedule, type ScheduleSpec, type WorkflowSchedulesProps } from './common';

/** Hour of the day (tier timezone) at which drills start: after the 03:00 daily backups. */
export const DRILL_START_HOUR = 5;
const DAY = 86_400;

/**
 * A tier's drill cadence as a schedule: daily, weekly (Monday), monthly (the 1st) and
 * quarterly (1 January, April, July, October) at 05:00 in the tier's timezone; any other
 * interval is a rate.
 */
export function drillScheduleFor(tier: Pick<Tier, 'drillSeconds' | 'timezone'>): ScheduleSpec {
  const seconds = tier.drillSeconds;
  const cron = (fields: string) => ({ expression: `cron(${fields})`, timezone: tier.timezone });
  if (seconds === DAY) return cron(`0 ${DRILL_START_HOUR} * * ? *`);
  if (seconds === 7 * DAY) return cron(`0 ${DRILL_START_HOUR} ? * MON *`);
  if (seconds === 30 * DAY) return cron(`0 ${DRILL_START_HOUR} 1 * ? *`);
  if (seconds === 90 * DAY) return cron(`0 ${DRILL_START_HOUR} 1 1,4,7,10 ? *`);
  const [count, unit] = seconds % DAY === 0 ? [seconds / DAY, 'day'] : seconds % 3600 === 0 ? [seconds / 3600, 'hour'] : [Math.max(1, Math.round(seconds / 60)), 'minute'];
  return { expression: `rate(${count} ${unit}${count === 1 ? '' : 's'})` };
}

/**
 * Sources drilled daily also get a weekly disaster-recovery drill from the offsite bucket, on
 * Sunday afternoon, away from the 05:00 drill of the same source.
 */
export function offsiteDrillScheduleFor(tier: Pick<Tier, 'drillSeconds' | 'timezone'>): ScheduleSpec | undefined {
  return tier.drillSeconds <= DAY ? { expression: 'cron(0 17 ? * SUN *)', timezone: tier.timezone } : undefined;
}

export interface DrillSchedulesProps extends WorkflowSchedulesProps {
  /** Per source: the drill task, where it runs and its timeout. */
  readonly targets: Readonly<Record<string, DrillTarget>>;
  /**
   * Whether daily-drilled sources also get a weekly drill from the offsite bucket.
   * @default true
   */
  readonly offsiteDrills?: boolean;
  /**
   * What the schedules' descriptions call the drill.
   * @default 'restore drill'
   */
  readonly label?: string;
  /**
   * The role Scheduler starts the drills with.
   * @default - the stack's one role per state machine (aws-scheduler-targets)
   */
  readonly role?: iam.IRole;
}

/**
 * One EventBridge Scheduler schedule per source at its tier's drill cadence (and a weekly
 * offsite drill for daily-drilled sources), with bounded retries, a flexible window and a
 * dead-letter queue, like the backup schedules.
 */
export class DrillSchedules extends Construct {
  /** Per source: the drill from the primary bucket. */
  public readonly schedules: Readonly<Record<string, scheduler.Schedule>>;
  /** Per source drilled daily: the weekly disaster-recovery drill from the offsite bucket. */
  public readonly offsiteSchedules: Readonly<Record<string, scheduler.Schedule>>;
  public readonly deadLetterQueue: sqs.IQueue;
  public readonly group: scheduler.IScheduleGroup;

  constructor(scope: Construct, id: string, props: DrillSchedulesProps) {
    super(scope, id);
    this.deadLetterQueue = props.shared?.deadLetterQueue ?? scheduleDeadLetterQueue(this, 'drill schedules');
    this.group = props.shared?.group ?? new scheduler.ScheduleGroup(this, 'Group');

    const schedule = (id: string, source: Source, spec: ScheduleSpec, from: 'primary' | 'offsite') =>
      startExecutionSchedule(this, id, {
        description: `Lifeboat: ${props.label ?? 'restore drill'} of ${source.name} (${source.tier.name}) from ${from} ${spec.expression}`,
        group: this.group,
        spec,
        window: Duration.minutes(15),
        stateMachine: props.stateMachine,
        source: source.name,
        input: { from, target: props.targets[source.name] },
        deadLetterQueue: this.deadLetterQueue,
        retryAttempts: props.retryAttempts,
        maxEventAge: Duration.hours(1),
        ...(props.role ? { role: props.role } : {}),
      });

    const schedules: Record<string, scheduler.Schedule> = {};
    const offsiteSchedules: Record<string, scheduler.Schedule> = {};
    for (const source of props.sources) {
      schedules[source.name] = schedule(`Drill-${source.name}`, source, drillScheduleFor(source.tier), 'primary');
      const offsite = props.offsiteDrills === false ? undefined : offsiteDrillScheduleFor(source.tier);
      if (offsite) offsiteSchedules[source.name] = schedule(`OffsiteDrill-${source.name}`, source, offsite, 'offsite');
    }
    this.schedules = schedules;
    this.offsiteSchedules = offsiteSchedules;
  }
}
