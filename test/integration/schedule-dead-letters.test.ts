/**
 * The schedules' dead letters, IAM-true: EventBridge Scheduler delivers a failed invocation to
 * the schedule's dead-letter queue with the schedule's own role. The queues were encrypted with
 * the backup data key, which those roles may not use (the letters could not be delivered), and
 * whoever read them needed the key that decrypts every backup. They use SQS-managed keys now.
 */
import * as path from 'node:path';
import { loadConfig } from '../../lib/config';
import { startLocalAws, type LocalAws } from '../../local/aws';
import { authorizeScheduledStart, deliverDeadLetter, schedulesOf } from '../../local/scheduler';
import { synthApp } from '../../local/synth';

const config = loadConfig(path.resolve(__dirname, '../../lifeboat.config.ts'));
const app = synthApp(config);

const logical = config.sources.filter((source) => source.methods.includes('logical')).length;
const pitrTypes = config.sources.reduce((count, source) => count + (source.pitr?.plan.backups.length ?? 0), 0);

describe.each([['backup', '-backup-run', logical], ['drill', '-restore-drill', logical], ['PITR backup', '-pitr-run', pitrTypes]])('the %s schedules', (_kind, suffix, expected) => {
  let aws: LocalAws;
  beforeAll(async () => {
    aws = await startLocalAws({ config, app });
  });
  afterAll(() => aws?.stop());

  test('start their state machine, and deliver a dead letter to their queue, as their own role', async () => {
    const schedules = schedulesOf(aws, suffix);
    // One per logical source at least (drills from the offsite copy have schedules of their own); one per PITR source and backup type.
    expect(expected).toBeGreaterThan(0);
    expect(schedules.length).toBeGreaterThanOrEqual(expected);
    for (const schedule of schedules) {
      await authorizeScheduledStart(aws, schedule);
      await deliverDeadLetter(aws, schedule, { source: 'orders', scheduledTime: '2026-11-26T03:00:00Z' });
      const queue = aws.model.queues.get(schedule.deadLetterArn as string);
      expect(queue?.keyArn).toBeUndefined();
      expect((await aws.stack.receiveMessages(queue?.url as string)).map((body) => JSON.parse(body))).toEqual([
        { source: 'orders', scheduledTime: '2026-11-26T03:00:00Z' },
      ]);
    }
    expect(aws.evaluator?.denials).toEqual([]);
  });
});

test('a dead-letter queue encrypted with the backup key again: the delivery is denied on KMS, naming the schedule role', async () => {
  const aws = await startLocalAws({
    config,
    tamper: (tampered) => {
      const stack = tampered.primary;
      const key = stack.ofType('AWS::KMS::Key').find((id) => id.startsWith('BackupsKey')) as string;
      const queue = stack.template.Resources[stack.ofType('AWS::SQS::Queue').find((id) => id.startsWith('SchedulesDeadLetters')) as string];
      const props = queue.Properties as Record<string, unknown>;
      delete props.SqsManagedSseEnabled;
      props.KmsMasterKeyId = { 'Fn::GetAtt': [key, 'Arn'] };
    },
  });
  try {
    const [schedule] = schedulesOf(aws, '-backup-run');
    await expect(deliverDeadLetter(aws, schedule, { source: 'orders' })).rejects.toMatchObject({
      name: 'AccessDenied',
      message: expect.stringMatching(new RegExp(`^User: ${schedule.roleArn.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} is not authorized to perform: kms:GenerateDataKey on resource: arn:aws:kms:eu-west-1:111111111111:key/\\S+ because no identity-based policy allows`)),
    });
  } finally {
    await aws.stop();
  }
});
