import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, DEFAULT_CONFIG_FILE, loadConfig, type LifeboatConfig } from '../lib/config';
import { tlsFromUrl } from '../lib/domain/tls';
import { engineOfUrl } from '../lib/engines/registry';
import { FAULTS, faultHooks, isFault } from '../local/faults';
import type { LocalRunHooks } from '../local/runner';
import { abortOnTermination } from '../worker/signals';
import { DRILL_USAGE, drillCommand } from './drill';
import { DUMP_USAGE, dumpCommand } from './dump';
import { GRANTS_USAGE, grantsCommand } from './grants';
import { PITR_USAGE, pitrCommand } from './pitr';
import { LIST_USAGE, listCommand } from './list';
import { renderPlan } from './plan';
import { PRUNE_USAGE, pruneCommand } from './prune';
import { RUNBOOK_USAGE, runbookCommand } from './runbook';
import { STATUS_USAGE, statusCommand } from './status';
import { RESTORE_USAGE, restoreCommand } from './restore';
import { VERIFY_USAGE, verifyCommand } from './verify';

const USAGE = `Usage: lifeboat <command> [options]

Commands:
  plan   [--config FILE]              print the protection plan of a config
  synth  [--config FILE]              synthesize the app and summarize its stacks
  demo   [--config FILE] [--fault F]  the plan, then one whole local backup cycle of the first source (\`npm start\`);
                                      --fault corrupt-artifact|truncate-artifact shows a failed run and its SNS message
  local  up | down | status           a local stack that stays up between commands (lifeboat local --help)
  run    SOURCE --local [--config FILE] [--target-url URL]
                                      the synthesized backup run of one source, executed locally (the whole
                                      cycle, or only the run into the local stack when one is up)
  list   SOURCE [--bucket B] [--local] the runs of a source: verdict, size, offsite copy, drills
  verify SOURCE [--run ID] [--from primary|offsite] [--local]
                                      the verifier on demand: read every byte of a run again
  drill  SOURCE --local [--from primary|offsite] [--run ID]
                                      restore drill: restore into a throwaway server, check, measure the RTO
  dump   …                            run one backup outside Step Functions (lifeboat dump --help)
  status [--config FILE] [--bucket B]  every source: last verified backup, offsite copy, last drill, verdict
  runbook SOURCE [--config FILE] [--bucket B] [--out FILE]
                                      a disaster-recovery runbook for one source, in Markdown
  prune  [--config FILE] [--bucket B] [--apply]
                                      each source's retention decisions (a dry run unless --apply)
  restore SOURCE --target-url URL …   restore a verified run into a server (lifeboat restore --help)
  restore SOURCE --at TIME|latest --target-dir DIR
                                      restore a PITR source to a point into an empty directory
  grants SOURCE [--config FILE]       the least-privilege SQL for the source's backup user (lifeboat grants --help)
  pitr setup SOURCE --bucket B --key-arn K
                                      what a PostgreSQL host needs for point-in-time recovery (lifeboat pitr --help)

With --local, list, verify, restore, drill, status, runbook and prune work on the local stack of
\`lifeboat local up\`, each as the role it has in AWS.
`;

// The CDK library and the local runner are loaded only by the commands that use them:
// `lifeboat dump` and `restore` run in the worker's memory budget and should start fast.
/* eslint-disable @typescript-eslint/no-require-imports */
const cdk = () => ({
  App: (require('aws-cdk-lib') as typeof import('aws-cdk-lib')).App,
  createStacks: (require('../lib/stacks') as typeof import('../lib/stacks')).createStacks,
  cdkJsonContext: (require('../lib/stacks/feature-flags') as typeof import('../lib/stacks/feature-flags')).cdkJsonContext,
});
const runLocalCycle: typeof import('../local/cycle').runLocalCycle = (opts) =>
  (require('../local/cycle') as typeof import('../local/cycle')).runLocalCycle(opts);
