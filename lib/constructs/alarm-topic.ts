import { ArnFormat, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';

export interface AlarmTopicProps {
  /**
   * Email addresses subscribed to the topic (each confirms by email before receiving).
   * @default - none
   */
  readonly emails?: readonly string[];
  /**
   * HTTPS endpoints subscribed to the topic (each must confirm the subscription).
   * @default - none
   */
  readonly httpsEndpoints?: readonly string[];
  /**
   * Display name of the topic, shown as the sender of email notifications.
   * @default - "Lifeboat alarms"
   */
  readonly displayName?: string;
}

const DEFAULT_DISPLAY_NAME = 'Lifeboat alarms';

/**
 * The topic every Lifeboat alarm and failed run is published to: encrypted with its own
 * rotating KMS key, TLS-only, and publishable by CloudWatch alarms of this account.
 */
export class AlarmTopic extends Construct {
  public readonly topic: sns.Topic;
  public readonly key: kms.Key;

  constructor(scope: Construct, id: string, props: AlarmTopicProps = {}) {
    super(scope, id);
    const stack = Stack.of(this);

    const invalid = (props.httpsEndpoints ?? []).filter((url) => !url.startsWith('https://'));
    if (invalid.length > 0) {
      throw new Error(`${this.node.path}: httpsEndpoints must start with https://, got ${invalid.join(', ')}`);
    }

    this.key = new kms.Key(this, 'Key', {
      description: `Encrypts the messages of ${this.node.path}`,
      enableKeyRotation: true,
    });
    // CloudWatch publishes alarm state changes with its own service principal, not with a
    // role of this account, so the key policy must let it encrypt (GenerateDataKey) messages.
    this.key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AllowCloudWatchAlarmsToPublish',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
      }),
    );

    this.topic = new sns.Topic(this, 'Topic', {
      displayName: props.displayName ?? DEFAULT_DISPLAY_NAME,
      masterKey: this.key,
      enforceSSL: true,
    });
    // enforceSSL creates a topic policy, which replaces SNS's default one: CloudWatch alarms
    // of this account must be allowed explicitly.
    this.topic.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AllowCloudWatchAlarmsOfThisAccount',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['sns:Publish'],
        resources: [this.topic.topicArn],
        conditions: {
          ArnLike: {
            'aws:SourceArn': stack.formatArn({ service: 'cloudwatch', resource: 'alarm', resourceName: '*', arnFormat: ArnFormat.COLON_RESOURCE_NAME }),
          },
          StringEquals: { 'aws:SourceAccount': stack.account },
        },
      }),
    );

    for (const email of props.emails ?? []) {
      this.topic.addSubscription(new subscriptions.EmailSubscription(email));
    }
    for (const url of props.httpsEndpoints ?? []) {
      this.topic.addSubscription(new subscriptions.UrlSubscription(url, { protocol: sns.SubscriptionProtocol.HTTPS }));
    }
  }

  /**
   * Lets EventBridge rules of this account publish (the key alarms): the topic policy names
   * the service with the account as source, and the key policy lets it encrypt.
   */
  public allowEventRules(): void {
    const stack = Stack.of(this);
    this.key.addToResourcePolicy(new iam.PolicyStatement({
      sid: 'AllowEventBridgeRulesToPublish',
      principals: [new iam.ServicePrincipal('events.amazonaws.com')],
      actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
      resources: ['*'],
    }));
    this.topic.addToResourcePolicy(new iam.PolicyStatement({
      sid: 'AllowEventBridgeRulesOfThisAccount',
      principals: [new iam.ServicePrincipal('events.amazonaws.com')],
      actions: ['sns:Publish'],
      resources: [this.topic.topicArn],
      conditions: {
        ArnLike: { 'aws:SourceArn': stack.formatArn({ service: 'events', resource: 'rule', resourceName: '*' }) },
        StringEquals: { 'aws:SourceAccount': stack.account },
      },
    }));
  }

  /** Lets `grantee` publish to the topic (including the key use encrypted topics need). */
  public grantPublish(grantee: iam.IGrantable): void {
    grantPublishTo(this.topic, grantee);
  }
}

/**
 * sns:Publish on `topic` and, for an encrypted topic, what SNS asks of the publisher's key use
 * (kms:GenerateDataKey and kms:Decrypt on the topic's key): without them a publish to an
 * encrypted topic fails on KMS. Named actions, not CDK's `kms:GenerateDataKey*`.
 */
export function grantPublishTo(topic: sns.ITopic, grantee: iam.IGrantable): void {
  grantee.grantPrincipal.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['sns:Publish'], resources: [topic.topicArn] }));
  if (topic.masterKey) {
    grantee.grantPrincipal.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['kms:GenerateDataKey', 'kms:Decrypt'], resources: [topic.masterKey.keyArn] }));
  }
}
