import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import type { S3Client } from '@aws-sdk/client-s3';
import type { Context } from 'aws-lambda';
import { StateMachine } from 'aws-local-stepfunctions';
import type { Source } from '../lib/config/types';
import { runJob, manifestSummary } from '../worker/main';
import type { BackupJob } from '../worker/job';
import type { BackupProgress } from '../worker/run-backup';
import { formatRunId } from '../lib/domain/run-id';
import { recordEvent, type ExecutionHistory } from './history';

/** What the local stand-ins for AWS are: the S3/SNS server, the buckets, the topic. */
export interface LocalServices {
  /** The local S3 (and SNS) server's endpoint. */
  readonly endpoint: string;
  readonly region: string;
  readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string };
  readonly s3: S3Client;
  readonly primaryBucket: string;
  readonly offsiteBucket: string;
  readonly offsiteRegion: string;
  /** The local SNS topic standing in for the alarm topic. */
  readonly alarmTopicArn: string;
  /** Where the Record steps send their EventBridge events (a local capture endpoint). */
  readonly eventsEndpoint: string;
}

/** Where the local database really is (the config's host is where it would be in AWS). */
export interface LocalTarget {
  readonly host: string;
  readonly port: number;
  readonly username: string;
  readonly password?: string;
}

export interface LocalRunHooks {
  /** After Dump succeeded, before Verify: fault injection (tamper with the artifact). */
  readonly afterDump?: (summary: { source: string; runId: string; bucket: string }, services: LocalServices) => Promise<void>;
  /** While Dump runs, once bytes are flowing: fault injection (kill the database). */
  readonly duringDump?: () => Promise<void>;
}

export interface LocalRunOptions {
  /** The synthesized backup-run definition (local/definition.ts). */
  readonly definition: Record<string, unknown>;
  /**
   * The execution input the source's schedule sends, with the slot time filled in
   * (local/definition.ts scheduleInput).
   */
  readonly input: Record<string, unknown>;
  readonly source: Source;
  readonly target: LocalTarget;
  readonly services: LocalServices;
  readonly scheduledTime: Date;
  readonly hooks?: LocalRunHooks;
  /** @default - log lines from the worker and the handlers are dropped */
  readonly log?: (line: string) => void;
  /** Time the Wait between two offsite checks takes locally. @default 100 ms */
  readonly offsitePollMs?: number;
  /** Every source's RPO, for the failure messages (set once, when the handlers load). @default - this source's */
  readonly rpoSecondsBySource?: Readonly<Record<string, number>>;
}

export interface LocalRunResult {
  readonly history: ExecutionHistory;
  readonly output?: Record<string, unknown>;
  /** What NotifyFailure published to the (local) alarm topic. */
  readonly notifications: { subject?: string; message: string }[];
}

type Handler = (event: unknown, context: Context) => Promise<unknown>;

/**
 * Sets the environment the Lambda handlers read once at load, then loads them. Called
 * once per process: the handlers are modules, and their configuration is module state.
 */
export function loadLocalHandlers(
  services: LocalServices,
  offsiteMaxAttempts = 60,
  rpoSecondsBySource: Readonly<Record<string, number>> = {},
): Record<string, Handler> {
  Object.assign(process.env, {
    AWS_REGION: services.region,
    AWS_ACCESS_KEY_ID: services.credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: services.credentials.secretAccessKey,
    LIFEBOAT_BUCKET: services.primaryBucket,
    LIFEBOAT_S3_ENDPOINT: services.endpoint,
    LIFEBOAT_OFFSITE_BUCKET: services.offsiteBucket,
    LIFEBOAT_OFFSITE_REGION: services.offsiteRegion,
    LIFEBOAT_OFFSITE_S3_ENDPOINT: services.endpoint,
    LIFEBOAT_OFFSITE_MAX_ATTEMPTS: String(offsiteMaxAttempts),
    LIFEBOAT_EVENTS_ENDPOINT: services.eventsEndpoint,
    LIFEBOAT_RPO_SECONDS: JSON.stringify(rpoSecondsBySource),
    POWERTOOLS_LOG_LEVEL: process.env.POWERTOOLS_LOG_LEVEL ?? 'SILENT',
    POWERTOOLS_METRICS_DISABLED: process.env.POWERTOOLS_METRICS_DISABLED ?? 'true',
    POWERTOOLS_METRICS_NAMESPACE: 'Lifeboat',
  });
  /* eslint-disable @typescript-eslint/no-require-imports */
  return {
    verify: (require('../lambdas/verify/handler') as { handler: Handler }).handler,
    commit: (require('../lambdas/commit/handler') as { handler: Handler }).handler,
    awaitOffsite: (require('../lambdas/await-offsite/handler') as { handler: Handler }).handler,
    record: (require('../lambdas/record/handler') as { handler: Handler }).handler,
    recordFailure: (require('../lambdas/record-failure/handler') as { handler: Handler }).handler,
  };
  /* eslint-enable @typescript-eslint/no-require-imports */
}

let handlers: Record<string, Handler> | undefined;
let handlersEndpoint: string | undefined;

/**
 * Executes the synthesized backup-run definition with aws-local-stepfunctions. Every Task
 * state is bound, by its name, to the code that runs behind it in AWS: Dump to the worker,
 * Verify/Commit/AwaitOffsite/Record/RecordFailure to the Lambda handlers, NotifyFailure to
 * the local SNS topic. Retry, Catch, Choice and Wait are the interpreter's.
 */
