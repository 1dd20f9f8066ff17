import { readFileSync } from 'node:fs';
import { isIP, connect as netConnect, type Socket } from 'node:net';
import { hostname } from 'node:os';
import { connect as tlsConnect } from 'node:tls';
import { GlasswatchError } from '../../../core/errors.js';
import type { Alert, CompleteAlert, Severity } from '../alert.js';
import { formatAlert } from '../formats/index.js';
import type { AlertOutput, OutputRouting } from '../outputs.js';

export interface SyslogOptions {
  name?: string;
  host: string;
  /** @default 6514 with TLS, 601 without */
  port?: number;
  /** RFC 5425 (TLS). Plain TCP (RFC 6587) is for a collector on the same host or network segment. @default true */
  tls?: boolean;
  caFile?: string | null;
  /** @default true */
  rejectUnauthorized?: boolean;
  /** @default 10 (authpriv) */
  facility?: number;
  /** SD-ID of the structured data; a private one is `name@<IANA enterprise number>`. @default glasswatch@32473 */
  sdId?: string;
  routing?: OutputRouting;
  timeoutMs?: number;
}

const SEVERITY: Record<Severity, number> = { critical: 2, high: 3, medium: 4, low: 5, informational: 6 };
const BOM = '\uFEFF';

/** RFC 5424 PARAM-VALUE: `"`, `\` and `]` escaped. */
function sdValue(v: string): string {
  return v.replace(/[\\"\]]/g, (c) => `\\${c}`);
}

/** HOSTNAME / APP-NAME / MSGID: printable US-ASCII, no spaces, bounded. */
function header(v: string, max: number): string {
  const s = v.replace(/[^\x21-\x7e]/g, '_').slice(0, max);
  return s || '-';
}

/** One RFC 5424 message: the alert's key fields as structured data, the alert (in the output's format) as the UTF-8 MSG. */
export function syslogMessage(
  a: CompleteAlert,
  o: Pick<SyslogOptions, 'facility' | 'sdId'> & { format?: OutputRouting['format'] },
  host = hostname(),
): string {
  const pri = (o.facility ?? 10) * 8 + SEVERITY[a.severity];
  const params: [string, string | null | undefined][] = [
    ['id', a.id],
    ['type', a.type],
    ['severity', a.severity],
    ['identity', a.identity],
    ['principal', a.principal],
    ['sourceIp', a.sourceIp],
    ['account', a.account],
    ['cluster', a.cluster],
    ['action', a.action],
    ['session', a.sessionId],
    ['rule', a.ruleId],
    ['technique', a.attack.techniques.map((t) => t.id).join(',') || null],
    ['revocation', a.revocation?.outcome ?? a.revocationMode],
  ];
  const sd = `[${o.sdId ?? 'glasswatch@32473'}${params
    .filter(([, v]) => v)
    .map(([k, v]) => ` ${k}="${sdValue(String(v))}"`)
    .join('')}]`;
  const msg = JSON.stringify(formatAlert(a, o.format));
  return `<${pri}>1 ${a.detectedAt} ${header(host, 255)} ${header(a.producer.name, 48)} - ${header(a.type.replace('.', '_'), 32)} ${sd} ${BOM}${msg}`;
}

/** RFC 5425 / RFC 6587 octet counting: `MSG-LEN SP SYSLOG-MSG`, MSG-LEN in octets. */
export function frame(message: string): Buffer {
  const body = Buffer.from(message, 'utf8');
  return Buffer.concat([Buffer.from(`${body.length} `), body]);
}

/**
 * Syslog over TLS (RFC 5425, port 6514) or TCP, one long-lived connection re-opened after an
 * error. A write counts as delivered when the kernel took it: syslog has no acknowledgement.
 */
export class SyslogOutput implements AlertOutput {
  readonly name: string;
  readonly routing: OutputRouting | undefined;
  #socket: Socket | null = null;
  readonly #ca: Buffer | undefined;
  constructor(readonly options: SyslogOptions) {
    const tls = options.tls ?? true;
    this.name = options.name ?? `syslog:${options.host}:${options.port ?? (tls ? 6514 : 601)}`;
    this.routing = options.routing;
    this.#ca = options.caFile ? readFileSync(options.caFile) : undefined;
  }

  #connect(): Promise<Socket> {
    if (this.#socket && !this.#socket.destroyed) return Promise.resolve(this.#socket);
    const tls = this.options.tls ?? true;
    const port = this.options.port ?? (tls ? 6514 : 601);
    return new Promise((resolve, reject) => {
      const ready = tls ? 'secureConnect' : 'connect';
      const s: Socket = tls
        ? tlsConnect({
            host: this.options.host,
            port,
            ...(isIP(this.options.host) ? {} : { servername: this.options.host }),
            rejectUnauthorized: this.options.rejectUnauthorized ?? true,
            ...(this.#ca ? { ca: this.#ca } : {}),
          })
        : netConnect({ host: this.options.host, port });
      s.setTimeout(this.options.timeoutMs ?? 10_000);
      const fail = (err: Error) => {
        s.destroy();
        this.#socket = null;
        reject(err);
      };
      s.once('error', fail);
      s.once('timeout', () => fail(new Error('timed out')));
      s.once(ready, () => {
        s.off('error', fail);
        s.setTimeout(0);
        // A later error (peer closed) only drops the connection; the next send reconnects.
        s.on('error', () => {
          this.#socket = null;
        });
        s.on('close', () => {
          this.#socket = null;
        });
        this.#socket = s;
        resolve(s);
      });
    });
  }

  async send(alert: Alert): Promise<string | null> {
    const data = frame(syslogMessage(alert as CompleteAlert, { ...this.options, format: this.routing?.format }));
    try {
      const s = await this.#connect();
      await new Promise<void>((resolve, reject) => s.write(data, (err) => (err ? reject(err) : resolve())));
    } catch (cause) {
      this.#socket?.destroy();
      this.#socket = null;
      throw new GlasswatchError('BG_ALERT_SYSLOG', `${this.name}: ${(cause as Error).message}`, {
        stage: 'sending',
        retriable: true,
        cause,
      });
    }
    return null;
  }

  async close(): Promise<void> {
    const s = this.#socket;
    this.#socket = null;
    // end() sends TLS close_notify before FIN, as RFC 5425 asks.
    if (s) await new Promise<void>((resolve) => s.end(resolve));
  }
}
