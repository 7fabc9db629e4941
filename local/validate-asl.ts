/** asl-validator's verdict on a definition (it annotates what it is given, so it gets a copy). */
export function validateAsl(definition: Record<string, unknown>): { isValid: boolean; errors: string[] } {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const validator = require('asl-validator') as (definition: unknown) => { isValid: boolean; errors: { message?: string; path?: string }[] };
  const result = validator(structuredClone(definition));
  return { isValid: result.isValid, errors: result.errors.map((error) => `${error.path ?? ''} ${error.message ?? JSON.stringify(error)}`.trim()) };
}
