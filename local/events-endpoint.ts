import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/** An EventBridge event as PutEvents carries it. */
export interface CapturedEvent {
  readonly Source: string;
  readonly DetailType: string;
  readonly Detail: Record<string, unknown>;
  readonly EventBusName?: string;
}

export interface EventsEndpoint {
  readonly endpoint: string;
  readonly events: CapturedEvent[];
  close(): Promise<void>;
}

/**
 * Stands in for EventBridge locally: answers PutEvents (the JSON 1.1 protocol the SDK
 * speaks) and keeps the events, so the local runner can show what would have been sent.
 */
export async function startEventsEndpoint(): Promise<EventsEndpoint> {
  const events: CapturedEvent[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      if (!String(req.headers['x-amz-target'] ?? '').endsWith('.PutEvents')) {
        res.writeHead(400, { 'content-type': 'application/x-amz-json-1.1' });
        res.end(JSON.stringify({ __type: 'UnknownOperationException', message: `local events endpoint: only PutEvents (got ${req.headers['x-amz-target']})` }));
        return;
      }
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { Entries?: { Source: string; DetailType: string; Detail: string; EventBusName?: string }[] };
      const entries = body.Entries ?? [];
      for (const entry of entries) {
        events.push({ Source: entry.Source, DetailType: entry.DetailType, Detail: JSON.parse(entry.Detail) as Record<string, unknown>, EventBusName: entry.EventBusName });
      }
      res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
      res.end(JSON.stringify({ FailedEntryCount: 0, Entries: entries.map(() => ({ EventId: randomUUID() })) }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    events,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
