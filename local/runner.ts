/**
 * Executes a synthesized state machine (the backup run, the restore drill) with
 * aws-local-stepfunctions, IAM-true. Each Task state is bound by what its Resource says, as
 * Step Functions would run it:
 *
 * - a Lambda function ARN (or `lambda:invoke`): the state machine's role must be allowed
 *   `lambda:InvokeFunction` on it; then the function's handler (lambdas/<name>/handler.ts,
 *   found by its Powertools service name) runs as the function's role, with the environment
 *   the template gives the function;
 * - `ecs:runTask.waitForTaskToken`: the state machine's role must be allowed `ecs:RunTask` on
 *   the task definition and `iam:PassRole` on its roles; then the container's entry point runs
 *   as the task role, with the task definition's environment plus the state's overrides, and
 *   answers a task token of its own through the Step Functions API (SendTaskSuccess /
 *   SendTaskFailure / SendTaskHeartbeat, authorized like every call);
 * - `sns:publish`, `events:putEvents` and `aws-sdk:*`: the call, made by the state machine's role.
 *
 * Retry, Catch, Choice and Wait are the interpreter's. Locally only the database differs from
 * AWS: the task talks to the local target instead of the configured host.
 */
import type { Context } from 'aws-lambda';
import { StateMachine } from 'aws-local-stepfunctions';
import type { S3Client } from '@aws-sdk/client-s3';
import { EventBridgeClient, PutEventsCommand, type PutEventsCommandOutput } from '@aws-sdk/client-eventbridge';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import type { Source } from '../lib/config/types';
import type { TlsOptions } from '../lib/domain/tls';
import { runJob } from '../worker/main';
import { jobFromEnv } from '../worker/job';
import type { BackupProgress } from '../worker/run-backup';
import { runVerifyJob, verifyJobFromEnv } from '../worker/verify-main';
import { runDrillJob } from '../worker/drill-main';
import { drillJobFromEnv } from '../worker/drill-job';
import { pitrVerifyJobFromEnv, runPitrVerifyJob } from '../worker/pitr-verify-main';
import { pitrExpireJobFromEnv, runPitrExpireJob } from '../worker/pitr-expire-main';
import { pitrDrillJobFromEnv, runPitrDrillJob } from '../worker/pitr-drill-main';
import { binlogDrillJobFromEnv, runBinlogDrillJob } from '../worker/binlog-drill-main';
import { nativeDrillJobFromEnv, runNativeDrillJob } from '../worker/native-drill-main';
import { binlogArchiveJobFromEnv, runBinlogArchiveJob, type BinlogArchiveOutcome } from '../worker/binlog-archive-main';
import { physicalPlanJobFromEnv, runPhysicalPlanJob } from '../worker/binlog-physical-plan-main';
import { physicalVerifyJobFromEnv, runPhysicalVerifyJob } from '../worker/binlog-physical-verify-main';
import type { ScheduleInfo } from './iam/model';
import * as rdsSdk from '@aws-sdk/client-rds';
import { createRdsClient } from '../lib/rds/client';
import type { LocalSsm } from './ssm';
import { asPrincipal, requestsForCall, type AwsRequest } from './iam';
import type { LocalAws } from './aws';
import { scheduleInput, stateMachineDefinition } from './definition';
import { handlerEndpoint } from './handler-endpoint';
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
  /** The alarm topic (its ARN in the templates, when started by startLocalAws). */
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
  /**
   * TLS to the local database, instead of the config's (which is for the configured host): a
   * `--target-url`'s sslmode and sslrootcert (lib/domain/tls.ts tlsFromUrl).
   * @default - { mode: 'prefer' }: a throwaway server of the local cycle, on loopback
   */
  readonly tls?: TlsOptions;
}

export interface LocalRunHooks {
  /** After Dump succeeded, before Verify: fault injection (tamper with the artifact). */
  readonly afterDump?: (summary: { source: string; runId: string; bucket: string }, services: LocalServices) => Promise<void>;
  /** While Dump runs, once bytes are flowing: fault injection (kill the database). */
  readonly duringDump?: () => Promise<void>;
}

export interface LocalRunOptions {
  readonly aws: LocalAws;
  readonly source: Source;
  readonly target: LocalTarget;
  readonly scheduledTime: Date;
  /** @default - the backup run of the app's primary template */
  readonly definition?: Record<string, unknown>;
  /** @default - what the source's schedule sends for `scheduledTime` (local/definition.ts scheduleInput) */
  readonly input?: Record<string, unknown>;
  readonly hooks?: LocalRunHooks;
  /** @default - log lines from the worker and the handlers are dropped */
  readonly log?: (line: string) => void;
  /** Time the Wait between two offsite checks takes locally. @default 100 ms */
  readonly offsitePollMs?: number;
}

