/**
 * Heartbeats locally: the bodies the API destinations of the Heartbeats construct would POST
 * for a local run, a receiver standing in for the external monitor, and the POST itself.
 * The bodies come from the same definition as the rules' input transformers
 * (`HEARTBEAT_BODIES`), evaluated against the events the run put on the bus.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  HEARTBEAT_AUTH_HEADER, HEARTBEAT_AUTH_PLACEHOLDER, HEARTBEAT_BODIES, type HeartbeatKind,
} from '../lib/constructs/heartbeats';
import { BACKUP_STARTED, EVENT_SOURCE } from '../lib/steps/telemetry';
import type { CapturedEvent } from './events-endpoint';

/** A heartbeat body: `{ event, source, runId, status, durationSeconds, … }` (see `HEARTBEAT_BODIES`). */
export type HeartbeatBody = Record<string, unknown>;

const KIND_BY_DETAIL_TYPE: Readonly<Record<string, HeartbeatKind>> = {
  [BACKUP_STARTED]: 'start',
  'Backup Verified': 'success',
  'Backup Failed': 'failure',
};

/**
 * The bodies, in order, that every heartbeat URL would receive for one local execution: one
 * per captured `lifeboat` event the heartbeat rules match (Backup Started, Verified, Failed).
 */
export function heartbeatBodies(events: readonly CapturedEvent[]): HeartbeatBody[] {
  return events
    .filter((event) => event.Source === EVENT_SOURCE && KIND_BY_DETAIL_TYPE[event.DetailType] !== undefined)
    .map((event) => renderHeartbeat(KIND_BY_DETAIL_TYPE[event.DetailType], {
      'source': event.Source, 'detail-type': event.DetailType, 'detail': event.Detail,
    }));
}

/** One body as the input transformer builds it from an EventBridge event (a missing or null path gives null). */
export function renderHeartbeat(kind: HeartbeatKind, event: Record<string, unknown>): HeartbeatBody {
  const body: HeartbeatBody = {};
  for (const [key, field] of Object.entries(HEARTBEAT_BODIES[kind])) {
    body[key] = 'path' in field ? valueAt(event, field.path) ?? null : field.value;
  }
  return body;
}

function valueAt(event: unknown, path: string): unknown {
  return path.replace(/^\$\.?/, '').split('.').filter(Boolean)
    .reduce<unknown>((node, key) => (node !== null && typeof node === 'object' ? (node as Record<string, unknown>)[key] : undefined), event);
}

/** A request the receiver got. */
export interface ReceivedHeartbeat {
  readonly method: string;
  readonly path: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** The parsed JSON body, or the raw text when it is not JSON. */
  readonly body: unknown;
}

export interface HeartbeatReceiver {
  /** The URL to POST to, e.g. http://127.0.0.1:43117/ping/lifeboat. */
  readonly url: string;
  readonly received: ReceivedHeartbeat[];
  close(): Promise<void>;
}

/**
 * Stands in for the external monitor (healthchecks.io, OneUptime…): an HTTP server on
 * 127.0.0.1 and a random port that answers 200 to every request and records it.
 */
export async function startHeartbeatReceiver(): Promise<HeartbeatReceiver> {
  const received: ReceivedHeartbeat[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        // Not JSON: keep the text.
      }
      received.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, body });
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('OK');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/ping/lifeboat`,
    received,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/**
 * POSTs the bodies to `url` one after the other, as the API destination does: JSON, with the
 * connection's placeholder API-key header. Throws `HeartbeatRejected` on a non-2xx answer.
 * Returns the HTTP statuses.
 */
export async function postHeartbeats(url: string, bodies: readonly HeartbeatBody[]): Promise<number[]> {
  const statuses: number[] = [];
  for (const body of bodies) {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json; charset=utf-8', [HEARTBEAT_AUTH_HEADER]: HEARTBEAT_AUTH_PLACEHOLDER },
      body: JSON.stringify(body),
    });
    await response.arrayBuffer();
    if (!response.ok) {
      throw Object.assign(new Error(`heartbeat "${String(body.event)}" to ${new URL(url).origin}: HTTP ${response.status}`), { name: 'HeartbeatRejected' });
    }
    statuses.push(response.status);
  }
  return statuses;
}
