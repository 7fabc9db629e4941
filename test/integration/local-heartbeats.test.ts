/**
 * The heartbeats of a local run: the bodies the API destinations would POST (start, success,
 * failure from the captured `lifeboat` events), POSTed over real HTTP to
 * the local receiver that stands in for the external monitor.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { heartbeatBodies, postHeartbeats, startHeartbeatReceiver, type HeartbeatReceiver } from '../../local/heartbeats';
import type { CapturedEvent } from '../../local/events-endpoint';

const EXECUTION = 'orders-20250101T000000000Z';

const started: CapturedEvent = {
  Source: 'lifeboat',
  DetailType: 'Backup Started',
  EventBusName: 'default',
  Detail: {
    source: 'orders', runId: '20250101T000000Z', scheduledTime: '2025-01-01T00:00:00Z',
    execution: EXECUTION, executionArn: `local:${EXECUTION}`,
  },
};

const verified: CapturedEvent = {
  Source: 'lifeboat',
  DetailType: 'Backup Verified',
  EventBusName: 'default',
  Detail: {
    source: 'orders', runId: '20250101T000000Z', bytes: 2048, durationSeconds: 12,
    bucket: 'primary', manifestKey: 'runs/orders/20250101T000000Z/manifest.json', offsite: { present: true, lagSeconds: 3, attempts: 1 },
  },
};
const failed: CapturedEvent = {
  Source: 'lifeboat',
  DetailType: 'Backup Failed',
  EventBusName: 'default',
  Detail: {
    source: 'orders', runId: null, failedState: 'Dump', error: 'DumpFailed', cause: 'pg_dump: error: connection refused',
    lastVerifiedRunId: null, lastVerifiedAgeSeconds: null, rpoSeconds: 900, rpoBreached: null,
  },
};
const start = {
  event: 'start', source: 'orders', runId: '20250101T000000Z', status: 'running', durationSeconds: null,
  scheduledTime: '2025-01-01T00:00:00Z', execution: EXECUTION, executionArn: `local:${EXECUTION}`,
};

let receiver: HeartbeatReceiver;
beforeEach(async () => {
  receiver = await startHeartbeatReceiver();
});
afterEach(async () => {
  await receiver.close();
});

test('a verified run: start then success, received by the monitor as JSON POSTs with the placeholder header', async () => {
  const bodies = heartbeatBodies([started, verified]);
  expect(bodies).toEqual([
    start,
    { event: 'success', source: 'orders', runId: '20250101T000000Z', status: 'verified', durationSeconds: 12, bytes: 2048 },
  ]);

  expect(await postHeartbeats(receiver.url, bodies)).toEqual([200, 200]);
  expect(receiver.received.map((request) => request.body)).toEqual(bodies);
  for (const request of receiver.received) {
    expect(request.method).toBe('POST');
    expect(request.path).toBe('/ping/lifeboat');
    expect(request.headers['content-type']).toMatch(/^application\/json/);
    expect(request.headers['x-lifeboat-heartbeat']).toBe('none');
  }
});

test('a failed run: start then failure with the failed state and error, never the cause', async () => {
  const bodies = heartbeatBodies([started, failed]);
  expect(bodies).toEqual([
    start,
    { event: 'failure', source: 'orders', runId: null, status: 'failed', durationSeconds: null, failedState: 'Dump', error: 'DumpFailed', rpoBreached: null },
  ]);
  expect(JSON.stringify(bodies)).not.toContain('connection refused');

  await postHeartbeats(receiver.url, bodies);
  expect(receiver.received.map((request) => request.body)).toEqual(bodies);
});

test('events other than lifeboat\'s Backup Started/Verified/Failed make no heartbeat', () => {
  const other: CapturedEvent = { Source: 'lifeboat', DetailType: 'Drill Completed', Detail: { source: 'orders' } };
  const foreign: CapturedEvent = { Source: 'someone.else', DetailType: 'Backup Verified', Detail: { source: 'x' } };
  expect(heartbeatBodies([started, other, foreign])).toEqual([start]);
  expect(heartbeatBodies([other, foreign])).toEqual([]);
});

test('a monitor answering non-2xx is a HeartbeatRejected error that names the origin, not the secret path', async () => {
  const refusing = createServer((_req, res) => {
    res.writeHead(404);
    res.end();
  });
  await new Promise<void>((resolve) => refusing.listen(0, '127.0.0.1', resolve));
  const port = (refusing.address() as AddressInfo).port;
  try {
    await expect(postHeartbeats(`http://127.0.0.1:${port}/secret-check-uuid`, [start])).rejects.toMatchObject({
      name: 'HeartbeatRejected',
      message: expect.not.stringContaining('secret-check-uuid') as unknown,
    });
  } finally {
    refusing.closeAllConnections();
    await new Promise<void>((resolve) => refusing.close(() => resolve()));
  }
});
