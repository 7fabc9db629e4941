/**
 * The AWS side of a local run, IAM-true: both stacks synthesized for the config, their
 * policies loaded into the evaluator, the local S3/SNS/SQS server holding the buckets, topic
 * and queues under the names the templates give them, and every SDK call made in a
 * principal's scope evaluated against those policies (local/iam). Services no local server
 * answers are stood in for here, after the same authorization: Step Functions task tokens,
 * CloudWatch metrics, and the routing of the templates' topic and queue ARNs to the local
 * server's.
 */
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { LifeboatConfig } from '../lib/config/types';
import { asAwsService, asPrincipal, IamEvaluator, IamModel, interceptAwsCalls, type AwsRequest, type LocalResponder } from './iam';
import type { LocalServices } from './runner';
import { routeHandlerEndpoint } from './handler-endpoint';
import { startLocalStack, type LocalStack } from './services';
import { synthApp, type SynthesizedApp } from './synth';

export interface LocalAwsOptions {
  readonly config: LifeboatConfig;
  /** An app already synthesized for `config`. @default - synthesized here */
  readonly app?: SynthesizedApp;
  /**
   * Evaluate every call against the synthesized policies.
   * @default true
   */
  readonly iam?: boolean;
  /** Changes the synthesized templates before the policies are read (tests re-introduce a defect this way). */
  readonly tamper?: (app: SynthesizedApp) => void;
  /** The server of `lifeboat local up` (see startLocalStack). @default - a throwaway server */
  readonly s3Endpoint?: string;
}

/** A task token's outcome, as the worker reports it with SendTaskSuccess / SendTaskFailure. */
export type TaskTokenOutcome = { readonly ok: true; readonly output: unknown } | { readonly ok: false; readonly error: string; readonly cause: string };

/** The task tokens a local execution hands out and the answers it waits for. */
export class LocalTaskTokens {
  private readonly pending = new Map<string, (outcome: TaskTokenOutcome) => void>();
  private next = 0;
  heartbeats = 0;

  /** A token for a task of `stateMachineArn` (the IAM evaluator reads the state machine from it). */
  issue(stateMachineArn: string, execution: string, state: string): { token: string; outcome: Promise<TaskTokenOutcome> } {
    const token = `${stateMachineArn}#${execution}#${state}#${++this.next}`;
    const outcome = new Promise<TaskTokenOutcome>((resolve) => this.pending.set(token, resolve));
    return { token, outcome };
  }

  /** The Step Functions API for task tokens, as the local responder. */
  readonly respond: LocalResponder = async (command, input) => {
    const token = String(input.taskToken);
    const resolve = this.pending.get(token);
    if (!resolve) throw Object.assign(new Error(`Task Timed Out: '${token}'`), { name: 'TaskTimedOut' });
    switch (command) {
      case 'SendTaskHeartbeat':
        this.heartbeats += 1;
        return {};
      case 'SendTaskSuccess':
        this.pending.delete(token);
        resolve({ ok: true, output: JSON.parse(String(input.output)) });
        return {};
      case 'SendTaskFailure':
        this.pending.delete(token);
        resolve({ ok: false, error: String(input.error ?? 'States.TaskFailed'), cause: String(input.cause ?? '') });
        return {};
      default:
        throw new Error(`local Step Functions: ${command} is not answered locally (only the task-token calls are)`);
    }
  };
}

export interface LocalAws {
  readonly app: SynthesizedApp;
  readonly model: IamModel;
  /** Undefined when the run is not IAM-true (`iam: false`). */
  readonly evaluator?: IamEvaluator;
  readonly stack: LocalStack;
  readonly services: LocalServices;
  readonly taskTokens: LocalTaskTokens;
  /** CloudWatch metrics the run published (PutMetricData has no local server). */
  readonly metrics: { readonly namespace: string; readonly data: unknown[] }[];
  /** The role a piece of the app runs as, by what the templates say. */
  readonly roles: LocalRoles;
  /**
   * What S3 replication asks IAM, as the replication role, to copy one object of the primary
   * bucket to the offsite bucket (the replication configuration of the primary template): read
   * the version and its lock for replication, decrypt it, write the replica, encrypt it with the
   * replica key, and (cross-account) hand ownership to the offsite account.
   */
  replicationRequests(key: string): AwsRequest[];
  stop(): Promise<void>;
}

