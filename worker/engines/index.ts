/** The dump engines by the config's engine name. */
import { mysqlEngine } from './mysql';
import { postgresEngine } from './postgres';
import type { DumpEngine, EngineName } from './types';

export { dumpGlobals } from './postgres';
export * from './types';

/** `mysql` and `mariadb` share one engine: it tells them apart from the server's version string. */
export function engineFor(engine: EngineName): DumpEngine {
  return engine === 'postgres' ? postgresEngine : mysqlEngine;
}
