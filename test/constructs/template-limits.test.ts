import { NestedStack, Stack } from 'aws-cdk-lib';
import { createStacks } from '../../lib/stacks';
import { SOURCES_PER_SHARD } from '../../lib/stacks/source-shard';
import { RDS_SOURCES_PER_SHARD } from '../../lib/stacks/native-shard';
import { generatedConfig, templateFigures, type TemplateFigures } from '../../bench/synth';
import { testApp } from '../fixtures/cdk-app';

// Issue 11, "1,000 sources": every template of a 1,000-source app (the primary, each nested
// source shard and native shard, the offsite) within CloudFormation's limits.
//
// CloudFormation's quotas ("Understand CloudFormation quotas",
// https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/cloudformation-limits.html,
// and the TemplateURL parameter of CreateStack/UpdateStack/CreateChangeSet, read December 2026):
// - template body in an S3 object: 1 MB. `cdk deploy` uploads every template to the asset
//   bucket and passes its URL (nested stacks are always passed by URL). A body passed inline
//   in the request is limited to 51,200 bytes: no template here could be deployed that way.
//   We count 1 MB as 1,000,000 bytes, the lower reading.
// - resources per template: 500; parameters: 200; outputs: 200; mappings: 200.
const LIMITS = { bytes: 1_000_000, resources: 500, parameters: 200, outputs: 200, mappings: 200 } as const;
// Warn before it breaks: the largest template stays under 80% of the size limit (about 60%
// today, a shard). Resources have no such margin: a shard of 25 sources has about 412 of its
// 500 (82%), so only the limit itself is asserted for them.
const SIZE_MARGIN = 0.8;
const SOURCES = 1000;

let figures: TemplateFigures[] = [];
let expected: { stacks: string[]; shards: number };

// A 1,000-source synth (1,000 Aurora sources: their drill state machines too) takes about 2
// minutes on this 2-core machine; the repository's 60 s timeout is too short for it.
beforeAll(() => {
  const app = testApp();
  const { primary, offsite } = createStacks(app, generatedConfig(SOURCES));
  const assembly = app.synth();
  figures = templateFigures(assembly.directory);
  const nested = primary.node.findAll().filter((construct) => NestedStack.isNestedStack(construct as Stack));
  expected = {
    stacks: [primary, offsite].map((stack) => assembly.getStackArtifact(stack.artifactId).templateFile),
    shards: nested.length,
  };
}, 240_000);

test('every template is checked: the primary, the offsite, one per shard of 25 sources and one per native shard of 12', () => {
  // The generated sources are Aurora clusters: source shards, and native shards of their own.
  expect(expected.shards).toBe(Math.ceil(SOURCES / SOURCES_PER_SHARD) + Math.ceil(SOURCES / RDS_SOURCES_PER_SHARD));
  const files = figures.map((template) => template.file);
  expect(files).toEqual(expect.arrayContaining(expected.stacks));
  expect(files.filter((file) => file.endsWith('.nested.template.json'))).toHaveLength(expected.shards);
  expect(files).toHaveLength(expected.stacks.length + expected.shards);
});

test.each(Object.entries(LIMITS) as [keyof typeof LIMITS, number][])('%s: every template at most %d', (key, limit) => {
  const over = figures.filter((template) => template[key] > limit).map((template) => `${template.file}: ${template[key]}`);
  expect(over).toEqual([]);
});

test(`the largest template stays under ${SIZE_MARGIN * 100}% of the size limit`, () => {
  const [largest] = figures;
  console.log(`Largest of ${figures.length} templates for ${SOURCES} sources: ${largest.file}, ${largest.bytes} bytes, ${largest.resources} resources`);
  expect(largest.bytes).toBeLessThan(SIZE_MARGIN * LIMITS.bytes);
});
