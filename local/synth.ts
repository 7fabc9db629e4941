import { App } from 'aws-cdk-lib';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { LifeboatConfig } from '../lib/config/types';
import { createStacks } from '../lib/stacks';
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
    const resources: Resources = { ...parent.Resources };
    for (const shard of primary.shards) {
      const stackResource = shard.nestedStackResource;
      if (!stackResource) throw new Error(`${shard.node.path} has no nested-stack resource`);
      const parameters = (parent.Resources[primary.getLogicalId(stackResource)]?.Properties?.Parameters ?? {}) as Record<string, unknown>;
      const template = JSON.parse(readFileSync(path.join(assembly.directory, shard.templateFile), 'utf8')) as CfnTemplate;
      for (const [id, resource] of Object.entries(template.Resources)) {
        if (id in resources) throw new Error(`logical id ${id} of ${shard.node.path} is also in the primary template`);
        resources[id] = substituteParameters(resource, parameters) as Resources[string];
      }
    }
    return { ...parent, Resources: resources };
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

/** Replaces `{ Ref: <parameter> }` with the value the parent passes the nested stack. */
function substituteParameters(value: unknown, parameters: Record<string, unknown>): unknown {
  if (Array.isArray(value)) return value.map((item) => substituteParameters(item, parameters));
  if (value === null || typeof value !== 'object') return value;
  const node = value as Record<string, unknown>;
  if (typeof node.Ref === 'string' && Object.keys(node).length === 1 && node.Ref in parameters) return parameters[node.Ref];
  return Object.fromEntries(Object.entries(node).map(([key, item]) => [key, substituteParameters(item, parameters)]));
}
