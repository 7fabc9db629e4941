import {
  SendTaskFailureCommand,
  SendTaskHeartbeatCommand,
  SendTaskSuccessCommand,
  type SFNClient,
} from '@aws-sdk/client-sfn';
import type { S3Client } from '@aws-sdk/client-s3';
import { errorName, redact } from '../lib/domain/errors';

/** The slice of the Step Functions client the task-token protocol needs (the SDK-client edge). */
export type TaskTokenClient = Pick<SFNClient, 'send'>;

/** What every Fargate task's entry point (dump, verify, drill) takes; tests pass fakes. */
export interface TaskDeps {
  readonly s3?: S3Client;
  readonly sfn?: TaskTokenClient;
  /** Aborted on SIGTERM (ECS stopping the task) or Ctrl-C. */
  readonly signal?: AbortSignal;
  readonly log?: (line: string) => void;
  readonly now?: () => Date;
  readonly heartbeatIntervalMs?: number;
}

export interface TaskTokenRunOptions<T> {
  readonly sfn: TaskTokenClient;
  readonly taskToken: string;
  /** The work; it must stop promptly when the signal aborts. */
  readonly work: (signal: AbortSignal) => Promise<T>;
  /** What SendTaskSuccess reports (the state's output). */
  readonly output: (result: T) => unknown;
  /**
   * How often SendTaskHeartbeat is sent. The state machine's HeartbeatSeconds must be
   * larger (it is set to a few intervals, so one lost heartbeat does not fail the run).
   * @default 60 seconds
   */
  readonly heartbeatIntervalMs?: number;
  /** One line describing progress, logged with every heartbeat. */
  readonly progress?: () => string;
  /** Aborts the work from outside (SIGTERM). */
  readonly signal?: AbortSignal;
  /** Secrets that must never appear in a reported cause or a log line. */
  readonly secrets?: readonly (string | undefined)[];
  readonly log?: (line: string) => void;
}

export type TaskTokenOutcome<T> = { ok: true; result: T } | { ok: false; error: string; cause: string };

/** Step Functions limits: error 256 characters, cause 32,768. */
const MAX_CAUSE = 32_768;

/**
 * Runs `work` under a Step Functions task token: heartbeats while it runs, then exactly one
 * of SendTaskSuccess (with `output(result)`) or SendTaskFailure (error = the failure's
 * name as the state machine matches it, cause = a message for a human, secrets removed).
 * If Step Functions says the task is gone (timed out, execution stopped), the work is
 * aborted: nobody is waiting for it any more.
 */
export async function runWithTaskToken<T>(options: TaskTokenRunOptions<T>): Promise<TaskTokenOutcome<T>> {
  const { sfn, taskToken } = options;
  const log = options.log ?? ((line: string) => console.log(line));
  const secrets = options.secrets ?? [];
  const controller = new AbortController();
  const onOuterAbort = () => controller.abort(options.signal?.reason);
  options.signal?.addEventListener('abort', onOuterAbort, { once: true });
  if (options.signal?.aborted) onOuterAbort();

  let heartbeatFailure: Error | undefined;
  const timer = setInterval(() => {
    log(redact(`heartbeat: ${options.progress?.() ?? 'working'}`, secrets));
    sfn.send(new SendTaskHeartbeatCommand({ taskToken })).catch((error: Error) => {
      if (error.name === 'TaskTimedOut' || error.name === 'TaskDoesNotExist' || error.name === 'InvalidToken') {
        heartbeatFailure = error;
        controller.abort(Object.assign(new Error(`Step Functions no longer waits for this task (${error.name})`), { name: 'Aborted' }));
      } else {
        log(`heartbeat failed (will retry at the next interval): ${error.name}`);
      }
    });
  }, options.heartbeatIntervalMs ?? 60_000);

  try {
    const result = await options.work(controller.signal);
    await sfn.send(new SendTaskSuccessCommand({ taskToken, output: JSON.stringify(options.output(result)) }));
    return { ok: true, result };
  } catch (error) {
    const name = errorName(error);
    const cause = redact((error as Error)?.message ?? String(error), secrets).slice(0, MAX_CAUSE);
    if (!heartbeatFailure) {
      // Reporting the failure is what turns the execution red; if it fails too, the
      // state's heartbeat timeout still ends the execution, so log and carry on exiting.
      await sfn.send(new SendTaskFailureCommand({ taskToken, error: name, cause })).catch((sendError: Error) => {
        log(`could not report the failure to Step Functions: ${sendError.name}`);
      });
    }
    return { ok: false, error: name, cause };
  } finally {
    clearInterval(timer);
    options.signal?.removeEventListener('abort', onOuterAbort);
  }
}

/** Exit codes of the worker's entry points (and of `lifeboat dump`). */
export const EXIT = { committed: 0, failed: 1, invalidInput: 2 } as const;

export interface TaskRunOptions<T> extends Omit<TaskTokenRunOptions<T>, 'sfn' | 'taskToken' | 'log'> {
  /** Set when Step Functions started the task with .waitForTaskToken; otherwise the work runs directly. */
  readonly taskToken?: string;
  /** The Step Functions client, made only when there is a task token. */
  readonly sfn: () => TaskTokenClient;
  readonly log: (line: string) => void;
}

export interface TaskRunOutcome<T> {
  readonly code: number;
  readonly result?: T;
  /** The failure's name as the state machine matches it, and its message (secrets removed). */
  readonly error?: { readonly name: string; readonly message: string };
}

/**
 * An entry point's run: under its task token when Step Functions started it, directly
 * otherwise (operators, the local runner). Never throws: the outcome carries the exit code.
 */
export async function runTask<T>(options: TaskRunOptions<T>): Promise<TaskRunOutcome<T>> {
  const { taskToken, log } = options;
  const secrets = options.secrets ?? [];
  if (taskToken) {
    const outcome = await runWithTaskToken({ ...options, sfn: options.sfn(), taskToken });
    if (outcome.ok) return { code: EXIT.committed, result: outcome.result };
    log(redact(`failed: ${outcome.error}: ${outcome.cause}`, secrets));
    return { code: EXIT.failed, error: { name: outcome.error, message: outcome.cause } };
  }
  try {
    return { code: EXIT.committed, result: await options.work(options.signal ?? new AbortController().signal) };
  } catch (error) {
    const name = errorName(error);
    const message = redact((error as Error)?.message ?? String(error), secrets);
    log(`failed: ${name}: ${message}`);
    return { code: name === 'InvalidInput' ? EXIT.invalidInput : EXIT.failed, error: { name, message } };
  }
}
