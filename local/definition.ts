/**
 * Takes the backup-run state machine out of a synthesized template and resolves the
 * CloudFormation tokens in its definition to ARNs, so that the very definition `cdk deploy`
 * would create can run locally (no hand-written copy).
 */

export interface CfnTemplate {
  readonly Resources: Record<string, { Type: string; Properties?: Record<string, unknown> }>;
}

export interface LocalEnvironment {
  readonly region: string;
  readonly account: string;
  readonly partition?: string;
}

export const LOCAL_ENVIRONMENT: LocalEnvironment = { region: 'us-east-1', account: '000000000000' };

/** The state machine whose name ends with `suffix` (default: the backup run). */
export function stateMachineDefinition(
  template: CfnTemplate,
  env: LocalEnvironment = LOCAL_ENVIRONMENT,
  suffix = '-backup-run',
): Record<string, unknown> {
  const machines = Object.entries(template.Resources).filter(([, resource]) => resource.Type === 'AWS::StepFunctions::StateMachine');
  const found = machines.find(([, resource]) => String(resource.Properties?.StateMachineName ?? '').endsWith(suffix));
  if (!found) {
    const names = machines.map(([, resource]) => String(resource.Properties?.StateMachineName)).join(', ') || 'none';
    throw new Error(`no state machine named *${suffix} in the template (found: ${names})`);
  }
  const body = found[1].Properties?.DefinitionString;
  const text = resolveTokens(body, template, env);
  if (typeof text !== 'string') throw new Error('the state machine definition did not resolve to a string');
  return JSON.parse(text) as Record<string, unknown>;
}

/** Resolves Fn::Join, Ref and Fn::GetAtt (…, 'Arn') with ARNs derived from logical ids. */
export function resolveTokens(value: unknown, template: CfnTemplate, env: LocalEnvironment): unknown {
  if (Array.isArray(value)) return value.map((item) => resolveTokens(item, template, env));
  if (value === null || typeof value !== 'object') return value;
  const node = value as Record<string, unknown>;
  if ('Fn::Join' in node) {
    const [delimiter, parts] = node['Fn::Join'] as [string, unknown[]];
    return parts.map((part) => String(resolveTokens(part, template, env))).join(delimiter);
  }
  if ('Ref' in node) return resolveRef(String(node.Ref), template, env);
  if ('Fn::GetAtt' in node) {
    const [id, attribute] = node['Fn::GetAtt'] as [string, string];
    if (attribute !== 'Arn' && attribute !== 'Name') {
      throw new Error(`cannot resolve Fn::GetAtt ${id}.${attribute} locally`);
    }
    return attribute === 'Arn' ? arnFor(id, template, env) : id;
  }
  return Object.fromEntries(Object.entries(node).map(([key, item]) => [key, resolveTokens(item, template, env)]));
}

function resolveRef(id: string, template: CfnTemplate, env: LocalEnvironment): string {
  const pseudo: Record<string, string> = {
    'AWS::Partition': env.partition ?? 'aws',
    'AWS::Region': env.region,
    'AWS::AccountId': env.account,
    'AWS::URLSuffix': 'amazonaws.com',
  };
  if (id in pseudo) return pseudo[id];
  const resource = template.Resources[id];
  if (!resource) throw new Error(`cannot resolve Ref ${id}: no such resource or pseudo parameter`);
  // Ref gives an ARN for these types, a name for the others.
  if (['AWS::SNS::Topic', 'AWS::ECS::TaskDefinition', 'AWS::StepFunctions::StateMachine'].includes(resource.Type)) {
    return arnFor(id, template, env);
  }
  return id;
}

function arnFor(id: string, template: CfnTemplate, env: LocalEnvironment): string {
  const type = template.Resources[id]?.Type;
  const { region, account } = env;
  const partition = env.partition ?? 'aws';
  switch (type) {
    case 'AWS::Lambda::Function':
      return `arn:${partition}:lambda:${region}:${account}:function:${id}`;
    case 'AWS::ECS::Cluster':
      return `arn:${partition}:ecs:${region}:${account}:cluster/${id}`;
    case 'AWS::ECS::TaskDefinition':
      return `arn:${partition}:ecs:${region}:${account}:task-definition/${id}:1`;
    case 'AWS::SNS::Topic':
      return `arn:${partition}:sns:${region}:${account}:${id}`;
    case 'AWS::StepFunctions::StateMachine':
      return `arn:${partition}:states:${region}:${account}:stateMachine:${id}`;
    case 'AWS::S3::Bucket':
      return `arn:${partition}:s3:::${id.toLowerCase()}`;
    default:
      throw new Error(`cannot make a local ARN for ${id} (${type ?? 'unknown resource'})`);
  }
}

/**
 * The execution input a source's schedule sends (the synthesized AWS::Scheduler::Schedule
 * target input), with the slot time in place of `<aws.scheduler.scheduled-time>`.
 */
export function scheduleInput(
  template: CfnTemplate,
  source: string,
  scheduledTime: Date,
  env: LocalEnvironment = LOCAL_ENVIRONMENT,
  stateMachineSuffix = '-backup-run',
): Record<string, unknown> {
  const machine = Object.entries(template.Resources).find(([, resource]) =>
    resource.Type === 'AWS::StepFunctions::StateMachine' && String(resource.Properties?.StateMachineName ?? '').endsWith(stateMachineSuffix))?.[0];
  for (const resource of Object.values(template.Resources)) {
    if (resource.Type !== 'AWS::Scheduler::Schedule') continue;
    const target = resource.Properties?.Target as { Arn?: { Ref?: string }; Input?: unknown } | undefined;
    if (target?.Arn?.Ref !== machine) continue;
    const text = resolveTokens(target?.Input, template, env);
    if (typeof text !== 'string') continue;
    const input = JSON.parse(text.replace('<aws.scheduler.scheduled-time>', scheduledTime.toISOString().replace(/\.\d{3}Z$/, 'Z'))) as Record<string, unknown>;
    if (input.source === source) return input;
  }
  throw new Error(`no schedule of the *${stateMachineSuffix} state machine for source "${source}" in the template`);
}
