import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { ConfigError, parseConfig } from './validate';
import type { LifeboatConfig } from './types';

export const DEFAULT_CONFIG_FILE = 'lifeboat.config.ts';

/**
 * Reads and validates a config file: JSON, or a TypeScript/JavaScript module whose default
 * export (or `config` export) is the config. TypeScript files load through the runtime's
 * TypeScript support (tsx for the CDK app and CLI, swc under jest).
 */
export function loadConfig(file: string = DEFAULT_CONFIG_FILE, cwd: string = process.cwd()): LifeboatConfig {
  const absolute = path.resolve(cwd, file);
  let input: unknown;
  try {
    if (absolute.endsWith('.json')) {
      input = JSON.parse(readFileSync(absolute, 'utf8'));
    } else {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const loaded = require(absolute) as { default?: unknown; config?: unknown };
      input = loaded.default ?? loaded.config;
    }
  } catch (error) {
    throw new ConfigError([`cannot read ${file}: ${(error as Error).message.split('\n')[0]}`], file);
  }
  if (input === undefined) {
    throw new ConfigError([`${file} has no default export (valid: "export default defineConfig({ ... })")`], file);
  }
  return parseConfig(input, file);
}
