/**
 * The local stack of `lifeboat local up`: one S3-compatible server (S3, SNS, SQS) that outlives
 * the command, its data on disk, holding the primary and offsite buckets under the names the
 * synthesized templates give them. The commands that take `--local` (run, list, verify,
 * restore, drill, status, runbook, prune) then work on it across invocations, each as the
 * role it would run as in AWS (IAM-true), until `lifeboat local down`.
 *
 *   <dir>/stack.json   where the server is, the buckets, the config it was made for
 *   <dir>/app.json     the synthesized templates (a command re-synthesizes when the config changed)
 *   <dir>/s3/          the server's state (local/servers/s3-persistence.mjs) and server.log
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { LifeboatConfig } from '../lib/config/types';
import { ResolvedStack, type CfnTemplate, type StackEnvironment } from './cfn/resolve';
import { startLocalAws, type LocalAws, type LocalAwsOptions } from './aws';
import { persistentS3, startPersistentS3, stopPersistentS3 } from './servers/s3';
import { synthApp, type SynthesizedApp } from './synth';

/** Where the local stack lives: this variable, else `.lifeboat/local` in the working directory. */
export const LOCAL_DIR_ENV = 'LIFEBOAT_LOCAL_DIR';
const STACK_FORMAT = 1;

export function localStackDir(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): string {
  return path.resolve(cwd, env[LOCAL_DIR_ENV] || path.join('.lifeboat', 'local'));
}

export interface LocalStackInfo {
  readonly format: typeof STACK_FORMAT;
  readonly dir: string;
  /** http://127.0.0.1:<port> */
  readonly endpoint: string;
  readonly pid: number;
  readonly appName: string;
  readonly configFile: string;
  readonly primaryBucket: string;
  readonly offsiteBucket: string;
  readonly primaryRegion: string;
  readonly offsiteRegion: string;
  readonly startedAt: string;
}

/** The running local stack of `dir`, or undefined (never started, stopped, or its server died). */
export function readLocalStack(dir: string): LocalStackInfo | undefined {
  let info: LocalStackInfo;
  try {
    info = JSON.parse(readFileSync(path.join(dir, 'stack.json'), 'utf8')) as LocalStackInfo;
  } catch {
    return undefined;
  }
  const server = persistentS3(path.join(dir, 's3'));
  if (info.format !== STACK_FORMAT || !server) return undefined;
  return { ...info, dir, endpoint: server.endpoint, pid: server.pid };
}

/** The running local stack, or an `InvalidInput` error that says how to start one. */
export function requireLocalStack(dir: string): LocalStackInfo {
  const info = readLocalStack(dir);
  if (info) return info;
  const why = existsSync(path.join(dir, 'stack.json')) ? 'its server is not running' : 'there is none';
  throw Object.assign(new Error(`--local: no local stack at ${dir} (${why}); start one with \`lifeboat local up\` (or set ${LOCAL_DIR_ENV})`), { name: 'InvalidInput' });
}

export interface LocalUpOptions {
  readonly config: LifeboatConfig;
  readonly configFile: string;
  readonly dir: string;
  /** @default - a free port */
  readonly port?: number;
}

/**
 * Starts the local stack (or finds it running) and makes its buckets as the stacks make them:
 * versioned, with Object Lock. Returns where it is.
 */
export async function localUp(opts: LocalUpOptions): Promise<LocalStackInfo & { readonly alreadyRunning: boolean }> {
  const running = readLocalStack(opts.dir);
  if (running) return { ...running, alreadyRunning: true };
  mkdirSync(opts.dir, { recursive: true });
  const app = synthApp(opts.config);
  writeApp(opts.dir, app);
  const server = await startPersistentS3({ dataDir: path.join(opts.dir, 's3'), port: opts.port });
  const aws = await startLocalAws({ config: opts.config, app, iam: false, s3Endpoint: server.endpoint });
  const { services } = aws;
  await aws.stop();
  const info: LocalStackInfo = {
    format: STACK_FORMAT,
    dir: opts.dir,
    endpoint: server.endpoint,
    pid: server.pid,
    appName: opts.config.appName,
    configFile: path.resolve(opts.configFile),
    primaryBucket: services.primaryBucket,
    offsiteBucket: services.offsiteBucket,
    primaryRegion: opts.config.primary.region,
    offsiteRegion: opts.config.offsite.region,
    startedAt: new Date().toISOString(),
  };
  writeAtomically(path.join(opts.dir, 'stack.json'), `${JSON.stringify(info, null, 2)}\n`);
  return { ...info, alreadyRunning: false };
}

