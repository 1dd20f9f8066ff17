// Shared by the ticket request alert tests: a real local HTTP webhook that keeps every body, and
// tickets posted signed to the detector's tickets endpoint.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { signedHeaders } from '../../core/signing.js';

export interface Hook {
  url: string;
  bodies: Record<string, unknown>[];
  close(): Promise<void>;
}

export async function hook(): Promise<Hook> {
  const bodies: Record<string, unknown>[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      bodies.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>);
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    bodies,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

export const iso = (ms: number) => new Date(ms).toISOString();
export const TICKETS_SECRET = 'tickets-hmac-secret-0123456789';

export function ticket(id: string, status: string, updatedAtMs: number, extra: Record<string, unknown> = {}) {
  return {
    id,
    identities: ['aws-root'],
    requester: 'alice@example.com',
    approvers: status === 'approved' ? ['bob@example.com'] : [],
    status,
    notBefore: iso(updatedAtMs + 60_000),
    notAfter: iso(updatedAtMs + 3_600_000),
    reason: `INC-${id}: restore the prod account`,
    updatedAt: iso(updatedAtMs),
    ...extra,
  };
}

export async function postTicket(url: string, t: unknown): Promise<number> {
  const body = JSON.stringify(t);
  const res = await fetch(`${url}/tickets`, {
    method: 'POST',
    body,
    headers: { 'content-type': 'application/json', ...signedHeaders(TICKETS_SECRET, body) },
  });
  await res.arrayBuffer();
  return res.status;
}
