/**
 * The IAM-relevant facts of a synthesized Lifeboat app, read from both stacks' resolved
 * templates: every role with its identity policies, and every resource policy (bucket, KMS
 * key, topic, queue) with the account and region of its resource. Nothing here is kept by
 * hand: a grant removed from a construct is gone from this model too.
 */
import type { ResolvedStack } from '../cfn/resolve';
import type { SynthesizedApp } from '../synth';

export interface PolicyDocument {
  readonly Version?: string;
  readonly Statement: readonly Record<string, unknown>[] | Record<string, unknown>;
}

export interface NamedPolicy {
  /** Where the policy comes from, for messages: `Lifeboat-Primary/BackupRunCommitServiceRoleDefaultPolicy…`. */
  readonly name: string;
  readonly document: PolicyDocument;
}

export interface IamPrincipal {
  /** The role's ARN (path included). */
  readonly arn: string;
  readonly name: string;
  readonly account: string;
  /** `<stack>/<logicalId>` of the role, or a description of where a synthetic principal comes from. */
  readonly origin: string;
  readonly description?: string;
  /** Service principals the trust policy admits (`lambda.amazonaws.com`, …). */
  readonly assumedBy: readonly string[];
  readonly policies: readonly NamedPolicy[];
}

interface Located {
  readonly arn: string;
  readonly account: string;
  readonly region: string;
  readonly origin: string;
}

export interface BucketInfo extends Located {
  readonly name: string;
  /** The KMS key of the bucket's default encryption (SSE-KMS), if any. */
  readonly keyArn?: string;
  readonly policy?: PolicyDocument;
  readonly objectLockEnabled: boolean;
}

export interface KeyInfo extends Located {
  readonly policy: PolicyDocument;
  readonly aliases: readonly string[];
}

export interface TopicInfo extends Located {
  readonly keyArn?: string;
  readonly policy?: PolicyDocument;
}

export interface QueueInfo extends Located {
  readonly url: string;
  readonly keyArn?: string;
  readonly policy?: PolicyDocument;
}

export interface FunctionInfo extends Located {
  readonly name: string;
  readonly roleArn: string;
  readonly logicalId: string;
}

export interface TaskDefinitionInfo extends Located {
  readonly family: string;
  readonly taskRoleArn?: string;
  readonly executionRoleArn?: string;
}

export interface StateMachineInfo extends Located {
  readonly name: string;
  readonly roleArn: string;
}

export interface ScheduleInfo extends Located {
  readonly name: string;
  readonly roleArn: string;
  readonly targetArn: string;
  readonly deadLetterArn?: string;
  /** The target's input (JSON text), as Scheduler sends it. */
  readonly input?: string;
}

/**
 * Bodies of the AWS-managed policies Lifeboat's roles use (no template carries them). As AWS
 * documents them; a role attached to any other AWS-managed policy fails the model's build, so
 * an unknown grant is never evaluated as if it were empty.
 */
export const AWS_MANAGED_POLICIES: Readonly<Record<string, PolicyDocument>> = {
  'service-role/AWSLambdaBasicExecutionRole': {
    Version: '2012-10-17',
    Statement: [{ Effect: 'Allow', Action: ['logs:CreateLogGroup', 'logs:CreateLogStream', 'logs:PutLogEvents'], Resource: '*' }],
  },
};

export class IamModel {
  readonly principals = new Map<string, IamPrincipal>();
  readonly buckets = new Map<string, BucketInfo>();
  readonly keys = new Map<string, KeyInfo>();
  readonly topics = new Map<string, TopicInfo>();
  readonly queues = new Map<string, QueueInfo>();
  readonly functions = new Map<string, FunctionInfo>();
  readonly taskDefinitions = new Map<string, TaskDefinitionInfo>();
  readonly stateMachines = new Map<string, StateMachineInfo>();
  readonly schedules = new Map<string, ScheduleInfo>();

  /** Reads both stacks of a synthesized app. */
  static fromApp(app: SynthesizedApp): IamModel {
    const model = new IamModel();
    for (const stack of [app.primary, app.offsite]) model.addStack(stack);
    return model;
  }

