/**
 * docs/permissions.md, generated from the synthesized templates of the example config: every
 * role (what it may do, on what, under which conditions, and why it exists) and every resource
 * policy that narrows them (bucket, key, topic). `npm run docs:permissions` writes it; a test
 * renders it again and fails when the file is out of date, so it cannot drift from the stacks.
 */
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { loadConfig } from '../lib/config';
import { statements, type IamModel, type PolicyDocument } from './iam';
import { IamModel as Model } from './iam/model';
import { synthApp, type SynthesizedApp } from './synth';

type Statement = Record<string, unknown>;

const list = (value: unknown): string[] => (value === undefined ? [] : (Array.isArray(value) ? value : [value]).map(String));

/** Short names for the ARNs of the app's own resources, longest first. */
function labeller(model: IamModel, app: SynthesizedApp): (text: string) => string {
  const labels: [string, string][] = [];
  const stackOf = (origin: string) => (origin.startsWith(`${app.offsite.stackName}/`) ? 'offsite' : 'primary');
  for (const bucket of model.buckets.values()) {
    labels.push([bucket.arn, bucket.objectLockEnabled ? `${stackOf(bucket.origin)} bucket` : `${stackOf(bucket.origin)} access-log bucket`]);
  }
  for (const key of model.keys.values()) {
    const id = key.origin.split('/')[1];
    labels.push([key.arn, `${stackOf(key.origin)} ${/^Alarms/.test(id) ? 'alarm topic key' : 'backup key'}`]);
  }
  for (const topic of model.topics.values()) labels.push([topic.arn, `${stackOf(topic.origin)} alarm topic`]);
  for (const queue of model.queues.values()) labels.push([queue.arn, `queue ${queue.origin.split('/')[1].replace(/[0-9A-F]{8}$/, '')}`]);
  for (const machine of model.stateMachines.values()) labels.push([machine.arn, `state machine ${machine.name}`]);
  for (const fn of model.functions.values()) labels.push([fn.arn, `function ${fn.logicalId.replace(/[0-9A-F]{8}$/, '')}`]);
  for (const role of model.principals.values()) labels.push([role.arn, `role ${roleLabel(role.arn)}`]);
  labels.sort((a, b) => b[0].length - a[0].length);
  return (text) => {
    let out = text;
    for (const [arn, label] of labels) out = out.split(arn).join(`‹${label}›`);
    // The resolver's stand-in for an id CloudFormation generates.
    return out.replace(/arn:aws:/g, '').replace(/\/local\b/g, '/‹generated id›');
  };
}

/** A role's name, its generated suffix and stack prefix dropped: `Lifeboat-Primary-BackupRunCommitServiceRole2EB776A9` → `BackupRunCommitServiceRole`. */
function roleLabel(arn: string): string {
  const [, rest] = arn.split(':role/');
  const name = rest.split('/').pop() as string;
  const pathPart = rest.slice(0, rest.length - name.length);
  return `${pathPart}${name.replace(/^Lifeboat-(Primary|Offsite)-/, '').replace(/[0-9A-F]{8}$/, '')}`;
}

function conditions(statement: Statement): string {
  const condition = statement.Condition as Record<string, Record<string, unknown>> | undefined;
  if (!condition) return '';
  const parts = Object.entries(condition).flatMap(([operator, keys]) =>
    Object.entries(keys).map(([key, value]) => `${key} ${operator} ${list(value).join(' | ')}`));
  return ` when ${parts.join(' and ')}`;
}

function principals(statement: Statement): string {
  const principal = statement.Principal as Record<string, unknown> | string | undefined;
  if (principal === undefined) return '';
  if (typeof principal === 'string') return principal;
  return Object.entries(principal).map(([kind, value]) => `${kind} ${list(value).join(', ')}`).join('; ');
}

const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, '<br>');

function describe(statement: Statement, label: (text: string) => string): string {
  const effect = statement.Effect === 'Deny' ? '**never** ' : '';
  const actions = list(statement.Action).join(', ');
  const resources = list(statement.Resource).map(label).join(', ');
  return label(`${effect}${actions} on ${resources}${conditions(statement)}`);
}

