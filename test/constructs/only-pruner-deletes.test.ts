import { Template } from 'aws-cdk-lib/assertions';
import { createStacks } from '../../lib/stacks';
import { testApp } from '../fixtures/cdk-app';
import { testConfig } from '../fixtures/config';

type Statement = { Effect: string; Action: string | string[] };
type Resource = { Type: string; Properties: { PolicyDocument?: { Statement: Statement[] }; Roles?: unknown[] } };

test('in the whole primary stack, only the pruner\'s role may delete objects', () => {
  const { primary } = createStacks(testApp(), testConfig);
  const resources = (Template.fromStack(primary).toJSON() as { Resources: Record<string, Resource> }).Resources;
  const deleters = Object.entries(resources)
    .filter(([, resource]) => resource.Type === 'AWS::IAM::Policy')
    .filter(([, resource]) => resource.Properties.PolicyDocument?.Statement.some((statement) =>
      statement.Effect === 'Allow' && [statement.Action].flat().some((action) => /^s3:(Delete|\*)/.test(action))))
    .map(([, resource]) => JSON.stringify(resource.Properties.Roles));
  expect(deleters).toHaveLength(1);
  expect(deleters[0]).toMatch(/PrunerRole/);
});
