/**
 * The at-size generator (test/fixtures/generate-data.ts) keeps its promises at a small size:
 * the size it reports is the server's, the same seed gives the same rows, another seed other
 * rows, and the data has the shapes a dump must carry (NULLs, non-ASCII text, binary values,
 * a foreign key and a secondary index).
 */
import { generateMariaDb, generatePostgres, type GeneratedDatabase } from '../fixtures/generate-data';
import { mariaDbTableDigests, pgTableDigests } from '../harness/digests';
import { startMariaDb, type MariaDbServer } from '../harness/mariadb';
import { startPostgres, type PgServer } from '../harness/postgres';

const TARGET = 12 * 1024 ** 2;
let pg: PgServer;
let maria: MariaDbServer;
/** Databases a and b generated with one seed, c with another. */
let pgGenerated: GeneratedDatabase[];
let mariaGenerated: GeneratedDatabase[];
const SEEDS = { a: 7, b: 7, c: 8 };

beforeAll(async () => {
  [pg, maria] = await Promise.all([startPostgres(), startMariaDb()]);
  const each = async (generate: (database: string, seed: number) => Promise<GeneratedDatabase>) => {
    const generated: GeneratedDatabase[] = [];
    for (const [database, seed] of Object.entries(SEEDS)) generated.push(await generate(database, seed));
    return generated;
  };
  [pgGenerated, mariaGenerated] = await Promise.all([
    each(async (database, seed) => {
      await pg.createDatabase(database);
      return generatePostgres(pg, database, { targetBytes: TARGET, seed });
    }),
    each((database, seed) => generateMariaDb(maria, database, { targetBytes: TARGET, seed })),
  ]);
}, 120_000);
afterAll(async () => {
  await Promise.all([pg?.stop(), maria?.stop()]);
});

const withoutSchema = <T>(digests: Readonly<Record<string, T>>) => Object.fromEntries(Object.entries(digests).map(([table, digest]) => [table.replace(/^[^.]*\./, ''), digest]));

test('PostgreSQL: at least the target size as pg_database_size measures it; same seed, same rows; another seed, other rows', async () => {
  const [a, b] = pgGenerated;
  expect(a.bytes).toBeGreaterThanOrEqual(TARGET);
  expect(a.bytes).toBe(Number((await pg.psql('SELECT pg_database_size(current_database())', 'a')).trim()));
  expect(b.rows).toEqual(a.rows);
  const [da, db, dc] = await Promise.all(['a', 'b', 'c'].map((database) => pgTableDigests(pg, database)));
  expect(Object.keys(da)).toEqual(['public.customers', 'public.events', 'public.order_lines', 'public.orders', 'public.products']);
  expect(db).toEqual(da);
  for (const table of Object.keys(da)) expect({ table, digest: dc[table] }).not.toEqual({ table, digest: da[table] });
});

test('PostgreSQL: NULLs, non-ASCII text, binary values, JSON, foreign keys and a secondary index', async () => {
  const one = async (sql: string) => (await pg.psql(sql, 'a')).trim();
  expect(Number(await one('SELECT count(*) FILTER (WHERE phone IS NULL) * 100 / count(*) FROM customers'))).toBeGreaterThan(10);
  expect(Number(await one('SELECT count(*) FILTER (WHERE shipped_at IS NULL) * 100 / count(*) FROM orders'))).toBeGreaterThan(10);
  expect(Number(await one("SELECT count(*) FROM products WHERE description ~ '[^[:ascii:]]'"))).toBeGreaterThan(0);
  expect(Number(await one('SELECT count(*) FROM products WHERE octet_length(image) > 0'))).toBeGreaterThan(0);
  expect(await one("SELECT jsonb_typeof(payload) FROM events WHERE payload IS NOT NULL LIMIT 1")).toBe('object');
  expect((await one("SELECT string_agg(conrelid::regclass || '->' || confrelid::regclass, ',') FROM pg_constraint WHERE contype = 'f'")).split(',').sort())
    .toEqual(['order_lines->orders', 'order_lines->products', 'orders->customers']);
  expect(await one("SELECT indexname FROM pg_indexes WHERE indexname = 'orders_customer_id_idx'")).toBe('orders_customer_id_idx');
});

test('MariaDB: at least the target size (data + index length); same seed, same rows; another seed, other rows; the same shapes', async () => {
  const [a, b] = mariaGenerated;
  expect(a.bytes).toBeGreaterThanOrEqual(TARGET);
  expect(withoutSchema(b.rows)).toEqual(withoutSchema(a.rows));
  const [da, db, dc] = await Promise.all(['a', 'b', 'c'].map(async (database) => withoutSchema(await mariaDbTableDigests(maria, [database]))));
  expect(Object.keys(da).sort()).toEqual(['customers', 'events', 'order_lines', 'orders', 'products']);
  expect(db).toEqual(da);
  for (const table of Object.keys(da)) expect({ table, digest: dc[table] }).not.toEqual({ table, digest: da[table] });

  const one = async (sql: string) => (await maria.sql(`SET NAMES utf8mb4; ${sql}`, 'a')).trim();
  expect(Number(await one('SELECT SUM(phone IS NULL) * 100 DIV COUNT(*) FROM customers'))).toBeGreaterThan(10);
  expect(Number(await one("SELECT COUNT(*) FROM products WHERE description LIKE '%Straße%' OR description LIKE '%東京%'"))).toBeGreaterThan(0);
  expect(Number(await one('SELECT COUNT(*) FROM products WHERE LENGTH(image) > 0'))).toBeGreaterThan(0);
  expect((await one(`SELECT GROUP_CONCAT(CONCAT(table_name, '->', referenced_table_name))
    FROM information_schema.referential_constraints WHERE constraint_schema = 'a'`)).split(',').sort()).toEqual(['order_lines->orders', 'order_lines->products', 'orders->customers']);
  expect(await one("SELECT COUNT(*) FROM information_schema.statistics WHERE table_schema = 'a' AND table_name = 'orders' AND index_name = 'customer_id'")).toBe('1');
});
