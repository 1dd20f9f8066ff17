import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP forwarder in front of a real local server that can be taken down and brought back on the
 * same port: "down" refuses connections (and cuts open ones), as a crashed or unreachable peer does.
 */
export interface ToggleProxy {
  url: string;
  port: number;
  readonly isUp: boolean;
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

export async function toggleProxy(targetPort: number, host = '127.0.0.1'): Promise<ToggleProxy> {
  const open = new Set<Socket>();
  let server: Server | null = null;
  let port = 0;
  const listen = async () => {
    const s = createServer((client) => {
      const upstream = connect({ port: targetPort, host });
      open.add(client);
      open.add(upstream);
      client.pipe(upstream).pipe(client);
      const drop = () => {
        client.destroy();
        upstream.destroy();
        open.delete(client);
        open.delete(upstream);
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
    });
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen(port, host, () => resolve());
    });
    port = (s.address() as AddressInfo).port;
    server = s;
  };
  await listen();
  return {
    get url() {
      return `http://${host}:${port}`;
    },
    get port() {
      return port;
    },
    get isUp() {
      return server !== null;
    },
    down,
    async up() {
      if (!server) await listen();
    },
    close: down,
  };
  async function down() {
    const s = server;
    server = null;
    if (!s) return;
    for (const sock of open) sock.destroy();
    open.clear();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}
