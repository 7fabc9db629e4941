/**
 * The binary-log archiver task's environment (worker/binlog-archive-main.ts), named once so that
 * its construct and the worker agree. The connection is the dump's (worker/job.ts JOB_ENV): the
 * same host, user, password (injected by ECS from Secrets Manager) and TLS settings.
 */
export const BINLOG_ARCHIVE_ENV = {
  source: 'LIFEBOAT_SOURCE',
  engine: 'LIFEBOAT_ENGINE',
  host: 'LIFEBOAT_DB_HOST',
  port: 'LIFEBOAT_DB_PORT',
  username: 'LIFEBOAT_DB_USER',
  password: 'LIFEBOAT_DB_PASSWORD',
  tlsMode: 'LIFEBOAT_DB_TLS_MODE',
  tlsCaFile: 'LIFEBOAT_DB_TLS_CA_FILE',
  tlsCaPem: 'LIFEBOAT_DB_TLS_CA_PEM',
  bucket: 'LIFEBOAT_BUCKET',
  s3Endpoint: 'LIFEBOAT_S3_ENDPOINT',
  /** GOVERNANCE or COMPLIANCE: the lock every archived object carries. */
  objectLockMode: 'LIFEBOAT_OBJECT_LOCK_MODE',
  /** The tier's retention: how long each archived object is locked. */
  retentionSeconds: 'LIFEBOAT_RETENTION_SECONDS',
  /** The plan's minServerRetentionSeconds: a shorter binlog retention on the server fails the preflight. */
  minServerRetentionSeconds: 'LIFEBOAT_BINLOG_MIN_SERVER_RETENTION_SECONDS',
  /** The schedule slot (`<aws.scheduler.scheduled-time>`): the run's id. */
  scheduledTime: 'LIFEBOAT_SCHEDULED_TIME',
} as const;

/** The archiver's entry point in the worker image. */
export const BINLOG_ARCHIVE_ENTRY = '/app/binlog-archive.js';
