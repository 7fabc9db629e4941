/**
 * The dump engines by engine name: one line each, beside the engine's line in
 * lib/engines/registry.ts. The dump runs in the worker image only (it spawns the dump clients),
 * so it is registered here and not in lib/, which never imports worker/.
 */
import { mysqlEngine } from './mysql';
import { postgresEngine } from './postgres';
import type { DumpEngine } from './types';

export { dumpGlobals } from './postgres';
export * from './types';

/** `mysql` and `mariadb` share one engine: it tells them apart from the server's version string. */
const DUMP_ENGINES: Record<string, DumpEngine> = {
  postgres: postgresEngine,
  mysql: mysqlEngine,
  mariadb: mysqlEngine,
};

/** Adds the dump of an engine registered with lib/engines/registry.ts's `registerEngine`. */
export function registerDumpEngine(name: string, engine: DumpEngine): void {
  if (DUMP_ENGINES[name]) throw Object.assign(new Error(`dump engine "${name}" is already registered`), { name: 'InvalidInput' });
  DUMP_ENGINES[name] = engine;
}

export function engineFor(engine: string): DumpEngine {
  const found = Object.hasOwn(DUMP_ENGINES, engine) ? DUMP_ENGINES[engine] : undefined;
  if (!found) throw Object.assign(new Error(`no dump engine "${engine}" (valid: ${Object.keys(DUMP_ENGINES).join(', ')})`), { name: 'InvalidInput' });
  return found;
}
