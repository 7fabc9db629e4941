import { renderTable } from '../lib/format/table';

/** One row of the execution history, as the Step Functions console shows it. */
export interface HistoryRow {
  readonly state: string;
  readonly type: string;
  readonly startedAt: number;
  endedAt?: number;
  result: string;
  /** Attempts after the first (the state's Retry). */
  retries: number;
}

export interface ExecutionHistory {
  readonly rows: HistoryRow[];
  status: 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'ABORTED';
  error?: { name: string; cause: string };
  startedAt?: number;
  endedAt?: number;
}

type Event = {
  type: string;
  timestamp: number;
  state?: { name: string; type: string; output?: unknown };
  Error?: string;
  Cause?: unknown;
  retry?: { attempt: number };
};

/** Folds aws-local-stepfunctions' event log into console-like rows. */
export function recordEvent(history: ExecutionHistory, event: Event): void {
  const open = () => [...history.rows].reverse().find((row) => row.state === event.state?.name && row.endedAt === undefined);
  switch (event.type) {
    case 'ExecutionStarted':
      history.startedAt = event.timestamp;
      break;
    case 'StateEntered':
      history.rows.push({ state: event.state?.name ?? '?', type: event.state?.type ?? '?', startedAt: event.timestamp, result: '', retries: 0 });
      break;
    case 'StateExited': {
      const row = open();
      if (row) {
        row.endedAt = event.timestamp;
        row.result ||= summarize(row.state, event.state?.output) ?? 'succeeded';
      }
      break;
    }
    case 'StateRetried': {
      // The failed attempt was reported first (StateFailed); the state goes on.
      const row = [...history.rows].reverse().find((candidate) => candidate.state === event.state?.name);
      if (row) {
        row.retries += 1;
        row.endedAt = undefined;
        row.result = '';
      }
      break;
    }
    case 'StateFailed': {
      const row = open();
      if (row) {
        row.endedAt = event.timestamp;
        row.result = `failed: ${event.Error}: ${oneLine(event.Cause)}`;
      }
      break;
    }
    case 'StateCaught': {
      const row = [...history.rows].reverse().find((candidate) => candidate.state === event.state?.name);
      if (row) {
        row.endedAt ??= event.timestamp;
        row.result = `caught ${event.Error ?? ''}`.trim() + (row.result ? ` (${row.result})` : '');
      }
      break;
    }
    case 'ExecutionSucceeded':
      history.status = 'SUCCEEDED';
      history.endedAt = event.timestamp;
      break;
    case 'ExecutionFailed':
      history.status = 'FAILED';
      history.endedAt = event.timestamp;
      history.error = { name: event.Error ?? 'States.Runtime', cause: oneLine(event.Cause) };
      break;
    case 'ExecutionAborted':
    case 'ExecutionTimeout':
      history.status = 'ABORTED';
      history.endedAt = event.timestamp;
      break;
    default:
      break;
  }
}

export function renderHistory(history: ExecutionHistory): string {
  const origin = history.startedAt ?? history.rows[0]?.startedAt ?? 0;
  const rows = history.rows.map((row, index) => [
    String(index + 1),
    row.state,
    row.type,
    `+${((row.startedAt - origin) / 1000).toFixed(2)} s`,
    row.endedAt === undefined ? '-' : formatMs(row.endedAt - row.startedAt),
    truncate(row.retries > 0 ? `${row.result} (after ${row.retries} ${row.retries === 1 ? 'retry' : 'retries'})` : row.result, 110),
  ]);
  const total = history.endedAt !== undefined && history.startedAt !== undefined ? ` in ${formatMs(history.endedAt - history.startedAt)}` : '';
  const verdict = history.error ? `${history.status}${total}: ${history.error.name}: ${truncate(history.error.cause, 200)}` : `${history.status}${total}`;
  return `${renderTable(['#', 'STATE', 'TYPE', 'STARTED', 'DURATION', 'RESULT'], rows)}\nExecution ${verdict}`;
}

function formatMs(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

function oneLine(value: unknown): string {
  return String(value ?? '').replace(/\s+/g, ' ').trim();
}

function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** What a person wants to see of a state's result in the history, for the backup-run states. */
function summarize(state: string, output: unknown): string | undefined {
  const data = (output ?? {}) as Record<string, Record<string, unknown> | undefined>;
  const dump = data.dump as { bytes?: number; tables?: number; rows?: number; artifacts?: { key: string }[] } | undefined;
  switch (state) {
    case 'Dump':
      return dump ? `${dump.bytes} bytes, ${dump.tables} tables, ${dump.rows} rows → ${dump.artifacts?.map((a) => a.key).join(', ')}` : undefined;
    case 'Verify':
    case 'VerifyOnFargate':
      return data.verification ? `verdict ${String(data.verification.verdict)}` : undefined;
    case 'Commit':
      return 'verification.json written: the run counts as a backup';
    case 'AwaitOffsite':
      return data.offsite?.present ? `offsite copy confirmed (check ${String(data.offsite.attempts)})` : `offsite copy not there yet (check ${String(data.offsite?.attempts)})`;
    default:
      return undefined;
  }
}
