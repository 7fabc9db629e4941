import type { z } from 'zod';

/**
 * The bucket's JSON documents (manifest.json, verification.json, offsite.json) are read and
 * written through their zod schema here: a reader gets a typed document or an error named
 * for the document kind that says which key and what is wrong with it.
 */
export function parseDocument<T extends z.ZodType>(schema: T, text: string, key: string, kind: string, errorName: string): z.infer<T> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw Object.assign(new Error(`${key}: not JSON (${(error as Error).message})`), { name: errorName });
  }
  const result = schema.safeParse(json);
  if (!result.success) {
    const problems = result.error.issues.slice(0, 5).map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`);
    throw Object.assign(new Error(`${key}: invalid ${kind} (${problems.join('; ')})`), { name: errorName });
  }
  return result.data;
}

/** Pretty JSON after validating with the schema the readers use: nothing invalid is written. */
export function serializeDocument<T extends z.ZodType>(schema: T, document: z.infer<T>): string {
  return `${JSON.stringify(schema.parse(document), null, 2)}\n`;
}
