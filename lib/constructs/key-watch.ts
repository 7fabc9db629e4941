import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';

/** The KMS API calls that make every backup a key protects unreadable, now or in 7–30 days. */
export const KEY_THREAT_EVENTS = ['DisableKey', 'ScheduleKeyDeletion', 'PutKeyPolicy', 'DisableKeyRotation'] as const;

export interface KeyWatchProps {
  /** The keys whose loss would make backups unreadable. */
  readonly keys: readonly kms.IKey[];
  /** Where the alarm goes; the topic must admit EventBridge rules (AlarmTopic.allowEventRules). */
  readonly topic: sns.ITopic;
  /** What the keys protect, in the message: "the primary backup bucket". */
  readonly what: string;
}

/**
 * An alarm the moment a backup key is disabled, scheduled for deletion, or its policy changed:
 * an EventBridge rule on the KMS calls as CloudTrail reports them (the account needs a trail
 * recording management events, which every Control Tower / Organizations setup has), to the
 * alarm topic with a message naming the key, the call and who made it. A disabled key also
 * stops replication silently; deletion can still be cancelled within the waiting period.
 */
export class KeyWatch extends Construct {
  public readonly rule: events.Rule;

  constructor(scope: Construct, id: string, props: KeyWatchProps) {
    super(scope, id);
    this.rule = new events.Rule(this, 'Rule', {
      description: `Lifeboat: a key of ${props.what} was disabled, scheduled for deletion or re-permissioned`,
      eventPattern: {
        source: ['aws.kms'],
        detailType: ['AWS API Call via CloudTrail'],
        detail: {
          eventSource: ['kms.amazonaws.com'],
          eventName: [...KEY_THREAT_EVENTS],
          resources: { ARN: props.keys.map((key) => key.keyArn) },
        },
      },
    });
    this.rule.addTarget(new targets.SnsTopic(props.topic, {
      message: events.RuleTargetInput.fromText(
        `Lifeboat: ${events.EventField.fromPath('$.detail.eventName')} on a key of ${props.what} ` +
        `(${events.EventField.fromPath('$.detail.requestParameters.keyId')}) by ${events.EventField.fromPath('$.detail.userIdentity.arn')} ` +
        `at ${events.EventField.fromPath('$.time')} in ${events.EventField.fromPath('$.region')}. Backups encrypted with it become unreadable ` +
        'if it stays disabled or is deleted: re-enable it (kms:EnableKey) or cancel the deletion (kms:CancelKeyDeletion) now.',
      ),
    }));
  }
}
