/**
 * The steps' pure parts and their payloads at the SDK edge: what Record and RecordFailure
 * emit (a fake EventBridge client, a recording metrics double, and real Powertools EMF on
 * stdout), the on-call message, the checksum comparison, and configuration from the environment.
 */
import { Metrics } from '@aws-lambda-powertools/metrics';
import type { PutEventsCommand, PutEventsCommandOutput } from '@aws-sdk/client-eventbridge';
import { createS3Client } from '../../lib/aws/s3-client';
import { checksumDifference } from '../../lib/steps/await-offsite';
import { positiveIntegerEnv, requireEnv, secondsBySourceEnv } from '../../lib/steps/env';
import { record } from '../../lib/steps/record';
import { causeInWords, describeFailure, FIRST_CHECK, recordFailure, toSubject, type Protection } from '../../lib/steps/record-failure';
import type { EventSender, MetricsSink } from '../../lib/steps/telemetry';

class FakeEvents implements EventSender {
  readonly sent: PutEventsCommand[] = [];
  constructor(private readonly answer: Partial<PutEventsCommandOutput> | Error = { FailedEntryCount: 0, Entries: [{ EventId: 'event-1' }] }) {}
  async send(command: PutEventsCommand): Promise<PutEventsCommandOutput> {
    this.sent.push(command);
    if (this.answer instanceof Error) throw this.answer;
    return { $metadata: {}, ...this.answer };
  }
  /** The entries sent, with Detail parsed. */
  entries() {
    return this.sent.flatMap((command) => (command.input.Entries ?? []).map((entry) => ({ ...entry, Detail: JSON.parse(entry.Detail ?? 'null') })));
  }
}

class RecordingMetrics implements MetricsSink {
  readonly dimensions: Record<string, string> = {};
  readonly metadata: Record<string, string> = {};
  readonly metrics: { name: string; unit: string; value: number }[] = [];
  addDimension(name: string, value: string) {
    this.dimensions[name] = value;
  }
  addMetadata(key: string, value: string) {
    this.metadata[key] = value;
  }
  addMetric(name: string, unit: string, value: number) {
    this.metrics.push({ name, unit, value });
  }
}

const dump = {
  source: 'orders',
  runId: '20261126T030000Z',
  engine: 'postgres',
  bucket: 'primary',
  manifestKey: 'runs/orders/20261126T030000Z/manifest.json',
  artifacts: [{ key: 'runs/orders/20261126T030000Z/orders.pgdump', bytes: 1_000_000, sha256: 'a'.repeat(64) }],
  bytes: 1_000_000,
  tables: 3,
  rows: 42,
  durationSeconds: 8,
};
const NOW = new Date('2026-11-26T04:00:00Z');