  /** Adds every role and resource policy of one resolved stack. */
  addStack(stack: ResolvedStack): void {
    const at = (id: string) => ({ account: stack.account, region: stack.region, origin: `${stack.stackName}/${id}` });
    const policiesByRole = new Map<string, NamedPolicy[]>();
    for (const id of stack.ofType('AWS::IAM::Policy')) {
      const props = stack.properties(id);
      for (const role of (props.Roles as string[] | undefined) ?? []) {
        const list = policiesByRole.get(role) ?? [];
        list.push({ name: `${stack.stackName}/${id}`, document: props.PolicyDocument as PolicyDocument });
        policiesByRole.set(role, list);
      }
    }
    const managed = new Map<string, NamedPolicy>();
    for (const id of stack.ofType('AWS::IAM::ManagedPolicy')) {
      const props = stack.properties(id);
      const named = { name: `${stack.stackName}/${id}`, document: props.PolicyDocument as PolicyDocument };
      managed.set(stack.arn(id), named);
      for (const role of (props.Roles as string[] | undefined) ?? []) {
        const list = policiesByRole.get(role) ?? [];
        list.push(named);
        policiesByRole.set(role, list);
      }
    }

    for (const id of stack.ofType('AWS::IAM::Role')) {
      const props = stack.properties(id);
      const name = stack.physicalName(id);
      const policies: NamedPolicy[] = [...(policiesByRole.get(name) ?? [])];
      for (const inline of (props.Policies as { PolicyName: string; PolicyDocument: PolicyDocument }[] | undefined) ?? []) {
        policies.push({ name: `${stack.stackName}/${id}/${inline.PolicyName}`, document: inline.PolicyDocument });
      }
      for (const arn of (props.ManagedPolicyArns as string[] | undefined) ?? []) {
        policies.push(managedPolicy(arn, managed, `${stack.stackName}/${id}`));
      }
      const trust = props.AssumeRolePolicyDocument as PolicyDocument;
      this.principals.set(stack.arn(id), {
        arn: stack.arn(id),
        name,
        account: stack.account,
        origin: `${stack.stackName}/${id}`,
        description: props.Description as string | undefined,
        assumedBy: statements(trust).flatMap((statement) => list((statement.Principal as { Service?: unknown } | undefined)?.Service)),
        policies,
      });
    }

    const bucketPolicies = attachedPolicies(stack, 'AWS::S3::BucketPolicy', (props) => props.Bucket);
    for (const id of stack.ofType('AWS::S3::Bucket')) {
      const props = stack.properties(id);
      const name = stack.physicalName(id);
      const encryption = (props.BucketEncryption as { ServerSideEncryptionConfiguration?: { ServerSideEncryptionByDefault?: { KMSMasterKeyID?: string } }[] } | undefined)
        ?.ServerSideEncryptionConfiguration?.[0]?.ServerSideEncryptionByDefault?.KMSMasterKeyID;
      this.buckets.set(name, {
        ...at(id), name, arn: stack.arn(id), keyArn: encryption, policy: bucketPolicies.get(name),
        objectLockEnabled: props.ObjectLockEnabled === true,
      });
    }

    const aliases = new Map<string, string[]>();
    for (const id of stack.ofType('AWS::KMS::Alias')) {
      const props = stack.properties(id);
      const target = String(props.TargetKeyId);
      aliases.set(target, [...(aliases.get(target) ?? []), String(props.AliasName)]);
    }
    for (const id of stack.ofType('AWS::KMS::Key')) {
      const props = stack.properties(id);
      const arn = stack.arn(id);
      this.keys.set(arn, {
        ...at(id), arn, policy: props.KeyPolicy as PolicyDocument,
        aliases: [...(aliases.get(arn) ?? []), ...(aliases.get(stack.ref(id) as string) ?? [])],
      });
    }

    const topicPolicies = new Map([
      ...attachedPolicies(stack, 'AWS::SNS::TopicPolicy', (props) => props.Topics),
      ...attachedPolicies(stack, 'AWS::SNS::TopicInlinePolicy', (props) => props.TopicArn),
    ]);
    for (const id of stack.ofType('AWS::SNS::Topic')) {
      const props = stack.properties(id);
      const arn = stack.arn(id);
      this.topics.set(arn, { ...at(id), arn, keyArn: this.keyArnOf(props.KmsMasterKeyId, stack), policy: topicPolicies.get(arn) });
    }

    const queuePolicies = attachedPolicies(stack, 'AWS::SQS::QueuePolicy', (props) => props.Queues);
    for (const id of stack.ofType('AWS::SQS::Queue')) {
      const props = stack.properties(id);
      const url = stack.ref(id) as string;
      const arn = stack.arn(id);
      this.queues.set(arn, { ...at(id), arn, url, keyArn: this.keyArnOf(props.KmsMasterKeyId, stack), policy: queuePolicies.get(url) });
    }

    for (const id of stack.ofType('AWS::Lambda::Function')) {
      const props = stack.properties(id);
      const arn = stack.arn(id);
      this.functions.set(arn, { ...at(id), arn, name: stack.physicalName(id), roleArn: String(props.Role), logicalId: id });
    }
    for (const id of stack.ofType('AWS::ECS::TaskDefinition')) {
      const props = stack.properties(id);
      const arn = stack.arn(id);
      this.taskDefinitions.set(arn, {
        ...at(id), arn, family: String(props.Family),
        taskRoleArn: props.TaskRoleArn as string | undefined, executionRoleArn: props.ExecutionRoleArn as string | undefined,
      });
    }
    for (const id of stack.ofType('AWS::StepFunctions::StateMachine')) {
      const props = stack.properties(id);
      const arn = stack.arn(id);
      this.stateMachines.set(arn, { ...at(id), arn, name: stack.physicalName(id), roleArn: String(props.RoleArn) });
    }
    for (const id of stack.ofType('AWS::Scheduler::Schedule')) {
      const props = stack.properties(id);
      const target = props.Target as { Arn: string; RoleArn: string; DeadLetterConfig?: { Arn?: string }; Input?: string };
      const arn = stack.arn(id);
      this.schedules.set(arn, {
        ...at(id), arn, name: stack.physicalName(id), roleArn: target.RoleArn, targetArn: target.Arn, deadLetterArn: target.DeadLetterConfig?.Arn,
        ...(typeof target.Input === 'string' ? { input: target.Input } : {}),
      });
    }
  }

