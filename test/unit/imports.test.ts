/**
 * Production code (lib/, worker/, lambdas/) never imports the local stand-ins (local/) or the
 * tests (test/): what runs in AWS is what the tests exercise, not a copy that leans on them.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const ROOT = join(__dirname, '../..');
const PRODUCTION = ['lib', 'worker', 'lambdas'];
const SPECIFIER = /(?:\bfrom\s+|\bimport\s*\(\s*|\brequire\s*\(\s*|^\s*import\s+)['"]([^'"]+)['"]/gm;

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (name === 'node_modules' || name.startsWith('.')) return [];
    return statSync(path).isDirectory() ? files(path) : /\.(ts|js|mjs)$/.test(name) ? [path] : [];
  });
}

export function forbiddenImports(paths: readonly string[]): string[] {
  const found: string[] = [];
  for (const file of paths) {
    const text = readFileSync(file, 'utf8');
    for (const match of text.matchAll(SPECIFIER)) {
      const specifier = match[1] as string;
      if (!specifier.startsWith('.')) continue;
      const target = relative(ROOT, resolve(dirname(file), specifier));
      if (/^(local|test)(\/|$)/.test(target)) {
        const line = text.slice(0, match.index).split('\n').length;
        found.push(`${relative(ROOT, file)}:${line} imports ${specifier}`);
      }
    }
  }
  return found;
}

test('lib/, worker/ and lambdas/ import nothing from local/ or test/', () => {
  const scanned = PRODUCTION.flatMap((dir) => files(join(ROOT, dir)));
  expect(scanned.length).toBeGreaterThan(50);
  expect(forbiddenImports(scanned)).toEqual([]);
});

test('the scan sees an import into local/', () => {
  const { mkdtempSync, writeFileSync, rmSync } = jest.requireActual<typeof import('node:fs')>('node:fs');
  const dir = mkdtempSync(join(ROOT, 'lib', '.imports-probe-'));
  try {
    const file = join(dir, 'probe.ts');
    writeFileSync(file, "import { x } from '../../local/servers/postgres';\nconst y = require('../../test/harness/s3');\nimport { z } from '../servers/postgres';\n");
    expect(forbiddenImports([file]).map((line) => line.replace(/^.*probe\.ts:/, ''))).toEqual([
      '1 imports ../../local/servers/postgres',
      '2 imports ../../test/harness/s3',
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
