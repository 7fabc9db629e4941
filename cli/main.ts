import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, DEFAULT_CONFIG_FILE, loadConfig, type LifeboatConfig } from '../lib/config';
import { FAULTS, faultHooks, isFault } from '../local/faults';
import type { LocalRunHooks } from '../local/runner';
import { abortOnTermination } from '../worker/signals';
import { DRILL_USAGE, drillCommand } from './drill';
import { DUMP_USAGE, dumpCommand } from './dump';
import { GRANTS_USAGE, grantsCommand } from './grants';
import { renderPlan } from './plan';
import { PRUNE_USAGE, pruneCommand } from './prune';
import { RUNBOOK_USAGE, runbookCommand } from './runbook';
import { STATUS_USAGE, statusCommand } from './status';
import { RESTORE_USAGE, restoreCommand } from './restore';

const USAGE = `Usage: lifeboat <command> [options]

Commands:
  plan   [--config FILE]              print the protection plan of a config
  synth  [--config FILE]              synthesize the app and summarize its stacks
  demo   [--config FILE] [--fault F]  the plan, then one whole local backup cycle of the first source (\`npm start\`);
                                      --fault corrupt-artifact|truncate-artifact shows a failed run and its SNS message
  run    SOURCE --local [--config FILE] [--target-url URL]
                                      the synthesized backup run of one source, executed locally
  drill  SOURCE --local [--from primary|offsite] [--run ID]
                                      restore drill: restore into a throwaway server, check, measure the RTO
  dump   …                            run one backup outside Step Functions (lifeboat dump --help)
  status [--config FILE] [--bucket B]  every source: last verified backup, offsite copy, last drill, verdict
  runbook SOURCE [--config FILE] [--bucket B] [--out FILE]
                                      a disaster-recovery runbook for one source, in Markdown
  prune  [--config FILE] [--bucket B] [--apply]
                                      each source's retention decisions (a dry run unless --apply)
  restore SOURCE --target-url URL …   restore a verified run into a server (lifeboat restore --help)
  grants SOURCE [--config FILE]       the least-privilege SQL for the source's backup user (lifeboat grants --help)
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
/* eslint-enable @typescript-eslint/no-require-imports */

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
  return {
    host: url.hostname,
    port: Number(url.port) || (url.protocol.startsWith('postgres') ? 5432 : 3306),
    username: decodeURIComponent(url.username) || (url.protocol.startsWith('postgres') ? 'postgres' : 'root'),
    password: process.env.LIFEBOAT_DB_PASSWORD || undefined,
  };
}

export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === 'drill') {
    if (rest.includes('--help')) {
      process.stdout.write(DRILL_USAGE);
      return 0;
    }
    return drillCommand(rest, process.env, { signal: abortOnTermination('the drill (the throwaway server is stopped)') });
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
    return restoreCommand(rest, process.env, { signal: abortOnTermination('the restore (the target may be partly restored)', (line) => console.error(line)) });
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
    if (command === 'prune') return pruneCommand(rest, process.env);
    return command === 'status' ? statusCommand(rest, process.env) : runbookCommand(rest, process.env);
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
      return runLocalCycle({ config: loadConfig(configFile), sourceName: positionals[0], target: targetFromUrl(values['target-url']), hooks });
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
