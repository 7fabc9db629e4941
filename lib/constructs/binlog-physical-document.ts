/**
 * The SSM document `<app>-binlog-physical`: a physical full or incremental backup of a
 * MySQL/MariaDB host (issue 15), run on the host as SSM runs any Command document, its stream
 * uploaded into the run's prefix of the source's PITR catalog (lib/binlog/physical.ts):
 *
 *   <tool> --backup --stream=xbstream --target-dir=<tmp> --extra-lsndir=<tmp>
 *          [--incremental-lsn=<the prior run's to_lsn>]          (as the server's OS user)
 *     | parts of the stream, each uploaded with its SHA-256      (as root: the instance profile)
 *   CompleteMultipartUpload with If-None-Match: *               (only when both exited 0)
 *   xtrabackup_checkpoints, xtrabackup_info (PutObject, If-None-Match: *)
 *
 * Why not `aws s3 cp -`: it completes its upload at the end of its input whatever the producer's
 * exit status, and sends no If-None-Match, which the bucket policy requires of every write under
 * runs/ (lib/constructs/backup-bucket.ts, WriteOnceRuns). The script drives the multipart upload
 * itself with `aws s3api` (any AWS CLI, v1 or v2): the upload is completed only if the backup
 * tool and every part succeeded (`set -o pipefail`), aborted otherwise; a script killed mid-stream
 * completes nothing (the bucket's lifecycle rule aborts the upload). Each part carries its
 * SHA-256 (x-amz-checksum-sha256, which an Object Lock bucket requires, computed here with
 * coreutils rather than left to the CLI's version-dependent default); the objects are encrypted
 * with the backup key (SSE-KMS) and locked by the bucket's default retention.
 *
 * SSM's aws:runShellScript runs the script with sh (dash on Debian and Ubuntu, which has no
 * pipefail): the document's step hands its bash script to bash. Parameters are validated by the
 * document (allowedPattern), so they are plain words by the time they are substituted.
 */
import { Stack } from 'aws-cdk-lib';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct } from 'constructs';
import { PHYSICAL_CHECKPOINTS_OBJECT, PHYSICAL_INFO_OBJECT, PHYSICAL_STREAM_OBJECT } from '../binlog/physical';

export function binlogPhysicalDocumentName(appName: string): string {
  return `${appName}-binlog-physical`;
}

/** The run prefix the document writes under: `runs/<source>-pitr/<runId>/`. */
export const PHYSICAL_RUN_PREFIX_PATTERN = '^runs/[a-z0-9-]+-pitr/[0-9]{8}T[0-9]{6}Z/$';

/** The smallest part the script uploads (S3's minimum is 5 MiB); a larger stream gets larger parts (at most 10,000). */
export const PHYSICAL_PART_BYTES = 64 * 1024 * 1024;
const MAX_PARTS = 9000;

