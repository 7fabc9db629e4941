/** What every engine's artifact checks share: the comparison of the tables found with the manifest's. */
import type { ManifestArtifact } from '../domain/manifest';
import type { VerificationCheck } from '../domain/verification';
import type { Finding } from '../engines/verify-contract';
import { diffTableSets, type QualifiedName } from './toc';

const MAX_NAMES = 10;

function nameList(names: readonly string[]): string {
  return names.length <= MAX_NAMES ? names.join(', ') : `${names.slice(0, MAX_NAMES).join(', ')} and ${names.length - MAX_NAMES} more`;
}

/** The `table-set` check: the tables in the artifact are exactly the manifest's; `TableSetMismatch` otherwise. */
export function tableSetCheck(
  artifact: ManifestArtifact,
  expected: readonly QualifiedName[],
  found: readonly QualifiedName[],
  display: (table: QualifiedName) => string,
  note: string,
): { check: VerificationCheck; finding?: Finding } {
  const diff = diffTableSets(expected, found);
  const ok = diff.missing.length === 0 && diff.unexpected.length === 0;
  const detail = ok
    ? `${expected.length} tables in the manifest, the same ${found.length} in the artifact${note}`
    : `manifest ${expected.length} tables, artifact ${found.length}` +
      (diff.missing.length > 0 ? `; missing from the artifact: ${nameList(diff.missing.map(display))}` : '') +
      (diff.unexpected.length > 0 ? `; not in the manifest: ${nameList(diff.unexpected.map(display))}` : '');
  return {
    check: { name: 'table-set', ok, detail },
    ...(ok ? {} : { finding: { name: 'TableSetMismatch' as const, message: `${artifact.key} (database ${artifact.database}): ${detail}` } }),
  };
}
