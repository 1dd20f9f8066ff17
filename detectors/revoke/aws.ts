import { createHash } from 'node:crypto';
import { IAMClient, ListAccessKeysCommand, PutRolePolicyCommand, UpdateAccessKeyCommand } from '@aws-sdk/client-iam';
import { GlasswatchError } from '../../core/errors.js';
import type { RevocationRequest, RevocationResult, RevocationTarget } from './types.js';

export interface AwsRevokerOptions {
  /** @default us-east-1 (IAM is global; its endpoint lives there) */
  region?: string;
  /** For tests and VPC endpoints; the AWS default otherwise. */
  endpoint?: string;
  /** Static credentials; otherwise the SDK's default chain (instance role, env, profile). Secrets. */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Role to fence when the identity is a role and the event does not name it. */
  role?: string;
  /** Injected clock for the `aws:TokenIssueTime` cut-off. */
  now?: () => Date;
}

const POLICY_NAME = 'AWSRevokeOlderSessions';
/** One inline policy per fenced role session (names allow [\w+=,.@-], at most 128 characters). */
const SESSION_POLICY_PREFIX = 'GlasswatchRevokeSession-';

// The SDK warns on every start that future releases need Node 22; our pinned release runs on
// Node 20, so the warning is noise on the operator's console.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

/**
 * AWS containment, the documented way:
 *  - a role: the `AWSRevokeOlderSessions` inline deny with `aws:TokenIssueTime` (what the
 *    console's "Revoke active sessions" writes) — every session issued before now is dead;
 *  - an IAM user: deactivate its access keys;
 *  - root: nothing in IAM can fence it; say so, and say what to do.
 */
export class AwsRevoker implements RevocationTarget {
  readonly kind = 'aws' as const;
  readonly #iam: IAMClient;

