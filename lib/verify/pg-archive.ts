/**
 * PostgreSQL's custom-format archives, verified (the engine's `verify`, lib/engines/postgres.ts):
 * pg_restore reads the table of contents and every entry to the end of the archive
 * (lib/verify/postgres.ts), fed by the verifier's one read; the tables with data must be the
 * manifest's.
 */
import type { Manifest, ManifestArtifact } from '../domain/manifest';
import type { VerificationCheck } from '../domain/verification';
import { lifeboatError } from '../domain/errors';
import { pgClientTooOldHint } from '../domain/versions';
import type { ArtifactJudgement, EngineVerify, ExpectedTable, Finding, VerifyEnvironment } from '../engines/verify-contract';
import { tableSetCheck } from './judge';
import { PG_BIN_DIR_ENV, pgRestoreMajor, resolvePgRestore, startPgArchiveChecks } from './postgres';
import { pgDisplayName, summarizeToc } from './toc';

export const postgresVerify: EngineVerify = {
  formats: ['pg_dump-custom'],
  async prepare(manifest, environment) {
    const pgRestore = await choosePgRestore(environment, manifest);
    return {
      refuse: () => undefined,
      start(artifact, expected) {
        const checks = startPgArchiveChecks(pgRestore);
        return {
          consumers: checks.consumers,
          result: async () => judgePgArchive(artifact, expected, await checks.result()),
          kill: () => checks.kill(),
        };
      },
    };
  },
  stockReadCommand: (_artifact, file) => ['pg_restore', '--file=/dev/null', file],
};

async function choosePgRestore(environment: VerifyEnvironment, manifest: Manifest): Promise<string> {
  const { env } = environment;
  const path = resolvePgRestore(environment.pgBinDir ?? (env[PG_BIN_DIR_ENV] || undefined), env.PATH ?? process.env.PATH);
  const major = await pgRestoreMajor(path);
  // An archive from a newer pg_dump has a header version this pg_restore refuses: that says
  // nothing about the backup, so it is not a verdict.
  if (manifest.client.major > major) {
    throw lifeboatError(
      'ClientTooOld',
      `run ${manifest.source}/${manifest.runId} was dumped by ${manifest.client.tool} ${manifest.client.version}; ` +
        `${path} is version ${major} and cannot read it; ${pgClientTooOldHint('pg_restore', major, manifest.client.major)} ` +
        `(or set ${PG_BIN_DIR_ENV} to a PostgreSQL ${manifest.client.major} or newer bin directory)`,
    );
  }
  return path;
}

/** From the two pg_restore runs to checks and findings. */
export function judgePgArchive(
  artifact: ManifestArtifact,
  expected: readonly ExpectedTable[],
  archive: { listing?: string; tocError?: string; fullReadError?: string },
): ArtifactJudgement {
  const checks: VerificationCheck[] = [];
  const findings: Finding[] = [];
  let objectCounts: Record<string, number> | undefined;

  if (archive.listing === undefined) {
    const detail = archive.tocError ?? 'pg_restore --list failed';
    checks.push({ name: 'toc', ok: false, detail });
    findings.push({ name: 'ArchiveCorrupt', message: `${artifact.key}: the archive's table of contents cannot be read (${detail})` });
  } else {
    const toc = summarizeToc(archive.listing, expected.map((table) => table.schema));
    objectCounts = toc.objectCounts;
    const counts = Object.entries(toc.objectCounts).sort(([a], [b]) => a.localeCompare(b)).map(([desc, n]) => `${n} ${desc}`).join(', ');
    const dbname = /^;\s+dbname: (.*)$/m.exec(archive.listing)?.[1];
    checks.push({ name: 'toc', ok: true, detail: `${toc.entries.length} entries${dbname !== undefined ? ` of database ${dbname}` : ''}: ${counts}` });

    // Partitioned tables hold no rows of their own: a definition without a data entry is
    // present when the manifest counted 0 rows for it.
    const emptyInManifest = new Set(expected.filter((table) => table.rows === 0).map((table) => JSON.stringify([table.schema, table.name])));
    const withoutData = toc.tablesWithoutData.filter((table) => emptyInManifest.has(JSON.stringify([table.schema, table.name])));
    const note =
      (withoutData.length > 0 ? `, ${withoutData.length} of them without rows of their own (partitioned)` : '') +
      (toc.extensionData.length > 0 ? `; ${toc.extensionData.length} extension configuration table(s) not compared` : '');
    const tableSet = tableSetCheck(artifact, expected, [...toc.dataTables, ...withoutData], pgDisplayName, note);
    if (dbname !== undefined && dbname !== artifact.database) {
      checks.push({ name: 'database', ok: false, detail: `manifest database ${artifact.database}, archive of database ${dbname}` });
      findings.push({ name: 'TableSetMismatch', message: `${artifact.key} is an archive of database ${dbname}, the manifest says ${artifact.database}` });
    }
    checks.push(tableSet.check);
    if (tableSet.finding) findings.push(tableSet.finding);
  }

  if (archive.fullReadError !== undefined) {
    checks.push({ name: 'full-read', ok: false, detail: archive.fullReadError });
    findings.push({ name: 'ArchiveCorrupt', message: `${artifact.key} cannot be read to its end by pg_restore (${archive.fullReadError})` });
  } else {
    checks.push({ name: 'full-read', ok: true, detail: 'pg_restore --file=/dev/null read every entry to the end of the archive' });
  }
  return { checks, findings, ...(objectCounts ? { objectCounts } : {}) };
}
