/**
 * MySQL/MariaDB SQL scripts, verified (the engines' `verify`, lib/engines/mysql.ts): the whole
 * artifact decompresses, ends with the dump client's completion marker and creates exactly the
 * manifest's tables (lib/verify/sql-checks.ts, fed by the verifier's one read).
 */
import type { ManifestArtifact } from '../domain/manifest';
import type { VerificationCheck } from '../domain/verification';
import type { ArtifactJudgement, EngineVerify, Finding } from '../engines/verify-contract';
import { tableSetCheck } from './judge';
import { compressionMethod, startSqlArtifactChecks } from './sql-checks';
import type { QualifiedName } from './toc';

export const sqlScriptVerify: EngineVerify = {
  formats: ['sql'],
  prepare: async () => ({
    refuse: (artifact) => compressionMethod(artifact.compression) === undefined
      ? { name: 'InvalidManifest', message: `${artifact.key}: unknown compression "${artifact.compression}" (known: zstd, gzip, none)` }
      : undefined,
    start(artifact, expected) {
      const checks = startSqlArtifactChecks(artifact.compression);
      return {
        consumers: [checks.consumer],
        result: async () => judgeSqlArtifact(artifact, expected, await checks.result()),
        // The decompressor runs in-process: it stops with the read.
        kill: () => undefined,
      };
    },
  }),
  stockReadCommand: (artifact, file) => {
    const method = compressionMethod(artifact.compression);
    return method === 'gzip' ? ['gzip', '-t', file] : method === 'none' ? ['wc', '-c', file] : ['zstd', '-q', '-t', file];
  },
};

/** From the decompressed SQL scan to checks and findings. */
export function judgeSqlArtifact(
  artifact: ManifestArtifact,
  expected: readonly QualifiedName[],
  result: { scan: { tables: readonly { database: string; name: string }[]; completed: boolean; bytes: number }; decompressError?: string; method: string },
): ArtifactJudgement {
  const checks: VerificationCheck[] = [];
  const findings: Finding[] = [];
  if (result.decompressError !== undefined) {
    checks.push({ name: 'decompress', ok: false, detail: result.decompressError });
    findings.push({ name: 'ArchiveCorrupt', message: `${artifact.key} does not decompress to its end (${result.decompressError})` });
  } else {
    checks.push({
      name: 'decompress',
      ok: true,
      detail: result.method === 'none' ? `uncompressed, ${result.scan.bytes} bytes of SQL` : `${result.method}: ${result.scan.bytes} bytes of SQL`,
    });
  }
  if (result.scan.completed) {
    checks.push({ name: 'completion-marker', ok: true, detail: 'ends with the dump client\'s "-- Dump completed" line' });
  } else {
    const detail = 'no "-- Dump completed" line at the end: the dump client did not finish writing this dump';
    checks.push({ name: 'completion-marker', ok: false, detail });
    findings.push({ name: 'IncompleteDump', message: `${artifact.key}: ${detail}` });
  }
  const found = result.scan.tables.map((table) => ({ schema: table.database, name: table.name }));
  const display = (table: QualifiedName) => {
    const quote = (part: string) => (/^[A-Za-z0-9_$]+$/.test(part) ? part : `\`${part.replaceAll('`', '``')}\``);
    return table.schema === '' ? quote(table.name) : `${quote(table.schema)}.${quote(table.name)}`;
  };
  const tableSet = tableSetCheck(artifact, expected, found, display, '');
  checks.push(tableSet.check);
  if (tableSet.finding) findings.push(tableSet.finding);
  return { checks, findings };
}
