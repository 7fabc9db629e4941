import { Template } from 'aws-cdk-lib/assertions';
import type { LifeboatConfig } from '../../lib/config/types';
import { createStacks } from '../../lib/stacks';
import { testApp } from '../fixtures/cdk-app';
import { testConfig } from '../fixtures/config';
import { primaryWithShards } from '../fixtures/primary-template';

type Statement = { Effect: string; Action: string | string[]; Resource?: unknown };
type Resource = { Type: string; Properties: Record<string, unknown> & { PolicyDocument?: { Statement: Statement[] }; Roles?: unknown[] } };

const deletes = (statement: Statement) => statement.Effect === 'Allow' && [statement.Action].flat().some((action) => /^s3:(Delete|\*)/.test(action));

/** The logical ids of the roles whose identity policies allow an S3 delete, with the resources they may delete. */
function deleters(resources: Record<string, Resource>): { roles: string; resources: unknown[] }[] {
  return Object.values(resources)
    .filter((resource) => resource.Type === 'AWS::IAM::Policy')
    .filter((resource) => resource.Properties.PolicyDocument?.Statement.some(deletes))
    .map((resource) => ({
      roles: JSON.stringify(resource.Properties.Roles),
      resources: (resource.Properties.PolicyDocument?.Statement ?? []).filter(deletes).map((statement) => statement.Resource),
    }));
}

test('in the whole primary stack, its source shards included, only the pruner\'s role may delete objects', () => {
  const { primary } = createStacks(testApp(), testConfig);
  expect(primary.shards.length).toBeGreaterThan(0);
  const found = deleters((primaryWithShards(primary).toJSON() as { Resources: Record<string, Resource> }).Resources);
  expect(found).toHaveLength(1);
  expect(found[0].roles).toBe(JSON.stringify([{ Ref: primary.getLogicalId(primary.pruner.role.node.defaultChild as never) }]));
});

const variants: [string, LifeboatConfig][] = [
  ['same account', testConfig],
  ['cross account', { ...testConfig, offsite: { ...testConfig.offsite, account: '222222222222' } }],
];

describe.each(variants)('offsite stack (%s)', (_name, config) => {
  const { offsite } = createStacks(testApp(), config);
  const template = Template.fromStack(offsite);
  const resources = (template.toJSON() as { Resources: Record<string, Resource> }).Resources;
  const bucketId = offsite.getLogicalId(offsite.backupBucket.bucket.node.defaultChild as never);

  test('only the offsite pruner\'s role may delete, and only the runs of the offsite bucket', () => {
    const found = deleters(resources);
    expect(found).toEqual([{
      roles: JSON.stringify([{ Ref: offsite.getLogicalId(offsite.pruner.role.node.defaultChild as never) }]),
      resources: [{ 'Fn::Join': ['', [{ 'Fn::GetAtt': [bucketId, 'Arn'] }, '/runs/*']] }],
    }]);
  });

  test('the offsite pruner prunes the offsite bucket, from its own catalog, with every source\'s tier', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Role: { 'Fn::GetAtt': [offsite.getLogicalId(offsite.pruner.role.node.defaultChild as never), 'Arn'] },
      Environment: {
        Variables: {
          LIFEBOAT_BUCKET: { Ref: bucketId },
          LIFEBOAT_SOURCES_JSON: JSON.stringify(config.sources.map(({ name, tier }) => ({
            name, tier: { retentionSeconds: tier.retentionSeconds, scheduleSeconds: tier.scheduleSeconds },
          }))),
          LIFEBOAT_DRY_RUN: 'false',
          POWERTOOLS_SERVICE_NAME: 'lifeboat-prune',
          POWERTOOLS_METRICS_NAMESPACE: 'Lifeboat',
        },
      },
    });
    // It decrypts with the offsite key (the key of its own account), nothing else.
    const keyArn = { 'Fn::GetAtt': [offsite.getLogicalId(offsite.backupBucket.key.node.defaultChild as never), 'Arn'] };
    const decrypts = Object.values(resources)
      .filter((resource) => resource.Type === 'AWS::IAM::Policy' && JSON.stringify(resource.Properties.Roles).includes(offsite.getLogicalId(offsite.pruner.role.node.defaultChild as never)))
      .flatMap((resource) => resource.Properties.PolicyDocument?.Statement ?? [])
      .filter((statement) => [statement.Action].flat().some((action) => action.startsWith('kms:')));
    expect(decrypts).toEqual([expect.objectContaining({ Effect: 'Allow', Action: 'kms:Decrypt', Resource: keyArn })]);
  });
});
