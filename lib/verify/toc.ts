/**
 * Reading `pg_restore -l` output: object counts by TOC entry type and the set of tables whose
 * rows the archive holds. Pure, so every awkward name is a unit test.
 *
 * A TOC line is `<dumpId>; <catalogOid> <oid> <desc> <schema> <tag> <owner>`, printed without
 * any quoting: a desc ("TABLE DATA"), a schema ("My Schema") and a tag ("Kunden Ümlaut") may
 * all contain spaces. Descs come from a known list (longest match); schemas from the archive's
 * own SCHEMA entries plus those the caller knows (the manifest's), so `Kunden Kunden Ümlaut
 * postgres` splits into schema `Kunden`, table `Kunden Ümlaut`, owner `postgres`. The owner is
 * the last word (a role name with a space in it would be misread; the table set then reports
 * the table by its misread name rather than passing silently).
 */

export interface TocEntry {
  readonly dumpId: number;
  /** pg_class (1259) for a TABLE; 0 for data entries such as TABLE DATA. */
  readonly catalogOid: number;
  readonly oid: number;
  readonly desc: string;
  /** Schema, tag and owner as printed, separated by single spaces. */
  readonly rest: string;
}

export interface QualifiedName {
  readonly schema: string;
  readonly name: string;
}

export interface TocSummary {
  readonly entries: readonly TocEntry[];
  /** Entry count per desc: TABLE, TABLE DATA, INDEX, SEQUENCE SET, BLOB, … */
  readonly objectCounts: Record<string, number>;
  /** Tables with both a TABLE entry (the definition) and a TABLE DATA entry (the rows). */
  readonly dataTables: readonly QualifiedName[];
  /** Tables with a definition and no rows entry: partitioned parents, or rows missing. */
  readonly tablesWithoutData: readonly QualifiedName[];
  /**
   * TABLE DATA entries without a TABLE entry: configuration tables of extensions, whose
   * definition the extension recreates. Not user tables, so not compared with the manifest.
   */
  readonly extensionData: readonly QualifiedName[];
}

/** Every desc pg_dump 15–18 writes; multi-word ones must be known to split a line. */
const KNOWN_DESCS = [
  'ACCESS METHOD', 'ACL', 'AGGREGATE', 'BLOB', 'BLOB METADATA', 'BLOBS', 'CAST', 'CHECK CONSTRAINT', 'COLLATION',
  'COMMENT', 'CONSTRAINT', 'CONVERSION', 'DATABASE', 'DATABASE PROPERTIES', 'DEFAULT', 'DEFAULT ACL', 'DOMAIN',
  'ENCODING', 'EVENT TRIGGER', 'EXTENSION', 'FK CONSTRAINT', 'FOREIGN DATA WRAPPER', 'FOREIGN TABLE', 'FUNCTION',
  'INDEX', 'INDEX ATTACH', 'LARGE OBJECT', 'LARGE OBJECTS', 'MATERIALIZED VIEW', 'MATERIALIZED VIEW DATA', 'OPERATOR',
  'OPERATOR CLASS', 'OPERATOR FAMILY', 'POLICY', 'PROCEDURAL LANGUAGE', 'PROCEDURE', 'PUBLICATION', 'PUBLICATION TABLE',
  'PUBLICATION TABLES IN SCHEMA', 'ROW SECURITY', 'RULE', 'SCHEMA', 'SEARCHPATH', 'SECURITY LABEL', 'SEQUENCE',
  'SEQUENCE OWNED BY', 'SEQUENCE SET', 'SERVER', 'SHELL TYPE', 'STATISTICS', 'STATISTICS DATA', 'STDSTRINGS',
  'SUBSCRIPTION', 'SUBSCRIPTION TABLE', 'TABLE', 'TABLE ATTACH', 'TABLE DATA', 'TEXT SEARCH CONFIGURATION',
  'TEXT SEARCH DICTIONARY', 'TEXT SEARCH PARSER', 'TEXT SEARCH TEMPLATE', 'TRANSFORM', 'TRIGGER', 'TYPE',
  'USER MAPPING', 'VIEW',
].sort((a, b) => b.length - a.length);

/**
 * Data entries have catalog oid 0. A TABLE in a schema named "DATA" prints like a TABLE DATA
 * entry; the catalog oid tells them apart.
 */
const DATA_DESCS = new Set(['TABLE DATA', 'SEQUENCE SET', 'MATERIALIZED VIEW DATA']);

