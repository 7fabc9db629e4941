/**
 * The pure parts of IAM-true local runs: resolving a template's intrinsic functions as
 * CloudFormation would, and what IAM evaluates for an SDK call (the action, the resource, the
 * context keys and the implied KMS requests).
 */
import { ResolvedStack, type CfnTemplate } from '../../local/cfn/resolve';
import { requestsForCall, UnmappedCallError } from '../../local/iam/calls';
import { IamModel } from '../../local/iam/model';

const template: CfnTemplate = {
  Resources: {
    Key: { Type: 'AWS::KMS::Key', Properties: { KeyPolicy: { Statement: [] } } },
    Bucket: {
      Type: 'AWS::S3::Bucket',
      Properties: { ObjectLockEnabled: true, BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { KMSMasterKeyID: { 'Fn::GetAtt': ['Key', 'Arn'] } } }] } },
    },
    Named: { Type: 'AWS::S3::Bucket', Properties: { BucketName: 'offsite-copy' } },
    Role: { Type: 'AWS::IAM::Role', Properties: { Path: '/lifeboat/dump/', AssumeRolePolicyDocument: { Statement: [{ Principal: { Service: 'ecs-tasks.amazonaws.com' } }] } } },
    Topic: { Type: 'AWS::SNS::Topic', Properties: { KmsMasterKeyId: { 'Fn::GetAtt': ['Key', 'Arn'] } } },
  },
};
const stack = new ResolvedStack(template, { stackName: 'Lifeboat-Primary', account: '111111111111', region: 'eu-west-1' });

