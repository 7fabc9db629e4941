/**
 * A worker entry point's environment, read with every problem collected: each missing or
 * invalid variable is named once, and `done()` throws them all at once as `InvalidInput`.
 */
import { lifeboatError } from '../lib/domain/errors';

export class EnvReader {
  readonly problems: string[] = [];

  constructor(private readonly env: Record<string, string | undefined>, private readonly what: string) {}

  /** The trimmed value; a problem when it is missing or empty. */
  required(name: string): string {
    const value = this.env[name]?.trim();
    if (!value) this.problems.push(`${name}: required`);
    return value ?? '';
  }

  /** The trimmed value, or undefined. */
  optional(name: string): string | undefined {
    return this.env[name]?.trim() || undefined;
  }

  /** AWS_REGION (or AWS_DEFAULT_REGION): required. */
  region(): string {
    const region = this.env.AWS_REGION || this.env.AWS_DEFAULT_REGION || '';
    if (!region) this.problems.push('AWS_REGION: required');
    return region;
  }

  /** Adds a problem when `ok` is false. */
  check(ok: boolean, problem: string): void {
    if (!ok) this.problems.push(problem);
  }

  /** Throws every problem at once (`InvalidInput`), naming the entry point. */
  done(): void {
    if (this.problems.length > 0) throw lifeboatError('InvalidInput', `invalid ${this.what} environment:\n  - ${this.problems.join('\n  - ')}`);
  }
}
