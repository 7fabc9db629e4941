import { Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { DRILLS_PREFIX, RUNS_PREFIX } from '../domain/layout';
import { OFFSITE_READER_PATHS } from './dump-task';
import { acknowledgeWildcardResource } from './nag';

export interface OperatorAccessProps {
  /** The bucket the operator commands read (the primary's, or the offsite's in its own account). */
  readonly bucket: s3.IBucket;
  readonly key: kms.IKey;
  /**
   * A second bucket the same role may read, in another region (and account): the offsite copy,
   * named because it lives in another stack.
   * @default - none
   */
  readonly offsite?: { readonly bucketName: string; readonly region: string; readonly account: string };
  /**
   * The stack whose outputs `lifeboat status` and `runbook` read when given no --bucket.
   * @default - none
   */
  readonly outputsStackName?: string;
  /** What the role is for, in its description. */
  readonly description: string;
}

/**
 * The minimal access the operator commands need (`lifeboat status`, `runbook`, `restore`,
 * `prune` without --apply, `drill` of a copy): read runs and drill reports, exact versions
 * and their locks included, list them, decrypt them through S3; and read the stack's outputs.
 * Nothing is written or deleted (`prune --apply` is the pruner's job, the only role that
 * deletes). As a managed policy, to attach to a team's own SSO role, and as a role of its own
 * that principals of this account may assume (under `/lifeboat/operator/`, the path the
 * offsite bucket and key policies admit). docs/permissions.md lists it.
 */
export class OperatorAccess extends Construct {
  public readonly policy: iam.ManagedPolicy;
  public readonly role: iam.Role;

  constructor(scope: Construct, id: string, props: OperatorAccessProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const statements: iam.PolicyStatement[] = [];
    const readable = (bucketArn: string) => [`${bucketArn}/${RUNS_PREFIX}*`, `${bucketArn}/${DRILLS_PREFIX}*`];
    const read = (sid: string, bucketArn: string) => {
      statements.push(new iam.PolicyStatement({
        sid: `Read${sid}`,
        actions: ['s3:GetObject', 's3:GetObjectVersion', 's3:GetObjectRetention'],
        resources: readable(bucketArn),
      }));
      statements.push(new iam.PolicyStatement({
        sid: `List${sid}`,
        actions: ['s3:ListBucket', 's3:ListBucketVersions'],
        resources: [bucketArn],
        conditions: { StringLike: { 's3:prefix': [`${RUNS_PREFIX}*`, `${DRILLS_PREFIX}*`] } },
      }));
    };
    read('Runs', props.bucket.bucketArn);
    statements.push(new iam.PolicyStatement({ sid: 'DecryptRuns', actions: ['kms:Decrypt'], resources: [props.key.keyArn] }));
    let offsiteObjects: string[] = [];
    let offsiteKeys: string | undefined;
    if (props.offsite) {
      const offsiteArn = `arn:${stack.partition}:s3:::${props.offsite.bucketName}`;
      offsiteObjects = readable(offsiteArn);
      read('OffsiteRuns', offsiteArn);
      offsiteKeys = `arn:${stack.partition}:kms:${props.offsite.region}:${props.offsite.account}:key/*`;
      statements.push(new iam.PolicyStatement({
        sid: 'DecryptOffsiteRuns',
        actions: ['kms:Decrypt'],
        resources: [offsiteKeys],
        conditions: { StringEquals: { 'kms:ViaService': `s3.${props.offsite.region}.amazonaws.com` } },
      }));
    }
    if (props.outputsStackName) {
      statements.push(new iam.PolicyStatement({
        sid: 'ReadStackOutputs',
        actions: ['cloudformation:DescribeStacks'],
        resources: [stack.formatArn({ service: 'cloudformation', resource: 'stack', resourceName: `${props.outputsStackName}/*` })],
      }));
    }

    this.policy = new iam.ManagedPolicy(this, 'Policy', { description: props.description, statements });
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.AccountRootPrincipal(),
      path: OFFSITE_READER_PATHS.operator,
      description: props.description,
      managedPolicies: [this.policy],
    });

    const reason = 'Operators read the runs and drill reports of any source (exact versions and their locks), whose keys are made at run time under runs/ and drills/; reads only.';
    for (const resource of [...readable(props.bucket.bucketArn), ...offsiteObjects]) acknowledgeWildcardResource(this.policy, resource, reason);
    if (offsiteKeys) {
      acknowledgeWildcardResource(this.policy, offsiteKeys, 'The offsite key lives in another region (and account) and is named by alias; kms:ViaService limits the grant to S3 there, and the offsite key policy to this role\'s path.');
    }
    if (props.outputsStackName) {
      acknowledgeWildcardResource(this.policy, stack.formatArn({ service: 'cloudformation', resource: 'stack', resourceName: `${props.outputsStackName}/*` }),
        'A stack ARN ends in a generated id: /* names the one stack by its name.');
    }
  }
}
