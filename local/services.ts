import { CreateTopicCommand, SNSClient, SubscribeCommand, UnsubscribeCommand } from '@aws-sdk/client-sns';
import { CreateBucketCommand, HeadBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import { CreateQueueCommand, DeleteMessageCommand, DeleteQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { randomUUID } from 'node:crypto';
import { createS3Client } from '../lib/aws/s3-client';
import { startEventsEndpoint, type EventsEndpoint } from './events-endpoint';
import type { LocalServices } from './runner';
import { startS3, TEST_CREDENTIALS, type S3Server } from './servers/s3';

export interface LocalStack {
  readonly services: LocalServices;
  /** The local queue standing in for a queue of the templates (by its URL there). */
  queueUrl(templateUrl: string): string;
  /** Every message waiting in the local queue of a template's queue (received and deleted). */
  receiveMessages(templateUrl: string): Promise<string[]>;
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
  /**
   * The S3 (and SNS/SQS) server of `lifeboat local up`, kept running between commands: its
   * buckets are made when missing, and it is not stopped with the stack.
   * @default - a throwaway server of this process, stopped with the stack
   */
  s3Endpoint?: string;
} = {}): Promise<LocalStack> {
  const [s3Server, events] = await Promise.all([opts.s3Endpoint ? undefined : startS3(), startEventsEndpoint()]);
  const endpoint = opts.s3Endpoint ?? (s3Server as S3Server).endpoint;
  const region = opts.region ?? 'us-east-1';
  const clientConfig = { endpoint, region, credentials: TEST_CREDENTIALS };
  const s3 = s3Server?.client() ?? createS3Client({ ...clientConfig, forcePathStyle: true });
  const sns = new SNSClient(clientConfig);
  const sqs = new SQSClient(clientConfig);
  // Names of this process's own: commands sharing a server must not read each other's alarms.
  const suffix = `${process.pid}-${randomUUID().slice(0, 8)}`;
  const ownQueues: string[] = [];
  const subscriptions: string[] = [];
  const stopAll = async () => {
    if (opts.s3Endpoint) {
      await Promise.all(subscriptions.map((arn) => sns.send(new UnsubscribeCommand({ SubscriptionArn: arn })).catch(() => undefined)));
      await Promise.all(ownQueues.map((url) => sqs.send(new DeleteQueueCommand({ QueueUrl: url })).catch(() => undefined)));
    }
    sns.destroy();
    sqs.destroy();
    if (!s3Server) s3.destroy();
    await Promise.all([s3Server?.stop(), events.close()]);
  };
  try {
    const primaryBucket = opts.primaryBucket ?? 'lifeboat-primary';
    const offsiteBucket = opts.offsiteBucket ?? 'lifeboat-offsite';
    // Both backup buckets are created as the stacks create them: versioned, with Object Lock.
    await Promise.all([primaryBucket, offsiteBucket].map((bucket) => ensureLockedBucket(s3, bucket)));
    const topic = await sns.send(new CreateTopicCommand({ Name: 'lifeboat-alarms' }));
    const queue = await sqs.send(new CreateQueueCommand({ QueueName: `lifeboat-alarms-inbox-${suffix}` }));
    ownQueues.push(queue.QueueUrl as string);
    const attributes = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queue.QueueUrl, AttributeNames: ['QueueArn'] }));
    const subscription = await sns.send(new SubscribeCommand({ TopicArn: topic.TopicArn, Protocol: 'sqs', Endpoint: attributes.Attributes?.QueueArn }));
    if (subscription.SubscriptionArn) subscriptions.push(subscription.SubscriptionArn);
    const localQueues = new Map<string, string>();
    for (const [index, url] of (opts.queues ?? []).entries()) {
      const created = await sqs.send(new CreateQueueCommand({ QueueName: `lifeboat-queue-${index + 1}-${suffix}` }));
      localQueues.set(url, created.QueueUrl as string);
      ownQueues.push(created.QueueUrl as string);
    }

    return {
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
        endpoint,
        region,
        credentials: TEST_CREDENTIALS,
        s3,
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
      stop: stopAll,
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}

/** Creates a bucket with Object Lock (hence versioned) unless it exists. */
async function ensureLockedBucket(s3: S3Client, bucket: string): Promise<void> {
  try {
    await s3.send(new HeadBucketCommand({ Bucket: bucket }));
  } catch (error) {
    if ((error as Error).name !== 'NotFound' && (error as Error).name !== 'NoSuchBucket') throw error;
    await s3.send(new CreateBucketCommand({ Bucket: bucket, ObjectLockEnabledForBucket: true }));
  }
}
