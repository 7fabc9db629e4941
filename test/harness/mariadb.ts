/** The throwaway servers live in local/servers (npm start uses them too). */
export * from '../../local/servers/mariadb';
