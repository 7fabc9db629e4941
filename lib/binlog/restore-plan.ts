/**
 * Planning a MySQL/MariaDB point-in-time restore from the bucket alone: the newest verified
 * base at or before the target — a logical dump whose artifacts record their binlog
 * coordinates — and the archived binary logs each of its databases replays from its own
 * coordinates up to the target. A base covers the targets from its end (`finishedAt`: every
 * database's snapshot was taken by then) to the newest archived event its chain reaches (the
 * archive's end, or the last event before a gap). A target no base covers is refused, naming
 * the restorable windows.
 */
import type { RunRecord } from '../catalog/catalog';
import type { BinlogCoordinates } from './coordinates';
import { binlogChain, type ArchivedBinlog, type BinlogArchive } from './archive-read';
import { binlogSequence } from './documents';
import { filesToReplay } from './replay';

export type BinlogTarget = Date | 'latest';

export interface BinlogBase {
  readonly runId: string;
  readonly finishedAt: Date;
  /** Each database's coordinates. */
  readonly databases: readonly { readonly database: string; readonly coordinates: BinlogCoordinates }[];
  /** The newest moment its chain reaches. */
  readonly reach?: Date;
  /** The file its chain lacks, when a gap ends it. */
  readonly missing?: string;
  /** The chain from its earliest coordinates. */
  readonly chain: readonly ArchivedBinlog[];
}

export interface RestoreWindow {
  readonly from: Date;
  readonly to: Date;
}

export interface BinlogRestorePlan {
  readonly target: BinlogTarget;
  readonly base: BinlogBase;
  /** The files replayed (the union over the databases), in order, and their bytes from the earliest coordinates on. */
  readonly files: readonly ArchivedBinlog[];
  readonly bytes: number;
  /** Every window a restore can reach, oldest first (more than one when a gap breaks the archive). */
  readonly windows: readonly RestoreWindow[];
  readonly warnings: readonly string[];
}

function planError(name: 'InvalidInput' | 'NoVerifiedRun' | 'BinlogGap', message: string): Error {
  return Object.assign(new Error(message), { name });
}

/** The archive's newest moment it is known to hold everything of: completeAsOf, else the newest event. */
export function archiveEnd(archive: BinlogArchive, chain: readonly ArchivedBinlog[]): Date | undefined {
  const newest = [...chain].reverse().find((file) => file.facts.lastEventAt)?.facts.lastEventAt;
  const complete = archive.newestState?.completeAsOf;
  const times = [newest, complete].filter((time): time is string => time !== undefined).map((time) => Date.parse(time));
  return times.length > 0 ? new Date(Math.max(...times)) : undefined;
}

/** The verified runs that can be bases: every artifact has coordinates. */
export function basesOf(runs: readonly RunRecord[], archive: BinlogArchive): BinlogBase[] {
  const bases: BinlogBase[] = [];
  for (const run of runs) {
    const manifest = run.manifest;
    if (run.status !== 'verified' || !manifest) continue;
    if (manifest.artifacts.some((artifact) => !artifact.binlog)) continue;
    const databases = manifest.artifacts.map((artifact) => ({ database: artifact.database, coordinates: artifact.binlog as BinlogCoordinates }));
    const earliest = databases.map((d) => d.coordinates.file).sort((a, b) => binlogSequence(a) - binlogSequence(b))[0] as string;
    const chain = binlogChain(archive, earliest);
    const reach = chain.missing
      ? [...chain.files].reverse().find((file) => file.facts.lastEventAt)?.facts.lastEventAt
      : archiveEnd(archive, chain.files)?.toISOString();
    bases.push({
      runId: run.runId,
      finishedAt: new Date(manifest.finishedAt),
      databases,
      ...(reach ? { reach: new Date(reach) } : {}),
      ...(chain.missing ? { missing: chain.missing } : {}),
      chain: chain.files,
    });
  }
  return bases.sort((a, b) => a.finishedAt.getTime() - b.finishedAt.getTime());
}

/** The windows the bases cover, merged, oldest first. */
export function restoreWindows(bases: readonly BinlogBase[]): RestoreWindow[] {
  const spans = bases
    .filter((base) => base.reach !== undefined && base.reach.getTime() >= base.finishedAt.getTime() && base.chain.length > 0)
    .map((base) => ({ from: base.finishedAt, to: base.reach as Date }))
    .sort((a, b) => a.from.getTime() - b.from.getTime());
  const merged: RestoreWindow[] = [];
  for (const span of spans) {
    const last = merged.at(-1);
    if (last && span.from.getTime() <= last.to.getTime()) merged[merged.length - 1] = { from: last.from, to: new Date(Math.max(last.to.getTime(), span.to.getTime())) };
    else merged.push(span);
  }
  return merged;
}

export function describeWindows(windows: readonly RestoreWindow[]): string {
  if (windows.length === 0) return 'no restorable window yet (no verified dump with binlog coordinates whose binary logs are archived)';
  return windows.map((window) => `${window.from.toISOString()} to ${window.to.toISOString()}`).join(', then ');
}

/** The plan for `target`, or an error naming the windows when no base reaches it. */
export function planBinlogRestore(source: string, runs: readonly RunRecord[], archive: BinlogArchive, target: BinlogTarget): BinlogRestorePlan {
  const bases = basesOf(runs, archive);
  const windows = restoreWindows(bases);
  if (bases.length === 0) {
    throw planError('NoVerifiedRun', `${source}: no verified dump records binlog coordinates, so no point-in-time restore can start anywhere ` +
      "(valid: wait for the first dump of this source with method ['logical', 'pitr'], or restore a run with --run ID)");
  }
  const covering = bases.filter((base) => base.chain.length > 0 && base.reach !== undefined
    && (target === 'latest' ? base.missing === undefined : base.finishedAt.getTime() <= target.getTime() && target.getTime() <= (base.reach as Date).getTime()));
  const base = covering.at(-1);
  if (!base) {
    const what = target === 'latest' ? 'latest' : target.toISOString();
    const broken = target === 'latest' ? bases.at(-1)?.missing : undefined;
    throw planError(broken ? 'BinlogGap' : 'InvalidInput',
      `${source}: ${what} is outside the restorable window (${describeWindows(windows)})` +
      (broken ? `: the archive lacks ${broken} after the newest base (${bases.at(-1)?.runId}); the next dump starts a new window` : '') +
      ' (valid: --at a time inside a window, or latest)');
  }
  const earliest = base.databases.map((d) => d.coordinates).sort((a, b) => binlogSequence(a.file) - binlogSequence(b.file) || a.position - b.position)[0] as BinlogCoordinates;
  const files = filesToReplay(base.chain, target);
  const bytes = files.reduce((sum, file) => sum + file.facts.bytes, 0) - Math.max(0, earliest.position - 4);
  const warnings: string[] = [];
  if (files.some((file) => file.partial)) {
    warnings.push(`${files.find((file) => file.partial)?.file} is the active file as the newest archiver run read it (${archive.newestState?.runId}): changes after that run exist only on the server`);
  }
  return { target, base, files, bytes, windows, warnings };
}