  /** A principal made outside the templates (an operator's role with a documented policy). */
  addPrincipal(principal: IamPrincipal): void {
    this.principals.set(principal.arn, principal);
  }

  principal(arn: string): IamPrincipal {
    const principal = this.principals.get(arn);
    if (!principal) throw new Error(`IAM model: no role ${arn} in the synthesized templates (known: ${[...this.principals.keys()].join(', ')})`);
    return principal;
  }

  bucket(name: string): BucketInfo {
    const bucket = this.buckets.get(name);
    if (!bucket) throw new Error(`IAM model: no bucket named ${name} in the synthesized templates (known: ${[...this.buckets.keys()].join(', ')})`);
    return bucket;
  }

  /** The key an ARN names: a key ARN, or an alias ARN of a key in the templates. */
  key(arn: string): KeyInfo {
    const direct = this.keys.get(arn);
    if (direct) return direct;
    const alias = /^arn:[^:]+:kms:([^:]+):(\d+):(alias\/.+)$/.exec(arn);
    if (alias) {
      const found = [...this.keys.values()].find((key) => key.region === alias[1] && key.account === alias[2] && key.aliases.includes(alias[3]));
      if (found) return found;
    }
    throw new Error(`IAM model: no KMS key ${arn} in the synthesized templates`);
  }

  topic(arn: string): TopicInfo {
    const topic = this.topics.get(arn);
    if (!topic) throw new Error(`IAM model: no topic ${arn} in the synthesized templates`);
    return topic;
  }

  queueByUrl(url: string): QueueInfo {
    const queue = [...this.queues.values()].find((candidate) => candidate.url === url);
    if (!queue) throw new Error(`IAM model: no queue ${url} in the synthesized templates`);
    return queue;
  }

  stateMachineNamed(suffix: string): StateMachineInfo {
    const machine = [...this.stateMachines.values()].find((candidate) => candidate.name.endsWith(suffix));
    if (!machine) throw new Error(`IAM model: no state machine named *${suffix}`);
    return machine;
  }

