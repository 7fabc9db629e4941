import { createStacks } from '../../lib/stacks';
import { testApp } from '../fixtures/cdk-app';
import { testConfig } from '../fixtures/config';
import { primaryWithShards } from '../fixtures/primary-template';

type Statement = { Effect: string; Action: string | string[] };
type Resource = { Type: string; Properties: { PolicyDocument?: { Statement: Statement[] }; Roles?: unknown[] } };

test('in the whole primary stack, its source shards included, only the pruner\'s role may delete objects', () => {
  const { primary } = createStacks(testApp(), testConfig);
  expect(primary.shards.length).toBeGreaterThan(0);
  const resources = (primaryWithShards(primary).toJSON() as { Resources: Record<string, Resource> }).Resources;
  const deleters = Object.entries(resources)
    .filter(([, resource]) => resource.Type === 'AWS::IAM::Policy')
    .filter(([, resource]) => resource.Properties.PolicyDocument?.Statement.some((statement) =>
      statement.Effect === 'Allow' && [statement.Action].flat().some((action) => /^s3:(Delete|\*)/.test(action))))
    .map(([, resource]) => JSON.stringify(resource.Properties.Roles));
  expect(deleters).toHaveLength(1);
  expect(deleters[0]).toMatch(/PrunerRole/);
});
