/**
 * AWS Systems Manager Run Command, stood in on this machine: the PITR run's SendCommand of the
 * Lifeboat document runs the document's own script (from the synthesized template, parameters
 * substituted as SSM does) with sh on this machine, which plays the managed instance; its
 * status, exit code and output answer ListCommands and ListCommandInvocations in the shapes of
 * the real API. Who may send what to which instance is the IAM evaluator's (local/runner.ts).
 *
 * The "instance" is registered with the id and tags the config names and the environment its
 * instance profile would give pgBackRest (here: the local S3 server's keys, in the environment
 * only). An unknown id answers InvalidInstanceId, a tag no instance carries resolves to no target.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** Whether the AWS CLI at `path` can send If-None-Match (S3's conditional writes, August 2024): its put-object skeleton has it. */
function canWriteOnce(path: string): boolean {
  const probe = spawnSync(path, ['s3api', 'put-object', '--generate-cli-skeleton', 'input'], { encoding: 'utf8', timeout: 30_000 });
  return probe.status === 0 && probe.stdout.includes('IfNoneMatch');
}

let cachedHostPath: string | undefined;

/**
 * The PATH of the stand-in host: this machine's, with the first directory holding an AWS CLI that
 * can send If-None-Match in front when the first `aws` on PATH cannot (a managed instance carries
 * a current CLI; Debian 12's awscli 2.9 predates conditional writes). With none, the PATH as it
 * is: the document's script then says which CLI it found and what it needs.
 */
export function hostPath(): string {
  if (cachedHostPath !== undefined) return cachedHostPath;
  const path = process.env.PATH ?? '/usr/bin:/bin';
  const dirs = path.split(delimiter).filter(Boolean);
  const pyenv = join(process.env.HOME ?? '/root', '.pyenv', 'versions');
  const extra = existsSync(pyenv) ? readdirSync(pyenv).map((version) => join(pyenv, version, 'bin')) : [];
  const first = dirs.find((dir) => existsSync(join(dir, 'aws')));
  const capable = first && canWriteOnce(join(first, 'aws')) ? first : [...dirs, ...extra, '/usr/local/bin'].find((dir) => existsSync(join(dir, 'aws')) && canWriteOnce(join(dir, 'aws')));
  cachedHostPath = capable && capable !== first ? `${capable}${delimiter}${path}` : path;
  return cachedHostPath;
}

export interface LocalManagedInstance {
  readonly instanceId: string;
  readonly tags: Readonly<Record<string, string>>;
  /** The environment the document's script runs with (the instance profile's stand-in). */
  readonly env: Readonly<Record<string, string>>;
  /** Per parameter, the value this machine needs instead of the template's default (its pgbackrest.conf, its OS user). */
  readonly parameterOverrides?: Readonly<Record<string, string>>;
  /** Runs after the document's script, before its status is reported (fault injection: what happens on the host after the backup). */
  readonly afterCommand?: () => Promise<void>;
}

export interface LocalDocument {
  readonly name: string;
  /** The document's `content` (schema 2.2, one aws:runShellScript step). */
  readonly content: { readonly parameters?: Record<string, { readonly default?: string; readonly allowedPattern?: string; readonly allowedValues?: readonly string[] }>; readonly mainSteps: readonly { readonly name: string; readonly inputs: { readonly runCommand: readonly string[] } }[] };
}

type InvocationStatus = 'Pending' | 'InProgress' | 'Success' | 'Failed' | 'TimedOut' | 'Cancelled';

interface LocalCommand {
  readonly commandId: string;
  readonly documentName: string;
  readonly instanceIds: readonly string[];
  status: InvocationStatus;
  responseCode: number;
  output: string;
  readonly done: Promise<void>;
}

/** SSM's error shapes: the name the SDK gives (Step Functions prefixes `Ssm.`). */
function ssmError(name: string, message: string): Error {
  return Object.assign(new Error(message), { name });
}

/** SSM keeps the first 2500 characters of a plugin's output in ListCommandInvocations. */
const OUTPUT_LIMIT = 2500;

export class LocalSsm {
  static readonly NAME = 'local SSM Run Command (this machine stands in for the managed instance)';
  private readonly instances = new Map<string, LocalManagedInstance>();
  private readonly commands = new Map<string, LocalCommand>();

  constructor(private readonly documents: readonly LocalDocument[], private readonly log: (line: string) => void = () => undefined) {}

  register(instance: LocalManagedInstance): void {
    this.instances.set(instance.instanceId, instance);
  }

  /** The instances a SendCommand's `Targets` select (InstanceIds, or `tag:<key>`). */
  resolveTargets(targets: readonly { Key: string; Values: readonly string[] }[]): LocalManagedInstance[] {
    const found: LocalManagedInstance[] = [];
    for (const target of targets) {
      if (target.Key === 'InstanceIds') {
        for (const id of target.Values) {
          const instance = this.instances.get(id);
          if (!instance) throw ssmError('InvalidInstanceId', `Instances [[${id}]] not in a valid state for account`);
          found.push(instance);
        }
      } else if (target.Key.startsWith('tag:')) {
        const key = target.Key.slice(4);
        found.push(...[...this.instances.values()].filter((instance) => target.Values.includes(instance.tags[key] ?? '')));
      } else {
        throw ssmError('InvalidTarget', `target key ${target.Key} is not valid (valid here: InstanceIds, tag:<key>)`);
      }
    }
    return found;
  }