/** Why a role exists, from what uses it: its function's, task's, state machine's or schedule's description. */
function purpose(model: IamModel, app: SynthesizedApp, roleArn: string): string | undefined {
  const role = model.principals.get(roleArn);
  if (role?.description) return role.description;
  const fn = [...model.functions.values()].find((candidate) => candidate.roleArn === roleArn);
  if (fn) {
    const stack = fn.origin.startsWith(`${app.offsite.stackName}/`) ? app.offsite : app.primary;
    return `runs function ${fn.logicalId.replace(/[0-9A-F]{8}$/, '')}: ${String(stack.properties(fn.logicalId).Description ?? '')}`;
  }
  const machine = [...model.stateMachines.values()].find((candidate) => candidate.roleArn === roleArn);
  if (machine) return `the role of state machine ${machine.name}: its Lambda invocations, ECS tasks and service calls`;
  const task = [...model.taskDefinitions.values()].find((candidate) => candidate.taskRoleArn === roleArn || candidate.executionRoleArn === roleArn);
  if (task) return task.taskRoleArn === roleArn ? `task role of ${task.family}` : `execution role of ${task.family} (pulls the image, writes logs)`;
  const schedule = [...model.schedules.values()].find((candidate) => candidate.roleArn === roleArn);
  if (schedule) return `EventBridge Scheduler's role for the schedules of ${schedule.targetArn.split(':').pop()}: starts it, and delivers dead letters`;
  if (role?.assumedBy.includes('events.amazonaws.com')) return 'EventBridge rules deliver with it (the heartbeats\' API destinations)';
  return undefined;
}

export function renderPermissions(app: SynthesizedApp): string {
  const model = Model.fromApp(app);
  const label = labeller(model, app);
  const lines: string[] = [];
  const push = (...more: string[]) => lines.push(...more);
  push(
    '# Permissions',
    '',
    '<!-- Generated by `npm run docs:permissions` (local/permissions.ts) from the synthesized templates of lifeboat.config.ts. Do not edit: test/unit/permissions-doc.test.ts fails when this file differs from the templates. -->',
    '',
    `Every role of the two stacks (\`${app.primary.stackName}\` in account ${app.primary.account}, ${app.primary.region}; \`${app.offsite.stackName}\` in account ${app.offsite.account}, ${app.offsite.region}) with what its identity policies allow and deny, then the resource policies that narrow them. Local runs and the tests evaluate every AWS call against exactly these documents (IAM-true, local/iam). ‹…› names a resource of the stacks; ARNs are shown without their \`arn:aws:\` prefix.`,
    '',
    'Conventions: each JSON document of a run has one writer, enforced by the bucket policy (`OnlyWriters…`); writes under `runs/` and `drills/` must carry `If-None-Match: *` (`WriteOnce…`); only the deployment role and the config\'s `breakGlassRoleArn` may reconfigure a backup bucket or bypass governance retention (`OnlyAdmins…`); only the pruners delete, exact versions only, never a locked one.',
    '',
    '## Roles',
    '',
    '| Role | Stack | Assumed by | May | Why |',
    '|---|---|---|---|---|',
  );
  const roles = [...model.principals.values()].sort((a, b) => (a.origin.split('/')[0] === b.origin.split('/')[0]
    ? roleLabel(a.arn).localeCompare(roleLabel(b.arn)) : b.origin.localeCompare(a.origin)));
  for (const role of roles) {
    const may = role.policies.flatMap((policy) => statements(policy.document).map((statement) => describe(statement, label)));
    push(`| ${cell(roleLabel(role.arn))} | ${role.origin.split('/')[0]} (${role.account}) | ${cell(role.assumedBy.join(', ') || 'principals of the account')} | ${cell(may.join('\n'))} | ${cell(purpose(model, app, role.arn) ?? role.description ?? '')} |`);
  }

  push('', '## Resource policies', '');
  const section = (title: string, entries: [string, PolicyDocument | undefined][]) => {
    push(`### ${title}`, '', '| Resource | Sid | Who | What |', '|---|---|---|---|');
    for (const [resource, document] of entries) {
      for (const statement of statements(document)) {
        push(`| ${cell(label(resource))} | ${cell(String(statement.Sid ?? ''))} | ${cell(label(principals(statement)))} | ${cell(describe(statement, label))} |`);
      }
    }
    push('');
  };
  section('Buckets', [...model.buckets.values()].filter((bucket) => bucket.policy).map((bucket) => [bucket.arn, bucket.policy]));
  section('KMS keys', [...model.keys.values()].map((key) => [key.arn, key.policy]));
  section('Topics', [...model.topics.values()].filter((topic) => topic.policy).map((topic) => [topic.arn, topic.policy]));
  return `${lines.join('\n')}\n`;
}

/** The document for the example config, where the repository keeps it. */
export const PERMISSIONS_DOC = path.join(__dirname, '..', 'docs', 'permissions.md');

export function examplePermissions(): string {
  return renderPermissions(synthApp(loadConfig(path.join(__dirname, '..', 'lifeboat.config.ts'))));
}

if (require.main === module) {
  writeFileSync(PERMISSIONS_DOC, examplePermissions());
  console.log(`wrote ${path.relative(process.cwd(), PERMISSIONS_DOC)}`);
}