export async function runLocalExecution(opts: LocalRunOptions): Promise<LocalRunResult> {
  const { source, services } = opts;
  if (handlers === undefined) {
    handlers = loadLocalHandlers(services, undefined, opts.rpoSecondsBySource ?? { [source.name]: source.tier.rpoSeconds });
    handlersEndpoint = services.endpoint;
  } else if (handlersEndpoint !== services.endpoint) {
    // The handlers read their configuration once, at load (as in Lambda): they cannot follow
    // a second set of local services. Fail loudly rather than talk to a stopped server.
    throw new Error(`the Lambda handlers of this process were loaded for ${handlersEndpoint}; ` +
      `one process runs the local backup cycle against one set of local services (got ${services.endpoint})`);
  }
  const log = opts.log ?? (() => undefined);
  const notifications: { subject?: string; message: string }[] = [];
  const lambdaContext = (name: string) => ({
    functionName: name,
    awsRequestId: `local-${Date.now()}`,
    getRemainingTimeInMillis: () => 900_000,
    callbackWaitsForEmptyEventLoop: false,
  }) as unknown as Context;
  const invoke = (name: string) => async (input: unknown) => {
    const result = await (handlers as Record<string, Handler>)[name](input, lambdaContext(name));
    return result as never;
  };

  const hooksLeft: { duringDump?: () => Promise<void> } = { duringDump: opts.hooks?.duringDump };
  const dump = async (input: unknown) => {
    const overrides = (input as { Overrides?: { ContainerOverrides?: { Environment?: { Name: string; Value: string }[] }[] } }).Overrides;
    const env = Object.fromEntries((overrides?.ContainerOverrides?.[0]?.Environment ?? []).map((entry) => [entry.Name, entry.Value]));
    const scheduled = new Date(env.LIFEBOAT_SCHEDULED_TIME ?? opts.scheduledTime.toISOString());
    const job: BackupJob = {
      source: source.name,
      engine: source.engine,
      tier: source.tier.name,
      runId: formatRunId(scheduled),
      target: { ...opts.target, databases: source.connection.databases },
      bucket: services.primaryBucket,
      s3Endpoint: services.endpoint,
      region: services.region,
      objectLockMode: 'GOVERNANCE',
      sizeHintBytes: source.sizeHintBytes,
      compression: source.dumpOptions.compression,
      exactCountMaxBytes: source.dumpOptions.exactCountMaxBytes,
      excludeTables: source.dumpOptions.excludeTables,
    };
    const progress: BackupProgress = { phase: 'preflight', bytesUploaded: 0 };
    let finished = false;
    const running = runJob(job, { s3: services.s3, log, progress }).finally(() => {
      finished = true;
    });
    const duringDump = hooksLeft.duringDump;
    if (duringDump) {
      // Once, on the first attempt that gets bytes flowing (retries run without it).
      while (progress.bytesUploaded === 0 && !finished) await new Promise((resolve) => setTimeout(resolve, 5));
      if (!finished) {
        hooksLeft.duringDump = undefined;
        await duringDump();
      }
    }
    const outcome = await running;
    if (!outcome.manifest) {
      throw Object.assign(new Error(outcome.error?.message ?? 'the dump failed'), { name: outcome.error?.name ?? 'DumpFailed' });
    }
    const summary = manifestSummary(outcome.manifest, job.bucket);
    await opts.hooks?.afterDump?.(summary, services);
    return summary as never;
  };

  const sns = new SNSClient({ endpoint: services.endpoint, region: services.region, credentials: services.credentials });
  const notify = async (input: unknown) => {
    const { Subject, Message } = input as { Subject?: string; Message: string };
    await sns.send(new PublishCommand({ TopicArn: services.alarmTopicArn, Subject, Message }));
    notifications.push({ subject: Subject, message: Message });
    return {} as never;
  };

  // A task still running when the execution ends (a States.Runtime failure) must settle
  // before the caller stops the servers it uses.
  const inFlight = new Set<Promise<unknown>>();
  const track = (fn: (input: unknown) => Promise<never>) => (input: unknown) => {
    const running = fn(input);
    inFlight.add(running);
    running.then(() => inFlight.delete(running), () => inFlight.delete(running));
    return running;
  };

  const machine = new StateMachine(opts.definition as never, { validationOptions: { checkArn: true, checkPaths: true } });
  const history: ExecutionHistory = { rows: [], status: 'RUNNING' };
  const executionName = `${source.name}-${opts.scheduledTime.toISOString().replace(/[-:.]/g, '')}`;
  const input = opts.input;
  const execution = machine.run(input as never, {
    overrides: {
      taskResourceLocalHandlers: {
        Dump: track(dump),
        Verify: track(invoke('verify')),
        VerifyOnFargate: track(invoke('verify')),
        Commit: track(invoke('commit')),
        AwaitOffsite: track(invoke('awaitOffsite')),
        Record: track(invoke('record')),
        RecordFailure: track(invoke('recordFailure')),
        NotifyFailure: track(notify),
      },
      waitTimeOverrides: { WaitForOffsite: opts.offsitePollMs ?? 100 },
      // Retries keep their count; locally they need not wait minutes.
      retryIntervalOverrides: { Dump: 10, Verify: 10, VerifyOnFargate: 10, Commit: 10, AwaitOffsite: 10 },
    },
    context: {
      Execution: { Id: `local:${executionName}`, Name: executionName, Input: input as never, StartTime: new Date().toISOString() },
      Task: { Token: 'local-task-token' },
    },
  });
  const collecting = (async () => {
    for await (const event of execution.eventLogs) recordEvent(history, event as never);
  })();
  let output: Record<string, unknown> | undefined;
  try {
    output = (await execution.result) as Record<string, unknown>;
  } catch {
    // The failure is in the event log (ExecutionFailed), which the history records.
  }
  await collecting;
  await Promise.allSettled([...inFlight]);
  return { history, output, notifications };
}