export interface LocalRoles {
  /** The role of the Lambda function whose Powertools service name is `lifeboat-<name>` (commit, await-offsite, …). */
  lambda(name: string): string;
  /** The task role of the task definition of `family`. */
  task(family: string): string;
  /** The role S3 replication of the primary bucket assumes. */
  readonly replication: string;
  /** The role of the state machine named `<appName><suffix>`. */
  stateMachine(suffix: string): string;
  /** The operator role of the primary stack (lifeboat status, runbook, restore). */
  readonly operator: string;
  /** The restore role of the offsite stack (a restore inside the offsite account). */
  readonly offsiteRestore: string;
}

/** Starts the local AWS side of a run for `config` (see the module comment). */
export async function startLocalAws(opts: LocalAwsOptions): Promise<LocalAws> {
  const app = opts.app ?? synthApp(opts.config);
  opts.tamper?.(app);
  const model = IamModel.fromApp(app);
  const primaryBucket = backupBucket(model, app.primary.stackName);
  const offsiteBucket = backupBucket(model, app.offsite.stackName);
  const alarmTopic = [...model.topics.values()].find((topic) => topic.origin.startsWith(`${app.primary.stackName}/Alarms`));
  if (!alarmTopic) throw new Error('local AWS: no alarm topic in the primary template');

  const stack = await startLocalStack({
    primaryBucket, offsiteBucket, offsiteRegion: opts.config.offsite.region, region: opts.config.primary.region,
    queues: [...model.queues.values()].map((queue) => queue.url),
    s3Endpoint: opts.s3Endpoint,
  });
  const taskTokens = new LocalTaskTokens();
  const metrics: { namespace: string; data: unknown[] }[] = [];
  const localClient = { endpoint: stack.services.endpoint, region: stack.services.region, credentials: stack.services.credentials };
  const sns = new SNSClient(localClient);
  const sqs = new SQSClient(localClient);
  const responders: Record<string, LocalResponder> = {
    SFN: taskTokens.respond,
    CloudWatch: async (command, input) => {
      if (command !== 'PutMetricData') throw new Error(`local CloudWatch: ${command} is not answered locally`);
      metrics.push({ namespace: String(input.Namespace), data: (input.MetricData as unknown[]) ?? [] });
      return {};
    },
    // The templates' topic and queues are served by the local server under its own ARNs.
    SNS: (command, input) => asAwsService('sns', async () => {
      if (command !== 'Publish') throw new Error(`local SNS: ${command} is not routed locally`);
      return sns.send(new PublishCommand({ ...input, TopicArn: stack.services.alarmTopicArn } as never));
    }),
    SQS: (command, input) => asAwsService('sqs', async () => {
      if (command !== 'SendMessage') throw new Error(`local SQS: ${command} is not routed locally`);
      return sqs.send(new SendMessageCommand({ ...input, QueueUrl: stack.queueUrl(String(input.QueueUrl)) } as never));
    }),
  };
  const evaluator = opts.iam === false ? undefined : new IamEvaluator(model);
  const stopIntercepting = evaluator ? interceptAwsCalls(evaluator, responders) : undefined;
  const releaseHandlerEndpoint = routeHandlerEndpoint({ s3: stack.services.endpoint, events: stack.services.eventsEndpoint });

  const roles: LocalRoles = {
    lambda(name) {
      const fn = [...model.functions.values()].find((candidate) =>
        app.primary.properties(candidate.logicalId).Environment !== undefined &&
        (app.primary.properties(candidate.logicalId).Environment as { Variables?: Record<string, string> }).Variables?.POWERTOOLS_SERVICE_NAME === `lifeboat-${name}`);
      if (!fn) throw new Error(`local AWS: no Lambda function with POWERTOOLS_SERVICE_NAME lifeboat-${name}`);
      return fn.roleArn;
    },
    task(family) {
      const definition = [...model.taskDefinitions.values()].find((candidate) => candidate.family === family);
      if (!definition?.taskRoleArn) throw new Error(`local AWS: no task definition of family ${family}`);
      return definition.taskRoleArn;
    },
    replication: replicationRule(app, primaryBucket).role,
    stateMachine(suffix) {
      return model.stateMachineNamed(suffix).roleArn;
    },
    operator: roleOf(model, app.primary.stackName, 'OperatorsRole'),
    offsiteRestore: roleOf(model, app.offsite.stackName, 'RestoreRole'),
  };

  const replication = replicationRule(app, primaryBucket);
  const replicationRequests = (key: string): AwsRequest[] => {
    const source = model.bucket(primaryBucket);
    const destination = model.bucket(replication.bucketName);
    const principal = replication.role;
    const call = `S3 replication s3://${source.name}/${key} → s3://${destination.name}/${key}`;
    const on = (action: string, resource: string, context?: Record<string, string>): AwsRequest => ({ principal, action, resource, context, call });
    return [
      on('s3:GetObjectVersionForReplication', `${source.arn}/${key}`),
      on('s3:GetObjectVersionTagging', `${source.arn}/${key}`),
      ...(source.objectLockEnabled ? [on('s3:GetObjectRetention', `${source.arn}/${key}`), on('s3:GetObjectLegalHold', `${source.arn}/${key}`)] : []),
      ...(source.keyArn ? [on('kms:Decrypt', model.key(source.keyArn).arn, { 'kms:ViaService': `s3.${source.region}.amazonaws.com` })] : []),
      on('s3:ReplicateObject', `${destination.arn}/${key}`),
      ...(replication.ownerOverride ? [on('s3:ObjectOwnerOverrideToBucketOwner', `${destination.arn}/${key}`)] : []),
      ...(replication.replicaKey ? [on('kms:Encrypt', model.key(replication.replicaKey).arn, { 'kms:ViaService': `s3.${destination.region}.amazonaws.com` })] : []),
    ];
  };

  return {
    app, model, evaluator, stack, services: { ...stack.services, alarmTopicArn: alarmTopic.arn }, taskTokens, metrics, roles, replicationRequests,
    async stop() {
      stopIntercepting?.();
      releaseHandlerEndpoint();
      sns.destroy();
      sqs.destroy();
      await stack.stop();
    },
  };
}

