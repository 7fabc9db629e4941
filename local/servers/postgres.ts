/** The throwaway servers moved to lib/servers (production drills start them); local/ and the tests import them from here as before. */
export * from '../../lib/servers/postgres';
