/**
 * The registered engines: one line each. Everything that differs between them is asked of the
 * engine (lib/engines/contract.ts); test/unit/engine-branches.test.ts keeps branches on an
 * engine's name out of the rest of the code. The dump, which runs in the worker image only,
 * has its own one-line table (worker/engines/index.ts).
 */
import type { DatabaseEngine } from './contract';
import { mariadb, mysql } from './mysql';
import { postgres } from './postgres';

const ENGINES: Record<string, DatabaseEngine> = {
  postgres,
  mysql,
  mariadb,
};

/** The built-in engines' names, the ones a config may name. */
export const ENGINE_NAMES = Object.keys(ENGINES) as ('postgres' | 'mysql' | 'mariadb')[];

/**
 * Adds an engine that is not in the table above (the contract suite's file engine, a plugin).
 * A name already registered is refused: an engine never replaces another one.
 */
export function registerEngine(engine: DatabaseEngine): void {
  if (ENGINES[engine.name]) throw Object.assign(new Error(`engine "${engine.name}" is already registered`), { name: 'InvalidInput' });
  ENGINES[engine.name] = engine;
}

/** The registered engine of that name, or undefined. */
export function engineNamed(name: string): DatabaseEngine | undefined {
  return Object.hasOwn(ENGINES, name) ? ENGINES[name] : undefined;
}

export function engineOf(name: string): DatabaseEngine {
  const engine = engineNamed(name);
  if (!engine) throw Object.assign(new Error(`unknown engine "${String(name)}" (valid: ${Object.keys(ENGINES).join(', ')})`), { name: 'InvalidInput' });
  return engine;
}

/** The engine a URL's scheme names (`postgres:`, `postgresql:`, `mysql:`, `mariadb:`), if any. */
export function engineOfUrl(url: URL): DatabaseEngine | undefined {
  const scheme = url.protocol.replace(/:$/, '');
  return Object.values(ENGINES).find((engine) => engine.urlScheme === scheme || engine.urlAliases.includes(scheme));
}

/** The engine whose checks read artifacts of `format` (a manifest artifact's `format`), if any. */
export function engineOfFormat(format: string): DatabaseEngine | undefined {
  return Object.values(ENGINES).find((engine) => engine.verify.formats.includes(format));
}

/** Every artifact format some engine reads, for messages. */
export function artifactFormats(): string[] {
  return [...new Set(Object.values(ENGINES).flatMap((engine) => engine.verify.formats))];
}

export type { DatabaseEngine } from './contract';
