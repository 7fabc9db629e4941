/**
 * One stable local endpoint for the Lambda handlers of a process. A handler reads its
 * configuration once, at load, as in Lambda (its S3 client's endpoint among it), and a process
 * loads each handler once; the local servers behind it are started and stopped per run. This
 * forwards every request to the servers of the run in progress: EventBridge's (requests with
 * an `X-Amz-Target: AWSEvents.*` header) to its events endpoint, the rest to its S3/SNS/SQS
 * server. It listens on a random loopback port and does not keep the process alive.
 */
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

interface Targets {
  readonly s3: string;
  readonly events: string;
}

let server: Server | undefined;
let url: Promise<string> | undefined;
let current: Targets | undefined;

function forward(req: IncomingMessage, res: ServerResponse): void {
  const targets = current;
  if (!targets) {
    res.writeHead(503, { 'content-type': 'text/plain' }).end('no local run in progress: nothing serves this request');
    return;
  }
  const events = String(req.headers['x-amz-target'] ?? '').startsWith('AWSEvents.');
  const target = new URL(events ? targets.events : targets.s3);
  const upstream = httpRequest({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers, agent: false }, (response) => {
    res.writeHead(response.statusCode ?? 502, response.headers);
    response.pipe(res);
  });
  upstream.on('error', (error) => {
    if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
    res.end(`local handler endpoint: ${error.message}`);
  });
  req.pipe(upstream);
}

/** The endpoint's URL, starting it on first use. */
export function handlerEndpoint(): Promise<string> {
  url ??= new Promise((resolve, reject) => {
    server = createServer(forward);
    // Neither the server nor the handlers' kept-alive connections to it keep the process alive.
    server.on('connection', (socket) => socket.unref());
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server?.unref();
      resolve(`http://127.0.0.1:${(server?.address() as AddressInfo).port}`);
    });
  });
  return url;
}

/** Routes the handlers' requests to these servers until `release` is called. */
export function routeHandlerEndpoint(targets: Targets): () => void {
  current = targets;
  return () => {
    if (current === targets) current = undefined;
  };
}
