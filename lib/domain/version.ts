/** Lifeboat's own version, recorded in every manifest. (A bundler inlines the JSON.) */
// eslint-disable-next-line @typescript-eslint/no-require-imports
export const LIFEBOAT_VERSION: string = (require('../../package.json') as { version: string }).version;
