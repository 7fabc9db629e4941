/**
 * Larger stdio buffers for the PostgreSQL and MySQL clients Lifeboat pipes through itself.
 * pg_dump, mariadb-dump and pg_restore read and write their archives with C stdio, which
 * buffers a pipe in 4 KiB: one system call (and one wake-up of this process) per 4 KiB.
 * coreutils' `stdbuf` sets the buffers from outside; measured on a 177 MB archive, `pg_restore
 * -f /dev/null` fed through a pipe took 0.47-0.54 s of system time with 4 KiB reads and
 * 0.27-0.33 s with 1 MiB (wall 1.81-1.90 s -> 1.60-1.70 s).
 */
import { accessSync, constants as fsConstants } from 'node:fs';
import { delimiter, join } from 'node:path';

/** The buffer Lifeboat gives a dump or restore client's piped stdin/stdout. */
export const CLIENT_PIPE_BUFFER_BYTES = 1024 * 1024;

export interface StdioBuffers {
  /** stdin buffer in bytes (`stdbuf --input`). */
  readonly input?: number;
  /** stdout buffer in bytes (`stdbuf --output`). */
  readonly output?: number;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The argv that runs `path args` with `buffers`: through stdbuf when it is on `pathEnv` and
 * `path` is executable; otherwise the program itself, unchanged. (A program that cannot start
 * must fail to spawn, as it would without stdbuf, not become stdbuf's exit 127.)
 */
export function withStdioBuffers(
  path: string,
  args: readonly string[],
  buffers: StdioBuffers,
  pathEnv = process.env.PATH ?? '',
): [string, string[]] {
  const options = [
    ...(buffers.input !== undefined ? [`--input=${buffers.input}`] : []),
    ...(buffers.output !== undefined ? [`--output=${buffers.output}`] : []),
  ];
  if (options.length === 0 || !isExecutable(path)) return [path, [...args]];
  const stdbuf = pathEnv.split(delimiter).filter(Boolean).map((dir) => join(dir, 'stdbuf')).find(isExecutable);
  return stdbuf ? [stdbuf, [...options, path, ...args]] : [path, [...args]];
}
