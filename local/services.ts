import { CreateTopicCommand, SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import { CreateQueueCommand, DeleteMessageCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { startEventsEndpoint, type EventsEndpoint } from './events-endpoint';
import type { LocalServices } from './runner';
import { startS3, TEST_CREDENTIALS, type S3Server } from './servers/s3';

export interface LocalStack {
  readonly services: LocalServices;
  /** The local queue standing in for a queue of the templates (by its URL there). */
  queueUrl(templateUrl: string): string;
  /** Every message waiting in the local queue of a template's queue (received and deleted). */
  receiveMessages(templateUrl: string): Promise<string[]>;
  readonly s3Server: S3Server;
  readonly events: EventsEndpoint;
  /** Messages the alarm topic delivered (through its local SQS subscription). */
  receiveAlarms(): Promise<{ subject?: string; message: string }[]>;
  stop(): Promise<void>;
}

/**
 * The local stand-ins for the AWS side of one backup run: an S3-compatible server (which
 * also speaks SNS and SQS) with a primary and an offsite bucket, an alarm topic with a
 * queue subscribed to it, and an EventBridge capture endpoint.
 */
export async function startLocalStack(opts: {
  primaryBucket?: string;
  offsiteBucket?: string;
  offsiteRegion?: string;
  /** @default us-east-1 */
  region?: string;
  /** Queues of the templates (their URLs there) to stand in for with local queues. */
  queues?: readonly string[];
} = {}): Promise<LocalStack> {
  const [s3Server, events] = await Promise.all([startS3(), startEventsEndpoint()]);
  try {
    const region = opts.region ?? 'us-east-1';
    const primaryBucket = opts.primaryBucket ?? 'lifeboat-primary';
    const offsiteBucket = opts.offsiteBucket ?? 'lifeboat-offsite';
    // Both backup buckets are created as the stacks create them: versioned, with Object Lock.
    await Promise.all([s3Server.createBucket(primaryBucket, { objectLock: true }), s3Server.createBucket(offsiteBucket, { objectLock: true })]);
    const clientConfig = { endpoint: s3Server.endpoint, region, credentials: TEST_CREDENTIALS };
    const sns = new SNSClient(clientConfig);
    const sqs = new SQSClient(clientConfig);
    const topic = await sns.send(new CreateTopicCommand({ Name: 'lifeboat-alarms' }));
    const queue = await sqs.send(new CreateQueueCommand({ QueueName: 'lifeboat-alarms-inbox' }));
    const attributes = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queue.QueueUrl, AttributeNames: ['QueueArn'] }));
    await sns.send(new SubscribeCommand({ TopicArn: topic.TopicArn, Protocol: 'sqs', Endpoint: attributes.Attributes?.QueueArn }));
    const localQueues = new Map<string, string>();
    for (const [index, url] of (opts.queues ?? []).entries()) {
      const created = await sqs.send(new CreateQueueCommand({ QueueName: `lifeboat-queue-${index + 1}` }));
      localQueues.set(url, created.QueueUrl as string);
    }

    return {
      s3Server,
      events,
      queueUrl(templateUrl: string): string {
        const url = localQueues.get(templateUrl);
        if (!url) throw new Error(`no local queue stands in for ${templateUrl}`);
        return url;
      },
      async receiveMessages(templateUrl: string): Promise<string[]> {
        const url = localQueues.get(templateUrl);
        if (!url) throw new Error(`no local queue stands in for ${templateUrl}`);
        const bodies: string[] = [];
        for (;;) {
          const received = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }));
          if (!received.Messages?.length) return bodies;
          for (const message of received.Messages) {
            bodies.push(message.Body ?? '');
            await sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: message.ReceiptHandle }));
          }
        }
      },
      services: {
        endpoint: s3Server.endpoint,
        region,
        credentials: TEST_CREDENTIALS,
        s3: s3Server.client(),
        primaryBucket,
        offsiteBucket,
        offsiteRegion: opts.offsiteRegion ?? 'eu-central-1',
        alarmTopicArn: topic.TopicArn as string,
        eventsEndpoint: events.endpoint,
      },
      async receiveAlarms() {
        // Every message once: received messages are deleted, and the queue is read until empty.
        const messages: { subject?: string; message: string }[] = [];
        for (;;) {
          const received = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queue.QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }));
          if (!received.Messages?.length) return messages;
          for (const message of received.Messages) {
            const body = JSON.parse(message.Body ?? '{}') as { Subject?: string; Message: string };
            messages.push({ subject: body.Subject, message: body.Message });
            await sqs.send(new DeleteMessageCommand({ QueueUrl: queue.QueueUrl, ReceiptHandle: message.ReceiptHandle }));
          }
        }
      },
      async stop() {
        await Promise.all([s3Server.stop(), events.close()]);
      },
    };
  } catch (error) {
    await Promise.all([s3Server.stop(), events.close()]);
    throw error;
  }
}
