import { NestedStack, Stack } from 'aws-cdk-lib';
import type { Source, Tier } from '../../lib/config/types';
import { createStacks } from '../../lib/stacks';
import { SOURCES_PER_SHARD } from '../../lib/stacks/source-shard';
import { testApp } from '../fixtures/cdk-app';
import { testConfig, tier1, tier3 } from '../fixtures/config';

// Issue 6, acceptance 3: a generated config with 200 sources synthesizes, and every stack
// (parent, offsite, each nested source shard) stays under CloudFormation's 500 resources.
const DAY = 86_400;
const tiers: Tier[] = [
  tier1,
  { ...tier1, name: 'tier2', rpoSeconds: 3600, scheduleSeconds: 3600, drillSeconds: 7 * DAY },
  tier3,
  { ...tier3, name: 'tier4', rpoSeconds: 7 * DAY, scheduleSeconds: 7 * DAY, drillSeconds: 90 * DAY },
];
const [template] = testConfig.sources;
const sources: Source[] = Array.from({ length: 200 }, (_, i) => {
  const engine = i % 2 === 0 ? 'postgres' : 'mariadb';
  return {
    ...template,
    name: `db-${i}`,
    engine,
    tier: tiers[i % tiers.length],
    connection: {
      ...template.connection,
      host: `db-${i}.cluster-abc.eu-west-1.rds.amazonaws.com`,
      port: engine === 'postgres' ? 5432 : 3306,
      databases: [`app${i}`],
      passwordSecretArn: `arn:aws:secretsmanager:eu-west-1:111111111111:secret:lifeboat/db-${i}-AbCdEf`,
    },
    network: { vpcId: 'vpc-0123456789abcdef0', subnetIds: ['subnet-0aaa', 'subnet-0bbb'], securityGroupIds: [`sg-${i}`] },
    drillChecks: [],
  } as Source;
});

test('200 sources synthesize, every stack under 500 resources', () => {
  const app = testApp();
  const { primary, offsite } = createStacks(app, { ...testConfig, sources });
  const assembly = app.synth();
  expect(primary.shards).toHaveLength(Math.ceil(200 / SOURCES_PER_SHARD));

  const count = (template: { Resources?: object }) => Object.keys(template.Resources ?? {}).length;
  const counts: Record<string, number> = {
    [primary.stackName]: count(assembly.getStackArtifact(primary.artifactId).template as object),
    [offsite.stackName]: count(assembly.getStackArtifact(offsite.artifactId).template as object),
  };
  const nested = primary.node.findAll().filter((construct): construct is NestedStack => NestedStack.isNestedStack(construct as Stack));
  expect(nested).toHaveLength(primary.shards.length);
  for (const shard of nested) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const shardTemplate = require(`${assembly.directory}/${shard.templateFile}`) as { Resources?: object };
    counts[shard.node.path] = count(shardTemplate);
  }
  console.log(`Resources per stack for 200 sources:\n${Object.entries(counts).map(([name, n]) => `  ${name}: ${n}`).join('\n')}`);
  for (const n of Object.values(counts)) expect(n).toBeLessThan(500);
});