describe('resolving a template as CloudFormation would', () => {
  test.each<[string, unknown, unknown]>([
    ['Ref of a generated bucket name', { Ref: 'Bucket' }, 'lifeboat-primary-bucket'],
    ['Ref of a named bucket', { Ref: 'Named' }, 'offsite-copy'],
    ['GetAtt Arn of a role keeps its path', { 'Fn::GetAtt': ['Role', 'Arn'] }, 'arn:aws:iam::111111111111:role/lifeboat/dump/Lifeboat-Primary-Role'],
    ['Ref of a topic is its ARN', { Ref: 'Topic' }, 'arn:aws:sns:eu-west-1:111111111111:Lifeboat-Primary-Topic'],
    ['pseudo parameters', { 'Fn::Join': [':', [{ Ref: 'AWS::Partition' }, { Ref: 'AWS::Region' }, { Ref: 'AWS::AccountId' }]] }, 'aws:eu-west-1:111111111111'],
    ['Fn::Sub with a variable and an attribute', { 'Fn::Sub': ['${X}/${Bucket.Arn}', { X: 'x' }] }, 'x/arn:aws:s3:::lifeboat-primary-bucket'],
    ['Fn::Select of Fn::Split', { 'Fn::Select': [1, { 'Fn::Split': ['/', 'a/b/c'] }] }, 'b'],
  ])('%s', (_what, value, expected) => {
    expect(stack.resolve(value)).toEqual(expected);
  });

  test('a key ARN is stable, shaped like KMS\'s, and the same from GetAtt and from the bucket that names it', () => {
    const arn = stack.resolve({ 'Fn::GetAtt': ['Key', 'Arn'] }) as string;
    expect(arn).toMatch(/^arn:aws:kms:eu-west-1:111111111111:key\/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(IamModel.fromApp({ config: undefined as never, primary: stack, offsite: new ResolvedStack({ Resources: {} }, { stackName: 'O', account: '2', region: 'r' }) })
      .bucket('lifeboat-primary-bucket').keyArn).toBe(arn);
  });

  test('what it cannot resolve, it names', () => {
    expect(() => stack.resolve({ 'Fn::GetAtt': ['Bucket', 'WebsiteURL'] })).toThrow('cannot resolve Fn::GetAtt Bucket.WebsiteURL (AWS::S3::Bucket) locally');
    expect(() => stack.resolve({ Ref: 'Nothing' })).toThrow('no resource Nothing');
  });
});

describe('what IAM evaluates for an SDK call', () => {
  const model = IamModel.fromApp({ config: undefined as never, primary: stack, offsite: new ResolvedStack({ Resources: {} }, { stackName: 'O', account: '2', region: 'r' }) });
  const principal = 'arn:aws:iam::111111111111:role/lifeboat/dump/Lifeboat-Primary-Role';
  const bucket = 'lifeboat-primary-bucket';
  const object = `arn:aws:s3:::${bucket}/runs/a/20261126T000000Z/x`;
  const key = stack.resolve({ 'Fn::GetAtt': ['Key', 'Arn'] });
  const via = { 'kms:ViaService': 's3.eu-west-1.amazonaws.com' };
  const requests = (service: string, command: string, input: Record<string, unknown>) =>
    requestsForCall(model, principal, service, command, input).requests.map(({ action, resource, context }) => ({ action, resource, context }));

  test.each<[string, string, Record<string, unknown>, unknown[]]>([
    ['GetObject: the object, and decrypting it with the bucket key through S3', 'GetObject', { Bucket: bucket, Key: 'runs/a/20261126T000000Z/x' },
      [{ action: 's3:GetObject', resource: object, context: undefined }, { action: 'kms:Decrypt', resource: key, context: via }]],
    ['GetObject of a version: s3:GetObjectVersion, with its id', 'GetObject', { Bucket: bucket, Key: 'runs/a/20261126T000000Z/x', VersionId: 'v1' },
      [{ action: 's3:GetObjectVersion', resource: object, context: { 's3:versionid': 'v1' } }, { action: 'kms:Decrypt', resource: key, context: via }]],
    ['PutObject with If-None-Match and a lock: creates, conditionally, and sets a retention', 'PutObject',
      { Bucket: bucket, Key: 'runs/a/20261126T000000Z/x', IfNoneMatch: '*', ObjectLockMode: 'GOVERNANCE', ObjectLockRetainUntilDate: new Date('2099-01-01T00:00:00Z') },
      [{ action: 's3:PutObject', resource: object, context: { 's3:ObjectCreationOperation': 'true', 's3:if-none-match': '*' } },
        { action: 's3:PutObjectRetention', resource: object, context: expect.objectContaining({ 's3:object-lock-mode': 'GOVERNANCE', 's3:object-lock-retain-until-date': '2099-01-01T00:00:00.000Z' }) },
        { action: 'kms:GenerateDataKey', resource: key, context: via }]],
    ['UploadPart: a part creates no object (exempt from conditional writes)', 'UploadPart', { Bucket: bucket, Key: 'runs/a/20261126T000000Z/x' },
      [{ action: 's3:PutObject', resource: object, context: { 's3:ObjectCreationOperation': 'false' } }, { action: 'kms:Decrypt', resource: key, context: via }]],
    ['DeleteObject of a version, bypassing governance: both asked', 'DeleteObject', { Bucket: bucket, Key: 'runs/a/20261126T000000Z/x', VersionId: 'v1', BypassGovernanceRetention: true },
      [{ action: 's3:DeleteObjectVersion', resource: object, context: { 's3:versionid': 'v1' } }, { action: 's3:BypassGovernanceRetention', resource: object, context: undefined }]],
    ['ListObjectsV2: the bucket, with the prefix as its condition key', 'ListObjectsV2', { Bucket: bucket, Prefix: 'runs/a/' },
      [{ action: 's3:ListBucket', resource: `arn:aws:s3:::${bucket}`, context: { 's3:prefix': 'runs/a/' } }]],
    ['PutBucketPolicy: the bucket', 'PutBucketPolicy', { Bucket: bucket, Policy: '{}' },
      [{ action: 's3:PutBucketPolicy', resource: `arn:aws:s3:::${bucket}`, context: undefined }]],
  ])('%s', (_what, command, input, expected) => {
    expect(requests('S3', command, input)).toEqual(expected);
  });

  test('publishing to an encrypted topic asks for its key too, through SNS', () => {
    expect(requests('SNS', 'Publish', { TopicArn: stack.resolve({ Ref: 'Topic' }), Message: 'x' }).map((request) => request.action)).toEqual(['sns:Publish', 'kms:GenerateDataKey', 'kms:Decrypt']);
  });

  test('a call with no mapping fails loudly, never evaluated as nothing', () => {
    expect(() => requests('S3', 'PutBucketCors', { Bucket: bucket })).toThrow(UnmappedCallError);
    expect(() => requests('DynamoDB', 'PutItem', {})).toThrow('no IAM mapping for DynamoDB PutItem');
    expect(() => requests('S3', 'GetObject', { Bucket: 'somebody-elses', Key: 'k' })).toThrow(/no bucket named somebody-elses in the synthesized templates/);
  });
});