/** The bash script (run by bash; see the step's wrapper below). */
export const BINLOG_PHYSICAL_BASH = [
  'set -euo pipefail',
  'umask 077',
  'bucket="{{ bucket }}"; prefix="{{ runPrefix }}"; type="{{ type }}"; lsn="{{ incrementalLsn }}"; os_user="{{ osUser }}"',
  'tool="{{ tool }}"; socket="{{ socket }}"; datadir="{{ dataDirectory }}"; expected="{{ expectedSize }}"; endpoint="{{ endpointUrl }}"',
  'key="${prefix}' + PHYSICAL_STREAM_OBJECT + '"',
  'log() { echo "lifeboat: $*"; }',
  'as_user() { if [ "$(id -un)" = "$os_user" ]; then "$@"; else runuser -u "$os_user" -- "$@"; fi; }',
  's3api() { aws s3api --region "{{ region }}" ${endpoint:+--endpoint-url "$endpoint"} "$@"; }',
  // The base64 SHA-256 S3 takes, with coreutils and bash's printf only.
  'sha256_b64() { printf "$(sha256sum "$1" | cut -c1-64 | sed \'s/../\\\\x&/g\')" | base64; }',
  'sse=(--server-side-encryption aws:kms --ssekms-key-id "{{ kmsKeyId }}")',
  // The bucket refuses a write without If-None-Match under runs/: an AWS CLI older than S3's conditional writes
  // (August 2024; Debian 12's 2.9 is) cannot send it. Said before anything runs, not as a failed upload.
  'if ! aws s3api put-object --generate-cli-skeleton input 2>/dev/null | grep -q IfNoneMatch; then',
  '  log "this host\'s AWS CLI ($(aws --version 2>&1 | cut -d" " -f1)) cannot send If-None-Match, which the bucket requires of every write under runs/: install an AWS CLI from August 2024 or later (S3 conditional writes)"; exit 2',
  'fi',
  'if [ "$type" = incr ] && [ -z "$lsn" ]; then log "an incremental needs incrementalLsn (the prior run\'s to_lsn)"; exit 2; fi',
  'if [ "$type" = full ] && [ -n "$lsn" ]; then log "a full takes no incrementalLsn (given: $lsn)"; exit 2; fi',
  'part_bytes=' + String(PHYSICAL_PART_BYTES),
  `if [ -n "$expected" ] && [ $(( expected / ${MAX_PARTS} + 1 )) -gt "$part_bytes" ]; then part_bytes=$(( expected / ${MAX_PARTS} + 1 )); fi`,
  'work=$(mktemp -d "${TMPDIR:-/var/tmp}/lifeboat-physical.XXXXXX")',
  'mkdir "$work/tool" "$work/lsn" "$work/parts"',
  'chown "$os_user" "$work/tool" "$work/lsn"',
  'chmod 0711 "$work"',
  'upload_id=""; completed=""',
  'cleanup() {',
  '  code=$?',
  '  if [ -n "$upload_id" ] && [ -z "$completed" ]; then',
  '    s3api abort-multipart-upload --bucket "$bucket" --key "$key" --upload-id "$upload_id" >/dev/null 2>&1 && log "upload aborted: nothing was stored"',
  '  fi',
  '  rm -rf "$work"',
  '  exit "$code"',
  '}',
  'trap cleanup EXIT',
  "trap 'exit 143' TERM INT",
  // Reads the stream on stdin, one part at a time (GNU head -c reads no byte beyond its count).
  // It runs in an `if` condition, where errexit is off: each step returns its failure itself.
  'upload_parts() {',
  '  local n=0 size sum etag',
  '  while :; do',
  '    n=$((n + 1))',
  '    head -c "$part_bytes" > "$work/parts/part" || return 1',
  '    size=$(stat -c %s "$work/parts/part")',
  '    if [ "$size" -eq 0 ] && [ "$n" -gt 1 ]; then return 0; fi',
  '    sum=$(sha256_b64 "$work/parts/part") || return 1',
  '    etag=$(s3api upload-part --bucket "$bucket" --key "$key" --upload-id "$upload_id" --part-number "$n" --body "$work/parts/part" --checksum-sha256 "$sum" --query ETag --output text) || return 1',
  '    printf \'%s{"PartNumber":%d,"ETag":%s,"ChecksumSHA256":"%s"}\' "$([ "$n" -gt 1 ] && echo ,)" "$n" "$etag" "$sum" >> "$work/parts.json" || return 1',
  '    echo "$size" >> "$work/sizes"',
  '    [ "$size" -eq "$part_bytes" ] || return 0',
  '  done',
  '}',
  'backup_args=(--backup --stream=xbstream --target-dir="$work/tool" --extra-lsndir="$work/lsn")',
  '[ -z "$datadir" ] || backup_args+=(--datadir="$datadir")',
  '[ -z "$socket" ] || backup_args+=(--socket="$socket")',
  '[ "$type" = full ] || backup_args+=(--incremental-lsn="$lsn")',
  'log "$tool --backup ($type${lsn:+ from LSN $lsn}) on $(hostname) as $os_user into s3://$bucket/$prefix"',
  'upload_id=$(s3api create-multipart-upload --bucket "$bucket" --key "$key" "${sse[@]}" --checksum-algorithm SHA256 --query UploadId --output text)',
  'if ! as_user "$tool" "${backup_args[@]}" 2>"$work/tool.log" | upload_parts; then',
  '  tail -n 30 "$work/tool.log"',
  '  log "the backup or its upload failed: no backup was stored"',
  '  exit 1',
  'fi',
  'tail -n 3 "$work/tool.log"',
  'printf \'{"Parts":[%s]}\' "$(cat "$work/parts.json")" > "$work/complete.json"',
  's3api complete-multipart-upload --bucket "$bucket" --key "$key" --upload-id "$upload_id" --multipart-upload "file://$work/complete.json" --if-none-match "*" >/dev/null',
  'completed=yes',
  'log "stored $(awk \'{ s += $1 } END { print s }\' "$work/sizes") bytes in $(wc -l < "$work/sizes") parts at s3://$bucket/$key"',
  // Newer MariaDB names them mariadb_backup_*: stored under the names Lifeboat reads.
  `for object in ${PHYSICAL_CHECKPOINTS_OBJECT} ${PHYSICAL_INFO_OBJECT}; do`,
  '  file="$work/lsn/$object"; [ -e "$file" ] || file="$work/lsn/${object/xtrabackup_/mariadb_backup_}"',
  '  [ -e "$file" ] || { log "$tool wrote no $object into its --extra-lsndir"; exit 1; }',
  '  s3api put-object --bucket "$bucket" --key "$prefix$object" --body "$file" "${sse[@]}" --checksum-sha256 "$(sha256_b64 "$file")" --if-none-match "*" >/dev/null',
  'done',
  'cat "$work/lsn/' + PHYSICAL_CHECKPOINTS_OBJECT + '"',
  'grep "^binlog_pos" "$work/lsn/' + PHYSICAL_INFO_OBJECT + '" 2>/dev/null || true',
];

