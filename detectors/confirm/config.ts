import { ConfigError, Fields, type GlasswatchConfig } from '../../core/config.js';

export const CONFIRM_VIA = ['email', 'webhook', 'slack'] as const;
export type ConfirmVia = (typeof CONFIRM_VIA)[number];

/** An identity's `confirm:`: ask its registered owner "was this you?" before revoking. */
export interface ConfirmPolicy {
  via: ConfirmVia;
  /** E-mail address (email), the owner's name as the receiver knows it (webhook), a Slack member id (slack). */
  owner: string;
  /** No answer within this many seconds of the question revokes. */
  timeoutSeconds: number;
}

/** `revocation.confirm`: where links point, how they are signed, and how questions are sent. */
export interface ConfirmSettings {
  /** HMAC-SHA256 key of the links (a secret, at least 32 characters). */
  secret: string;
  /** The console as the owner's browser reaches it; links are `<consoleUrl>/confirm/<id>?token=…`. */
  consoleUrl: string;
  /** E-mail sender (the `smtp:` section's transport). */
  from: string | null;
  webhook: { url: string; secret: string } | null;
  slack: { url: string } | null;
}

const EMAIL = /^[^\s@<>]+@[^\s@<>]+\.[^\s@<>]+$/;
const SLACK_MEMBER = /^[UW][A-Z0-9]{2,20}$/;
export const MIN_CONFIRM_SECONDS = 10;
export const MAX_CONFIRM_SECONDS = 3600;

/** Validates an identity's `confirm:` (absent: no question, revocation as configured). */
export function parseConfirm(value: unknown, file: string | null, at: string): ConfirmPolicy | undefined {
  if (value === undefined || value === null || value === false) return undefined;
  const c = Fields.of(file, at, value).only(['via', 'owner', 'timeoutSeconds']);
  const via = c.oneOf('via', CONFIRM_VIA);
  const owner = c.string('owner');
  if (via === 'email' && !EMAIL.test(owner)) c.fail('owner', `must be an e-mail address for via: email, got "${owner}"`);
  if (via === 'slack' && !SLACK_MEMBER.test(owner)) c.fail('owner', `must be a Slack member id (U…) for via: slack, got "${owner}"`);
  if (via === 'webhook' && !/^[\w.@:+-]{1,128}$/.test(owner)) c.fail('owner', 'must be 1-128 letters, digits or _ . @ : + -');
  const timeoutSeconds = c.number('timeoutSeconds', 300, { min: MIN_CONFIRM_SECONDS, max: MAX_CONFIRM_SECONDS, integer: true });
  return { via, owner, timeoutSeconds };
}

/** `revocation.confirm`, or null when no identity asks (then it may be absent). */
export function confirmSettingsOf(config: GlasswatchConfig, vias: ReadonlySet<ConfirmVia>): ConfirmSettings | null {
  const file = config.file;
  const r = Fields.of(file, 'revocation', config.sections.revocation);
  if (r.value.confirm === undefined || r.value.confirm === null) {
    if (vias.size === 0) return null;
    throw new ConfigError(file, 'revocation.confirm', 'is required when an identity has confirm: (secret, consoleUrl and how to send)');
  }
  const c = r.section('confirm').only(['secret', 'consoleUrl', 'from', 'webhook', 'slack']);
  const secret = c.string('secret');
  if (secret.length < 32) c.fail('secret', 'must be at least 32 characters (e.g. openssl rand -hex 32)');
  const consoleUrl = c.string('consoleUrl').replace(/\/+$/, '');
  let url: URL;
  try {
    url = new URL(consoleUrl);
  } catch {
    return c.fail('consoleUrl', `must be an http(s) URL, got "${consoleUrl}"`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') c.fail('consoleUrl', 'must be an http(s) URL');
  const from = c.optionalString('from');
  if (vias.has('email') && !from) c.fail('from', 'is required: an identity confirms via email');
  if (vias.has('email') && config.sections.smtp === undefined)
    throw new ConfigError(file, 'smtp', 'is required: an identity confirms via email (revocation.confirm sends through it)');
  let webhook: ConfirmSettings['webhook'] = null;
  if (c.value.webhook !== undefined) {
    const w = c.section('webhook').only(['url', 'secret']);
    webhook = { url: httpUrl(w, 'url'), secret: w.string('secret') };
  } else if (vias.has('webhook')) c.fail('webhook', 'is required: an identity confirms via webhook ({ url, secret })');
  let slack: ConfirmSettings['slack'] = null;
  if (c.value.slack !== undefined) slack = { url: httpUrl(c.section('slack').only(['url']), 'url') };
  else if (vias.has('slack')) c.fail('slack', 'is required: an identity confirms via slack ({ url } of an incoming webhook)');
  return { secret, consoleUrl, from, webhook, slack };
}

function httpUrl(f: Fields, key: string): string {
  const v = f.string(key);
  try {
    const u = new URL(v);
    if (u.protocol === 'https:' || u.protocol === 'http:') return v;
  } catch {
    // reported below
  }
  return f.fail(key, 'must be an http(s) URL');
}
