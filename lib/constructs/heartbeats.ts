import { Duration, SecretValue, Validations } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { BACKUP_STARTED, EVENT_SOURCE } from '../steps/telemetry';

/** The three moments of a backup run an external monitor hears about. */
export type HeartbeatKind = 'start' | 'success' | 'failure';

/** A field of a heartbeat body: a constant, or a JSON path into the EventBridge event (null when the path holds null). */
export type HeartbeatField = { readonly value: string | number | null } | { readonly path: string };

/**
 * The JSON body POSTed to every heartbeat URL, per kind: one definition for the input
 * transformers of the rules and for the local runner (local/heartbeats.ts).
 *
 * The start heartbeat comes from the run's own `Backup Started` event (the AnnounceStart
 * state, before the dump): Step Functions' status-change event carries the execution input
 * only as a JSON string, which an input transformer cannot read, so a monitor could not tell
 * which source started.
 */
export const HEARTBEAT_BODIES: Readonly<Record<HeartbeatKind, Readonly<Record<string, HeartbeatField>>>> = {
  start: {
    event: { value: 'start' },
    source: { path: '$.detail.source' },
    runId: { path: '$.detail.runId' },
    status: { value: 'running' },
    durationSeconds: { value: null },
    scheduledTime: { path: '$.detail.scheduledTime' },
    execution: { path: '$.detail.execution' },
    executionArn: { path: '$.detail.executionArn' },
  },
  success: {
    event: { value: 'success' },
    source: { path: '$.detail.source' },
    runId: { path: '$.detail.runId' },
    status: { value: 'verified' },
    durationSeconds: { path: '$.detail.durationSeconds' },
    bytes: { path: '$.detail.bytes' },
  },
  failure: {
    event: { value: 'failure' },
    source: { path: '$.detail.source' },
    runId: { path: '$.detail.runId' },
    status: { value: 'failed' },
    durationSeconds: { value: null },
    failedState: { path: '$.detail.failedState' },
    error: { path: '$.detail.error' },
    rpoBreached: { path: '$.detail.rpoBreached' },
  },
};

/** The API key header every heartbeat carries (see `Heartbeats`: EventBridge requires an authorization). */
export const HEARTBEAT_AUTH_HEADER = 'x-lifeboat-heartbeat';
/** Its value: a placeholder, not a secret. The heartbeat URL itself is the monitor's credential. */
export const HEARTBEAT_AUTH_PLACEHOLDER = 'none';
/** Invocations per second per destination. */
export const HEARTBEAT_RATE_LIMIT_PER_SECOND = 5;
/** Attempts after the first for a heartbeat the monitor did not accept. */
export const HEARTBEAT_RETRY_ATTEMPTS = 3;
/** A heartbeat older than this is dropped to the dead-letter queue: a late "start" is noise. */
export const HEARTBEAT_MAX_EVENT_AGE = Duration.minutes(15);

export interface HeartbeatsProps {
  /** https URLs of external monitors (healthchecks.io, OneUptime incoming-request monitors…); none → no resources. */
  readonly heartbeatUrls: readonly string[];
}

/**
 * Pings external monitors on a backup run's start, success and failure, with nothing of
 * ours running: per URL an EventBridge connection and API destination (POST, rate limited),
 * and three rules on the default bus, each targeting every destination with a JSON body
 * (`HEARTBEAT_BODIES`), bounded retries and one dead-letter queue.
 *
 * Construct ids `Connection<i>` and `Destination<i>` follow the order of `heartbeatUrls`;
 * the rules are `RunStarted`, `BackupVerified`, `BackupFailed`.
 *
 * Authorization: EventBridge connections require one (basic, API key or OAuth), and none of
 * it is used by monitors that authenticate by the secret URL. Each connection sends the
 * header `x-lifeboat-heartbeat: none`, a placeholder that monitors ignore.
 */
export class Heartbeats extends Construct {
  public readonly destinations: readonly events.ApiDestination[];
  public readonly rules: readonly events.Rule[];
  /** Heartbeats that were not delivered within the retries and the maximum age; undefined when there are no URLs. */
  public readonly deadLetterQueue?: sqs.Queue;

  constructor(scope: Construct, id: string, props: HeartbeatsProps) {
    super(scope, id);
    if (props.heartbeatUrls.length === 0) {
      this.destinations = [];
      this.rules = [];
      return;
    }

    const deadLetterQueue = new sqs.Queue(this, 'DeadLetters', {
      // SQS-managed keys: EventBridge can write to it without a key policy of ours.
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    Validations.of(deadLetterQueue).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason: 'This queue is itself the dead-letter queue of the heartbeat targets: a message here is a heartbeat a monitor never got, not work to retry.',
    });
    this.deadLetterQueue = deadLetterQueue;

    this.destinations = props.heartbeatUrls.map((url, index) => {
      const connection = new events.Connection(this, `Connection${index}`, {
        description: `Lifeboat heartbeat ${index}: the URL authenticates; the API key is a placeholder EventBridge requires`,
        authorization: events.Authorization.apiKey(HEARTBEAT_AUTH_HEADER, SecretValue.unsafePlainText(HEARTBEAT_AUTH_PLACEHOLDER)),
      });
      return new events.ApiDestination(this, `Destination${index}`, {
        description: `Lifeboat heartbeat ${index}`,
        connection,
        endpoint: url,
        httpMethod: events.HttpMethod.POST,
        rateLimitPerSecond: HEARTBEAT_RATE_LIMIT_PER_SECOND,
      });
    });

    const rule = (ruleId: string, kind: HeartbeatKind, description: string, eventPattern: events.EventPattern) => {
      const created = new events.Rule(this, ruleId, { description, eventPattern });
      for (const destination of this.destinations) {
        created.addTarget(new targets.ApiDestination(destination, {
          event: heartbeatInput(kind),
          retryAttempts: HEARTBEAT_RETRY_ATTEMPTS,
          maxEventAge: HEARTBEAT_MAX_EVENT_AGE,
          deadLetterQueue,
        }));
      }
      return created;
    };
    this.rules = [
      rule('RunStarted', 'start', 'Lifeboat heartbeat: a backup run started', {
        source: [EVENT_SOURCE],
        detailType: [BACKUP_STARTED],
      }),
      rule('BackupVerified', 'success', 'Lifeboat heartbeat: a backup was verified', {
        source: [EVENT_SOURCE],
        detailType: ['Backup Verified'],
      }),
      rule('BackupFailed', 'failure', 'Lifeboat heartbeat: a backup failed', {
        source: [EVENT_SOURCE],
        detailType: ['Backup Failed'],
      }),
    ];
  }
}

/** The input transformer of one kind of heartbeat. */
export function heartbeatInput(kind: HeartbeatKind): events.RuleTargetInput {
  const body: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(HEARTBEAT_BODIES[kind])) {
    body[key] = 'path' in field ? events.EventField.fromPath(field.path) : field.value;
  }
  return events.RuleTargetInput.fromObject(body);
}
