/**
 * Takes a state machine out of a synthesized template and resolves the CloudFormation tokens
 * in its definition (local/cfn/resolve.ts), so that the very definition `cdk deploy` would
 * create can run locally (no hand-written copy).
 */
import { ResolvedStack, type CfnTemplate } from './cfn/resolve';

export type { CfnTemplate } from './cfn/resolve';

export interface LocalEnvironment {
  readonly region: string;
  readonly account: string;
  readonly partition?: string;
  /** @default "Lifeboat-Primary" */
  readonly stackName?: string;
}

export const LOCAL_ENVIRONMENT: LocalEnvironment = { region: 'us-east-1', account: '000000000000' };

function resolvedStack(template: CfnTemplate | ResolvedStack, env: LocalEnvironment): ResolvedStack {
  if (template instanceof ResolvedStack) return template;
  return new ResolvedStack(template, { stackName: env.stackName ?? 'Lifeboat-Primary', account: env.account, region: env.region, partition: env.partition });
}

/** The logical id of the state machine whose name ends with `suffix` (default: the backup run). */
export function stateMachineId(stack: ResolvedStack, suffix = '-backup-run'): string {
  const machines = stack.ofType('AWS::StepFunctions::StateMachine');
  const found = machines.find((id) => String(stack.resource(id).Properties?.StateMachineName ?? '').endsWith(suffix));
  if (!found) {
    const names = machines.map((id) => String(stack.resource(id).Properties?.StateMachineName)).join(', ') || 'none';
    throw new Error(`no state machine named *${suffix} in the template (found: ${names})`);
  }
  return found;
}

/** The state machine whose name ends with `suffix` (default: the backup run), its tokens resolved. */
export function stateMachineDefinition(
  template: CfnTemplate | ResolvedStack,
  env: LocalEnvironment = LOCAL_ENVIRONMENT,
  suffix = '-backup-run',
): Record<string, unknown> {
  const stack = resolvedStack(template, env);
  const text = stack.resolve(stack.resource(stateMachineId(stack, suffix)).Properties?.DefinitionString);
  if (typeof text !== 'string') throw new Error('the state machine definition did not resolve to a string');
  return JSON.parse(text) as Record<string, unknown>;
}

/** Resolves the intrinsic functions in `value` (see local/cfn/resolve.ts). */
export function resolveTokens(value: unknown, template: CfnTemplate | ResolvedStack, env: LocalEnvironment = LOCAL_ENVIRONMENT): unknown {
  return resolvedStack(template, env).resolve(value);
}

/**
 * The execution input a source's schedule sends (the synthesized AWS::Scheduler::Schedule
 * target input), with the slot time in place of `<aws.scheduler.scheduled-time>`.
 */
export function scheduleInput(
  template: CfnTemplate | ResolvedStack,
  source: string,
  scheduledTime: Date,
  env: LocalEnvironment = LOCAL_ENVIRONMENT,
  stateMachineSuffix = '-backup-run',
  /** Of a source's schedules, the one whose input this accepts (the PITR run has one per backup type). */
  matches: (input: Record<string, unknown>) => boolean = () => true,
): Record<string, unknown> {
  const stack = resolvedStack(template, env);
  const machine = stateMachineId(stack, stateMachineSuffix);
  for (const id of stack.ofType('AWS::Scheduler::Schedule')) {
    const target = stack.resource(id).Properties?.Target as { Arn?: { Ref?: string }; Input?: unknown } | undefined;
    if (target?.Arn?.Ref !== machine) continue;
    const text = stack.resolve(target?.Input);
    if (typeof text !== 'string') continue;
    const input = JSON.parse(text.replace('<aws.scheduler.scheduled-time>', scheduledTime.toISOString().replace(/\.\d{3}Z$/, 'Z'))) as Record<string, unknown>;
    if (input.source === source && matches(input)) return input;
  }
  throw new Error(`no schedule of the *${stateMachineSuffix} state machine for source "${source}" in the template`);
}