const localCli = () => require('../local/cli-local') as typeof import('../local/cli-local');
const localStack = () => require('../local/stack') as typeof import('../local/stack');
/* eslint-enable @typescript-eslint/no-require-imports */

/** The command on the local stack when --local is given (`drill --local` without one keeps LIFEBOAT_S3_ENDPOINT). */
function maybeLocal(name: import('../local/cli-local').LocalCommandName, rest: readonly string[], command: (argv: readonly string[], env: NodeJS.ProcessEnv) => Promise<number>): Promise<number> {
  if (!rest.includes('--local')) return command(rest, process.env);
  if (name === 'drill' && !localStack().readLocalStack(localStack().localStackDir())) return command(rest, process.env);
  return localCli().onLocalStack(name, rest, process.env, command);
}

/** Synthesizes the app in-process and summarizes each stack. */
function synthesize(config: LifeboatConfig): string {
  const { App, createStacks, cdkJsonContext } = cdk();
  const outdir = mkdtempSync(path.join(tmpdir(), 'lifeboat-synth-'));
  try {
    const app = new App({ outdir, context: cdkJsonContext() });
    createStacks(app, config);
    const assembly = app.synth();
    const lines = assembly.stacks.map((stack) => {
      const resources = Object.keys((stack.template as { Resources?: object }).Resources ?? {}).length;
      return `  ${stack.stackName.padEnd(24)} ${stack.environment.region.padEnd(14)} ${resources} resources`;
    });
    return ['Synthesized stacks:', ...lines].join('\n');
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

/** The hooks of `--fault NAME`; null (after saying why) for an unknown fault. */
function faultFromArgs(name: string | undefined): LocalRunHooks | undefined | null {
  if (name === undefined) return undefined;
  if (!isFault(name)) {
    process.stderr.write(`--fault: unknown fault "${name}" (valid: ${FAULTS.join(', ')})\n`);
    return null;
  }
  return faultHooks(name);
}

/** A database reachable from here, for `run --local --target-url`; the password comes from the environment. */
function targetFromUrl(text: string | undefined) {
  if (text === undefined) return undefined;
  const url = new URL(text);
  if (url.password) throw Object.assign(new Error('--target-url: contains a password; put it in LIFEBOAT_DB_PASSWORD instead'), { name: 'InvalidInput' });
  const { tls, problems } = tlsFromUrl(url, '--target-url');
  if (problems.length > 0) throw Object.assign(new Error(problems.join('; ')), { name: 'InvalidInput' });
  const engine = engineOfUrl(url);
  if (!engine) throw Object.assign(new Error(`--target-url: unknown scheme "${url.protocol}" (valid: postgres://, mysql://, mariadb://)`), { name: 'InvalidInput' });
  return {
    host: url.hostname,
    port: Number(url.port) || engine.defaultPort,
    username: decodeURIComponent(url.username) || engine.defaultUser,
    password: process.env.LIFEBOAT_DB_PASSWORD || undefined,
    tls,
  };
}

/**
 * What a program embedding the CLI may give the local cycle of `run --local`: where its lines
 * go, and a look at the local AWS side before it is stopped (LocalCycleOptions.onFinished).
 */
export type LocalCycleEmbedding = Pick<import('../local/cycle').LocalCycleOptions, 'log' | 'onFinished'>;

export async function main(argv: readonly string[], local: LocalCycleEmbedding = {}): Promise<number> {
  const [command, ...rest] = argv;
  if (command === 'local') return localCli().localCommand(rest, process.env);
  if (command === 'list' || command === 'verify') {
    if (rest.includes('--help')) {
      process.stdout.write(command === 'list' ? LIST_USAGE : VERIFY_USAGE);
      return 0;
    }
    if (command === 'list') return maybeLocal('list', rest, (args, env) => listCommand(args, env));
    const signal = abortOnTermination('the verification (nothing is written)');
    return maybeLocal('verify', rest, (args, env) => verifyCommand(args, env, { signal }));
  }
  if (command === 'drill') {
    if (rest.includes('--help')) {
      process.stdout.write(DRILL_USAGE);
      return 0;
    }
    const signal = abortOnTermination('the drill (the throwaway server is stopped)');
    return maybeLocal('drill', rest, (args, env) => drillCommand(args, env, { signal }));
  }
  if (command === 'dump') {
    if (rest.includes('--help')) {
      process.stdout.write(DUMP_USAGE);
      return 0;
    }
    return dumpCommand(rest, process.env, { signal: abortOnTermination('the dump (the upload is aborted, nothing is committed)') });
  }
  if (command === 'restore') {
    if (rest.includes('--help')) {
      process.stdout.write(RESTORE_USAGE);
      return 0;
    }
    const signal = abortOnTermination('the restore (the target may be partly restored)', (line) => console.error(line));
    return maybeLocal('restore', rest, (args, env) => restoreCommand(args, env, { signal }));
  }
  if (command === 'pitr') {
    if (rest.includes('--help')) {
      process.stdout.write(PITR_USAGE);
      return 0;
    }
    return pitrCommand(rest);
  }
  if (command === 'grants') {
    if (rest.includes('--help')) {
      process.stdout.write(GRANTS_USAGE);
      return 0;
    }
    return grantsCommand(rest);
  }
  if (command === 'status' || command === 'runbook' || command === 'prune') {
    if (rest.includes('--help')) {
      process.stdout.write({ status: STATUS_USAGE, runbook: RUNBOOK_USAGE, prune: PRUNE_USAGE }[command]);
      return 0;
    }
    return maybeLocal(command, rest, { status: statusCommand, runbook: runbookCommand, prune: pruneCommand }[command]);
  }
  const { values, positionals } = parseArgs({
    args: [...rest],
    allowPositionals: true,
    options: {
      config: { type: 'string', default: DEFAULT_CONFIG_FILE }, local: { type: 'boolean' }, 'target-url': { type: 'string' },
      fault: { type: 'string' },
    },
  });
  const configFile = values.config as string;
  switch (command) {
    case 'plan':
      console.log(renderPlan(loadConfig(configFile)));
      return 0;
    case 'synth':
      console.log(synthesize(loadConfig(configFile)));
      return 0;
    case 'demo': {
      // The example strategy's plan, then its first source's whole cycle, locally.
      const hooks = faultFromArgs(values.fault);
      if (hooks === null) return 2;
      const config = loadConfig(configFile);
      console.log(renderPlan(config));
      console.log('');
      return runLocalCycle({ config, hooks });
    }
    case 'run': {
      if (!values.local || positionals.length !== 1) {
        process.stderr.write('lifeboat run: give one source and --local (running in AWS is the schedule\'s job)\n');
        return 2;
      }
      const hooks = faultFromArgs(values.fault);
      if (hooks === null) return 2;
      const stack = localStack().readLocalStack(localStack().localStackDir());
      return runLocalCycle({ ...local, config: loadConfig(configFile), sourceName: positionals[0], target: targetFromUrl(values['target-url']), hooks, localStack: stack });
    }
    default:
      process.stderr.write(USAGE);
      return command === undefined || command === '--help' ? 0 : 2;
  }
}

/** The process around `main`: exit code, and the errors a person made shown as one message. */
export function runCli(argv: readonly string[]): void {
  main(argv).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      const usageError = (error as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS') ?? false;
      if (error instanceof ConfigError || usageError || (error as Error).name === 'InvalidInput') {
        console.error((error as Error).message);
        process.exitCode = usageError ? 2 : 1;
      } else {
        throw error;
      }
    },
  );
}

// `tsx cli/main.ts …` (npm start); the installed `lifeboat` command calls runCli itself.
if (require.main === module) runCli(process.argv.slice(2));
