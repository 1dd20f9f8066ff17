import { GlasswatchError } from '../../../core/errors.js';

export interface JsonReply {
  status: number;
  headers: Headers;
  body: unknown;
}

/**
 * POSTs JSON and classifies failures the way every alert receiver documents them: network
 * errors, 408, 429 and 5xx are retriable; other 4xx will not heal by resending the same body.
 */
export async function postJson(
  name: string,
  code: string,
  url: string,
  payload: unknown,
  headers: Record<string, string> = {},
  timeoutMs = 10_000,
): Promise<JsonReply> {
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json; charset=utf-8', 'user-agent': 'glasswatch', ...headers },
      body: JSON.stringify(payload),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (cause) {
    throw new GlasswatchError(code, `${name}: request failed: ${(cause as Error).message}`, { stage: 'sending', retriable: true, cause });
  }
  const text = await res.text().catch(() => '');
  let body: unknown = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = text;
  }
  if (!res.ok) {
    const retriable = res.status >= 500 || res.status === 408 || res.status === 429;
    throw new GlasswatchError(code, `${name}: HTTP ${res.status}: ${text.slice(0, 300)}`, {
      stage: 'sending',
      retriable,
      context: { status: res.status, retryAfter: res.headers.get('retry-after') },
    });
  }
  return { status: res.status, headers: res.headers, body };
}
