/**
 * What EventBridge Scheduler does with a schedule of the templates, as the schedule's execution
 * role (no local Scheduler exists): start its target, or, when that keeps failing, deliver the
 * event to the schedule's dead-letter queue. Both are authorized like every other call
 * (IAM-true), so a schedule whose role may not use its queue (or the queue's key) fails here.
 */
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { LocalAws } from './aws';
import { asPrincipal } from './iam';
import type { ScheduleInfo } from './iam/model';

/** The schedules of the templates whose target is the state machine named `*<suffix>`. */
export function schedulesOf(aws: LocalAws, stateMachineSuffix: string): ScheduleInfo[] {
  const machine = aws.model.stateMachineNamed(stateMachineSuffix);
  return [...aws.model.schedules.values()].filter((schedule) => schedule.targetArn === machine.arn);
}

/** Scheduler starting the target: states:StartExecution by the schedule's role. */
export async function authorizeScheduledStart(aws: LocalAws, schedule: ScheduleInfo): Promise<void> {
  await aws.evaluator?.authorize([{
    principal: schedule.roleArn, action: 'states:StartExecution', resource: schedule.targetArn, call: `Scheduler → Step Functions StartExecution (${schedule.name})`,
  }], 'AccessDeniedException');
}

/**
 * Scheduler giving up on an invocation: the event, with its error, sent to the schedule's
 * dead-letter queue by the schedule's role (through the SDK, so the SQS call and the queue
 * key's use are evaluated as that role).
 */
export async function deliverDeadLetter(aws: LocalAws, schedule: ScheduleInfo, event: Record<string, unknown>): Promise<void> {
  if (!schedule.deadLetterArn) throw new Error(`schedule ${schedule.name} has no dead-letter queue`);
  const queue = aws.model.queues.get(schedule.deadLetterArn);
  if (!queue) throw new Error(`no queue ${schedule.deadLetterArn} in the templates`);
  const sqs = new SQSClient({ region: queue.region, endpoint: aws.services.endpoint, credentials: aws.services.credentials });
  try {
    await asPrincipal(schedule.roleArn, () => sqs.send(new SendMessageCommand({
      QueueUrl: queue.url,
      MessageBody: JSON.stringify(event),
      MessageAttributes: {
        ERROR_CODE: { DataType: 'String', StringValue: 'StartExecution failed' },
        SCHEDULE_ARN: { DataType: 'String', StringValue: schedule.arn },
      },
    })));
  } finally {
    sqs.destroy();
  }
}
