/**
 * The drill entry (worker/drill-main.ts): its environment, the task-token protocol around a
 * drill (the SFN client is a recording fake), the drill's error names passed through, and a
 * drill from offsite that reads the replica yet writes its report to the primary bucket. The
 * drill itself against real servers is test/integration/drill.test.ts.
 */
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { SendTaskFailureCommand, SendTaskHeartbeatCommand, SendTaskSuccessCommand } from '@aws-sdk/client-sfn';
import type { Source } from '../../lib/config/types';
import type { DrillReport } from '../../lib/domain/drill-report';
import { lifeboatError } from '../../lib/domain/errors';
import type { RunDrillOptions } from '../../lib/drill/run-drill';
import { drillJobFromEnv, type DrillJob } from '../../worker/drill-job';
import { drillSummary, routeByBucket, runDrillJob } from '../../worker/drill-main';
import type { TaskTokenClient } from '../../worker/task-token';
import { testConfig } from '../fixtures/config';
import { startS3, type S3Server } from '../harness/s3';

const orders = testConfig.sources[0];
const quiet = () => undefined;

function recordingSfn() {
  const calls: { command: string; input: Record<string, unknown> }[] = [];
  const client = {
    send: async (command: { constructor: { name: string }; input: Record<string, unknown> }) => {
      calls.push({ command: command.constructor.name, input: command.input });
      return {};
    },
  } as unknown as TaskTokenClient;
  return { client, calls };
}

function report(overrides: Partial<DrillReport> = {}): DrillReport {
  return {
    schemaVersion: 1, lifeboatVersion: '0.0.0', source: 'orders', drillId: '20261127T050000Z', runId: '20261127T030000Z',
    from: 'primary', engine: 'postgres', server: { version: '17.2', major: 17 },
    startedAt: '2026-11-27T05:00:00.000Z', finishedAt: '2026-11-27T05:03:00.000Z',
    timings: { downloadSeconds: 20, restoreSeconds: 140, checkSeconds: 5 }, measuredRtoSeconds: 165, rtoTargetSeconds: 3600,
    checks: [{ name: 'table-set', ok: true, detail: '3 tables' }, { name: 'rto', ok: true, detail: '2m45s of 1h' }], verdict: 'ok',
    ...overrides,
  };
}

const job = (overrides: Partial<DrillJob> = {}): DrillJob => ({
  bucket: 'primary', offsiteBucket: 'offsite', offsiteRegion: 'eu-central-1', source: orders, from: 'primary', taskToken: 'token', region: 'eu-west-1',
  ...overrides,
});
const noS3 = new S3Client({ region: 'eu-west-1' });

describe('the drill environment', () => {
  const env = {
    LIFEBOAT_BUCKET: 'primary', LIFEBOAT_OFFSITE_BUCKET: 'offsite', LIFEBOAT_OFFSITE_REGION: 'eu-central-1',
    LIFEBOAT_SOURCE_CONFIG: JSON.stringify(orders), LIFEBOAT_DRILL_FROM: 'offsite', LIFEBOAT_TASK_TOKEN: 'token', AWS_REGION: 'eu-west-1',
  };

  test('is read into a job: the resolved source, where to drill from, the task token', () => {
    expect(drillJobFromEnv(env)).toMatchObject({
      bucket: 'primary', offsiteBucket: 'offsite', offsiteRegion: 'eu-central-1', from: 'offsite', taskToken: 'token', region: 'eu-west-1',
      source: { name: 'orders', engine: 'postgres', tier: { rtoSeconds: 3600 } },
    });
    expect(drillJobFromEnv({ ...env, LIFEBOAT_DRILL_FROM: undefined }).from).toBe('primary');
  });

  test('fails InvalidInput naming every problem at once', () => {
    const attempt = () => drillJobFromEnv({ LIFEBOAT_DRILL_FROM: 'offsite', LIFEBOAT_SOURCE_CONFIG: JSON.stringify({ name: 'Orders!', engine: 'oracle' }) });
    expect(attempt).toThrow(expect.objectContaining({ name: 'InvalidInput' }));
    const message = (() => { try { attempt(); } catch (error) { return (error as Error).message; } return ''; })();
    for (const field of ['LIFEBOAT_BUCKET', 'LIFEBOAT_OFFSITE_BUCKET', 'LIFEBOAT_OFFSITE_REGION', 'LIFEBOAT_SOURCE_CONFIG.name', 'LIFEBOAT_SOURCE_CONFIG.engine', 'tier.rtoSeconds', 'connection.databases', 'drillChecks']) {
      expect(message).toContain(field);
    }
    expect(() => drillJobFromEnv({ ...env, LIFEBOAT_DRILL_FROM: 'elsewhere' })).toThrow(/LIFEBOAT_DRILL_FROM: "elsewhere" is not valid \(valid: primary, offsite\)/);
    expect(() => drillJobFromEnv({ ...env, LIFEBOAT_SOURCE_CONFIG: '{' })).toThrow(/LIFEBOAT_SOURCE_CONFIG: not valid JSON/);
  });
});

