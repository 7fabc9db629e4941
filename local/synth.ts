import { App } from 'aws-cdk-lib';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { LifeboatConfig } from '../lib/config/types';
import { createStacks, type PrimaryStack } from '../lib/stacks';
import type { NestedStack } from 'aws-cdk-lib';
import { cdkJsonContext } from '../lib/stacks/feature-flags';
import { ResolvedStack, type CfnTemplate } from './cfn/resolve';

type Resources = CfnTemplate['Resources'];

/** The account a local run deploys to when the config names none (an environment-agnostic synth). */
export const LOCAL_ACCOUNT = '000000000000';

/** Both stacks of an app as synthesized for a config, each with where it would be deployed. */
export interface SynthesizedApp {
  readonly config: LifeboatConfig;
  /** The primary stack's template merged with its source shards' (see `mergeShardTemplates`). */
  readonly primary: ResolvedStack;
  readonly offsite: ResolvedStack;
}

/**
 * Synthesizes the app for a config, as `cdk synth` would (cdk.json's feature flags): both
 * stacks' templates, in the accounts and regions of the config (the local account when it
 * names none; then both stacks share it, as an environment-agnostic deploy with one set of
 * credentials would). Lambda bundling is skipped: only the templates are wanted here, and the
 * local runner calls the handlers' source directly.
 */
export function synthApp(config: LifeboatConfig): SynthesizedApp {
  const outdir = mkdtempSync(path.join(tmpdir(), 'lifeboat-local-synth-'));
  try {
    const app = new App({ outdir, context: { ...cdkJsonContext(), 'aws:cdk:bundling-stacks': [] } });
    const { primary, offsite } = createStacks(app, config);
    const assembly = app.synth();
    const parent = assembly.getStackArtifact(primary.artifactId).template as CfnTemplate;
    // The source shards, the native shards (RDS/Aurora sources' checks, copies and drills) and the
    // binlog shards (MySQL/MariaDB sources' binary-log archivers) and the binlog drill shards (their PITR drills).
    const nested: NestedStack[] = [...primary.shards, ...(primary.native?.shards ?? []), ...primary.binlogShards, ...primary.binlogDrillShards];
    const merged = mergeShardTemplates(parent, nested.map((shard) => ({
      name: shard.node.path,
      parameters: shardParameters(parent, primary, shard),
      template: JSON.parse(readFileSync(path.join(assembly.directory, shard.templateFile), 'utf8')) as CfnTemplate,
    })));
    const primaryAccount = config.primary.account ?? LOCAL_ACCOUNT;
    const offsiteAccount = config.offsite.account ?? primaryAccount;
    return {
      config,
      primary: new ResolvedStack(merged, { stackName: primary.stackName, account: primaryAccount, region: config.primary.region }),
      offsite: new ResolvedStack(assembly.getStackArtifact(offsite.artifactId).template as CfnTemplate, {
        stackName: offsite.stackName, account: offsiteAccount, region: config.offsite.region,
      }),
    };
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

/**
 * The primary stack's template merged with its source shards' (nested stacks): the parent's
 * resources plus every shard's, each shard's parameters replaced by the values the parent
 * passes them, so a schedule in a shard refers to the parent's state machine as the parent's
 * own resources do.
 */
export function synthPrimaryTemplate(config: LifeboatConfig): CfnTemplate {
  return synthApp(config).primary.template;
}

/** The parameters the parent passes a shard (its nested-stack resource's `Parameters`). */
export function shardParameters(parent: CfnTemplate, primary: PrimaryStack, shard: NestedStack): Record<string, unknown> {
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
