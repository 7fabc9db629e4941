/** The binlog coordinates a dump records, read from MariaDB's and MySQL's dump text; the dump clients' argv for them. */
import { CoordinateTap, parseDumpCoordinates } from '../../lib/binlog/coordinates';
import { mysqlDumpArgs } from '../../worker/engines/mysql-clients';
import { mysqlDumpNeeds } from '../../worker/engines/mysql-privileges';

const MARIADB_HEAD = `-- MariaDB dump 10.19  Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64)
--
-- CHANGE MASTER TO MASTER_USE_GTID=slave_pos;
--
-- Alternately, following is the position of the binary logging from SHOW MASTER STATUS at point of backup.
--

-- CHANGE MASTER TO MASTER_LOG_FILE='binlog.000003', MASTER_LOG_POS=3048;
`;
const MARIADB_TAIL = `
--
-- GTID to start replication from
--

-- SET GLOBAL gtid_slave_pos='0-1-16';
-- Dump completed on 2026-12-04 18:37:30
`;
const MYSQL_HEAD = `-- MySQL dump 10.13  Distrib 8.4.3, for Linux (x86_64)
SET @MYSQLDUMP_TEMP_LOG_BIN = @@SESSION.SQL_LOG_BIN;
--
-- GTID state at the beginning of the backup
--

/* SET @@GLOBAL.GTID_PURGED=/*!80000 '+'*/ '3e11fa47-71ca-11e1-9e33-c80aa9429562:1-77,
4d22fb58-71ca-11e1-9e33-c80aa9429562:1-5';*/

--
-- Position to start replication or point-in-time recovery from
--

-- CHANGE REPLICATION SOURCE TO SOURCE_LOG_FILE='mysql-bin.000042', SOURCE_LOG_POS=157;
`;

describe('parseDumpCoordinates', () => {
  test('MariaDB: the position near the head, the GTID near the end', () => {
    expect(parseDumpCoordinates(MARIADB_HEAD, MARIADB_TAIL)).toEqual({ file: 'binlog.000003', position: 3048, gtid: '0-1-16' });
  });

  test('MySQL: CHANGE REPLICATION SOURCE TO and the commented GTID_PURGED, whitespace removed', () => {
    expect(parseDumpCoordinates(MYSQL_HEAD)).toEqual({
      file: 'mysql-bin.000042',
      position: 157,
      gtid: '3e11fa47-71ca-11e1-9e33-c80aa9429562:1-77,4d22fb58-71ca-11e1-9e33-c80aa9429562:1-5',
    });
  });

  test('older MySQL: CHANGE MASTER TO without a GTID', () => {
    expect(parseDumpCoordinates("-- CHANGE MASTER TO MASTER_LOG_FILE='mysql-bin.000007', MASTER_LOG_POS=4;")).toEqual({ file: 'mysql-bin.000007', position: 4 });
  });

  test('a dump without coordinates has none', () => {
    expect(parseDumpCoordinates('-- MariaDB dump\nCREATE TABLE t (id int);\n', '-- Dump completed')).toBeUndefined();
  });

  test('the tap keeps the head and the tail of a long stream, whatever the chunking', async () => {
    const tap = new CoordinateTap();
    const filler = 'INSERT INTO t VALUES (1);\n'.repeat(20_000);
    const chunks = [MARIADB_HEAD, filler, MARIADB_TAIL].join('').match(/[\s\S]{1,777}/g) as string[];
    const out: Buffer[] = [];
    tap.on('data', (chunk: Buffer) => out.push(chunk));
    for (const chunk of chunks) tap.write(Buffer.from(chunk));
    tap.end();
    await new Promise((resolve) => tap.on('end', resolve));
    expect(Buffer.concat(out).toString()).toBe(chunks.join(''));
    expect(tap.coordinates()).toEqual({ file: 'binlog.000003', position: 3048, gtid: '0-1-16' });
  });
});

describe('the dump clients record coordinates for a point-in-time base', () => {
  const base = { host: 'db', port: 3306, username: 'u', databases: ['shop'] };

  test('MariaDB: --master-data=2 --gtid, and no global lock (RELOAD) is needed with --single-transaction', () => {
    const args = mysqlDumpArgs({ ...base, client: { flavor: 'mariadb', major: 10 }, serverFlavor: 'mariadb', binlogCoordinates: true });
    expect(args).toEqual(expect.arrayContaining(['--single-transaction', '--master-data=2', '--gtid']));
    expect(mysqlDumpNeeds(args).reload).toBe(false);
  });

  test('MySQL 8: --source-data=2 with the GTID position commented; FLUSH TABLES WITH READ LOCK needs RELOAD', () => {
    const args = mysqlDumpArgs({ ...base, client: { flavor: 'mysql', major: 8 }, serverFlavor: 'mysql', binlogCoordinates: true });
    expect(args).toEqual(expect.arrayContaining(['--source-data=2', '--set-gtid-purged=COMMENTED']));
    expect(args).not.toContain('--set-gtid-purged=OFF');
    expect(mysqlDumpNeeds(args).reload).toBe(true);
  });

  test('without a point-in-time method nothing changes', () => {
    const args = mysqlDumpArgs({ ...base, client: { flavor: 'mysql', major: 8 }, serverFlavor: 'mysql' });
    expect(args.filter((arg) => /data=|--gtid/.test(arg))).toEqual([]);
    expect(args).toContain('--set-gtid-purged=OFF');
  });
});
