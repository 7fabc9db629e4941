/**
 * A TLS front for the local S3 server, which speaks plain HTTP only: clients that speak HTTPS
 * alone (pgBackRest) connect here, on 127.0.0.1 and a random port, with a certificate for
 * `localhost`; each connection is decrypted and piped, byte for byte, to the S3 server's port.
 *
 * With `recordRequests`, the front also reads the request heads going through (request line and
 * headers, never bodies: a request's body is skipped by its content-length), so a test can say
 * what a client sent, e.g. that every PUT carried Content-MD5. A connection whose request uses
 * another framing (chunked) is no longer read from there on, and `unparsed` counts it.
 */
import { connect, type Socket } from 'node:net';
import { readFileSync } from 'node:fs';
import { createServer, type TLSSocket } from 'node:tls';

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  /** Header names lower-cased; the last value of a repeated header. */
  readonly headers: Readonly<Record<string, string>>;
}

export interface S3TlsFront {
  /** Always `localhost`: the name the certificate carries (pgBackRest refuses an IP endpoint). */
  readonly host: 'localhost';
  readonly port: number;
  /** The request heads seen so far (only with `recordRequests`). */
  readonly requests: readonly RecordedRequest[];
  /** Connections whose requests could not be followed (not content-length framed). */
  readonly unparsed: number;
  /** Connections accepted so far. */
  readonly connections: number;
  /**
   * An outage of the S3 endpoint as its clients see it: while `down`, every open connection is
   * destroyed and each new one is closed as soon as it is accepted; `outage(false)` ends it.
   */
  outage(down: boolean): void;
  /** Stops listening and destroys every open connection (both sides). Idempotent. */
  stop(): Promise<void>;
}

export interface S3TlsFrontOptions {
  /** The plain-HTTP S3 server's port on 127.0.0.1. */
  readonly targetPort: number;
  readonly certFile: string;
  readonly keyFile: string;
  /** @default false */
  readonly recordRequests?: boolean;
}

const MAX_HEAD_BYTES = 64 * 1024;

/** Follows one connection's request stream: heads parsed, bodies skipped by their content-length. */
class RequestReader {
  private buffer = Buffer.alloc(0);
  private bodyLeft = 0;
  private lost = false;

  constructor(
    private readonly onRequest: (request: RecordedRequest) => void,
    private readonly onLost: () => void,
  ) {}

  push(chunk: Buffer): void {
    if (this.lost) return;
    let data = chunk;
    while (data.length > 0) {
      if (this.bodyLeft > 0) {
        const skip = Math.min(this.bodyLeft, data.length);
        this.bodyLeft -= skip;
        data = data.subarray(skip);
        continue;
      }
      this.buffer = Buffer.concat([this.buffer, data]);
      data = Buffer.alloc(0);
      const end = this.buffer.indexOf('\r\n\r\n');
      if (end < 0) {
        if (this.buffer.length > MAX_HEAD_BYTES) this.lose();
        return;
      }
      const [requestLine, ...lines] = this.buffer.subarray(0, end).toString('latin1').split('\r\n');
      data = this.buffer.subarray(end + 4);
      this.buffer = Buffer.alloc(0);
      const [method = '', path = ''] = requestLine.split(' ');
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const colon = line.indexOf(':');
        if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      this.onRequest({ method, path, headers });
      if (headers['transfer-encoding'] !== undefined) return this.lose();
      this.bodyLeft = Number(headers['content-length'] ?? 0);
      if (!Number.isSafeInteger(this.bodyLeft) || this.bodyLeft < 0) return this.lose();
    }
  }

  private lose(): void {
    this.lost = true;
    this.buffer = Buffer.alloc(0);
    this.onLost();
  }
}

export async function startS3TlsFront(opts: S3TlsFrontOptions): Promise<S3TlsFront> {
  const requests: RecordedRequest[] = [];
  const sockets = new Set<Socket | TLSSocket>();
  let unparsed = 0;
  let connections = 0;

  let down = false;
  const server = createServer({ cert: readFileSync(opts.certFile), key: readFileSync(opts.keyFile) }, (client) => {
    connections++;
    if (down) {
      client.destroy();
      return;
    }
    const upstream = connect({ host: '127.0.0.1', port: opts.targetPort });
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      // A reset on one side ends the other; the error itself is the client's to see.
      socket.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    if (opts.recordRequests) {
      const reader = new RequestReader((request) => requests.push(request), () => unparsed++);
      client.on('data', (chunk: Buffer) => reader.push(chunk));
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  // A handshake that fails (a client that does not trust the CA) is that client's error.
  server.on('tlsClientError', () => undefined);

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  let stopped: Promise<void> | undefined;

  return {
    host: 'localhost',
    port,
    requests,
    get unparsed() {
      return unparsed;
    },
    get connections() {
      return connections;
    },
    outage(value: boolean): void {
      down = value;
      if (!down) return;
      for (const socket of sockets) socket.destroy();
      sockets.clear();
    },
    stop(): Promise<void> {
      stopped ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
        sockets.clear();
      });
      return stopped;
    },
  };
}