  constructor(readonly options: AwsRevokerOptions = {}) {
    this.#iam = new IAMClient({
      region: options.region ?? 'us-east-1',
      ...(options.endpoint ? { endpoint: options.endpoint } : {}),
      ...(options.credentials ? { credentials: options.credentials } : {}),
      maxAttempts: 1, // the dispatcher owns retries
    });
  }

  async revoke(r: RevocationRequest): Promise<RevocationResult> {
    const raw = r.event.raw as {
      userIdentity?: Record<string, unknown>;
      eventName?: string;
      requestParameters?: Record<string, unknown> | null;
      responseElements?: unknown;
    };
    const ui = raw.userIdentity ?? {};
    if (ui.type === 'Root') {
      return {
        outcome: 'not_revocable',
        detail: 'root sessions cannot be fenced by IAM: rotate the root credentials (password, MFA, and delete root access keys)',
      };
    }
    const role = this.options.role ?? roleOf(ui, raw);
    // Following a person into a role others share (an SSO or SAML role): fence that one role session,
    // not every session of the role, which would cut the person's colleagues too.
    const userId = r.followedFrom !== undefined && role ? roleSessionUserId(ui, raw) : null;
    if (role && userId) return this.#fenceSession(role, userId);
    if (role) return this.#fenceRole(role);
    if (ui.type === 'IAMUser' && typeof ui.userName === 'string') return this.#deactivateKeys(ui.userName);
    return {
      outcome: 'not_revocable',
      detail: `no IAM role or user to fence for principal type ${String(ui.type ?? 'unknown')}; contain it upstream (IdP / SCP)`,
    };
  }

  async #fenceRole(role: string): Promise<RevocationResult> {
    const cutoff = (this.options.now?.() ?? new Date()).toISOString().replace(/\.\d{3}Z$/, 'Z');
    const policy = {
      Version: '2012-10-17',
      Statement: [{ Effect: 'Deny', Action: ['*'], Resource: ['*'], Condition: { DateLessThan: { 'aws:TokenIssueTime': cutoff } } }],
    };
    await this.#send(`PutRolePolicy ${role}`, () =>
      this.#iam.send(new PutRolePolicyCommand({ RoleName: role, PolicyName: POLICY_NAME, PolicyDocument: JSON.stringify(policy) })),
    );
    return { outcome: 'revoked', detail: `role ${role}: ${POLICY_NAME} denies every session issued before ${cutoff}` };
  }

  /**
   * The same documented deny, narrowed with `aws:userid` (for a role session `<role id>:<session
   * name>`) to the sessions of this name issued before now, in a policy of its own per session so a
   * later whole-role fence, or another person's, never overwrites it.
   */
  async #fenceSession(role: string, userId: string): Promise<RevocationResult> {
    const cutoff = (this.options.now?.() ?? new Date()).toISOString().replace(/\.\d{3}Z$/, 'Z');
    const name = `${SESSION_POLICY_PREFIX}${createHash('sha256').update(userId).digest('hex').slice(0, 16)}`;
    const policy = {
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Deny',
          Action: ['*'],
          Resource: ['*'],
          Condition: { StringEquals: { 'aws:userid': userId }, DateLessThan: { 'aws:TokenIssueTime': cutoff } },
        },
      ],
    };
    await this.#send(`PutRolePolicy ${role}`, () =>
      this.#iam.send(new PutRolePolicyCommand({ RoleName: role, PolicyName: name, PolicyDocument: JSON.stringify(policy) })),
    );
    return {
      outcome: 'revoked',
      detail: `role ${role}: ${name} denies the role session ${userId} issued before ${cutoff} (the role's other sessions keep working)`,
    };
  }

  async #deactivateKeys(user: string): Promise<RevocationResult> {
    const listed = await this.#send(`ListAccessKeys ${user}`, () => this.#iam.send(new ListAccessKeysCommand({ UserName: user })));
    const active = (listed.AccessKeyMetadata ?? []).filter((k) => k.Status === 'Active' && k.AccessKeyId);
    for (const k of active) {
      await this.#send(`UpdateAccessKey ${k.AccessKeyId}`, () =>
        this.#iam.send(new UpdateAccessKeyCommand({ UserName: user, AccessKeyId: k.AccessKeyId!, Status: 'Inactive' })),
      );
    }
    return {
      outcome: 'revoked',
      detail: `user ${user}: deactivated ${active.length} access key(s)${active.length ? ` (${active.map((k) => k.AccessKeyId).join(', ')})` : ''}; console password unchanged`,
    };
  }

  async #send<T>(what: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (cause) {
      const status = (cause as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      const name = (cause as Error).name;
      throw new GlasswatchError('BG_REVOKE_AWS', `IAM ${what} failed: ${name}: ${(cause as Error).message}`, {
        stage: 'sending',
        retriable: status === undefined || status >= 500 || name === 'Throttling' || name === 'ThrottlingException',
        cause,
        hint:
          name === 'AccessDenied' || name === 'AccessDeniedException'
            ? 'grant the glasswatch principal iam:PutRolePolicy, iam:ListAccessKeys and iam:UpdateAccessKey'
            : undefined,
      });
    }
  }
}

function roleOf(
  ui: Record<string, unknown>,
  raw: { eventName?: string; requestParameters?: Record<string, unknown> | null },
): string | null {
  const issuer = (ui.sessionContext as { sessionIssuer?: { type?: string; userName?: string } } | undefined)?.sessionIssuer;
  if (ui.type === 'AssumedRole' && issuer?.type === 'Role' && issuer.userName) return issuer.userName;
  if (ui.type === 'AssumedRole' && typeof ui.arn === 'string') {
    const m = /:assumed-role\/([^/]+)\//.exec(ui.arn);
    if (m) return m[1]!;
  }
  // The AssumeRole call itself: the caller is someone else; the role being entered is the one to fence.
  const roleArn = raw.requestParameters?.roleArn;
  if (raw.eventName?.startsWith('AssumeRole') && typeof roleArn === 'string') {
    const m = /:role\/(?:.*\/)?([^/]+)$/.exec(roleArn);
    if (m) return m[1]!;
  }
  return null;
}

/**
 * The `aws:userid` of a role session (`<role unique id>:<session name>`): the principal id of an
 * event by the session, or the assumed-role id the AssumeRole* call returned.
 */
function roleSessionUserId(ui: Record<string, unknown>, raw: { responseElements?: unknown }): string | null {
  const valid = (v: unknown): v is string => typeof v === 'string' && /^AROA[A-Z0-9]{4,}:[\w+=,.@-]{2,64}$/.test(v);
  if (ui.type === 'AssumedRole' && valid(ui.principalId)) return ui.principalId;
  const returned = (raw.responseElements as { assumedRoleUser?: { assumedRoleId?: unknown } } | null | undefined)?.assumedRoleUser
    ?.assumedRoleId;
  return valid(returned) ? returned : null;
}
