/**
 * Lambda configuration from the environment, read once at module load: a missing or
 * malformed value fails the function's initialisation, naming the variable, instead of
 * failing one execution later with an unrelated error.
 */

export function configError(message: string): Error {
  const error = new Error(message);
  error.name = 'InvalidConfiguration';
  return error;
}

export function requireEnv(name: string, env: NodeJS.ProcessEnv = process.env): string {
  const value = env[name]?.trim();
  if (!value) throw configError(`environment variable ${name} is not set (the construct that deploys this function sets it)`);
  return value;
}

export function optionalEnv(name: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  return env[name]?.trim() || undefined;
}

export function positiveIntegerEnv(name: string, fallback: number, env: NodeJS.ProcessEnv = process.env): number {
  const text = optionalEnv(name, env);
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) throw configError(`environment variable ${name}: expected a whole number of at least 1, got "${text}"`);
  return value;
}

/** A JSON object of source name → seconds, e.g. `{"orders": 900}`; `{}` when unset. */
export function secondsBySourceEnv(name: string, env: NodeJS.ProcessEnv = process.env): Readonly<Record<string, number>> {
  const text = optionalEnv(name, env);
  if (text === undefined) return {};
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw configError(`environment variable ${name}: not JSON (expected e.g. {"orders": 900})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw configError(`environment variable ${name}: expected an object of source name to seconds, e.g. {"orders": 900}`);
  }
  const bad = Object.entries(json).filter(([, seconds]) => typeof seconds !== 'number' || !(seconds > 0));
  if (bad.length > 0) {
    throw configError(`environment variable ${name}: ${bad.map(([source, seconds]) => `${source}: ${JSON.stringify(seconds)}`).join(', ')} (expected positive numbers of seconds)`);
  }
  return json as Record<string, number>;
}
