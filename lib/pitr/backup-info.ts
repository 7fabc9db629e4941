/**
 * pgBackRest's `backup.info`, read from the bucket alone: the sets of a stanza without running
 * pgBackRest (status, the watchdog and a reader of the offsite copy have no pgBackRest and no
 * host). The file is INI with JSON values: `[backup:current]` holds one line per set.
 */
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import { repositoryKey } from './archive-state';
import type { BackupSet } from './pgbackrest-info';

const setSchema = z.looseObject({
  'backrest-version': z.string(),
  'backup-archive-start': z.string(),
  'backup-archive-stop': z.string(),
  'backup-error': z.boolean().optional(),
  'backup-info-repo-size': z.number(),
  'backup-info-repo-size-delta': z.number(),
  'backup-info-size': z.number(),
  'backup-info-size-delta': z.number(),
  'backup-lsn-start': z.string(),
  'backup-lsn-stop': z.string(),
  'backup-prior': z.string().optional(),
  'backup-reference': z.array(z.string()).optional(),
  'backup-timestamp-start': z.number(),
  'backup-timestamp-stop': z.number(),
  'backup-type': z.enum(['full', 'diff', 'incr']),
});

/** The sets of a backup.info text, oldest first; throws naming the line that does not parse. */
export function parseBackupInfo(text: string, where = 'backup.info'): BackupSet[] {
  const sets: BackupSet[] = [];
  let section = '';
  for (const [index, line] of text.split('\n').entries()) {
    const header = /^\[(.+)\]$/.exec(line.trim());
    if (header) {
      section = header[1];
      continue;
    }
    if (section !== 'backup:current' || line.trim() === '') continue;
    const at = line.indexOf('=');
    const label = line.slice(0, at);
    let value: z.infer<typeof setSchema>;
    try {
      value = setSchema.parse(JSON.parse(line.slice(at + 1)));
    } catch (error) {
      throw Object.assign(new Error(`${where} line ${index + 1} (set ${label}): ${(error as Error).message.slice(0, 300)}`), { name: 'InvalidManifest' });
    }
    sets.push({
      label,
      type: value['backup-type'],
      ...(value['backup-prior'] ? { prior: value['backup-prior'] } : {}),
      ...(value['backup-reference'] ? { references: value['backup-reference'] } : {}),
      startTime: new Date(value['backup-timestamp-start'] * 1000),
      stopTime: new Date(value['backup-timestamp-stop'] * 1000),
      startLsn: value['backup-lsn-start'],
      stopLsn: value['backup-lsn-stop'],
      walStart: value['backup-archive-start'],
      walStop: value['backup-archive-stop'],
      size: value['backup-info-size'],
      delta: value['backup-info-size-delta'],
      repoSize: value['backup-info-repo-size'],
      repoDelta: value['backup-info-repo-size-delta'],
      checksumErrors: value['backup-error'] ?? false,
      writtenBy: value['backrest-version'],
    });
  }
  return sets.sort((a, b) => a.stopTime.getTime() - b.stopTime.getTime());
}

/** The sets of `stanza` in the repository at `repoPath`; none when backup.info does not exist yet. */
export async function readBackupSets(location: { s3: S3Client; bucket: string; repoPath: string; stanza: string; signal?: AbortSignal }): Promise<BackupSet[]> {
  const key = repositoryKey(location.repoPath, 'backup', location.stanza, 'backup.info');
  try {
    const object = await location.s3.send(new GetObjectCommand({ Bucket: location.bucket, Key: key }), { abortSignal: location.signal });
    return parseBackupInfo(await object.Body!.transformToString(), `s3://${location.bucket}/${key}`);
  } catch (error) {
    if ((error as Error).name === 'NoSuchKey') return [];
    throw error;
  }
}
