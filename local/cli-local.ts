/**
 * The CLI on the local stack: `lifeboat local up | down | status`, and the `--local` of the
 * read and restore commands. Each command runs as the role it has in AWS, IAM-true: the
 * operator role for list, verify, status, runbook, restore and a dry-run prune, the pruner's
 * role for `prune --apply`, the source's drill task role for a drill. Loaded by cli/main.ts only
 * when `local` or `--local` is given.
 */
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_CONFIG_FILE, loadConfig, type LifeboatConfig } from '../lib/config';
import { DRILL_FAMILY_PREFIX } from '../lib/constructs/drill-task';
import { asPrincipal } from './iam';
import type { LocalAws } from './aws';
import { TEST_CREDENTIALS } from './servers/s3';
import { localDown, localStackAws, localStackDir, localUp, readLocalStack, requireLocalStack, type LocalStackInfo } from './stack';

export const LOCAL_USAGE = `Usage: lifeboat local up [--config FILE] [--port N]
       lifeboat local down [--purge]
       lifeboat local status

A local stack that stays up between commands, without AWS: one S3-compatible server on
127.0.0.1 (its data on disk in .lifeboat/local, or $LIFEBOAT_LOCAL_DIR) holding the primary
and offsite buckets of the synthesized stacks, versioned, with Object Lock. Then, each as its
own command, with --local:

  lifeboat run SOURCE --local [--target-url URL]     the backup run (the state machine, executed)
  lifeboat list SOURCE --local                       its runs
  lifeboat verify SOURCE --local [--run ID]          the verifier, on demand
  lifeboat restore SOURCE --local --from offsite --target-url URL
  lifeboat drill SOURCE --local [--from offsite]     restore into a throwaway server, checked
  lifeboat status --local | runbook SOURCE --local | prune --local

Every AWS call is evaluated against the synthesized policies of the role that makes it.
\`local down\` stops the server (its data stays for the next \`local up\`; --purge removes it).
`;

/** `lifeboat local …` */
export async function localCommand(argv: readonly string[], env: NodeJS.ProcessEnv, log: (line: string) => void = console.log): Promise<number> {
  const [action, ...rest] = argv;
  const { values } = parseArgs({
    args: [...rest],
    options: { config: { type: 'string', default: DEFAULT_CONFIG_FILE }, port: { type: 'string' }, purge: { type: 'boolean', default: false } },
  });
  const dir = localStackDir(env);
  switch (action) {
    case 'up': {
      const port = values.port === undefined ? undefined : Number(values.port);
      if (port !== undefined && (!Number.isInteger(port) || port < 1 || port > 65535)) {
        log(`lifeboat local up: --port: "${values.port}" is not valid (valid: 1 to 65535)`);
        return 2;
      }
      const config = loadConfig(values.config as string);
      const info = await localUp({ config, configFile: values.config as string, dir, port });
      log(`local stack ${info.alreadyRunning ? 'already up' : 'up'}: ${info.endpoint} (pid ${info.pid}), data in ${path.join(dir, 's3')}`);
      log(`  primary bucket ${info.primaryBucket} (${info.primaryRegion}), offsite bucket ${info.offsiteBucket} (${info.offsiteRegion}): versioned, Object Lock`);
      log(`  next: lifeboat run ${config.sources[0]?.name ?? 'SOURCE'} --local; lifeboat local down when done`);
      return 0;
    }
    case 'down': {
      const { stopped, purged } = await localDown(dir, { purge: values.purge as boolean });
      log(stopped ? `local stack down: its server stopped${purged ? `, ${dir} removed` : `; its data stays in ${dir} for the next \`lifeboat local up\``}` : `no local stack running at ${dir}${purged ? ` (${dir} removed)` : ''}`);
      return 0;
    }
    case 'status': {
      const info = readLocalStack(dir);
      if (!info) {
        log(`no local stack running at ${dir} (start one with \`lifeboat local up\`)`);
        return 1;
      }
      log(`local stack up since ${info.startedAt}: ${info.endpoint} (pid ${info.pid}); buckets ${info.primaryBucket}, ${info.offsiteBucket}; config ${info.configFile}`);
      return 0;
    }
    default:
      log(LOCAL_USAGE);
      return action === undefined || action === '--help' ? 0 : 2;
  }
}

/** A command of cli/ that reads its options from argv and its credentials from the environment. */
export type CommandFn = (argv: readonly string[], env: NodeJS.ProcessEnv) => Promise<number>;

