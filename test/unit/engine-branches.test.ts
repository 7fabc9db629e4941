/**
 * One run shape, many engines: no code outside the engine modules (lib/engines, worker/engines)
 * decides anything by an engine's name. What differs is asked of the engine
 * (lib/engines/contract.ts, worker/engines/types.ts). This test reads every source file of the
 * product (and local/, which runs it) and names each line that compares, switches on or
 * prefix-matches an engine name, so that it stays true as engines are added.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const ROOT = join(__dirname, '../..');
const SCANNED = ['lib', 'worker', 'lambdas', 'cli', 'local', 'bin', 'bench'];
const ENGINE_MODULES = ['lib/engines/', 'worker/engines/'];
const NAME = `(?:postgres|postgresql|mysql|mariadb)`;
const BRANCH = new RegExp([
  `[!=]==?\\s*['"\`]${NAME}['"\`]`,
  `['"\`]${NAME}['"\`]\\s*[!=]==?`,
  `case\\s+['"\`]${NAME}['"\`]`,
  `(?:startsWith|endsWith|includes)\\(\\s*['"\`]${NAME}`,
  `\\bisPg\\b`,
  `\\bisMysql\\b`,
].join('|'));

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (name === 'node_modules' || name.startsWith('.')) return [];
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return /\.(ts|js|mjs)$/.test(name) ? [path] : [];
  });
}

export function engineBranches(files: readonly string[]): string[] {
  const found: string[] = [];
  for (const file of files) {
    const where = relative(ROOT, file);
    if (ENGINE_MODULES.some((prefix) => where.startsWith(prefix))) continue;
    readFileSync(file, 'utf8').split('\n').forEach((line, index) => {
      const code = line.replace(/\/\/.*$/, '');
      if (/^\s*(\*|\/\*)/.test(code)) return;
      if (BRANCH.test(code)) found.push(`${where}:${index + 1}: ${line.trim()}`);
    });
  }
  return found;
}

test('no branch on an engine\'s name outside lib/engines and worker/engines', () => {
  const files = SCANNED.flatMap((dir) => {
    try {
      return sourceFiles(join(ROOT, dir));
    } catch {
      return [];
    }
  });
  expect(files.length).toBeGreaterThan(50);
  expect(engineBranches(files)).toEqual([]);
});

test('the scan sees the branches it forbids', () => {
  const { mkdtempSync, writeFileSync, rmSync } = jest.requireActual<typeof import('node:fs')>('node:fs');
  const dir = mkdtempSync(join(ROOT, '.engine-branches-'));
  try {
    const file = join(dir, 'probe.ts');
    writeFileSync(file, [
      "if (engine === 'postgres') x();",
      "const y = 'mariadb' !== source.engine;",
      "switch (e) { case 'mysql': break; }",
      "url.protocol.startsWith('postgres');",
      'const isPg = true;',
      "// engine === 'postgres' in a comment is fine",
      "const label = 'postgres';",
    ].join('\n'));
    expect(engineBranches([file]).map((line) => line.replace(/^.*probe\.ts:/, ''))).toEqual([
      "1: if (engine === 'postgres') x();",
      "2: const y = 'mariadb' !== source.engine;",
      "3: switch (e) { case 'mysql': break; }",
      "4: url.protocol.startsWith('postgres');",
      '5: const isPg = true;',
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
