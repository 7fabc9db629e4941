import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';

/** Fraction of the full data set (LIFEBOAT_BENCH_SCALE=0.1: a quick check, not the figures). */
export const SCALE = Number(process.env.LIFEBOAT_BENCH_SCALE ?? '1');
/** Baseline/Lifeboat pairs measured (LIFEBOAT_BENCH_REPEAT); the median ratio is the figure. */
export const REPEAT = Math.max(1, Number(process.env.LIFEBOAT_BENCH_REPEAT ?? '3'));
export const ROOT = path.resolve(__dirname, '..');
/** The local S3 bucket the benches write to. */
export const BUCKET = 'bench';

export interface Timed {
  readonly seconds: number;
  /** Peak RSS of the command (GNU time's %M), in KiB. */
  readonly maxRssKiB?: number;
  /** CPU time (user + system) of the command and its waited-for children, in seconds. */
  readonly cpuSeconds?: number;
  /** stdout and stderr, interleaved. */
  readonly output: string;
}

/** Runs a command under GNU time: wall-clock seconds and peak RSS; rejects on a non-zero exit. */
export function timed(command: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<Timed> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn('/usr/bin/time', ['-f', 'maxrss_kib=%M cpu=%U+%S', command, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk) => { output += chunk; });
    child.stderr.on('data', (chunk) => { output += chunk; });
    child.on('error', reject);
    child.on('close', (code) => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      if (code !== 0) return reject(new Error(`${command} exited ${code}:\n${output.slice(-2000)}`));
      const rss = /maxrss_kib=(\d+)/.exec(output);
      const cpu = /cpu=([\d.]+)\+([\d.]+)/.exec(output);
      resolve({ seconds, maxRssKiB: rss ? Number(rss[1]) : undefined, cpuSeconds: cpu ? Number(cpu[1]) + Number(cpu[2]) : undefined, output });
    });
  });
}

/**
 * CPU seconds (user + system) a running process has used so far, from /proc; with `children`,
 * also those of its children, live or exited and waited for (a postmaster's backends).
 */
export function processCpuSeconds(pid: number, { children = false } = {}): number {
  const fields = statFields(pid);
  if (!children) return (Number(fields[11]) + Number(fields[12])) / 100;
  let ticks = Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
  for (const child of childPids(pid)) {
    try {
      const own = statFields(child);
      ticks += Number(own[11]) + Number(own[12]) + Number(own[13]) + Number(own[14]);
    } catch {
      // exited since it was listed: its time is in the parent's waited-for children now or soon
    }
  }
  return ticks / 100;
}

/** The fields of /proc/<pid>/stat after the command name (field 3 onwards). */
function statFields(pid: number): string[] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

function childPids(pid: number): number[] {
  return readdirSync(`/proc/${pid}/task`).flatMap((task) =>
    readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').split(' ').filter(Boolean).map(Number));
}

/** The middle value (the upper one of the two middles for an even count); throws on none. */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError('median of no values');
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;
}
