import type { App } from 'aws-cdk-lib';
import { ConfigError } from '../config/validate';
import type { LifeboatConfig } from '../config/types';
import { OffsiteStack } from './offsite-stack';
import { PrimaryStack } from './primary-stack';

export { OffsiteStack, type OffsiteStackProps } from './offsite-stack';
export { PrimaryStack, type PrimaryStackProps } from './primary-stack';
export { storageNames, type StorageNames } from './naming';

export interface LifeboatStacks {
  readonly primary: PrimaryStack;
  readonly offsite: OffsiteStack;
}

/**
 * Creates the offsite stack, then the primary stack that replicates into it. The ids are the
 * stack names, and a contract: renaming one creates a new stack.
 */
export function createStacks(app: App, config: LifeboatConfig): LifeboatStacks {
  refuseUndeployable(config);
  const offsite = new OffsiteStack(app, `${config.appName}-Offsite`, { config });
  const primary = new PrimaryStack(app, `${config.appName}-Primary`, { config });
  // Replication to a bucket that does not exist yet fails: the offsite bucket must come first.
  primary.addStackDependency(offsite, 'replicates into the offsite bucket');
  return { primary, offsite };
}

/**
 * Method 'pitr' is read, validated and planned (`lifeboat plan`, `lifeboat pitr setup`), but its
 * run state machines are not built yet (issue 13): deploying such a source would promise a
 * protection that nothing runs. Refused here, naming each source, rather than synthesized
 * without it.
 */
function refuseUndeployable(config: LifeboatConfig): void {
  const pitr = config.sources.filter((source) => source.methods.includes('pitr'));
  if (pitr.length === 0) return;
  throw new ConfigError(pitr.map((source) =>
    `sources: ${source.name} has method 'pitr', which this version plans (lifeboat plan, lifeboat pitr setup ${source.name}) but cannot deploy yet: ` +
    'its backup, verify and drill state machines are not built (valid for cdk deploy today: method \'logical\')'));
}
