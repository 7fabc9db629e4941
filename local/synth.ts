import { App } from 'aws-cdk-lib';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { LifeboatConfig } from '../lib/config/types';
import { createStacks, type PrimaryStack } from '../lib/stacks';
import type { SourceShard } from '../lib/stacks/source-shard';
import { cdkJsonContext } from '../lib/stacks/feature-flags';
import type { CfnTemplate } from './definition';

type Resources = CfnTemplate['Resources'];

/**
 * Synthesizes the app for a config, as `cdk synth` would (cdk.json's feature flags), and
 * returns the primary stack's template merged with its source shards' (nested stacks):
 * the parent's resources plus every shard's, each shard's parameters replaced by the values
 * the parent passes them, so a schedule in a shard refers to the parent's state machine as
 * the parent's own resources do. Lambda bundling is skipped: only the template is wanted
 * here, and the local runner calls the handlers' source directly.
 */
export function synthPrimaryTemplate(config: LifeboatConfig): CfnTemplate {
  const outdir = mkdtempSync(path.join(tmpdir(), 'lifeboat-local-synth-'));
  try {
    const app = new App({ outdir, context: { ...cdkJsonContext(), 'aws:cdk:bundling-stacks': [] } });
    const { primary } = createStacks(app, config);
    const assembly = app.synth();
    const parent = assembly.getStackArtifact(primary.artifactId).template as CfnTemplate;
    return mergeShardTemplates(parent, primary.shards.map((shard) => ({
      name: shard.node.path,
      parameters: shardParameters(parent, primary, shard),
      template: JSON.parse(readFileSync(path.join(assembly.directory, shard.templateFile), 'utf8')) as CfnTemplate,
    })));
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

/** The parameters the parent passes a shard (its nested-stack resource's `Parameters`). */
export function shardParameters(parent: CfnTemplate, primary: PrimaryStack, shard: SourceShard): Record<string, unknown> {
  const stackResource = shard.nestedStackResource;
  if (!stackResource) throw new Error(`${shard.node.path} has no nested-stack resource`);
  return (parent.Resources[primary.getLogicalId(stackResource)]?.Properties?.Parameters ?? {}) as Record<string, unknown>;
}

/**
 * The parent's resources plus every shard's, the shards' parameter references replaced by the
 * values the parent passes them: one template whose references all resolve in the parent.
 */
export function mergeShardTemplates(
  parent: CfnTemplate,
  shards: readonly { readonly name: string; readonly parameters: Record<string, unknown>; readonly template: CfnTemplate }[],
): CfnTemplate {
  const resources: Resources = { ...parent.Resources };
  for (const shard of shards) {
    for (const [id, resource] of Object.entries(shard.template.Resources)) {
      if (id in resources) throw new Error(`logical id ${id} of ${shard.name} is also in the primary template`);
      resources[id] = substituteParameters(resource, shard.parameters) as Resources[string];
    }
  }
  return { ...parent, Resources: resources };
}

/** Replaces `{ Ref: <parameter> }` with the value the parent passes the nested stack. */
function substituteParameters(value: unknown, parameters: Record<string, unknown>): unknown {
  if (Array.isArray(value)) return value.map((item) => substituteParameters(item, parameters));
  if (value === null || typeof value !== 'object') return value;
  const node = value as Record<string, unknown>;
  if (typeof node.Ref === 'string' && Object.keys(node).length === 1 && node.Ref in parameters) return parameters[node.Ref];
  return Object.fromEntries(Object.entries(node).map(([key, item]) => [key, substituteParameters(item, parameters)]));
}
