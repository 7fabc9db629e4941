import { lifeboatError } from '../lib/domain/errors';

/**
 * An abort signal for SIGTERM (ECS stopping the task) and SIGINT: the work aborts with
 * `Aborted` and a message saying what was stopped; the process then reports and exits
 * non-zero instead of dying mid-upload.
 */
export function abortOnTermination(what: string, log: (line: string) => void = console.log): AbortSignal {
  const stop = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    log(`${signal} received: stopping ${what}`);
    stop.abort(lifeboatError('Aborted', `${signal} received: ${what} was stopped before it finished`));
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  return stop.signal;
}
