/**
 * The README and docs/ are the project's documentation: every link in them resolves to a file
 * of the repository (no URL, no path that leaves it), and docs/architecture.md, linked from
 * the README, holds the shape, the bucket layout, the invariants and the engine contract.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const ROOT = join(__dirname, '../..');
const DOCUMENTS = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((name) => name.endsWith('.md')).map((name) => `docs/${name}`)];

/** Every problem with the links and references of one Markdown document. */
export function linkProblems(file: string, text: string, root = ROOT): string[] {
  const problems: string[] = [];
  for (const match of text.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
    const target = match[1];
    if (target.startsWith('#')) continue;
    if (/^[a-z][a-z0-9+.-]*:/i.test(target)) {
      problems.push(`${file}: ${target} leaves the repository`);
      continue;
    }
    const path = resolve(root, dirname(file), decodeURIComponent(target.split('#')[0]));
    if (relative(root, path).startsWith('..')) problems.push(`${file}: ${target} leaves the repository`);
    else if (!existsSync(path)) problems.push(`${file}: ${target} does not exist`);
  }
  for (const match of text.matchAll(/\bhttps?:\/\/[^\s)>`]+/g)) problems.push(`${file}: ${match[0]} leaves the repository`);
  for (const match of text.matchAll(/(?:^|[\s(`])(\.\.\/shared\/[^\s)`]+|DESIGN\.md|STYLE\.md|TOOLCHAIN\.md)/gm)) problems.push(`${file}: ${match[1]} is outside the repository`);
  return problems;
}

test('every link of the README and docs/ resolves inside the repository', () => {
  expect(DOCUMENTS.length).toBeGreaterThan(3);
  expect(DOCUMENTS.flatMap((file) => linkProblems(file, readFileSync(join(ROOT, file), 'utf8')))).toEqual([]);
});

test('the check sees links that leave the repository or lead nowhere', () => {
  const text = [
    'See [the design](../shared/DESIGN.md), [AWS](https://docs.aws.amazon.com/), [gone](docs/nothing-here.md),',
    'plain https://example.com/x and [fine](docs/architecture.md#the-engine-contract) and [anchor](#top).',
  ].join('\n');
  expect(linkProblems('README.md', text)).toEqual([
    'README.md: ../shared/DESIGN.md leaves the repository',
    'README.md: https://docs.aws.amazon.com/ leaves the repository',
    'README.md: docs/nothing-here.md does not exist',
    'README.md: https://docs.aws.amazon.com/ leaves the repository',
    'README.md: https://example.com/x leaves the repository',
    'README.md: ../shared/DESIGN.md is outside the repository',
  ]);
});

test('docs/architecture.md is linked from the README and covers the shape, the layout, the invariants and the engine contract', () => {
  expect(readFileSync(join(ROOT, 'README.md'), 'utf8')).toContain('](docs/architecture.md)');
  const architecture = readFileSync(join(ROOT, 'docs/architecture.md'), 'utf8');
  for (const heading of ['## The bucket is the catalog', '## Invariants', '## The engine contract']) expect(architecture).toContain(heading);
});