export interface LocalRunResult {
  readonly history: ExecutionHistory;
  readonly output?: Record<string, unknown>;
  /** What NotifyFailure published to the alarm topic. */
  readonly notifications: { subject?: string; message: string }[];
}

type Handler = (event: unknown, context: Context) => Promise<unknown>;

/**
 * Checks of the offsite copy locally: the Wait between two takes 100 ms instead of a minute, so
 * more of them cover the time the local replicator needs.
 */
const LOCAL_OFFSITE_MAX_ATTEMPTS = 60;

interface LoadedHandlers {
  readonly key: string;
  /** By function ARN. */
  readonly byArn: Map<string, Handler>;
}

let loaded: LoadedHandlers | undefined;

/**
 * Loads every Lambda handler of the primary template, each with the environment the template
 * gives its function (read once, at load, as in Lambda) plus the local endpoint (a stable one
 * that forwards to the run in progress: local/handler-endpoint.ts). Once per process (module
 * registry): the handlers' configuration is module state, so one process runs the handlers of
 * one app (its bucket names); any number of runs of it, one after the other.
 */
export async function loadLocalHandlers(aws: LocalAws): Promise<Map<string, Handler>> {
  const { services, app } = aws;
  const key = `${app.primary.stackName} ${services.primaryBucket} ${services.offsiteBucket} ${app.primary.region}`;
  if (loaded) {
    if (loaded.key !== key) {
      throw new Error(`the Lambda handlers of this process were loaded for ${loaded.key}; ` +
        `one process runs the handlers of one app (got ${key})`);
    }
    return loaded.byArn;
  }
  const endpoint = await handlerEndpoint();
  const local = {
    AWS_REGION: app.primary.region,
    AWS_ACCESS_KEY_ID: services.credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: services.credentials.secretAccessKey,
    LIFEBOAT_S3_ENDPOINT: endpoint,
    LIFEBOAT_OFFSITE_S3_ENDPOINT: endpoint,
    LIFEBOAT_EVENTS_ENDPOINT: endpoint,
    LIFEBOAT_OFFSITE_MAX_ATTEMPTS: String(LOCAL_OFFSITE_MAX_ATTEMPTS),
    POWERTOOLS_LOG_LEVEL: process.env.POWERTOOLS_LOG_LEVEL ?? 'SILENT',
    POWERTOOLS_METRICS_DISABLED: process.env.POWERTOOLS_METRICS_DISABLED ?? 'true',
  };
  const byArn = new Map<string, Handler>();
  for (const fn of aws.model.functions.values()) {
    // The state machines invoke the primary stack's functions; the offsite stack's (its pruner,
    // its snapshot copier) run in another account, on their own schedules.
    if (fn.origin !== `${app.primary.stackName}/${fn.logicalId}`) continue;
    const environment = (app.primary.properties(fn.logicalId).Environment as { Variables?: Record<string, string> } | undefined)?.Variables ?? {};
    const name = environment.POWERTOOLS_SERVICE_NAME?.replace(/^lifeboat-/, '');
    if (!name) continue;
    Object.assign(process.env, environment, local);
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    byArn.set(fn.arn, (require(`../lambdas/${name}/handler`) as { handler: Handler }).handler);
  }
  loaded = { key, byArn };
  return byArn;
}

/** Runs the container entry point of a task; its outcome goes through the task token in `env`. */
type ContainerEntry = (env: Record<string, string>, task: { readonly progress: BackupProgress; readonly log: (line: string) => void }) => Promise<unknown>;

/** The entry points of the worker image, by container name (lib/constructs). */
const CONTAINERS: Readonly<Record<string, ContainerEntry>> = {
  Worker: (env, task) => runJob(jobFromEnv(env), { progress: task.progress, log: task.log }),
  Verifier: (env, task) => runVerifyJob(verifyJobFromEnv(env), { log: task.log }),
  Drill: (env, task) => runDrillJob(drillJobFromEnv(env), { log: task.log }),
  PitrVerifier: (env, task) => runPitrVerifyJob(pitrVerifyJobFromEnv(env), { log: task.log }),
  PitrExpire: (env, task) => runPitrExpireJob(pitrExpireJobFromEnv(env), { log: task.log }),
  PhysicalPlan: (env, task) => runPhysicalPlanJob(physicalPlanJobFromEnv(env), { log: task.log }),
  PhysicalVerifier: (env, task) => runPhysicalVerifyJob(physicalVerifyJobFromEnv(env), { log: task.log }),
};

/**
 * Entry points that share a container name with another (the PITR drill task's container is
 * `Drill`, as the drill state machine's override names it): chosen by the task definition's
 * entry point, as the image would run it.
 */
const ENTRY_POINTS: Readonly<Record<string, ContainerEntry>> = {
  '/app/pitr-drill.js': (env, task) => runPitrDrillJob(pitrDrillJobFromEnv(env), { log: task.log }),
  '/app/native-drill.js': (env, task) => runNativeDrillJob(nativeDrillJobFromEnv(env), { log: task.log }),
  '/app/binlog-drill.js': (env, task) => runBinlogDrillJob(binlogDrillJobFromEnv(env), { log: task.log }),
};