/**
 * Stops the local stack's server (it writes its state first). Its data stays for the next
 * `local up` unless `purge`, which removes the directory.
 */
export async function localDown(dir: string, opts: { readonly purge?: boolean } = {}): Promise<{ stopped: boolean; purged: boolean }> {
  const stopped = await stopPersistentS3(path.join(dir, 's3'));
  rmSync(path.join(dir, 'stack.json'), { force: true });
  if (opts.purge) rmSync(dir, { recursive: true, force: true });
  return { stopped, purged: opts.purge === true && !existsSync(dir) };
}

/**
 * The local AWS side of one command on the local stack: the templates (re-synthesized when the
 * config differs from the one they were made for), the evaluator, and the stack's server.
 */
export async function localStackAws(info: LocalStackInfo, config: LifeboatConfig, opts: Omit<LocalAwsOptions, 'config' | 's3Endpoint' | 'app'> = {}): Promise<LocalAws> {
  if (config.appName !== info.appName) {
    throw Object.assign(new Error(`--local: the local stack at ${info.dir} was made for app ${info.appName} (${info.configFile}), this config is ${config.appName}; \`lifeboat local down\` it first`), { name: 'InvalidInput' });
  }
  let app = readApp(info.dir, config);
  if (!app) {
    app = synthApp(config);
    writeApp(info.dir, app);
  }
  const aws = await startLocalAws({ ...opts, config, app, s3Endpoint: info.endpoint });
  if (aws.services.primaryBucket !== info.primaryBucket || aws.services.offsiteBucket !== info.offsiteBucket) {
    await aws.stop();
    throw Object.assign(new Error(`--local: this config names buckets ${aws.services.primaryBucket} and ${aws.services.offsiteBucket}, the local stack at ${info.dir} holds ${info.primaryBucket} and ${info.offsiteBucket}; \`lifeboat local down\` it first`), { name: 'InvalidInput' });
  }
  return aws;
}

interface AppFile {
  readonly configHash: string;
  readonly primary: { readonly template: CfnTemplate; readonly env: StackEnvironment };
  readonly offsite: { readonly template: CfnTemplate; readonly env: StackEnvironment };
}

function configHash(config: LifeboatConfig): string {
  return createHash('sha256').update(JSON.stringify(config)).digest('hex');
}

function writeApp(dir: string, app: SynthesizedApp): void {
  const file: AppFile = {
    configHash: configHash(app.config),
    primary: { template: app.primary.template, env: app.primary.env },
    offsite: { template: app.offsite.template, env: app.offsite.env },
  };
  writeAtomically(path.join(dir, 'app.json'), JSON.stringify(file));
}

/** The templates synthesized for this very config, or undefined. */
function readApp(dir: string, config: LifeboatConfig): SynthesizedApp | undefined {
  let file: AppFile;
  try {
    file = JSON.parse(readFileSync(path.join(dir, 'app.json'), 'utf8')) as AppFile;
  } catch {
    return undefined;
  }
  if (file.configHash !== configHash(config)) return undefined;
  return { config, primary: new ResolvedStack(file.primary.template, file.primary.env), offsite: new ResolvedStack(file.offsite.template, file.offsite.env) };
}

function writeAtomically(file: string, text: string): void {
  writeFileSync(`${file}.tmp`, text);
  renameSync(`${file}.tmp`, file);
}
