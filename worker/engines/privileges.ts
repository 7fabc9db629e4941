/** Shared by the engines' privilege checks and the SQL `lifeboat grants` prints. */

/** Where the server runs: RDS and Aurora have no superuser; their master user is the administrator. */
export type DbPlatform = 'self-managed' | 'rds';

/** How many names of each kind a message lists before "and N more". */
export const NAMES_SHOWN = 5;

/** `1 table (a)`, `7 tables (a, b, c, d, e and 2 more)`. */
export function countedNames(names: readonly string[], singular: string, plural: string): string {
  const shown = names.slice(0, NAMES_SHOWN).join(', ');
  const more = names.length > NAMES_SHOWN ? ` and ${names.length - NAMES_SHOWN} more` : '';
  return `${names.length} ${names.length === 1 ? singular : plural} (${shown}${more})`;
}
