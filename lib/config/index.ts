export * from './types';
export { ConfigError, defineConfig, formatPath, parseConfig } from './validate';
export { DEFAULT_CONFIG_FILE, loadConfig } from './load';
export { DEFAULT_TIERS } from './tiers';
export type { LifeboatConfigInput } from './schema';
export { formatDuration, formatSize, parseDuration, parseSize } from './units';