/** The document's runCommand: sh hands the bash script to bash (a quoted here-document: no expansion by sh). */
export const BINLOG_PHYSICAL_SCRIPT = [
  "lifeboat_script=$(cat <<'LIFEBOAT_PHYSICAL_EOF'",
  ...BINLOG_PHYSICAL_BASH,
  'LIFEBOAT_PHYSICAL_EOF',
  ')',
  'exec bash -c "$lifeboat_script"',
];

export interface BinlogPhysicalDocumentProps {
  readonly appName: string;
  readonly bucket: s3.IBucket;
  readonly bucketKey: kms.IKey;
}

export class BinlogPhysicalDocument extends Construct {
  public readonly document: ssm.CfnDocument;
  public readonly documentName: string;

  constructor(scope: Construct, id: string, props: BinlogPhysicalDocumentProps) {
    super(scope, id);
    this.documentName = binlogPhysicalDocumentName(props.appName);
    this.document = new ssm.CfnDocument(this, 'Document', {
      name: this.documentName,
      documentType: 'Command',
      documentFormat: 'JSON',
      updateMethod: 'NewVersion',
      content: {
        schemaVersion: '2.2',
        description: 'Lifeboat: physical full or incremental backup of a MySQL/MariaDB host (mariadb-backup / xtrabackup), streamed into the run; started by the physical backup run',
        parameters: binlogPhysicalParameters(props.bucket.bucketName, props.bucketKey.keyArn, Stack.of(this).region),
        mainSteps: [{
          action: 'aws:runShellScript',
          name: 'physicalBackup',
          inputs: { timeoutSeconds: '86400', runCommand: BINLOG_PHYSICAL_SCRIPT },
        }],
      },
    });
  }
}

/** The document's parameters, each validated by SSM before the script sees it. */
export function binlogPhysicalParameters(bucket: string, keyArn: string, region: string): Record<string, Record<string, unknown>> {
  return {
    runPrefix: { type: 'String', allowedPattern: PHYSICAL_RUN_PREFIX_PATTERN, description: 'The run\'s prefix, runs/<source>-pitr/<runId>/' },
    type: { type: 'String', allowedValues: ['full', 'incr'], description: 'Backup type' },
    incrementalLsn: { type: 'String', default: '', allowedPattern: '^[0-9]*$', description: 'An incremental\'s base: the prior run\'s to_lsn (empty for a full)' },
    tool: { type: 'String', default: 'mariadb-backup', allowedValues: ['mariadb-backup', 'xtrabackup'], description: 'The physical backup tool' },
    osUser: { type: 'String', default: 'mysql', allowedPattern: '^[a-z_][a-z0-9_-]*$', description: 'The server\'s OS user (the tool connects over the socket as this user)' },
    socket: { type: 'String', default: '', allowedPattern: '^(/[A-Za-z0-9._/-]+)?$', description: 'The server\'s socket (empty: the tool\'s default)' },
    dataDirectory: { type: 'String', default: '', allowedPattern: '^(/[A-Za-z0-9._/-]+)?$', description: 'The server\'s datadir (empty: the tool\'s default)' },
    expectedSize: { type: 'String', default: '', allowedPattern: '^[0-9]*$', description: 'Bytes the stream is expected to have (the prior full\'s): sizes the parts' },
    bucket: { type: 'String', default: bucket, allowedPattern: '^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$', description: 'The primary backup bucket' },
    kmsKeyId: { type: 'String', default: keyArn, allowedPattern: '^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+$', description: 'The backup key (SSE-KMS)' },
    region: { type: 'String', default: region, allowedPattern: '^[a-z]{2}(-[a-z]+)+-[0-9]$', description: 'The bucket\'s region' },
    endpointUrl: { type: 'String', default: '', allowedPattern: '^(https?://[A-Za-z0-9.:-]+)?$', description: 'An S3 endpoint other than AWS\'s (empty in AWS)' },
  };
}