  /** The role a Lambda function runs as, by function ARN (as a state machine's Task names it). */
  functionRole(functionArn: string): string {
    const fn = this.functions.get(functionArn.replace(/:(\$LATEST|\d+)$/, ''));
    if (!fn) throw new Error(`IAM model: no Lambda function ${functionArn} in the synthesized templates`);
    return fn.roleArn;
  }

  /** The task role of a task definition (as RunTask names it). */
  taskRole(taskDefinitionArn: string): string {
    const definition = this.taskDefinitions.get(taskDefinitionArn);
    if (!definition?.taskRoleArn) throw new Error(`IAM model: no task definition ${taskDefinitionArn} with a task role in the synthesized templates`);
    return definition.taskRoleArn;
  }

  /** The resource policy and account that govern a resource ARN, for the evaluator. */
  resourceOf(resource: string): { account: string; policy?: PolicyDocument; origin?: string } {
    const s3 = /^arn:[^:]+:s3:::([^/]+)/.exec(resource);
    if (s3) {
      const bucket = this.bucket(s3[1]);
      return { account: bucket.account, policy: bucket.policy, origin: `bucket policy of ${bucket.name} (${bucket.origin})` };
    }
    if (/^arn:[^:]+:kms:/.test(resource)) {
      const key = this.key(resource);
      return { account: key.account, policy: key.policy, origin: `key policy of ${key.arn} (${key.origin})` };
    }
    if (/^arn:[^:]+:sns:/.test(resource)) {
      const topic = this.topic(resource);
      return { account: topic.account, policy: topic.policy, origin: `topic policy of ${topic.arn} (${topic.origin})` };
    }
    if (/^arn:[^:]+:sqs:/.test(resource)) {
      const queue = this.queues.get(resource);
      if (!queue) throw new Error(`IAM model: no queue ${resource} in the synthesized templates`);
      return { account: queue.account, policy: queue.policy, origin: `queue policy of ${queue.arn} (${queue.origin})` };
    }
    const account = resource.split(':')[4];
    return { account: account || '' };
  }

  private keyArnOf(value: unknown, stack: ResolvedStack): string | undefined {
    if (value === undefined) return undefined;
    const text = String(value);
    if (text.startsWith('arn:')) return text;
    if (text.startsWith('alias/')) return `arn:${stack.partition}:kms:${stack.region}:${stack.account}:${text}`;
    return `arn:${stack.partition}:kms:${stack.region}:${stack.account}:key/${text}`;
  }
}

/** The documents of the policy resources of `type`, by each resource they apply to (`targets` of their properties). */
function attachedPolicies(stack: ResolvedStack, type: string, targets: (props: Record<string, unknown>) => unknown): Map<string, PolicyDocument> {
  const policies = new Map<string, PolicyDocument>();
  for (const id of stack.ofType(type)) {
    const props = stack.properties(id);
    for (const target of list(targets(props))) policies.set(target, props.PolicyDocument as PolicyDocument);
  }
  return policies;
}

/** A document's statements as a list. */
export function statements(document: PolicyDocument | undefined): Record<string, unknown>[] {
  if (!document) return [];
  return Array.isArray(document.Statement) ? [...document.Statement] : [document.Statement as Record<string, unknown>];
}

function list(value: unknown): string[] {
  if (value === undefined) return [];
  return (Array.isArray(value) ? value : [value]).map(String);
}

function managedPolicy(arn: string, managed: Map<string, NamedPolicy>, role: string): NamedPolicy {
  const own = managed.get(arn);
  if (own) return own;
  const awsManaged = /^arn:[^:]+:iam::aws:policy\/(.+)$/.exec(arn);
  if (awsManaged && AWS_MANAGED_POLICIES[awsManaged[1]]) {
    return { name: `AWS managed policy ${awsManaged[1]}`, document: AWS_MANAGED_POLICIES[awsManaged[1]] };
  }
  throw new Error(`IAM model: ${role} is attached to ${arn}, whose body is not known here (add it to AWS_MANAGED_POLICIES in local/iam/model.ts, as AWS documents it)`);
}