export type LocalCommandName = 'list' | 'verify' | 'status' | 'runbook' | 'prune' | 'restore' | 'drill';

/**
 * Runs `command` on the local stack: its options get the stack's endpoint, bucket and region
 * (those the user gave win), its calls are made with the local server's credentials, as the
 * role the command has in AWS. Prints what IAM decided.
 */
export async function onLocalStack(name: LocalCommandName, argv: readonly string[], env: NodeJS.ProcessEnv, command: CommandFn, log: (line: string) => void = console.error): Promise<number> {
  const info = requireLocalStack(localStackDir(env));
  // `drill` requires --local itself (in AWS drills are the drill state machine's).
  const args = name === 'drill' ? [...argv] : argv.filter((arg) => arg !== '--local');
  const option = (flag: string) => {
    const at = args.findIndex((arg) => arg === flag || arg.startsWith(`${flag}=`));
    if (at < 0) return undefined;
    return args[at].includes('=') ? args[at].slice(flag.length + 1) : args[at + 1];
  };
  const configFile = option('--config') ?? info.configFile;
  const config = loadConfig(configFile);
  const offsite = option('--from') === 'offsite';
  const extra = [
    ...(option('--config') === undefined ? ['--config', configFile] : []),
    ...(option('--endpoint') === undefined ? ['--endpoint', info.endpoint] : []),
    ...(option('--bucket') === undefined ? ['--bucket', offsite ? info.offsiteBucket : info.primaryBucket] : []),
    ...(option('--region') === undefined && name !== 'drill' ? ['--region', offsite ? info.offsiteRegion : info.primaryRegion] : []),
    ...(name === 'drill' && option('--report-bucket') === undefined ? ['--report-bucket', info.primaryBucket] : []),
  ];
  const aws = await localStackAws(info, config);
  const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY, token: process.env.AWS_SESSION_TOKEN };
  // The local server's own credentials for this command's clients (it takes any; real ones stay out of it).
  process.env.AWS_ACCESS_KEY_ID = TEST_CREDENTIALS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = TEST_CREDENTIALS.secretAccessKey;
  delete process.env.AWS_SESSION_TOKEN;
  try {
    const principal = principalFor(name, args, aws, config);
    const code = await asPrincipal(principal, () => command([...args, ...extra], { ...env, AWS_REGION: offsite ? info.offsiteRegion : info.primaryRegion }));
    reportIam(aws, info, log);
    return code === 0 && (aws.evaluator?.stats.denied ?? 0) > 0 ? 1 : code;
  } finally {
    restoreEnv('AWS_ACCESS_KEY_ID', saved.id);
    restoreEnv('AWS_SECRET_ACCESS_KEY', saved.secret);
    restoreEnv('AWS_SESSION_TOKEN', saved.token);
    await aws.stop();
  }
}

/** The role the command runs as in AWS. */
function principalFor(name: LocalCommandName, args: readonly string[], aws: LocalAws, config: LifeboatConfig): string {
  if (name === 'drill') {
    const source = config.sources.find((candidate) => args.includes(candidate.name));
    if (!source) throw Object.assign(new Error(`lifeboat drill: give one source (known: ${config.sources.map((candidate) => candidate.name).join(', ')})`), { name: 'InvalidInput' });
    return aws.roles.task(`${DRILL_FAMILY_PREFIX}${source.name}`);
  }
  if (name === 'prune' && args.includes('--apply')) {
    const pruner = [...aws.model.principals.values()].find((role) => role.origin.startsWith(`${aws.app.primary.stackName}/PrunerRole`));
    if (!pruner) throw new Error(`local AWS: no pruner role in ${aws.app.primary.stackName}`);
    return pruner.arn;
  }
  return aws.roles.operator;
}

function reportIam(aws: LocalAws, info: LocalStackInfo, log: (line: string) => void): void {
  if (!aws.evaluator) return;
  const { calls, denied, byPrincipal } = aws.evaluator.stats;
  log(`IAM-true (local stack ${info.endpoint}): ${calls} AWS calls as ${[...byPrincipal.keys()].join(', ')}: ${denied === 0 ? 'none denied' : `${denied} DENIED`}`);
  for (const decision of aws.evaluator.denials) log(`  denied: ${decision.request.principal} ${decision.request.action} ${decision.request.resource}: ${decision.explanation}`);
}

function restoreEnv(name: string, value: string | undefined): void {
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
}