/** Runs `fn` as the primary stack's operator role: the operator commands, IAM-true. */
export function operatorPrincipal(aws: LocalAws): { readonly arn: string; run<T>(fn: () => Promise<T>): Promise<T> } {
  const arn = aws.roles.operator;
  return { arn, run: (fn) => asPrincipal(arn, fn) };
}

function roleOf(model: IamModel, stackName: string, logicalIdPrefix: string): string {
  const role = [...model.principals.values()].find((candidate) => candidate.origin.startsWith(`${stackName}/${logicalIdPrefix}`));
  if (!role) throw new Error(`local AWS: no role ${logicalIdPrefix}* in ${stackName}`);
  return role.arn;
}

/** The Object-Lock bucket of a stack: where its runs are (not its access-log bucket). */
function backupBucket(model: IamModel, stackName: string): string {
  const bucket = [...model.buckets.values()].find((candidate) => candidate.origin.startsWith(`${stackName}/`) && candidate.objectLockEnabled);
  if (!bucket) throw new Error(`local AWS: no Object Lock bucket in ${stackName}`);
  return bucket.name;
}

/** The primary bucket's replication configuration, as far as the local replicator needs it. */
function replicationRule(app: SynthesizedApp, primaryBucket: string): { role: string; bucketName: string; replicaKey?: string; ownerOverride: boolean } {
  const id = app.primary.ofType('AWS::S3::Bucket').find((candidate) => app.primary.physicalName(candidate) === primaryBucket) as string;
  const replication = app.primary.properties(id).ReplicationConfiguration as {
    Role?: string;
    Rules?: { Destination: { Bucket: string; EncryptionConfiguration?: { ReplicaKmsKeyID?: string }; AccessControlTranslation?: { Owner?: string } } }[];
  } | undefined;
  const destination = replication?.Rules?.[0]?.Destination;
  if (!replication?.Role || !destination) throw new Error('local AWS: the primary bucket has no replication configuration');
  return {
    role: replication.Role,
    bucketName: destination.Bucket.replace(/^arn:[^:]+:s3:::/, ''),
    replicaKey: destination.EncryptionConfiguration?.ReplicaKmsKeyID,
    ownerOverride: destination.AccessControlTranslation?.Owner === 'Destination',
  };
}