  sendCommand(input: { DocumentName: string; Targets: { Key: string; Values: string[] }[]; Parameters?: Record<string, string[]> }): { Command: Record<string, unknown> } {
    const document = this.documents.find((candidate) => candidate.name === input.DocumentName);
    if (!document) throw ssmError('InvalidDocument', `document ${input.DocumentName} does not exist`);
    const instances = this.resolveTargets(input.Targets);
    const commandId = randomUUID();
    const command: LocalCommand = {
      commandId, documentName: document.name, instanceIds: instances.map((instance) => instance.instanceId),
      status: instances.length === 0 ? 'Success' : 'InProgress', responseCode: -1, output: '',
      done: Promise.resolve(),
    };
    if (instances.length > 0) {
      // One instance at a time (MaxConcurrency 1, as the PITR run sends it).
      const [instance] = instances;
      Object.assign(command, { done: this.run(command, document, instance, input.Parameters ?? {}) });
    }
    this.commands.set(commandId, command);
    return { Command: { CommandId: commandId, DocumentName: document.name, Status: command.status, TargetCount: instances.length, Targets: input.Targets } };
  }

  listCommands(input: { CommandId: string }): { Commands: Record<string, unknown>[] } {
    const command = this.commands.get(input.CommandId);
    if (!command) throw ssmError('InvalidCommandId', `command ${input.CommandId} does not exist`);
    const finished = command.status !== 'InProgress' && command.status !== 'Pending';
    return {
      Commands: [{
        CommandId: command.commandId,
        DocumentName: command.documentName,
        Status: command.status,
        TargetCount: command.instanceIds.length,
        CompletedCount: finished ? command.instanceIds.length : 0,
        ErrorCount: command.status === 'Failed' ? command.instanceIds.length : 0,
        DeliveryTimedOutCount: 0,
      }],
    };
  }

  listCommandInvocations(input: { CommandId: string; Details?: boolean }): { CommandInvocations: Record<string, unknown>[] } {
    const command = this.commands.get(input.CommandId);
    if (!command) throw ssmError('InvalidCommandId', `command ${input.CommandId} does not exist`);
    return {
      CommandInvocations: command.instanceIds.map((instanceId) => ({
        CommandId: command.commandId,
        InstanceId: instanceId,
        DocumentName: command.documentName,
        Status: command.status,
        StatusDetails: command.status,
        ...(input.Details ? {
          CommandPlugins: [{ Name: 'pgbackrestBackup', Status: command.status, ResponseCode: command.responseCode, Output: command.output.slice(-OUTPUT_LIMIT) }],
        } : {}),
      })),
    };
  }

  /** Waits for every command still running (before the servers they use stop). */
  async settle(): Promise<void> {
    await Promise.allSettled([...this.commands.values()].map((command) => command.done));
  }

  private async run(command: LocalCommand, document: LocalDocument, instance: LocalManagedInstance, given: Record<string, string[]>): Promise<void> {
    const values: Record<string, string> = {};
    for (const [name, spec] of Object.entries(document.content.parameters ?? {})) {
      const value = instance.parameterOverrides?.[name] ?? given[name]?.[0] ?? spec.default;
      if (value === undefined) return this.finish(command, 'Failed', 1, `parameter ${name} is required`);
      if (spec.allowedValues && !spec.allowedValues.includes(value)) return this.finish(command, 'Failed', 1, `parameter ${name}: ${value} is not allowed`);
      if (spec.allowedPattern && !new RegExp(spec.allowedPattern).test(value)) return this.finish(command, 'Failed', 1, `parameter ${name}: ${value} does not match ${spec.allowedPattern}`);
      values[name] = value;
    }
    const script = document.content.mainSteps.flatMap((step) => step.inputs.runCommand).join('\n')
      .replace(/\{\{\s*(\w+)\s*\}\}/g, (_, name: string) => values[name] ?? '');
    this.log(`${LocalSsm.NAME}: ${document.name} on ${instance.instanceId} (${Object.entries(values).map(([name, value]) => `${name}=${value}`).join(' ')})`);
    const output: Buffer[] = [];
    const code = await new Promise<number>((resolve) => {
      // As the SSM agent runs aws:runShellScript: with sh (dash here, as on Debian and Ubuntu hosts), so a bash-only script fails here too.
      const child = spawn('sh', ['-c', script], { env: { PATH: hostPath(), LANG: 'C', TZ: 'UTC', ...instance.env }, stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout.on('data', (chunk: Buffer) => output.push(chunk));
      child.stderr.on('data', (chunk: Buffer) => output.push(chunk));
      child.on('error', () => resolve(127));
      child.on('close', (exit) => resolve(exit ?? 1));
    });
    await instance.afterCommand?.();
    return this.finish(command, code === 0 ? 'Success' : 'Failed', code, Buffer.concat(output).toString('utf8'));
  }

  private finish(command: LocalCommand, status: InvocationStatus, code: number, output: string): void {
    command.status = status;
    command.responseCode = code;
    command.output = output;
  }
}
