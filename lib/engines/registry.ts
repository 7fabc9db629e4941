/**
 * The registered engines: one line each. Everything that differs between them is asked of the
 * engine (lib/engines/contract.ts); test/unit/engine-branches.test.ts keeps branches on an
 * engine's name out of the rest of the code.
 */
import type { Engine } from '../config/types';
import type { DatabaseEngine } from './contract';
import { mariadb, mysql } from './mysql';
import { postgres } from './postgres';

const ENGINES: Readonly<Record<Engine, DatabaseEngine>> = {
  postgres,
  mysql,
  mariadb,
};

export const ENGINE_NAMES = Object.keys(ENGINES) as Engine[];

export function engineOf(name: Engine): DatabaseEngine {
  const engine = ENGINES[name];
  if (!engine) throw Object.assign(new Error(`unknown engine "${String(name)}" (valid: ${ENGINE_NAMES.join(', ')})`), { name: 'InvalidInput' });
  return engine;
}

/** The engine a URL's scheme names (`postgres:`, `postgresql:`, `mysql:`, `mariadb:`), if any. */
export function engineOfUrl(url: URL): DatabaseEngine | undefined {
  const scheme = url.protocol.replace(/:$/, '');
  return Object.values(ENGINES).find((engine) => engine.urlScheme === scheme || engine.urlAliases.includes(scheme));
}

export type { DatabaseEngine } from './contract';
