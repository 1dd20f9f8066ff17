import { connect, type Socket } from 'node:net';

/**
 * Hostile HTTP clients on raw sockets, for the receivers' limit tests: what fetch cannot do (send
 * headers and stall, declare a body and never send it, open a thousand sockets from one address).
 */

/** Opens a socket from `localAddress` (e.g. 127.0.0.2, another loopback address than the legit client). */
export function openSocket(port: number, localAddress = '127.0.0.1'): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, localAddress });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

export interface SlowSockets {
  /** Sockets the server has not closed yet. */
  open(): number;
  /** Waits until at most `atMost` are open (the server accepts with a lag), or the timeout; returns the count. */
  settle(atMost: number, timeoutMs?: number): Promise<number>;
  /** Sockets that connected at all. */
  readonly connected: number;
  destroy(): void;
}

/**
 * `count` sockets from `localAddress`, each sending the start of a request and then nothing (a
 * slow-loris client). Connection errors (refused, reset by the server's caps) are counted as closed.
 */
export async function slowSockets(port: number, count: number, localAddress: string, path = '/'): Promise<SlowSockets> {
  const sockets: Socket[] = [];
  let openCount = 0;
  let connected = 0;
  const batch = 100;
  for (let i = 0; i < count; i += batch) {
    const opened = await Promise.allSettled(
      Array.from({ length: Math.min(batch, count - i) }, () =>
        openSocket(port, localAddress).then((s) => {
          connected++;
          openCount++;
          s.on('error', () => {});
          // Flowing, so the server's answer and FIN are read and 'close' fires.
          s.resume();
          s.once('close', () => openCount--);
          s.write(`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: `);
          sockets.push(s);
          return s;
        }),
      ),
    );
    void opened;
  }
  return {
    open: () => openCount,
    async settle(atMost: number, timeoutMs = 3000): Promise<number> {
      const deadline = Date.now() + timeoutMs;
      while (openCount > atMost && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      return openCount;
    },
    get connected() {
      return connected;
    },
    destroy: () => {
      for (const s of sockets) s.destroy();
    },
  };
}

export interface RawResponse {
  /** Status of the first response line, or null when the server closed without answering. */
  status: number | null;
  head: string;
  /** Milliseconds until the status line arrived. */
  answeredMs: number | null;
  /** Milliseconds until the server closed the connection, or null if it had not within `waitMs`. */
  closedMs: number | null;
}

/**
 * Sends `head` (request line + headers, without the blank line) and `body`, then waits up to
 * `waitMs` for the answer and for the server to close the connection.
 */
export function rawRequest(
  port: number,
  head: string,
  body: Buffer | string = '',
  waitMs = 3000,
  localAddress = '127.0.0.1',
): Promise<RawResponse> {
  return new Promise((resolve) => {
    const started = Date.now();
    const s = connect({ host: '127.0.0.1', port, localAddress });
    let text = '';
    let answeredMs: number | null = null;
    const finish = (closedMs: number | null) => {
      clearTimeout(timer);
      s.destroy();
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      resolve({ status: m ? Number(m[1]) : null, head: text.split('\r\n\r\n')[0] ?? '', answeredMs, closedMs });
    };
    const timer = setTimeout(() => finish(null), waitMs);
    s.on('data', (d: Buffer) => {
      if (answeredMs === null) answeredMs = Date.now() - started;
      text += d.toString('latin1');
    });
    s.on('error', () => {});
    s.on('close', () => finish(Date.now() - started));
    s.on('connect', () => {
      s.write(`${head}\r\n\r\n`);
      if (body.length > 0) s.write(body);
    });
  });
}
