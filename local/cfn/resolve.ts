/**
 * Resolves the CloudFormation intrinsic functions of a synthesized template to the values they
 * would have once deployed in an environment (account, region), so that the very documents
 * `cdk deploy` creates — state machine definitions, IAM, bucket, key, topic and queue policies —
 * can be executed and evaluated on this machine.
 *
 * Physical names are deterministic: a resource with an explicit name keeps it; one whose name
 * CloudFormation would generate is named `<stackName>-<logicalId>` (lower case where the service
 * requires it). The local S3 server's buckets, the local runner's ARNs and the IAM evaluator all
 * use these names, so a bucket policy naming `Ref: BackupsBucket` matches the bucket the worker
 * writes to.
 */

export interface CfnResource {
  readonly Type: string;
  readonly Properties?: Record<string, unknown>;
  readonly DependsOn?: unknown;
  readonly Metadata?: Record<string, unknown>;
}

export interface CfnTemplate {
  readonly Resources: Record<string, CfnResource>;
  readonly Parameters?: Record<string, unknown>;
  readonly Outputs?: Record<string, unknown>;
}

/** Where a template is deployed. */
export interface StackEnvironment {
  readonly stackName: string;
  readonly account: string;
  readonly region: string;
  readonly partition?: string;
}

export class ResolveError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ResolveError';
  }
}

/** A template together with where it is deployed: resolves any value of it. */
export class ResolvedStack {
  public readonly partition: string;

  constructor(
    public readonly template: CfnTemplate,
    public readonly env: StackEnvironment,
  ) {
    this.partition = env.partition ?? 'aws';
  }

  get stackName(): string {
    return this.env.stackName;
  }

  get account(): string {
    return this.env.account;
  }

  get region(): string {
    return this.env.region;
  }

  resource(logicalId: string): CfnResource {
    const resource = this.template.Resources[logicalId];
    if (!resource) throw new ResolveError(`${this.stackName}: no resource ${logicalId}`);
    return resource;
  }

  /** Logical ids of every resource of `type`, in template order. */
  ofType(type: string): string[] {
    return Object.entries(this.template.Resources).filter(([, resource]) => resource.Type === type).map(([id]) => id);
  }

  /** A resource's properties with every intrinsic function resolved. */
  properties(logicalId: string): Record<string, unknown> {
    return (this.resolve(this.resource(logicalId).Properties ?? {}) as Record<string, unknown>) ?? {};
  }

  /** Resolves Ref, Fn::GetAtt, Fn::Join, Fn::Sub, Fn::Select, Fn::Split and Fn::If anywhere in `value`. */
  resolve(value: unknown): unknown {
    if (Array.isArray(value)) return value.map((item) => this.resolve(item));
    if (value === null || typeof value !== 'object') return value;
    const node = value as Record<string, unknown>;
    const keys = Object.keys(node);
    if (keys.length === 1) {
      const [fn] = keys;
      const arg = node[fn];
      switch (fn) {
        case 'Ref':
          return this.ref(String(arg));
        case 'Fn::GetAtt': {
          const [id, attribute] = Array.isArray(arg) ? (arg as [string, string]) : String(arg).split(/\.(.*)/s);
          return this.getAtt(id, attribute);
        }
        case 'Fn::Join': {
          const [delimiter, parts] = arg as [string, unknown];
          const resolved = this.resolve(parts);
          if (!Array.isArray(resolved)) throw new ResolveError(`${this.stackName}: Fn::Join of a non-list`);
          return resolved.map((part) => String(part)).join(delimiter);
        }
        case 'Fn::Sub':
          return this.sub(arg);
        case 'Fn::Select': {
          const [index, list] = arg as [unknown, unknown];
          const resolved = this.resolve(list);
          if (!Array.isArray(resolved)) throw new ResolveError(`${this.stackName}: Fn::Select from a non-list`);
          return resolved[Number(this.resolve(index))];
        }
        case 'Fn::Split': {
          const [delimiter, text] = arg as [string, unknown];
          return String(this.resolve(text)).split(delimiter);
        }
        case 'Fn::If':
          throw new ResolveError(`${this.stackName}: Fn::If is not used by Lifeboat's templates and is not resolved locally`);
        default:
          if (fn.startsWith('Fn::')) throw new ResolveError(`${this.stackName}: ${fn} cannot be resolved locally`);
      }
    }
    return Object.fromEntries(Object.entries(node).map(([key, item]) => [key, this.resolve(item)]));
  }