/**
 * Step Functions' AWS SDK integrations speak the Java SDK v2's shapes: `Db` where the API says
 * `DB` (DbInstanceIdentifier, DbInstances), timestamps as ISO strings. Locally the call is made
 * with the JavaScript SDK: its names in, the integration's names out.
 */
function sdkV2Names(value: unknown, toApi: boolean): unknown {
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map((item) => sdkV2Names(item, toApi));
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(Object.entries(value).filter(([key]) => key !== '$metadata').map(([key, item]) => [
    toApi ? key.replace(/Db(?=[A-Z]|s?$)/g, 'DB') : key.replace(/DB(?=[A-Z]|s?$)/g, 'Db'),
    sdkV2Names(item, toApi),
  ]));
}

/**
 * An SDK error as Step Functions names it: `Rds.<Name>` in the Java SDK v2's words (DB → Db,
 * Fault → Exception, always an Exception suffix); an error the SDK models no class for
 * (AccessDenied, Throttling) is the service's generic `Rds.RdsException`.
 */
export function stepFunctionsRdsErrorName(name: string): string {
  if (!/(Fault|Exception)$/.test(name)) return 'Rds.RdsException';
  return `Rds.${name.replace(/DB/g, 'Db').replace(/Fault$/, 'Exception')}`;
}

interface StateJson {
  readonly Type: string;
  readonly Resource?: string;
  readonly Parameters?: Record<string, unknown>;
}

interface ExecuteOptions {
  readonly aws: LocalAws;
  readonly definition: Record<string, unknown>;
  readonly stateMachineArn: string;
  readonly input: Record<string, unknown>;
  readonly executionName: string;
  /** Environment the containers get beyond their task definition's: the local endpoints, the local database. */
  readonly containerEnv: Record<string, string>;
  readonly log: (line: string) => void;
  readonly waitTimeOverrides?: Record<string, number>;
  readonly retryIntervalOverrides?: Record<string, number>;
  /** Called with the output of each successful task, before the execution goes on. */
  readonly afterTask?: (state: string, output: unknown) => Promise<void>;
  /** Called once per execution, while the first ECS task of this state runs and has uploaded bytes. */
  readonly duringTask?: { readonly state: string; readonly run: () => Promise<void> };
  /** SSM Run Command on this machine (the PITR run's host). */
  readonly ssm?: LocalSsm;
  /** The execution's start time (`$$.Execution.StartTime`). @default - now */
  readonly startTime?: Date;
}

/**
 * Executes a definition locally with every Task bound as the module comment says. Returns the
 * history as the console shows it, the output, and what was published to the alarm topic.
 */
