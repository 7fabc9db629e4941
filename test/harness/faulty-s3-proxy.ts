/**
 * An HTTP proxy in front of the local S3 server that starts failing part uploads after a
 * number of them went through: "S3 failing mid-upload". Every other request (create,
 * abort, list, get) is forwarded untouched, so a test can check what the failed run left.
 */
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FaultyS3Proxy {
  readonly endpoint: string;
  /** Part uploads that reached the server. */
  readonly partsForwarded: number;
  /** Part uploads answered with 503. */
  readonly partsFailed: number;
  close(): Promise<void>;
}

const isPartUpload = (req: IncomingMessage) => req.method === 'PUT' && /[?&]partNumber=/.test(req.url ?? '');
/** A PutObject or an UploadPart (not a bucket's or an object's sub-resource such as ?retention). */
const isDataPut = (req: IncomingMessage) => req.method === 'PUT' && (isPartUpload(req) || !/\?(?!x-id=PutObject)/.test(req.url ?? ''));

/**
 * `failAfterParts`: part uploads beyond this many fail. `failAfterPuts`: every PUT of an object
 * or a part beyond this many fails (small objects go up as one PutObject, never as parts).
 */
export async function startFaultyS3Proxy(upstream: string, opts: { failAfterParts: number; failAfterPuts?: number }): Promise<FaultyS3Proxy> {
  const target = new URL(upstream);
  let forwarded = 0;
  let failed = 0;
  let puts = 0;
  const server: Server = createServer((req, res) => {
    const putFault = opts.failAfterPuts !== undefined && isDataPut(req) && puts++ >= opts.failAfterPuts;
    if (putFault || (isPartUpload(req) && forwarded >= opts.failAfterParts)) {
      failed += 1;
      req.resume();
      req.on('end', () => {
        res.writeHead(503, { 'content-type': 'application/xml' });
        res.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>ServiceUnavailable</Code><Message>injected fault</Message></Error>');
      });
      return;
    }
    if (isPartUpload(req)) forwarded += 1;
    const upstreamReq = request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
      (upstreamRes) => {
        res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers);
        upstreamRes.pipe(res);
      },
    );
    upstreamReq.on('error', () => res.destroy());
    req.pipe(upstreamReq);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    get partsForwarded() { return forwarded; },
    get partsFailed() { return failed; },
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
