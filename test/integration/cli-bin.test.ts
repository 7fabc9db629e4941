import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

const BIN = path.resolve(__dirname, '../../bin/lifeboat-cli.js');
const lifeboat = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', cwd: path.resolve(__dirname, '../..') });

test('the installed command prints its usage and exits 0 on --help, 2 on an unknown command', () => {
  const help = lifeboat('--help');
  expect(help.stderr).toContain('Usage: lifeboat <command>');
  expect(help.status).toBe(0);
  expect(lifeboat('frobnicate').status).toBe(2);
});

test('the installed command refuses a password on the command line without echoing it', () => {
  const result = lifeboat('dump', '--source-url', 'postgres://backup:s3cret-pw@db/shop', '--source', 'shop', '--bucket', 'b');
  expect(result.status).toBe(2);
  expect(result.stdout + result.stderr).toContain('contains a password');
  expect(result.stdout + result.stderr).not.toContain('s3cret-pw');
});
