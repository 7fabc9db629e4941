import { App } from 'aws-cdk-lib';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { LifeboatConfig } from '../lib/config/types';
import { createStacks } from '../lib/stacks';
import { cdkJsonContext } from '../lib/stacks/feature-flags';
import type { CfnTemplate } from './definition';

/**
 * Synthesizes the app for a config, as `cdk synth` would (cdk.json's feature flags), and
 * returns the primary stack's template. Lambda bundling is skipped: only the template is
 * wanted here, and the local runner calls the handlers' source directly.
 */
export function synthPrimaryTemplate(config: LifeboatConfig): CfnTemplate {
  const outdir = mkdtempSync(path.join(tmpdir(), 'lifeboat-local-synth-'));
  try {
    const app = new App({ outdir, context: { ...cdkJsonContext(), 'aws:cdk:bundling-stacks': [] } });
    const { primary } = createStacks(app, config);
    return app.synth().getStackArtifact(primary.artifactId).template as CfnTemplate;
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}
