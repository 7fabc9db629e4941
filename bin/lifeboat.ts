#!/usr/bin/env node
import { App } from 'aws-cdk-lib';
import { ConfigError, DEFAULT_CONFIG_FILE, loadConfig } from '../lib/config';
import { createStacks } from '../lib/stacks';

// The CDK app: load the strategy, create the stacks, nothing else.
// Another config file: `npx cdk synth -c config=path/to/file.ts` (or .json).
const app = new App();
const configFile = (app.node.tryGetContext('config') as string | undefined) ?? DEFAULT_CONFIG_FILE;
try {
  createStacks(app, loadConfig(configFile));
} catch (error) {
  if (error instanceof ConfigError) {
    console.error(error.message);
    process.exit(1);
  }
  throw error;
}