export async function executeLocally(opts: ExecuteOptions): Promise<LocalRunResult> {
  const { aws, log } = opts;
  const model = aws.model;
  const stateMachine = model.stateMachines.get(opts.stateMachineArn);
  if (!stateMachine) throw new Error(`no state machine ${opts.stateMachineArn} in the templates`);
  const role = stateMachine.roleArn;
  const evaluator = aws.evaluator;
  const notifications: { subject?: string; message: string }[] = [];
  const handlers = await loadLocalHandlers(aws);
  const states = (opts.definition as { States: Record<string, StateJson> }).States;
  const executionArn = `${opts.stateMachineArn.replace(':stateMachine:', ':execution:')}:${opts.executionName}`;

  /** A request of the state machine's role, authorized before the state's work starts. */
  const authorize = async (requests: AwsRequest[], errorName: string) => {
    if (evaluator) await evaluator.authorize(requests, errorName);
  };
  const lambdaContext = (name: string) => ({
    functionName: name,
    awsRequestId: `local-${Date.now()}`,
    getRemainingTimeInMillis: () => 900_000,
    callbackWaitsForEmptyEventLoop: false,
  }) as unknown as Context;

  const lambdaTask = (functionArn: string, wrap: boolean) => async (input: unknown) => {
    await authorize([{ principal: role, action: 'lambda:InvokeFunction', resource: functionArn, call: `Step Functions → Lambda Invoke ${functionArn}` }],
      'Lambda.AWSLambdaException');
    const handler = handlers.get(functionArn);
    if (!handler) throw new Error(`no local handler for ${functionArn}`);
    const payload = wrap ? (input as { Payload?: unknown }).Payload : input;
    const result = await asPrincipal(model.functionRole(functionArn), () => handler(payload, lambdaContext(functionArn)));
    return (wrap ? { StatusCode: 200, Payload: result } : result) as never;
  };

  let duringTask = opts.duringTask;
  const ecsTask = (state: string) => async (input: unknown) => {
    const parameters = input as {
      Cluster: string; TaskDefinition: string;
      Overrides?: { ContainerOverrides?: { Name: string; Environment?: { Name: string; Value: string }[] }[] };
    };
    const definition = model.taskDefinitions.get(parameters.TaskDefinition);
    if (!definition) throw Object.assign(new Error(`ECS: task definition ${parameters.TaskDefinition} does not exist`), { name: 'ECS.ClientException' });
    await authorize([
      { principal: role, action: 'ecs:RunTask', resource: definition.arn, context: { 'ecs:cluster': parameters.Cluster }, call: `Step Functions → ECS RunTask ${definition.family}` },
      ...[definition.taskRoleArn, definition.executionRoleArn].filter((arn): arn is string => arn !== undefined).map((arn) => ({
        principal: role, action: 'iam:PassRole', resource: arn, context: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' }, call: `Step Functions → ECS RunTask ${definition.family}`,
      })),
    ], 'ECS.AmazonECSException');
    const container = containerDefinition(aws, parameters.TaskDefinition);
    const override = parameters.Overrides?.ContainerOverrides?.find((candidate) => candidate.Name === container.name);
    const { token, outcome } = aws.taskTokens.issue(opts.stateMachineArn, opts.executionName, state);
    const env: Record<string, string> = {
      ...container.environment,
      ...Object.fromEntries((override?.Environment ?? []).map((entry) => [entry.Name, entry.Value])),
      ...opts.containerEnv,
      // The interpreter gives every task of an execution the same token; Step Functions gives each its own.
      LIFEBOAT_TASK_TOKEN: token,
    };
    const entry = ENTRY_POINTS[container.entryFile ?? ''] ?? CONTAINERS[container.name];
    if (!entry) throw new Error(`no local entry point for container ${container.name} of ${definition.family}`);
    const progress: BackupProgress = { phase: 'preflight', bytesUploaded: 0 };
    let exited = false;
    const running = asPrincipal(definition.taskRoleArn as string, () => entry(env, { progress, log })).finally(() => {
      exited = true;
    });
    const hook = duringTask?.state === state ? duringTask : undefined;
    if (hook) {
      // Once, on the first attempt that gets bytes flowing (retries run without it).
      while (progress.bytesUploaded === 0 && !exited) await new Promise((resolve) => setTimeout(resolve, 5));
      if (!exited) {
        duringTask = undefined;
        await hook.run();
      }
    }
    await running;
    // A task that exits without answering its token fails the state when its heartbeat stops.
    const answered = await Promise.race([outcome, new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 1000))]);
    if (!answered) throw Object.assign(new Error(`${container.name} exited without answering its task token`), { name: 'States.HeartbeatTimeout' });
    if (!answered.ok) throw Object.assign(new Error(answered.cause), { name: answered.error });
    await opts.afterTask?.(state, answered.output);
    return answered.output as never;
  };

  const snsTask = async (input: unknown) => {
    const { TopicArn, Subject, Message } = input as { TopicArn: string; Subject?: string; Message: string };
    const sns = new SNSClient({ region: aws.app.primary.region, endpoint: aws.services.endpoint, credentials: aws.services.credentials });
    try {
      await asPrincipal(role, () => sns.send(new PublishCommand({ TopicArn, Subject, Message })));
    } catch (error) {
      throw Object.assign(new Error((error as Error).message), { name: `SNS.${(error as Error).name}` });
    } finally {
      sns.destroy();
    }
    notifications.push({ subject: Subject, message: Message });
    return {} as never;
  };

  // The optimized integration: Detail is JSON in the state, a string on the wire; the
  // execution and state machine ARNs join Resources; a failed entry fails the state.
  const eventsTask = async (input: unknown) => {
    const { Entries } = input as { Entries: { Detail?: unknown; DetailType?: string; Source?: string; EventBusName?: string; Resources?: string[] }[] };
    const events = new EventBridgeClient({ region: aws.app.primary.region, endpoint: aws.services.eventsEndpoint, credentials: aws.services.credentials });
    let output: PutEventsCommandOutput;
    try {
      output = await asPrincipal(role, () => events.send(new PutEventsCommand({
        Entries: Entries.map((entry) => ({
          ...entry,
          Detail: typeof entry.Detail === 'string' ? entry.Detail : JSON.stringify(entry.Detail ?? {}),
          Resources: [...(entry.Resources ?? []), executionArn, opts.stateMachineArn],
        })),
      })));
    } catch (error) {
      throw Object.assign(new Error((error as Error).message), { name: `EventBridge.${(error as Error).name}` });
    } finally {
      events.destroy();
    }
    if ((output.FailedEntryCount ?? 0) > 0) {
      throw Object.assign(new Error(JSON.stringify(output.Entries)), { name: 'EventBridge.FailedEntry' });
    }
    return { Entries: output.Entries, FailedEntryCount: output.FailedEntryCount ?? 0 } as never;
  };

  // No local CloudWatch: the call is authorized and the metric kept (LocalAws.metrics).
  const cloudWatchTask = async (input: unknown) => {
    const { requests } = requestsForCall(model, role, 'CloudWatch', 'PutMetricData', input as Record<string, unknown>);
    await authorize(requests, 'CloudWatch.AccessDeniedException');
    const { Namespace, MetricData } = input as { Namespace: string; MetricData?: unknown[] };
    aws.metrics.push({ namespace: Namespace, data: MetricData ?? [] });
    return {} as never;
  };

  // SSM Run Command: authorized as the state machine's role (the document, and each instance
  // it reaches with its tags), then run on this machine (local/ssm.ts). Step Functions names an
  // SDK error Ssm.<Name>Exception.
  const ssmTask = (action: 'sendCommand' | 'listCommands' | 'listCommandInvocations') => async (input: unknown) => {
    const ssm = opts.ssm;
    if (!ssm) throw new Error(`state machine calls SSM ${action}, and this local run has no SSM stand-in`);
    const { region, account } = aws.app.primary.env;
    const call = `Step Functions → SSM ${action[0].toUpperCase()}${action.slice(1)}`;
    const named = (error: unknown) => {
      const name = (error as Error).name;
      return Object.assign(new Error((error as Error).message), { name: `Ssm.${name.endsWith('Exception') ? name : `${name}Exception`}` });
    };
    try {
      if (action === 'sendCommand') {
        const command = input as { DocumentName: string; Targets: { Key: string; Values: string[] }[]; Parameters?: Record<string, string[]> };
        const instances = ssm.resolveTargets(command.Targets);
        await authorize([
          { principal: role, action: 'ssm:SendCommand', resource: `arn:aws:ssm:${region}:${account}:document/${command.DocumentName}`, call },
          ...instances.map((instance) => ({
            principal: role, action: 'ssm:SendCommand', call,
            resource: instance.instanceId.startsWith('mi-')
              ? `arn:aws:ssm:${region}:${account}:managed-instance/${instance.instanceId}`
              : `arn:aws:ec2:${region}:${account}:instance/${instance.instanceId}`,
            context: Object.fromEntries(Object.entries(instance.tags).map(([key, value]) => [`ssm:resourceTag/${key}`, value])),
          })),
        ], 'Ssm.AccessDeniedException');
        return ssm.sendCommand(command) as never;
      }
      await authorize([{ principal: role, action: `ssm:${action[0].toUpperCase()}${action.slice(1)}`, resource: '*', call }], 'Ssm.AccessDeniedException');
      return (action === 'listCommands' ? ssm.listCommands(input as { CommandId: string }) : ssm.listCommandInvocations(input as { CommandId: string })) as never;
    } catch (error) {
      if ((error as Error).name.startsWith('Ssm.')) throw error;
      throw named(error);
    }
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

  // aws-sdk:rds:<action>: the call made with an RDSClient of lib/rds/client.ts as the state
  // machine's role (IAM-true through whatever stands RDS in: test/harness/rds.ts).
  const rdsTask = (action: string) => async (input: unknown) => {
    const commandName = `${action[0].toUpperCase()}${action.slice(1)}Command`;
    const Command = (rdsSdk as unknown as Record<string, new (input: unknown) => never>)[commandName];
    if (!Command) throw new Error(`no RDS command ${commandName} in @aws-sdk/client-rds`);
    const client = createRdsClient({ region: aws.app.primary.region, credentials: aws.services.credentials, maxAttempts: 1 });
    try {
      const output = await asPrincipal(role, () => client.send(new Command(sdkV2Names(input, true))));
      return sdkV2Names(output, false) as never;
    } catch (error) {
      throw Object.assign(new Error((error as Error).message), { name: stepFunctionsRdsErrorName((error as Error).name) });
    } finally {
      client.destroy();
    }
  };

  const bindings: Record<string, (input: unknown) => Promise<never>> = {};
  for (const [name, state] of Object.entries(states)) {
    if (state.Type !== 'Task' || !state.Resource) continue;
    const resource = state.Resource;
    if (/^arn:[^:]+:lambda:/.test(resource)) bindings[name] = track(lambdaTask(resource, false));
    else if (/:states:::lambda:invoke$/.test(resource)) bindings[name] = track(lambdaTask(String(state.Parameters?.FunctionName), true));
    else if (/:states:::ecs:runTask\.waitForTaskToken$/.test(resource)) bindings[name] = track(ecsTask(name));
    else if (/:states:::sns:publish$/.test(resource)) bindings[name] = track(snsTask);
    else if (/:states:::events:putEvents$/.test(resource)) bindings[name] = track(eventsTask);
    else if (/:states:::aws-sdk:cloudwatch:putMetricData$/.test(resource)) bindings[name] = track(cloudWatchTask);
    else if (/:states:::aws-sdk:rds:\w+$/.test(resource)) bindings[name] = track(rdsTask(/:rds:(\w+)$/.exec(resource)?.[1] as string));
    else if (/:states:::aws-sdk:ssm:(sendCommand|listCommands|listCommandInvocations)$/.test(resource)) {
      bindings[name] = track(ssmTask(/:ssm:(\w+)$/.exec(resource)?.[1] as 'sendCommand'));
    }
    else throw new Error(`state ${name}: no local binding for Resource ${resource}`);
  }

  const machine = new StateMachine(withNodeTimers(withStartTime(opts.definition, opts.startTime)) as never, { validationOptions: { checkArn: true, checkPaths: true } });
  const history: ExecutionHistory = { rows: [], status: 'RUNNING' };
  const execution = machine.run(opts.input as never, {
    overrides: {
      taskResourceLocalHandlers: bindings,
      waitTimeOverrides: opts.waitTimeOverrides,
      retryIntervalOverrides: opts.retryIntervalOverrides,
    },
    context: {
      Execution: { Id: executionArn, Name: opts.executionName, Input: opts.input as never },
      ...(opts.startTime ? { [LOCAL_START_TIME]: opts.startTime.toISOString() } : {}),
      Task: { Token: 'issued-per-task-by-the-local-runner' },
      // The interpreter has no $$.State; EnteredTime is read when a state's paths are evaluated, as it is entered.
      State: { get EnteredTime() { return new Date().toISOString(); } },
    } as never,
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
  await opts.ssm?.settle();
  return { history, output, notifications };
}

/** Where a local run's chosen start time is in the context object (see withStartTime). */
const LOCAL_START_TIME = 'LocalExecutionStartTime';

/**
 * The interpreter sets `$$.Execution.StartTime` to the moment it starts, whatever the context
 * says: an execution run as of another start time (a drill whose target alternates with the
 * date) reads it from the context's own field instead.
 */
function withStartTime(definition: Record<string, unknown>, startTime: Date | undefined): Record<string, unknown> {
  if (!startTime) return definition;
  return JSON.parse(JSON.stringify(definition).replaceAll('$$.Execution.StartTime', () => `$$.${LOCAL_START_TIME}`)) as Record<string, unknown>;
}

/** Node's timers hold at most 2^31 - 1 ms (24.8 days); a longer one fires at once. */
const MAX_TIMER_SECONDS = Math.floor((2 ** 31 - 1) / 1000);

/**
 * The definition with every TimeoutSeconds above what a Node timer can hold clamped to it (the
 * drill state machine's 30 days would otherwise abort the execution at once). A local run
 * never lasts that long, so no timeout the definition means is lost.
 */
function withNodeTimers(definition: Record<string, unknown>): Record<string, unknown> {
  const clamp = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(clamp);
    if (node === null || typeof node !== 'object') return node;
    return Object.fromEntries(Object.entries(node).map(([key, value]) =>
      [key, key === 'TimeoutSeconds' && typeof value === 'number' ? Math.min(value, MAX_TIMER_SECONDS) : clamp(value)]));
  };
  return clamp(definition) as Record<string, unknown>;
}

/** The one container of a task definition: its name, the script its entry point runs, and its resolved environment. */
function containerDefinition(aws: LocalAws, taskDefinitionArn: string): { name: string; entryFile?: string; environment: Record<string, string> } {
  const stack = aws.app.primary;
  const id = stack.ofType('AWS::ECS::TaskDefinition').find((candidate) => stack.arn(candidate) === taskDefinitionArn) as string;
  const [container] = stack.properties(id).ContainerDefinitions as { Name: string; EntryPoint?: string[]; Environment?: { Name: string; Value: string }[] }[];
  return {
    name: container.Name,
    ...(container.EntryPoint ? { entryFile: container.EntryPoint.at(-1) } : {}),
    environment: Object.fromEntries((container.Environment ?? []).map((entry) => [entry.Name, String(entry.Value)])),
  };
}

/** What every local container gets instead of AWS's endpoints and the configured database. */
function localContainerEnv(aws: LocalAws, target?: LocalTarget): Record<string, string> {
  const { services } = aws;
  return {
    AWS_REGION: aws.app.primary.region,
    AWS_ACCESS_KEY_ID: services.credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: services.credentials.secretAccessKey,
    LIFEBOAT_S3_ENDPOINT: services.endpoint,
    ...(target ? {
      LIFEBOAT_DB_HOST: target.host,
      LIFEBOAT_DB_PORT: String(target.port),
      LIFEBOAT_DB_USER: target.username,
      ...(target.password ? { LIFEBOAT_DB_PASSWORD: target.password } : {}),
      // The template's TLS is for the configured host; an empty value unsets its CA file.
      LIFEBOAT_DB_TLS_MODE: target.tls?.mode ?? 'prefer',
      LIFEBOAT_DB_TLS_CA_FILE: target.tls?.caFile ?? '',
      LIFEBOAT_DB_TLS_CA_PEM: '',
    } : {}),
  };
}

/**
 * Executes the synthesized backup-run definition for one source's slot (see `executeLocally`).
 */
export async function runLocalExecution(opts: LocalRunOptions): Promise<LocalRunResult> {
  const { aws, source } = opts;
  const machine = aws.model.stateMachineNamed('-backup-run');
  const definition = opts.definition ?? stateMachineDefinition(aws.app.primary);
  const input = opts.input ?? scheduleInput(aws.app.primary, source.name, opts.scheduledTime);
  const executionName = `${source.name}-${opts.scheduledTime.toISOString().replace(/[-:.]/g, '')}`;
  return executeLocally({
    aws,
    definition,
    stateMachineArn: machine.arn,
    input,
    executionName,
    containerEnv: localContainerEnv(aws, opts.target),
    log: opts.log ?? (() => undefined),
    waitTimeOverrides: { WaitForOffsite: opts.offsitePollMs ?? 100 },
    // Retries keep their count; locally they need not wait minutes.
    retryIntervalOverrides: Object.fromEntries(Object.keys((definition as { States: object }).States).map((state) => [state, 10])),
    afterTask: async (state, output) => {
      if (state === 'Dump' && opts.hooks?.afterDump) await opts.hooks.afterDump(output as { source: string; runId: string; bucket: string }, aws.services);
    },
    duringTask: opts.hooks?.duringDump ? { state: 'Dump', run: opts.hooks.duringDump } : undefined,
  });
}

/** Executes the synthesized restore-drill definition for one source (the input its drill schedule sends, `from` set). */
export async function runLocalDrillExecution(opts: {
  readonly aws: LocalAws;
  readonly source: Source;
  readonly from: 'primary' | 'offsite';
  readonly log?: (line: string) => void;
  readonly now?: Date;
  /** The source's logical drill, or its PITR drill (its drill task of kind 'pitr' or 'binlog'). @default 'logical' */
  readonly kind?: 'logical' | 'pitr' | 'binlog';
  /** The drill task's environment beyond its task definition's (a PITR drill: pgBackRest's endpoint here). */
  readonly containerEnv?: Record<string, string>;
}): Promise<LocalRunResult> {
  const { aws, source } = opts;
  const machine = aws.model.stateMachineNamed('-restore-drill');
  const now = opts.now ?? new Date();
  const definition = stateMachineDefinition(aws.app.primary, undefined, '-restore-drill');
  const kindOf = (input: Record<string, unknown>) => /-(pitr|binlog):\d+$/.exec(String((input.target as { taskDefinitionArn?: string } | undefined)?.taskDefinitionArn ?? ''))?.[1] ?? 'logical';
  const input = {
    ...scheduleInput(aws.app.primary, source.name, now, undefined, '-restore-drill', (candidate) => kindOf(candidate) === (opts.kind ?? 'logical')),
    from: opts.from,
  };
  return executeLocally({
    aws,
    definition,
    stateMachineArn: machine.arn,
    input,
    executionName: `${source.name}-${opts.kind && opts.kind !== 'logical' ? `${opts.kind}-` : ''}drill-${now.toISOString().replace(/[-:.]/g, '')}`,
    containerEnv: { ...localContainerEnv(aws), ...opts.containerEnv },
    log: opts.log ?? (() => undefined),
    retryIntervalOverrides: Object.fromEntries(Object.keys((definition as { States: object }).States).map((state) => [state, 10])),
  });
}

/**
 * Executes the synthesized PITR backup run for one source and backup type: the input its
 * schedule sends, the host command through the SSM stand-in (the document's script on this
 * machine), the PITR verifier with `verifierEnv` (pgBackRest's S3 endpoint: the local TLS front).
 */
export async function runLocalPitrExecution(opts: {
  readonly aws: LocalAws;
  readonly source: Source;
  readonly type: 'full' | 'diff' | 'incr';
  readonly scheduledTime: Date;
  readonly ssm: LocalSsm;
  readonly verifierEnv: Record<string, string>;
  readonly log?: (line: string) => void;
}): Promise<LocalRunResult> {
  const { aws, source } = opts;
  const machine = aws.model.stateMachineNamed('-pitr-run');
  const definition = stateMachineDefinition(aws.app.primary, undefined, '-pitr-run');
  const input = scheduleInput(aws.app.primary, source.name, opts.scheduledTime, undefined, '-pitr-run', (candidate) => candidate.type === opts.type);
  return executeLocally({
    aws,
    definition,
    stateMachineArn: machine.arn,
    input,
    executionName: `${source.name}-${opts.type}-${opts.scheduledTime.toISOString().replace(/[-:.]/g, '')}`,
    containerEnv: { ...localContainerEnv(aws), ...opts.verifierEnv },
    log: opts.log ?? (() => undefined),
    waitTimeOverrides: { WaitForOffsite: 100, WaitForHost: 1000 },
    retryIntervalOverrides: Object.fromEntries(Object.keys((definition as { States: object }).States).map((state) => [state, 10])),
    ssm: opts.ssm,
  });
}

/**
 * Executes the synthesized RDS point-in-time drill of one RDS/Aurora source
 * (`<app>-native-drill-<source>`, the input its schedule sends) with the drill polls' Wait
 * instant. RDS is whatever stands RDSClient in (test/harness/rds.ts); the checker gets
 * `containerEnv` beyond the local endpoints (the backup user's password, which ECS would inject
 * from the secret; TLS to a local stand-in).
 */
export async function runLocalNativeDrillExecution(opts: {
  readonly aws: LocalAws;
  readonly source: Source;
  /** `$$.Execution.StartTime`: the target alternates with its date. @default - now */
  readonly startTime?: Date;
  readonly containerEnv?: Record<string, string>;
  readonly log?: (line: string) => void;
}): Promise<LocalRunResult> {
  const { aws, source } = opts;
  const suffix = `-native-drill-${source.name}`;
  const machine = aws.model.stateMachineNamed(suffix);
  const startTime = opts.startTime ?? new Date();
  const definition = stateMachineDefinition(aws.app.primary, undefined, suffix);
  return executeLocally({
    aws,
    definition,
    stateMachineArn: machine.arn,
    input: scheduleInput(aws.app.primary, source.name, startTime, undefined, suffix),
    executionName: `${source.name}-native-drill-${startTime.toISOString().replace(/[-:.]/g, '')}`,
    containerEnv: { ...localContainerEnv(aws), ...opts.containerEnv },
    log: opts.log ?? (() => undefined),
    waitTimeOverrides: { WaitForDrill: 0 },
    retryIntervalOverrides: Object.fromEntries(Object.keys((definition as { States: object }).States).map((state) => [state, 10])),
    startTime,
  });
}

/**
 * EventBridge Scheduler running a task directly (its universal target `ecs:runTask`: the
 * binary-log archiver), as the schedule's role: ecs:RunTask on the task definition in the
 * cluster and iam:PassRole of its roles are authorized like every call, the container's
 * environment is the template's with the override's (the slot substituted as Scheduler does)
 * and the local endpoints, and the entry point runs as the task role. Returns the archiver's
 * outcome (a scheduled task answers no task token).
 */
export async function runLocalScheduledTask(opts: {
  readonly aws: LocalAws;
  readonly schedule: ScheduleInfo;
  readonly target: LocalTarget;
  readonly scheduledTime: Date;
  readonly log?: (line: string) => void;
}): Promise<BinlogArchiveOutcome> {
  const { aws, schedule } = opts;
  if (!/:aws-sdk:ecs:runTask$/.test(schedule.targetArn) || !schedule.input) throw new Error(`schedule ${schedule.name} does not run a task`);
  const parameters = JSON.parse(schedule.input.replaceAll('<aws.scheduler.scheduled-time>', opts.scheduledTime.toISOString())) as {
    Cluster: string; TaskDefinition: string;
    Overrides?: { ContainerOverrides?: { Name: string; Environment?: { Name: string; Value: string }[] }[] };
  };
  const definition = aws.model.taskDefinitions.get(parameters.TaskDefinition);
  if (!definition) throw Object.assign(new Error(`ECS: task definition ${parameters.TaskDefinition} does not exist`), { name: 'ClientException' });
  const call = `Scheduler → ECS RunTask ${definition.family} (${schedule.name})`;
  await aws.evaluator?.authorize([
    { principal: schedule.roleArn, action: 'ecs:RunTask', resource: definition.arn, context: { 'ecs:cluster': parameters.Cluster }, call },
    ...[definition.taskRoleArn, definition.executionRoleArn].filter((arn): arn is string => arn !== undefined).map((arn) => ({
      principal: schedule.roleArn, action: 'iam:PassRole', resource: arn, context: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' }, call,
    })),
  ], 'AccessDeniedException');
  const container = containerDefinition(aws, parameters.TaskDefinition);
  if (container.entryFile !== '/app/binlog-archive.js') throw new Error(`no local entry point for a scheduled task running ${container.entryFile ?? container.name}`);
  const override = parameters.Overrides?.ContainerOverrides?.find((candidate) => candidate.Name === container.name);
  const env: Record<string, string> = {
    ...container.environment,
    ...Object.fromEntries((override?.Environment ?? []).map((entry) => [entry.Name, entry.Value])),
    ...localContainerEnv(aws, opts.target),
  };
  return asPrincipal(definition.taskRoleArn as string, () => runBinlogArchiveJob(binlogArchiveJobFromEnv(env), { log: opts.log ?? (() => undefined) }));
}