describe('the task-token protocol', () => {
  test('heartbeats while the drill runs, then SendTaskSuccess with the report summary', async () => {
    const sfn = recordingSfn();
    const outcome = await runDrillJob(job(), {
      s3: noS3, sfn: sfn.client, heartbeatIntervalMs: 20, log: quiet,
      runDrill: async () => new Promise((resolve) => setTimeout(() => resolve(report()), 120)),
    });
    expect(outcome.code).toBe(0);
    expect(sfn.calls.filter((call) => call.command === SendTaskHeartbeatCommand.name).length).toBeGreaterThanOrEqual(2);
    const success = sfn.calls.filter((call) => call.command === SendTaskSuccessCommand.name);
    expect(success).toHaveLength(1);
    expect(JSON.parse(success[0].input.output as string)).toEqual({
      source: 'orders', drillId: '20261127T050000Z', runId: '20261127T030000Z', from: 'primary', verdict: 'ok',
      measuredRtoSeconds: 165, rtoTargetSeconds: 3600, checks: 2, bucket: 'primary', reportKey: 'drills/orders/20261127T050000Z/report.json',
    });
    expect(sfn.calls.some((call) => call.command === SendTaskFailureCommand.name)).toBe(false);
  });

  test.each(['TableSetMismatch', 'RowCountMismatch', 'ExtensionMissing', 'DrillCheckFailed', 'RtoExceeded', 'NoVerifiedRun', 'RunNotVerified', 'TargetNotEmpty'] as const)(
    'a drill failing %s is reported under that name, exit code 1', async (name) => {
      const sfn = recordingSfn();
      const outcome = await runDrillJob(job(), {
        s3: noS3, sfn: sfn.client, log: quiet,
        runDrill: async () => { throw lifeboatError(name, `the drill says ${name}`); },
      });
      expect(outcome).toMatchObject({ code: 1, error: { name, message: `the drill says ${name}` } });
      expect(sfn.calls).toEqual([{ command: SendTaskFailureCommand.name, input: { taskToken: 'token', error: name, cause: `the drill says ${name}` } }]);
    });

  test('an unforeseen failure is a WorkerError; SIGTERM aborts the drill as Aborted', async () => {
    const sfn = recordingSfn();
    const crashed = await runDrillJob(job(), { s3: noS3, sfn: sfn.client, log: quiet, runDrill: async () => { throw new TypeError('boom'); } });
    expect(crashed.error?.name).toBe('WorkerError');

    const stop = new AbortController();
    const aborted = runDrillJob(job(), {
      s3: noS3, sfn: sfn.client, log: quiet, signal: stop.signal,
      runDrill: ({ signal }) => new Promise((_resolve, reject) => signal?.addEventListener('abort', () => reject(signal.reason as Error))),
    });
    stop.abort(lifeboatError('Aborted', 'SIGTERM received'));
    expect(await aborted).toMatchObject({ code: 1, error: { name: 'Aborted' } });
  });

  test('without a task token the drill runs directly (an operator)', async () => {
    const outcome = await runDrillJob(job({ taskToken: undefined }), { s3: noS3, log: quiet, runDrill: async () => report() });
    expect(outcome).toMatchObject({ code: 0, report: { verdict: 'ok' } });
    expect(drillSummary(report(), 'primary').reportKey).toBe('drills/orders/20261127T050000Z/report.json');
  });
});

describe('a drill from offsite', () => {
  test('restores from the offsite bucket and writes its report to the primary bucket', async () => {
    const seen: RunDrillOptions[] = [];
    const outcome = await runDrillJob(job({ from: 'offsite' }), {
      s3: noS3, offsiteS3: new S3Client({ region: 'eu-central-1' }), sfn: recordingSfn().client, log: quiet,
      runDrill: async (options) => {
        seen.push(options);
        return report({ from: 'offsite' });
      },
    });
    expect(outcome.code).toBe(0);
    expect(seen[0]).toMatchObject({ bucket: 'offsite', reportBucket: 'primary', from: 'offsite', source: { name: 'orders' } });
  });

  test('requests naming the primary bucket go to the primary region\'s client, the others to the offsite one', async () => {
    const sent: string[] = [];
    const fake = (region: string) => Object.assign(new S3Client({ region }), {
      send: async (command: { input: { Bucket?: string } }) => { sent.push(`${region} ${command.input.Bucket}`); return {}; },
    }) as unknown as S3Client;
    const routed = routeByBucket(fake('eu-central-1'), fake('eu-west-1'), 'primary');
    expect(routed).toBeInstanceOf(S3Client);
    await routed.send(new GetObjectCommand({ Bucket: 'offsite', Key: 'runs/orders/x/manifest.json' }));
    await routed.send(new PutObjectCommand({ Bucket: 'primary', Key: 'drills/orders/x/report.json', Body: '{}' }));
    expect(sent).toEqual(['eu-central-1 offsite', 'eu-west-1 primary']);
  });
});

describe('with the real drill and a real S3 server', () => {
  let s3: S3Server;
  beforeAll(async () => {
    s3 = await startS3();
    await s3.createBucket('primary');
  }, 60_000);
  afterAll(async () => {
    await s3?.stop();
  });

  test('a source without a verified run fails NoVerifiedRun, reported to Step Functions', async () => {
    const sfn = recordingSfn();
    const source: Source = { ...orders, name: 'never-backed-up' };
    const outcome = await runDrillJob(job({ source }), { s3: s3.client(), sfn: sfn.client, log: quiet });
    expect(outcome).toMatchObject({ code: 1, error: { name: 'NoVerifiedRun' } });
    expect(sfn.calls).toEqual([{ command: SendTaskFailureCommand.name, input: expect.objectContaining({ error: 'NoVerifiedRun', cause: expect.stringContaining('never-backed-up') }) }]);
  });
});
