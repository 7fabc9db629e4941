/** The throwaway servers live in local/servers (the local cycle uses them too). */
export * from '../../local/servers/pitr';