const LINE = /^(\d+); (\d+) (\d+) (.*)$/;

export function parseTocLine(line: string): TocEntry | undefined {
  const match = LINE.exec(line);
  if (!match) return undefined;
  const [, dumpId, catalogOid, oid, text] = match as unknown as [string, string, string, string, string];
  const catalog = Number(catalogOid);
  let desc = text.split(' ')[0] ?? '';
  for (const known of KNOWN_DESCS) {
    if (text === known || text.startsWith(`${known} `)) {
      if (DATA_DESCS.has(known) && catalog !== 0) continue;
      desc = known;
      break;
    }
  }
  return { dumpId: Number(dumpId), catalogOid: catalog, oid: Number(oid), desc, rest: text.slice(desc.length + 1) };
}

/** Splits `<schema> <tag> <owner>` using the schemas known to exist (longest first). */
export function splitQualified(rest: string, schemas: readonly string[]): QualifiedName {
  const lastSpace = rest.lastIndexOf(' ');
  const qualified = lastSpace < 0 ? rest : rest.slice(0, lastSpace);
  const schema = [...schemas].sort((a, b) => b.length - a.length).find((s) => qualified.startsWith(`${s} `));
  if (schema !== undefined) return { schema, name: qualified.slice(schema.length + 1) };
  const space = qualified.indexOf(' ');
  return space < 0 ? { schema: '', name: qualified } : { schema: qualified.slice(0, space), name: qualified.slice(space + 1) };
}

/** Parses `pg_restore -l` output. `knownSchemas`: schema names from elsewhere (the manifest). */
export function summarizeToc(listing: string, knownSchemas: readonly string[] = []): TocSummary {
  const entries = listing
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith(';'))
    .map(parseTocLine)
    .filter((entry): entry is TocEntry => entry !== undefined);
  const objectCounts: Record<string, number> = {};
  for (const entry of entries) objectCounts[entry.desc] = (objectCounts[entry.desc] ?? 0) + 1;

  // SCHEMA entries print as `- <name> <owner>`.
  const schemas = new Set(['public', 'pg_catalog', ...knownSchemas]);
  for (const entry of entries.filter((e) => e.desc === 'SCHEMA')) {
    schemas.add(splitQualified(entry.rest, ['-']).name);
  }
  const schemaList = [...schemas];
  const names = (desc: string) => entries.filter((e) => e.desc === desc).map((e) => splitQualified(e.rest, schemaList));
  const defined = names('TABLE');
  const data = names('TABLE DATA');
  const definedKeys = new Set(defined.map(tableKey));
  const dataKeys = new Set(data.map(tableKey));
  return {
    entries,
    objectCounts,
    dataTables: data.filter((t) => definedKeys.has(tableKey(t))),
    tablesWithoutData: defined.filter((t) => !dataKeys.has(tableKey(t))),
    extensionData: data.filter((t) => !definedKeys.has(tableKey(t))),
  };
}

/** A set key for (schema, name); JSON so no separator can collide with a name. */
export function tableKey(table: QualifiedName): string {
  return JSON.stringify([table.schema, table.name]);
}

export interface TableSetDiff {
  /** In the manifest, not in the artifact. */
  readonly missing: readonly QualifiedName[];
  /** In the artifact, not in the manifest. */
  readonly unexpected: readonly QualifiedName[];
}

/** Compares (schema, name) sets; each side is deduplicated, results sorted. */
export function diffTableSets(expected: readonly QualifiedName[], found: readonly QualifiedName[]): TableSetDiff {
  const expectedKeys = new Set(expected.map(tableKey));
  const foundKeys = new Set(found.map(tableKey));
  const unique = (list: readonly QualifiedName[]) =>
    [...new Map(list.map((t) => [tableKey(t), t])).values()].sort((a, b) => tableKey(a).localeCompare(tableKey(b)));
  return {
    missing: unique(expected.filter((t) => !foundKeys.has(tableKey(t)))),
    unexpected: unique(found.filter((t) => !expectedKeys.has(tableKey(t)))),
  };
}

/** `sales.orders`, `"Kunden"."Kunden Ümlaut"`: PostgreSQL quoting where a name needs it. */
export function pgDisplayName(table: QualifiedName): string {
  const quote = (part: string) => (/^[a-z_][a-z0-9_$]*$/.test(part) ? part : `"${part.replaceAll('"', '""')}"`);
  return table.schema === '' ? quote(table.name) : `${quote(table.schema)}.${quote(table.name)}`;
}
