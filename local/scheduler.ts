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
import type { LocalSsm } from './ssm';

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

/**
 * Scheduler invoking a schedule whose universal target is SSM SendCommand (the PITR marker): the
 * call authorized as the schedule's role (the document, and each instance it reaches with its
 * tags), then run by the SSM stand-in; resolves when the command has finished, with its status.
 */
export async function runScheduledSendCommand(aws: LocalAws, schedule: ScheduleInfo, ssm: LocalSsm): Promise<{ status: string; output: string }> {
  if (!/:aws-sdk:ssm:sendCommand$/.test(schedule.targetArn) || !schedule.input) throw new Error(`schedule ${schedule.name} does not send an SSM command`);
  const input = JSON.parse(schedule.input) as { DocumentName: string; Targets: { Key: string; Values: string[] }[]; Parameters?: Record<string, string[]> };
  const { region, account } = aws.app.primary.env;
  const call = `Scheduler → SSM SendCommand (${schedule.name})`;
  await aws.evaluator?.authorize([
    { principal: schedule.roleArn, action: 'ssm:SendCommand', resource: `arn:aws:ssm:${region}:${account}:document/${input.DocumentName}`, call },
    ...ssm.resolveTargets(input.Targets).map((instance) => ({
      principal: schedule.roleArn, action: 'ssm:SendCommand', call,
      resource: `arn:aws:ec2:${region}:${account}:instance/${instance.instanceId}`,
      context: Object.fromEntries(Object.entries(instance.tags).map(([key, value]) => [`ssm:resourceTag/${key}`, value])),
    })),
  ], 'AccessDeniedException');
  const { Command } = ssm.sendCommand(input);
  await ssm.settle();
  const [invocation] = ssm.listCommandInvocations({ CommandId: String(Command.CommandId), Details: true }).CommandInvocations as { Status: string; CommandPlugins?: { Output: string }[] }[];
  return { status: invocation?.Status ?? 'NoTarget', output: invocation?.CommandPlugins?.[0]?.Output ?? '' };
}

/** The schedules whose target is SSM SendCommand of the document named `*<suffix>`. */
export function sendCommandSchedules(aws: LocalAws, documentSuffix: string): ScheduleInfo[] {
  return [...aws.model.schedules.values()].filter((schedule) => /:aws-sdk:ssm:sendCommand$/.test(schedule.targetArn)
    && String((JSON.parse(schedule.input ?? '{}') as { DocumentName?: string }).DocumentName ?? '').endsWith(documentSuffix));
}
