import type { App } from 'aws-cdk-lib';
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
  const offsite = new OffsiteStack(app, `${config.appName}-Offsite`, { config });
  const primary = new PrimaryStack(app, `${config.appName}-Primary`, { config });
  // Replication to a bucket that does not exist yet fails: the offsite bucket must come first.
  primary.addStackDependency(offsite, 'replicates into the offsite bucket');
  return { primary, offsite };
}
