import { SendTaskFailureCommand, SendTaskHeartbeatCommand, SendTaskSuccessCommand } from '@aws-sdk/client-sfn';
import { lifeboatError } from '../../lib/domain/errors';
import { runWithTaskToken, type TaskTokenClient } from '../../worker/task-token';

/** A Step Functions client at the SDK edge: records every command, optionally fails some. */
function fakeSfn(fail: (command: unknown) => Error | undefined = () => undefined) {
  const calls: { command: string; input: Record<string, unknown> }[] = [];
  const client: TaskTokenClient = {
    send: (async (command: { constructor: { name: string }; input: Record<string, unknown> }) => {
      calls.push({ command: command.constructor.name, input: command.input });
      const error = fail(command);
      if (error) throw error;
      return {};
    }) as unknown as TaskTokenClient['send'],
  };
  return { client, calls };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('heartbeats while the work runs, then reports success with the output', async () => {
  const sfn = fakeSfn();
  const lines: string[] = [];
  let bytes = 0;
  const outcome = await runWithTaskToken({
    sfn: sfn.client,
    taskToken: 'token-1',
    heartbeatIntervalMs: 20,
    progress: () => `${bytes} bytes uploaded`,
    log: (line) => lines.push(line),
    work: async () => {
      for (let i = 0; i < 5; i++) { bytes += 100; await sleep(25); }
      return { artifactBytes: bytes };
    },
    output: (result) => ({ summary: result }),
  });
  expect(outcome).toEqual({ ok: true, result: { artifactBytes: 500 } });
  const heartbeats = sfn.calls.filter((call) => call.command === SendTaskHeartbeatCommand.name);
  expect(heartbeats.length).toBeGreaterThanOrEqual(3);
  expect(heartbeats.every((call) => call.input.taskToken === 'token-1')).toBe(true);
  expect(lines.some((line) => /^heartbeat: [1-5]00 bytes uploaded$/.test(line))).toBe(true);
  expect(sfn.calls.at(-1)).toEqual({
    command: SendTaskSuccessCommand.name,
    input: { taskToken: 'token-1', output: JSON.stringify({ summary: { artifactBytes: 500 } }) },
  });
  expect(sfn.calls.filter((call) => call.command === SendTaskFailureCommand.name)).toHaveLength(0);
});

test.each([
  ['ClientTooOld', 'ClientTooOld'],
  ['DumpFailed', 'DumpFailed'],
  ['AlreadyCommitted', 'AlreadyCommitted'],
  ['TypeError', 'WorkerError'],
])('a %s failure is reported as error %s, with the message as cause and no secret', async (thrown, reported) => {
  const sfn = fakeSfn();
  const error = new Error('connection to db with password s3cr3t-pw failed');
  error.name = thrown;
  const outcome = await runWithTaskToken({
    sfn: sfn.client, taskToken: 't', secrets: ['s3cr3t-pw'], work: async () => { throw error; }, output: () => ({}),
  });
  expect(outcome).toEqual({ ok: false, error: reported, cause: 'connection to db with password *** failed' });
  expect(sfn.calls).toEqual([{
    command: SendTaskFailureCommand.name,
    input: { taskToken: 't', error: reported, cause: 'connection to db with password *** failed' },
  }]);
});

test('SIGTERM (the outer signal) aborts the work and is reported as Aborted', async () => {
  const sfn = fakeSfn();
  const sigterm = new AbortController();
  setTimeout(() => sigterm.abort(), 30);
  const outcome = await runWithTaskToken({
    sfn: sfn.client,
    taskToken: 't',
    signal: sigterm.signal,
    work: (signal) => new Promise((_resolve, reject) => {
      signal.addEventListener('abort', () => reject(lifeboatError('Aborted', 'SIGTERM received: upload aborted, nothing was committed')));
    }),
    output: () => ({}),
  });
  expect(outcome).toMatchObject({ ok: false, error: 'Aborted' });
  expect(sfn.calls.at(-1)).toMatchObject({ command: SendTaskFailureCommand.name, input: { error: 'Aborted' } });
});

test('when Step Functions no longer knows the task, the work is aborted and no failure is sent', async () => {
  const sfn = fakeSfn((command) =>
    command instanceof SendTaskHeartbeatCommand ? Object.assign(new Error('timed out'), { name: 'TaskTimedOut' }) : undefined);
  let aborted = false;
  const outcome = await runWithTaskToken({
    sfn: sfn.client,
    taskToken: 't',
    heartbeatIntervalMs: 10,
    log: () => undefined,
    work: (signal) => new Promise((_resolve, reject) => {
      signal.addEventListener('abort', () => { aborted = true; reject(signal.reason); });
    }),
    output: () => ({}),
  });
  expect(aborted).toBe(true);
  expect(outcome).toMatchObject({ ok: false, error: 'Aborted' });
  expect(sfn.calls.map((call) => call.command)).not.toContain(SendTaskFailureCommand.name);
});

test('a transient heartbeat error is logged and the work goes on', async () => {
  let first = true;
  const sfn = fakeSfn((command) => {
    if (command instanceof SendTaskHeartbeatCommand && first) { first = false; return Object.assign(new Error('x'), { name: 'ThrottlingException' }); }
    return undefined;
  });
  const lines: string[] = [];
  const outcome = await runWithTaskToken({
    sfn: sfn.client, taskToken: 't', heartbeatIntervalMs: 10, log: (line) => lines.push(line),
    work: async () => { await sleep(60); return 1; }, output: (n) => n,
  });
  expect(outcome).toEqual({ ok: true, result: 1 });
  expect(lines).toContain('heartbeat failed (will retry at the next interval): ThrottlingException');
});
