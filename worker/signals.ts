import { lifeboatError } from '../lib/domain/errors';
import { EXIT } from './task-token';

/**
 * An abort signal for SIGTERM (ECS stopping the task) and SIGINT: the work aborts with
 * `Aborted` and a message saying what was stopped; the process then reports and exits
 * non-zero instead of dying mid-upload.
 */
export function abortOnTermination(
  what: string,
  log: (line: string) => void = console.log,
  opts: {
    /** @default - process.ppid (read anew each time: it changes when the parent exits) */
    readonly parentPid?: () => number;
    /** @default 500 */
    readonly pollMs?: number;
  } = {},
): AbortSignal {
  const stop = new AbortController();
  const abort = (reason: string) => {
    if (stop.signal.aborted) return;
    log(`${reason}: stopping ${what}`);
    stop.abort(lifeboatError('Aborted', `${reason}: ${what} was stopped before it finished`));
  };
  process.once('SIGTERM', () => abort('SIGTERM received'));
  process.once('SIGINT', () => abort('SIGINT received'));
  // `npx lifeboat …` (npm exec) runs the command through `sh -c`: a SIGTERM sent to npx is
  // passed to that shell, which exits without passing it on, and the command is re-parented.
  // Being orphaned is taken as the SIGTERM it stands for, within `pollMs`. (A container's
  // entry point, PID 1's child of nobody, has parent 0 and is not watched.)
  const parentPid = opts.parentPid ?? (() => process.ppid);
  const parent = parentPid();
  if (parent > 1) {
    const timer = setInterval(() => {
      if (parentPid() === parent) return;
      clearInterval(timer);
      abort(`the parent process (pid ${parent}) exited, as the shell of npx does on SIGTERM`);
    }, opts.pollMs ?? 500);
    timer.unref();
    stop.signal.addEventListener('abort', () => clearInterval(timer), { once: true });
  }
  return stop.signal;
}

/**
 * A container entry point: the job from the environment (invalid → exit 2, the message on
 * stderr), the work under SIGTERM/SIGINT handling, the outcome's summary as one JSON line on
 * stdout, and its exit code.
 */
export async function containerMain<J, O extends { readonly code: number }>(opts: {
  readonly env: NodeJS.ProcessEnv;
  readonly parse: (env: NodeJS.ProcessEnv) => J;
  /** What SIGTERM stops, for the log line. */
  readonly what: string;
  readonly run: (job: J, signal: AbortSignal) => Promise<O>;
  readonly summary: (outcome: O, job: J) => unknown;
}): Promise<number> {
  let job: J;
  try {
    job = opts.parse(opts.env);
  } catch (error) {
    console.error((error as Error).message);
    return EXIT.invalidInput;
  }
  const outcome = await opts.run(job, abortOnTermination(opts.what));
  const summary = opts.summary(outcome, job);
  if (summary !== undefined) console.log(JSON.stringify(summary));
  return outcome.code;
}

/** Runs `main` when the module is the process's entry, and exits with its code. */
export function exitWithMain(module: NodeJS.Module, main: () => Promise<number>): void {
  if (require.main !== module) return;
  main().then((code) => process.exit(code), (error: unknown) => {
    // Only the name: a message could hold what the job was given.
    console.error(`unexpected failure: ${(error as Error).name}`);
    process.exit(EXIT.failed);
  });
}
