import { GetObjectCommand } from '@aws-sdk/client-s3';
import { manifestKey } from '../lib/domain/layout';
import { parseManifest } from '../lib/domain/manifest';
import type { LocalRunHooks } from './runner';
import { tamperStoredObject } from './servers/s3';

/** Faults `lifeboat demo --fault NAME` can inject, to show what a failed run looks like. */
export const FAULTS = ['corrupt-artifact', 'truncate-artifact'] as const;
export type FaultName = (typeof FAULTS)[number];

export function isFault(name: string): name is FaultName {
  return (FAULTS as readonly string[]).includes(name);
}

/**
 * Damages the run's first artifact in the primary bucket after Dump and before Verify: one bit
 * flipped in the middle, or the last 30% cut off. The verifier must catch both.
 */
export function faultHooks(fault: FaultName): LocalRunHooks {
  return {
    afterDump: async ({ bucket, source, runId }, services) => {
      const read = async (key: string, versionId?: string) => Buffer.from(
        await ((await services.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, VersionId: versionId }))).Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());
      const { key, versionId } = parseManifest((await read(manifestKey(source, runId))).toString('utf8')).artifacts[0];
      const bytes = await read(key, versionId);
      const damaged = fault === 'corrupt-artifact' ? flipMiddleBit(bytes) : bytes.subarray(0, Math.floor(bytes.length * 0.7));
      // In place: the version the manifest names is what every reader reads.
      await tamperStoredObject(services.endpoint, { bucket, key, versionId }, damaged);
    },
  };
}

function flipMiddleBit(bytes: Buffer): Buffer {
  const copy = Buffer.from(bytes);
  copy[Math.floor(copy.length / 2)] ^= 0x01;
  return copy;
}
