/**
 * What "read every byte" means for an engine's artifacts (lib/verify/verify-run.ts). The
 * verifier reads each object once, through the SHA-256, the byte count and the consumers the
 * engine's checks give it (lib/verify/fan-out.ts), then asks the checks what they found. The
 * size and checksum checks, the missing-object and size-rule findings and the verdict are the
 * verifier's own, the same for every engine.
 */
import type { Manifest, ManifestArtifact } from '../domain/manifest';
import type { VerificationCheck } from '../domain/verification';
import type { Consumer } from '../verify/fan-out';
import type { VerifyErrorName } from '../verify/errors';

/** One reason a run must not count, named as the state machine matches it. */
export interface Finding {
  readonly name: VerifyErrorName;
  readonly message: string;
}

/** What an engine's tools found in one artifact. */
export interface ArtifactJudgement {
  readonly checks: VerificationCheck[];
  readonly findings: Finding[];
  /** Objects in the archive by kind (PostgreSQL's TOC: `TABLE`, `INDEX`, …), when the format lists them. */
  readonly objectCounts?: Record<string, number>;
}

/** A table the manifest says the artifact holds, with the rows the dump counted. */
export interface ExpectedTable {
  readonly schema: string;
  readonly name: string;
  readonly rows: number;
}

/** The checks of one artifact, fed by the verifier's one read of its bytes. */
export interface ArtifactChecks {
  /** Each receives every byte of the object, in order (back-pressure included). */
  readonly consumers: readonly Consumer[];
  /** After the last byte: what the tools found (they are awaited to their end). */
  result(): Promise<ArtifactJudgement>;
  /** Stops the tools' processes (the read failed, or the run was aborted). */
  kill(): void;
}

/** Reads one run's artifacts of the engine's formats; made once per run by `EngineVerify.prepare`. */
export interface ArtifactVerifier {
  /**
   * A finding that judges the artifact without reading it (its manifest entry cannot be read,
   * e.g. an unknown compression), or undefined.
   */
  refuse(artifact: ManifestArtifact): Finding | undefined;
  start(artifact: ManifestArtifact, expected: readonly ExpectedTable[]): ArtifactChecks;
}

export interface VerifyEnvironment {
  /** The verifier's environment (tool directories such as LIFEBOAT_PG_BIN_DIR, PATH). */
  readonly env: NodeJS.ProcessEnv;
  /** Directory with PostgreSQL's tools, when the caller names one. */
  readonly pgBinDir?: string;
}

export interface EngineVerify {
  /** The manifest artifact formats (`pg_dump-custom`, `sql`) these checks read: the verifier picks the checks by an artifact's format. */
  readonly formats: readonly string[];
  /**
   * Finds the tools and makes sure they can read `manifest`'s artifacts, before any byte is
   * read. Throws (`ClientNotFound`, `ClientTooOld`) when they cannot: that says nothing about
   * the backup, so it is no verdict.
   */
  prepare(manifest: Manifest, environment: VerifyEnvironment): Promise<ArtifactVerifier>;
  /** The stock tool's one command that reads a downloaded artifact to its end: the baseline `bench:verify` measures against. */
  stockReadCommand(artifact: ManifestArtifact, file: string): string[];
}
