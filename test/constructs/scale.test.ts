import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { NestedStack, Stack } from 'aws-cdk-lib';
import { createStacks } from '../../lib/stacks';
import { SOURCES_PER_SHARD } from '../../lib/stacks/source-shard';
import { RDS_SOURCES_PER_SHARD } from '../../lib/stacks/native-shard';
import { generatedConfig } from '../../bench/synth';
import { testApp } from '../fixtures/cdk-app';

// Issue 6, acceptance 3: a generated config with 200 sources synthesizes, and every stack
// (parent, offsite, each nested source shard) stays under CloudFormation's 500 resources.
// Issue 11: the dashboards scale by shard (one per nested stack) and by query (the primary's
// one overview, whose body does not depend on the number of sources).
// template-limits.test.ts checks every CloudFormation limit for 1,000 sources.
type Template = { Resources?: Record<string, { Type: string; Properties: Record<string, unknown> }> };

function synthesize(count: number) {
  const app = testApp();
  const stacks = createStacks(app, generatedConfig(count));
  const assembly = app.synth();
  const primaryTemplate = assembly.getStackArtifact(stacks.primary.artifactId).template as Template;
  const nested = stacks.primary.node.findAll().filter((construct): construct is NestedStack => NestedStack.isNestedStack(construct as Stack));
  const templateOf = (shard: NestedStack) => JSON.parse(readFileSync(path.join(assembly.directory, shard.templateFile), 'utf8')) as Template;
  const shardTemplates = stacks.primary.shards.map((shard) => ({ shard, template: templateOf(shard) }));
  const nativeTemplates = (stacks.primary.native?.shards ?? []).map((shard) => ({ shard, template: templateOf(shard) }));
  return { ...stacks, assembly, primaryTemplate, nested, shardTemplates, nativeTemplates };
}

const built = synthesize(200);
const { primary, offsite, assembly, nested, shardTemplates, nativeTemplates } = built;
const ofType = (template: Template, type: string) => Object.entries(template.Resources ?? {}).filter(([, resource]) => resource.Type === type);

test('200 sources synthesize, every stack under 500 resources', () => {
  expect(primary.shards).toHaveLength(Math.ceil(200 / SOURCES_PER_SHARD));
  // The generated sources are Aurora clusters: their native PITR has shards of its own.
  expect(primary.native?.shards).toHaveLength(Math.ceil(200 / RDS_SOURCES_PER_SHARD));
  const count = (template: Template) => Object.keys(template.Resources ?? {}).length;
  const counts: Record<string, number> = {
    [primary.stackName]: count(built.primaryTemplate),
    [offsite.stackName]: count(assembly.getStackArtifact(offsite.artifactId).template as Template),
  };
  expect(nested.length).toBe(primary.shards.length + (primary.native?.shards.length ?? 0));
  for (const { shard, template } of [...shardTemplates, ...nativeTemplates]) counts[shard.node.path] = count(template);
  console.log(`Resources per stack for 200 sources:\n${Object.entries(counts).map(([name, n]) => `  ${name}: ${n}`).join('\n')}`);
  for (const n of Object.values(counts)) expect(n).toBeLessThan(500);
});

/** A dashboard body as text, its tokens (`Fn::GetAtt` of alarms) as `{GetAtt:<logical id>}`. */
function bodyText(properties: Record<string, unknown>): string {
  const body = properties.DashboardBody as string | { 'Fn::Join': [string, unknown[]] };
  if (typeof body === 'string') return body;
  return body['Fn::Join'][1].map((part) => typeof part === 'string' ? part : `{GetAtt:${((part as { 'Fn::GetAtt': string[] })['Fn::GetAtt'])[0]}}`).join('');
}

describe('dashboards', () => {
  test('the primary stack holds one dashboard, whose body is the same for 4 sources as for 200', () => {
    const dashboards = ofType(built.primaryTemplate, 'AWS::CloudWatch::Dashboard');
    expect(dashboards).toHaveLength(1);
    // Four sources cover the four generated tiers: only the number of sources differs.
    const few = ofType(synthesize(4).primaryTemplate, 'AWS::CloudWatch::Dashboard');
    expect(few).toHaveLength(1);
    expect(bodyText(dashboards[0][1].Properties)).toEqual(bodyText(few[0][1].Properties));
  });

  test('the overview ranks every source with Metrics Insights queries over the source dimension', () => {
    const body = JSON.parse(bodyText(ofType(built.primaryTemplate, 'AWS::CloudWatch::Dashboard')[0][1].Properties)) as {
      widgets: { type: string; properties: { metrics?: unknown[][] } }[];
    };
    const queries = body.widgets.flatMap((widget) => widget.properties.metrics ?? []).flat()
      .map((entry) => (entry as { expression?: string }).expression).filter((expression) => expression !== undefined);
    for (const metric of ['SecondsSinceVerifiedBackup', 'SecondsSinceOffsiteBackup', 'BackupFailed', 'NeverBackedUp', 'MeasuredRtoSeconds', 'OffsiteLagSeconds']) {
      expect(queries).toContainEqual(expect.stringMatching(new RegExp(`^SELECT (MAX|SUM)\\(${metric}\\) FROM SCHEMA\\("Lifeboat", (service, )?source\\) GROUP BY source ORDER BY (MAX|SUM)\\(\\) DESC LIMIT \\d+$`)));
    }
    // No source is named in the body but the one the one-source row starts with.
    const text = JSON.stringify(body);
    expect(generatedConfig(200).sources.slice(1).filter((source) => text.includes(`"${source.name}"`))).toEqual([]);
  });

  test.each(shardTemplates.map(({ shard, template }) => [shard.node.id, template, Object.keys(shard.dumpTasks)] as const))(
    '%s holds one dashboard: a row per source of the shard and the status of its watchdog alarms', (_id, template, shardSources) => {
      const dashboards = ofType(template, 'AWS::CloudWatch::Dashboard');
      expect(dashboards).toHaveLength(1);
      const text = bodyText(dashboards[0][1].Properties);
      const body = JSON.parse(text) as { widgets: { type: string; properties: { title?: string } }[] };
      expect(shardSources.length).toBeGreaterThan(0);
      const titled = new Set(body.widgets.filter((widget) => widget.type === 'metric').map((widget) => (widget.properties.title as string).split(':')[0]));
      expect(titled).toEqual(new Set(shardSources));
      const alarms = ofType(template, 'AWS::CloudWatch::Alarm').map(([logicalId]) => logicalId);
      expect(alarms).toHaveLength(2 * shardSources.length);
      for (const logicalId of alarms) expect(text).toContain(`{GetAtt:${logicalId}}`);
    });
});
