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

test('under a Node older than 22 the command says which Node it needs and how to run it, exit 2', () => {
  const older = spawnSync(process.execPath, ['-e', `Object.defineProperty(process, 'versions', { value: { ...process.versions, node: '20.1.0' } }); require(${JSON.stringify(BIN)})`, '--', 'status'], { encoding: 'utf8' });
  expect(older.stderr).toContain('lifeboat needs Node 22 or newer; this is Node 20.1.0');
  expect(older.stderr).toContain('npx lifeboat');
  expect(older.status).toBe(2);
});