describe('Record', () => {
  const state = {
    source: 'orders',
    scheduledTime: '2026-11-26T03:00:00Z',
    dump,
    verification: { verdict: 'ok' },
    commit: { committed: true },
    offsite: { present: true, attempts: 3, lagSeconds: 150 },
  };

  test('metrics per source and a Backup Verified event', async () => {
    const metrics = new RecordingMetrics();
    const events = new FakeEvents();
    const result = await record(state, { metrics, events, eventBus: 'lifeboat-bus', now: () => NOW });

    expect(metrics.dimensions).toEqual({ source: 'orders' });
    expect(metrics.metrics).toEqual([
      { name: 'BackupSucceeded', unit: 'Count', value: 1 },
      { name: 'BackupBytes', unit: 'Bytes', value: 1_000_000 },
      { name: 'BackupDurationSeconds', unit: 'Seconds', value: 8 },
      { name: 'BackupThroughputBytesPerSecond', unit: 'Bytes/Second', value: 125_000 },
      { name: 'OffsiteLagSeconds', unit: 'Seconds', value: 150 },
    ]);
    expect(events.entries()).toEqual([{
      Source: 'lifeboat',
      DetailType: 'Backup Verified',
      EventBusName: 'lifeboat-bus',
      Time: NOW,
      Detail: {
        source: 'orders',
        runId: '20261126T030000Z',
        bytes: 1_000_000,
        durationSeconds: 8,
        bucket: 'primary',
        manifestKey: 'runs/orders/20261126T030000Z/manifest.json',
        offsite: { present: true, lagSeconds: 150, attempts: 3 },
      },
    }]);
    expect(result).toEqual({ eventId: 'event-1', metrics: expect.objectContaining({ BackupSucceeded: 1, OffsiteLagSeconds: 150 }) });
  });

  test('no throughput for a zero duration, no offsite lag when there is none, the default bus', async () => {
    const metrics = new RecordingMetrics();
    const events = new FakeEvents();
    await record({ dump: { ...dump, durationSeconds: 0 }, offsite: { present: false, attempts: 0 } }, { metrics, events });
    expect(metrics.metrics.map((metric) => metric.name)).toEqual(['BackupSucceeded', 'BackupBytes', 'BackupDurationSeconds']);
    expect(events.entries()[0]).toMatchObject({ EventBusName: 'default', Detail: { offsite: { present: false, lagSeconds: null } } });
  });

  test('an event EventBridge refuses fails the step, naming its code', async () => {
    const events = new FakeEvents({ FailedEntryCount: 1, Entries: [{ ErrorCode: 'InternalFailure', ErrorMessage: 'try again' }] });
    await expect(record(state, { metrics: new RecordingMetrics(), events })).rejects.toMatchObject({
      name: 'EventNotDelivered', message: 'EventBridge refused the "Backup Verified" event on bus default: InternalFailure try again',
    });
  });

  test('a state without a dump: InvalidInput', async () => {
    await expect(record({ source: 'orders' }, { metrics: new RecordingMetrics(), events: new FakeEvents() })).rejects.toMatchObject({ name: 'InvalidInput' });
  });

  test('with real Powertools Metrics: one EMF document, namespace Lifeboat, dimension source', async () => {
    const lines: string[] = [];
    const write = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      lines.push(chunk.toString());
      return true;
    });
    try {
      const metrics = new Metrics({ namespace: 'Lifeboat', serviceName: 'lifeboat-record' });
      await record(state, { metrics, events: new FakeEvents() });
      metrics.publishStoredMetrics();
    } finally {
      write.mockRestore();
    }
    const emf = lines.map((line) => JSON.parse(line)).find((doc) => doc._aws);
    expect(emf._aws.CloudWatchMetrics).toEqual([{
      Namespace: 'Lifeboat',
      Dimensions: [expect.arrayContaining(['service', 'source'])],
      Metrics: expect.arrayContaining([
        { Name: 'BackupSucceeded', Unit: 'Count' },
        { Name: 'BackupBytes', Unit: 'Bytes' },
        { Name: 'BackupThroughputBytesPerSecond', Unit: 'Bytes/Second' },
        { Name: 'OffsiteLagSeconds', Unit: 'Seconds' },
      ]),
    }]);
    expect(emf).toMatchObject({ source: 'orders', service: 'lifeboat-record', BackupSucceeded: 1, BackupBytes: 1_000_000, runId: '20261126T030000Z' });
  });
});