  private sub(arg: unknown): string {
    const [text, variables] = Array.isArray(arg) ? (arg as [string, Record<string, unknown>]) : [String(arg), {}];
    return text.replace(/\$\{([^}!][^}]*)\}/g, (_match, name: string) => {
      if (variables && name in variables) return String(this.resolve(variables[name]));
      if (name.includes('.')) {
        const [id, attribute] = name.split(/\.(.*)/s);
        return String(this.getAtt(id, attribute));
      }
      return String(this.ref(name));
    });
  }

  private pseudo(name: string): string | undefined {
    switch (name) {
      case 'AWS::Partition':
        return this.partition;
      case 'AWS::Region':
        return this.region;
      case 'AWS::AccountId':
        return this.account;
      case 'AWS::URLSuffix':
        return 'amazonaws.com';
      case 'AWS::StackName':
        return this.stackName;
      case 'AWS::StackId':
        return `arn:${this.partition}:cloudformation:${this.region}:${this.account}:stack/${this.stackName}/local`;
      case 'AWS::NoValue':
        return undefined;
      default:
        return undefined;
    }
  }

  /** What `Ref` returns for a resource, a parameter or a pseudo parameter. */
  ref(id: string): unknown {
    if (id.startsWith('AWS::')) {
      const value = this.pseudo(id);
      if (value === undefined && id !== 'AWS::NoValue') throw new ResolveError(`${this.stackName}: unknown pseudo parameter ${id}`);
      return value;
    }
    if (this.template.Parameters && id in this.template.Parameters && !(id in this.template.Resources)) {
      const parameter = this.template.Parameters[id] as { Default?: unknown };
      if (parameter.Default === undefined) throw new ResolveError(`${this.stackName}: parameter ${id} has no value here`);
      return parameter.Default;
    }
    const resource = this.resource(id);
    const props = (resource.Properties ?? {}) as Record<string, unknown>;
    switch (resource.Type) {
      case 'AWS::SNS::Topic':
      case 'AWS::StepFunctions::StateMachine':
      case 'AWS::ECS::TaskDefinition':
      case 'AWS::IAM::ManagedPolicy':
        return this.arn(id);
      case 'AWS::SQS::Queue':
        return `https://sqs.${this.region}.amazonaws.com/${this.account}/${this.physicalName(id)}`;
      case 'AWS::KMS::Key':
        return keyId(this.stackName, id);
      case 'AWS::KMS::Alias':
        return String(this.resolve(props.AliasName));
      case 'AWS::EC2::SecurityGroup':
        return `sg-${shortHash(`${this.stackName}/${id}`)}`;
      default:
        return this.physicalName(id);
    }
  }

  getAtt(id: string, attribute: string): unknown {
    const resource = this.resource(id);
    switch (attribute) {
      case 'Arn':
        return this.arn(id);
      case 'Name':
      case 'TopicName':
      case 'QueueName':
      case 'StateMachineName':
        return this.physicalName(id);
      case 'QueueUrl':
        return this.ref(id);
      case 'KeyId':
        return keyId(this.stackName, id);
      case 'RoleId':
        return `AROA${shortHash(`${this.stackName}/${id}`).toUpperCase()}`;
      case 'GroupId':
        return this.ref(id);
      case 'TopicArn':
        return this.arn(id);
      case 'DomainName':
      case 'RegionalDomainName':
        if (resource.Type === 'AWS::S3::Bucket') return `${this.physicalName(id)}.s3.${this.region}.amazonaws.com`;
        break;
      default:
        break;
    }
    throw new ResolveError(`${this.stackName}: cannot resolve Fn::GetAtt ${id}.${attribute} (${resource.Type}) locally`);
  }

  /** The name CloudFormation would give the resource: its explicit name, else `<stackName>-<logicalId>`. */
  physicalName(id: string): string {
    const resource = this.resource(id);
    const props = (resource.Properties ?? {}) as Record<string, unknown>;
    const explicit = NAME_PROPERTY[resource.Type];
    if (explicit && props[explicit] !== undefined) return String(this.resolve(props[explicit]));
    const generated = `${this.stackName}-${id}`;
    switch (resource.Type) {
      case 'AWS::S3::Bucket':
        return generated.toLowerCase().replace(/[^a-z0-9.-]/g, '-').slice(0, 63).replace(/[-.]+$/, '');
      case 'AWS::IAM::Role':
      case 'AWS::IAM::ManagedPolicy':
        return generated.slice(0, 64);
      case 'AWS::Lambda::Function':
        return generated.slice(0, 64);
      case 'AWS::ECS::TaskDefinition':
        return String(props.Family ?? generated);
      default:
        return generated.slice(0, 80);
    }
  }

  /** The ARN of a resource, as `Fn::GetAtt [id, Arn]` (or `Ref`, for the types whose Ref is an ARN) gives it. */
  arn(id: string): string {
    const resource = this.resource(id);
    const { partition, region, account } = this;
    const name = this.physicalName(id);
    const props = (resource.Properties ?? {}) as Record<string, unknown>;
    switch (resource.Type) {
      case 'AWS::S3::Bucket':
        return `arn:${partition}:s3:::${name}`;
      case 'AWS::IAM::Role': {
        const rolePath = String(this.resolve(props.Path ?? '/'));
        return `arn:${partition}:iam::${account}:role${rolePath}${name}`;
      }
      case 'AWS::IAM::ManagedPolicy': {
        const policyPath = String(this.resolve(props.Path ?? '/'));
        return `arn:${partition}:iam::${account}:policy${policyPath}${name}`;
      }
      case 'AWS::KMS::Key':
        return `arn:${partition}:kms:${region}:${account}:key/${keyId(this.stackName, id)}`;
      case 'AWS::KMS::Alias':
        return `arn:${partition}:kms:${region}:${account}:${name}`;
      case 'AWS::SNS::Topic':
        return `arn:${partition}:sns:${region}:${account}:${name}`;
      case 'AWS::SQS::Queue':
        return `arn:${partition}:sqs:${region}:${account}:${name}`;
      case 'AWS::Lambda::Function':
        return `arn:${partition}:lambda:${region}:${account}:function:${name}`;
      case 'AWS::StepFunctions::StateMachine':
        return `arn:${partition}:states:${region}:${account}:stateMachine:${name}`;
      case 'AWS::ECS::Cluster':
        return `arn:${partition}:ecs:${region}:${account}:cluster/${name}`;
      case 'AWS::ECS::TaskDefinition':
        return `arn:${partition}:ecs:${region}:${account}:task-definition/${name}:1`;
      case 'AWS::Logs::LogGroup':
        return `arn:${partition}:logs:${region}:${account}:log-group:${name}:*`;
      case 'AWS::Scheduler::ScheduleGroup':
        return `arn:${partition}:scheduler:${region}:${account}:schedule-group/${name}`;
      case 'AWS::Scheduler::Schedule':
        return `arn:${partition}:scheduler:${region}:${account}:schedule/${String(this.resolve(props.GroupName ?? 'default'))}/${name}`;
      case 'AWS::Events::Rule':
        return `arn:${partition}:events:${region}:${account}:rule/${name}`;
      case 'AWS::Events::Connection':
        return `arn:${partition}:events:${region}:${account}:connection/${name}/local`;
      case 'AWS::Events::ApiDestination':
        return `arn:${partition}:events:${region}:${account}:api-destination/${name}/local`;
      case 'AWS::CloudWatch::Alarm':
        return `arn:${partition}:cloudwatch:${region}:${account}:alarm:${name}`;
      case 'AWS::CloudFormation::Stack':
        return `arn:${partition}:cloudformation:${region}:${account}:stack/${name}/local`;
      default:
        throw new ResolveError(`${this.stackName}: cannot make a local ARN for ${id} (${resource.Type})`);
    }
  }
}

