import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import type { Construct } from 'constructs';

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
 */
export function scheduleDeadLetterQueue(scope: Construct, key: kms.IKey, what: string): sqs.Queue {
  const queue = new sqs.Queue(scope, 'DeadLetters', {
    encryption: sqs.QueueEncryption.KMS,
    encryptionMasterKey: key,
    enforceSSL: true,
    retentionPeriod: Duration.days(14),
  });
  Validations.of(queue).acknowledge({
    id: 'AwsSolutions-SQS3',
    reason: `This queue is itself the dead-letter queue of the ${what}: a message here is an alarm (the watchdog issue), not work to retry.`,
  });
  return queue;
}