describe('RecordFailure: the message a person on call reads', () => {
  const failedAt = (failedState: string, Error: string, Cause: unknown, extra: Record<string, unknown> = {}) => ({
    source: 'orders', scheduledTime: '2026-11-26T03:15:00Z', offsite: { attempts: 0, present: false }, failedState, failure: { Error, Cause }, ...extra,
  });
  const protection: Protection = {
    known: true, lastVerified: { runId: '20261126T030000Z', dataAsOf: new Date('2026-11-26T03:00:01Z') }, rpoSeconds: 900, bucket: 'primary',
  };

  test('a dump that failed: source, slot, state, error, cause, what it means, first thing to check', () => {
    const report = describeFailure(
      failedAt('Dump', 'ClientTooOld', 'pg_dump 15.19 is older than the server (17.2): pg_dump must be at least major 17'),
      protection,
      NOW,
    );
    expect(report.subject).toBe('Lifeboat: orders backup failed at Dump: ClientTooOld');
    expect(report.message).toBe([
      'The backup of orders failed: slot 20261126T031500Z, in the Dump state.',
      '',
      'Error: ClientTooOld',
      'Cause: pg_dump 15.19 is older than the server (17.2): pg_dump must be at least major 17',
      '',
      'What it means: This run produced no backup: nothing was committed. The last verified backup of orders is run 20261126T030000Z, ' +
        '59m 59s old; the RPO is 15m: it is breached by 44m 59s.',
      '',
      `First thing to check: ${FIRST_CHECK.ClientTooOld}`,
    ].join('\n'));
    expect(report.detail).toEqual({
      source: 'orders', runId: '20261126T031500Z', failedState: 'Dump', error: 'ClientTooOld',
      cause: 'pg_dump 15.19 is older than the server (17.2): pg_dump must be at least major 17',
      lastVerifiedRunId: '20261126T030000Z', lastVerifiedAgeSeconds: 3599, rpoSeconds: 900, rpoBreached: true,
    });
  });

  test.each<[string, string, string, RegExp]>([
    ['Verify', 'ChecksumMismatch', 'run', /damaged in transit or in storage.*Re-run/],
    ['Verify', 'ArchiveCorrupt', 'run', /damaged in transit or in storage/],
    ['Dump', 'AuthenticationFailed', 'slot', /the source's password secret in Secrets Manager/],
    ['Dump', 'SourceUnreachable', 'slot', /security group/],
    ['Dump', 'States.HeartbeatTimeout', 'slot', /worker stopped sending heartbeats: it died.*task's stopped reason and the last lines of its logs/],
    ['AwaitOffsite', 'OffsiteMissing', 'run', /replication status.*Replication Time Control metrics/],
    ['Commit', 'NotVerified', 'run', /verifier's result did not vouch/],
    ['Verify', 'Lambda.Unknown', 'run', /Lambda function crashed/],
    ['Verify', 'Lambda.TooManyRequestsException', 'run', /Lambda function crashed/],
    ['Dump', 'DumpTimedOut', 'slot', /did not finish within its schedule interval/],
    ['Dump', 'SomethingNew', 'slot', /Read the cause above, then the logs of the Dump step/],
  ])('%s failing with %s: the first thing to check', (failedState, error, kind, check) => {
    const withDump = kind === 'run' ? { dump } : {};
    const report = describeFailure(failedAt(failedState, error, 'x', withDump), protection, NOW);
    expect(report.message).toMatch(new RegExp(`^The backup of orders failed: ${kind} 2026112\\dT03\\d{4}Z, in the ${failedState} state\\.`));
    expect(report.message.split('\n').find((line) => line.startsWith('First thing to check:'))).toMatch(check);
  });

  test.each<[string, string, RegExp]>([
    ['AwaitOffsite', 'OffsiteMissing', /verified and counts as a backup in the primary bucket, but its offsite copy is not confirmed/],
    ['Record', 'EventNotDelivered', /verified and committed; only recording it/],
    ['Verify', 'SuspiciousSize', /not proven restorable: it does not count as a backup/],
    ['Dump', 'AlreadyCommitted', /already committed by an earlier execution: nothing is lost/],
  ])('%s failing with %s: what it means for protection', (failedState, error, meaning) => {
    expect(describeFailure(failedAt(failedState, error, 'x', { dump }), protection, NOW).message).toMatch(meaning);
  });

  test.each<[string, Protection, RegExp, boolean | null]>([
    ['within the RPO', { ...protection, lastVerified: { runId: '20261126T034500Z', dataAsOf: new Date('2026-11-26T03:50:00Z') } },
      /is run 20261126T034500Z, 10m old; the RPO is 15m: it will be breached in 5m unless a backup succeeds\./, false],
    ['no verified backup at all', { known: true, rpoSeconds: 900, bucket: 'primary' }, /orders has no verified backup in s3:\/\/primary: it is not protected at all\./, true],
    ['no RPO known', { ...protection, rpoSeconds: undefined }, /is run 20261126T030000Z, 59m 59s old\.$/m, null],
    ['the catalog unreadable', { known: false, problem: 'the catalog in s3://primary could not be read: AccessDenied: no', rpoSeconds: 900 },
      /could not be determined \(the catalog in s3:\/\/primary could not be read: AccessDenied: no\)/, null],
  ])('protection: %s', (_case, given, text, breached) => {
    const report = describeFailure(failedAt('Dump', 'DumpFailed', 'x'), given, NOW);
    expect(report.message).toMatch(text);
    expect(report.detail.rpoBreached).toBe(breached);
  });

  test.each<[string, unknown, string]>([
    ['a Lambda error', JSON.stringify({ errorType: 'ChecksumMismatch', errorMessage: 'orders.pgdump: sha256 differs', trace: ['at x'] }), 'orders.pgdump: sha256 differs'],
    ['an ECS task description', JSON.stringify({ StoppedReason: 'Essential container in task exited', Containers: [{ Name: 'Worker', ExitCode: 137, Reason: 'OutOfMemoryError' }] }),
      'ECS stopped the task: Essential container in task exited; Worker exited 137 (OutOfMemoryError)'],
    ['the worker own message', 'pg_dump: error: connection to server failed', 'pg_dump: error: connection to server failed'],
    ['nothing', undefined, 'no cause was given'],
    ['an empty string', '  ', 'no cause was given'],
    ['an object', { message: 'as an object' }, 'as an object'],
    ['JSON without a message', '{"a":1}', '{"a":1}'],
  ])('the cause in words: %s', (_case, cause, words) => {
    expect(causeInWords(cause)).toBe(words);
  });

  test('a very long cause is cut in the message and shorter in the event', () => {
    const report = describeFailure(failedAt('Dump', 'DumpFailed', 'e'.repeat(10_000)), protection, NOW);
    expect(report.message.length).toBeLessThan(3_000);
    expect((report.detail.cause as string).length).toBe(1_000);
  });

  test.each([
    ['a long source name', 'a'.repeat(150), 'Dump', 'DumpFailed'],
    ['non-ASCII and line breaks', 'bestellungen-äöü\nzwei', 'Verify\r\n', 'ChecksumMismatch'],
    ['a long error name', 'orders', 'VerifyOnFargate', `States.${'X'.repeat(120)}`],
  ])('the subject fits SNS: %s', (_case, source, failedState, error) => {
    const { subject } = describeFailure({ source, failedState, failure: { Error: error } }, protection, NOW);
    expect(subject.length).toBeLessThanOrEqual(100);
    expect(subject).toMatch(/^[\x20-\x7e]+$/);
    expect(subject.startsWith('Lifeboat: ')).toBe(true);
  });

  test('toSubject keeps a short subject as it is', () => {
    expect(toSubject('Lifeboat: orders backup failed at Dump: DumpFailed')).toBe('Lifeboat: orders backup failed at Dump: DumpFailed');
  });

  test('a SuspiciousSize failure also emits SuspiciousDumpSize, the metric its one alarm watches', async () => {
    const metrics = new RecordingMetrics();
    await recordFailure(failedAt('Verify', 'SuspiciousSize', 'run is 10% of the median', { dump }), { metrics, now: () => NOW });
    expect(metrics.metrics).toEqual([{ name: 'BackupFailed', unit: 'Count', value: 1 }, { name: 'SuspiciousDumpSize', unit: 'Count', value: 1 }]);
    expect(metrics.dimensions).toEqual({ source: 'orders' });
  });

  test('emits BackupFailed for the source and a Backup Failed event', async () => {
    const metrics = new RecordingMetrics();
    const events = new FakeEvents();
    const notification = await recordFailure(failedAt('Verify', 'ArchiveCorrupt', 'pg_restore: unexpected EOF', { dump }), {
      metrics, events, eventBus: 'lifeboat-bus', now: () => NOW,
    });
    expect(metrics.metrics).toEqual([{ name: 'BackupFailed', unit: 'Count', value: 1 }]);
    expect(metrics.dimensions).toEqual({ source: 'orders' });
    expect(metrics.metadata).toEqual({ runId: '20261126T030000Z', failedState: 'Verify', error: 'ArchiveCorrupt' });
    expect(events.entries()).toEqual([expect.objectContaining({
      Source: 'lifeboat', DetailType: 'Backup Failed', EventBusName: 'lifeboat-bus', Time: NOW,
      Detail: expect.objectContaining({ source: 'orders', runId: '20261126T030000Z', failedState: 'Verify', error: 'ArchiveCorrupt', cause: 'pg_restore: unexpected EOF' }),
    })]);
    expect(notification.subject).toBe('Lifeboat: orders backup failed at Verify: ArchiveCorrupt');
    expect(notification.message).toMatch(/^The backup of orders failed: run 20261126T030000Z, in the Verify state\./);
    // Without a catalog the age is unknown, and the message says so rather than guessing.
    expect(notification.message).toContain('How old the last verified backup of orders is could not be determined (no catalog configured).');
  });

  test('EventBridge down: the notification still comes, and says the event is missing', async () => {
    const logged: string[] = [];
    const notification = await recordFailure(failedAt('Dump', 'DumpFailed', 'x'), {
      metrics: new RecordingMetrics(), events: new FakeEvents(Object.assign(new Error('connect ECONNREFUSED'), { name: 'TimeoutError' })), log: (line) => logged.push(line),
    });
    expect(notification.message).toMatch(/\n\nAlso: the "Backup Failed" EventBridge event could not be sent: TimeoutError: connect ECONNREFUSED\.$/);
    expect(logged).toEqual([expect.stringContaining('could not be sent')]);
  });

  test('a catalog that cannot be read does not stop the message', async () => {
    // A real client (the catalog's paginator insists on one) whose every request is refused.
    const s3 = createS3Client({ region: 'us-east-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });
    s3.middlewareStack.add(() => async () => {
      throw Object.assign(new Error('Access Denied'), { name: 'AccessDenied' });
    }, { step: 'initialize' });
    const notification = await recordFailure(failedAt('Dump', 'DumpFailed', 'x'), { catalog: { s3, bucket: 'primary' }, rpoSeconds: { orders: 900 }, log: () => undefined });
    expect(notification.message).toContain('could not be determined (the catalog in s3://primary could not be read: AccessDenied: Access Denied)');
    s3.destroy();
  });

  test.each<[string, unknown]>([
    ['undefined', undefined],
    ['null', null],
    ['a number', 42],
    ['a string', 'States.Runtime'],
    ['an empty object', {}],
    ['a failure that is a string', { failure: 'boom', failedState: 7 }],
    ['a dump that is not an object', { dump: 5, source: ['orders'] }],
    ['a scheduledTime that is not a time', { source: 'orders', scheduledTime: 'soon', failure: { Error: 'DumpFailed' } }],
    ['a Cause that is an object', { source: 'orders', failure: { Error: 'X', Cause: { deep: { er: 1 } } } }],
  ])('never throws on odd input: %s', async (_case, state) => {
    const metrics = new RecordingMetrics();
    const events = new FakeEvents();
    const notification = await recordFailure(state, { metrics, events, log: () => undefined });
    expect(notification.subject.length).toBeGreaterThan(0);
    expect(notification.subject.length).toBeLessThanOrEqual(100);
    expect(notification.message).toMatch(/^The backup of .+ failed/);
    expect(metrics.metrics).toEqual([{ name: 'BackupFailed', unit: 'Count', value: 1 }]);
  });

  test('a metrics sink that throws: still a notification', async () => {
    const metrics: MetricsSink = { addDimension: () => { throw new Error('too many dimensions'); }, addMetadata: () => undefined, addMetric: () => undefined };
    const notification = await recordFailure(failedAt('Dump', 'DumpFailed', 'x'), { metrics, log: () => undefined });
    expect(notification.message).toContain('Also: the BackupFailed metric could not be recorded: Error: too many dimensions.');
  });
});

describe('AwaitOffsite: comparing a replica with its primary', () => {
  test.each<[string, Record<string, string>, Record<string, string>, string | undefined]>([
    ['same CRC32', { ChecksumCRC32: 'AAAA', ETag: '"1"' }, { ChecksumCRC32: 'AAAA', ETag: '"2"' }, undefined],
    ['different CRC32', { ChecksumCRC32: 'AAAA' }, { ChecksumCRC32: 'BBBB' }, 'ChecksumCRC32 BBBB, the primary\'s is AAAA'],
    ['composite checksums of a multipart object', { ChecksumCRC32: 'AAAA-3' }, { ChecksumCRC32: 'AAAA-3' }, undefined],
    ['SHA-256 preferred over CRC32', { ChecksumSHA256: 'x', ChecksumCRC32: 'A' }, { ChecksumSHA256: 'y', ChecksumCRC32: 'A' }, 'ChecksumSHA256 y, the primary\'s is x'],
    ['no common checksum: the ETag', { ChecksumCRC32: 'A', ETag: '"1"' }, { ChecksumSHA256: 'B', ETag: '"2"' }, 'ETag "2", the primary\'s is "1"'],
    ['no common checksum, same ETag', { ETag: '"1-3"' }, { ETag: '"1-3"' }, undefined],
    ['nothing to compare: size alone decided', {}, {}, undefined],
  ])('%s', (_case, primary, replica, difference) => {
    expect(checksumDifference(primary, replica)).toBe(difference);
  });
});

describe('configuration from the environment', () => {
  test('a required variable that is missing or blank fails naming it', () => {
    expect(() => requireEnv('LIFEBOAT_BUCKET', {})).toThrow('environment variable LIFEBOAT_BUCKET is not set');
    expect(() => requireEnv('LIFEBOAT_BUCKET', { LIFEBOAT_BUCKET: '  ' })).toThrow(expect.objectContaining({ name: 'InvalidConfiguration' }));
    expect(requireEnv('LIFEBOAT_BUCKET', { LIFEBOAT_BUCKET: 'primary' })).toBe('primary');
  });

  test.each([['0'], ['-3'], ['2.5'], ['many']])('LIFEBOAT_OFFSITE_MAX_ATTEMPTS=%s is refused', (value) => {
    expect(() => positiveIntegerEnv('LIFEBOAT_OFFSITE_MAX_ATTEMPTS', 16, { LIFEBOAT_OFFSITE_MAX_ATTEMPTS: value }))
      .toThrow(`LIFEBOAT_OFFSITE_MAX_ATTEMPTS: expected a whole number of at least 1, got "${value}"`);
  });

  test('attempts default to 16 and accept a whole number', () => {
    expect(positiveIntegerEnv('LIFEBOAT_OFFSITE_MAX_ATTEMPTS', 16, {})).toBe(16);
    expect(positiveIntegerEnv('LIFEBOAT_OFFSITE_MAX_ATTEMPTS', 16, { LIFEBOAT_OFFSITE_MAX_ATTEMPTS: '20' })).toBe(20);
  });

  test.each<[string, string, RegExp]>([
    ['not JSON', '{orders: 900}', /not JSON/],
    ['an array', '[900]', /expected an object/],
    ['a non-positive value', '{"orders": 0, "billing": "1h"}', /orders: 0, billing: "1h" \(expected positive numbers of seconds\)/],
  ])('LIFEBOAT_RPO_SECONDS %s is refused', (_case, value, message) => {
    expect(() => secondsBySourceEnv('LIFEBOAT_RPO_SECONDS', { LIFEBOAT_RPO_SECONDS: value })).toThrow(message);
  });

  test('RPOs by source', () => {
    expect(secondsBySourceEnv('LIFEBOAT_RPO_SECONDS', { LIFEBOAT_RPO_SECONDS: '{"orders": 900}' })).toEqual({ orders: 900 });
    expect(secondsBySourceEnv('LIFEBOAT_RPO_SECONDS', {})).toEqual({});
  });
});