/** The property holding an explicit physical name, per resource type. */
const NAME_PROPERTY: Readonly<Record<string, string>> = {
  'AWS::S3::Bucket': 'BucketName',
  'AWS::IAM::Role': 'RoleName',
  'AWS::IAM::ManagedPolicy': 'ManagedPolicyName',
  'AWS::SNS::Topic': 'TopicName',
  'AWS::SQS::Queue': 'QueueName',
  'AWS::Lambda::Function': 'FunctionName',
  'AWS::StepFunctions::StateMachine': 'StateMachineName',
  'AWS::ECS::Cluster': 'ClusterName',
  'AWS::ECS::TaskDefinition': 'Family',
  'AWS::Logs::LogGroup': 'LogGroupName',
  'AWS::Scheduler::ScheduleGroup': 'Name',
  'AWS::Scheduler::Schedule': 'Name',
  'AWS::Events::Rule': 'Name',
  'AWS::Events::Connection': 'Name',
  'AWS::Events::ApiDestination': 'Name',
  'AWS::CloudWatch::Alarm': 'AlarmName',
  'AWS::KMS::Alias': 'AliasName',
};

/** A stable 8-hex-digit hash (FNV-1a), for ids AWS would generate. */
function shortHash(text: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash.toString(16).padStart(8, '0');
}

/** A key id shaped like KMS's (a UUID), stable per stack and logical id. */
function keyId(stackName: string, logicalId: string): string {
  const h = [0, 1, 2, 3].map((n) => shortHash(`${n}:${stackName}/${logicalId}`)).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}
