import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * Local stand-ins for the third-party APIs glasswatch revokes through (Okta, the
 * Kubernetes API server, AWS IAM), used by the demo and the tests. Each one checks the
 * exact documented request — method, path, headers, body — answers like the real API,
 * and records what it received. A request that deviates gets the real API's error.
 */
export interface RecordedRequest {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export interface StandIn {
  url: string;
  requests: RecordedRequest[];
  close(): Promise<void>;
}

async function serve(handler: (req: RecordedRequest, res: ServerResponse) => void): Promise<StandIn> {
  const requests: RecordedRequest[] = [];
  const server: Server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const recorded = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      requests.push(recorded);
      handler(recorded, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const json = (res: ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
};

/** Okta Users API: `DELETE /api/v1/users/{id}/sessions` → 204; `POST /api/v1/users/{id}/lifecycle/suspend` → 200. */
export function oktaStandIn(options: { token: string; users: string[]; failFirst?: number }): Promise<StandIn> {
  let failures = options.failFirst ?? 0;
  return serve((req, res) => {
    if (req.headers.authorization !== `SSWS ${options.token}`) {
      return json(res, 401, {
        errorCode: 'E0000011',
        errorSummary: 'Invalid token provided',
        errorLink: 'E0000011',
        errorId: 'standin',
        errorCauses: [],
      });
    }
    if (failures > 0) {
      failures--;
      res.setHeader('x-rate-limit-limit', '100');
      res.setHeader('x-rate-limit-remaining', '0');
      res.setHeader('x-rate-limit-reset', String(Math.floor(Date.now() / 1000) + 1));
      return json(res, 429, { errorCode: 'E0000047', errorSummary: 'API call exceeded rate limit due to too many requests.' });
    }
    const url = new URL(req.path, 'http://okta');
    const sessions = /^\/api\/v1\/users\/([^/]+)\/sessions$/.exec(url.pathname);
    const suspend = /^\/api\/v1\/users\/([^/]+)\/lifecycle\/suspend$/.exec(url.pathname);
    const user = decodeURIComponent((sessions ?? suspend)?.[1] ?? '');
    if (!options.users.includes(user))
      return json(res, 404, { errorCode: 'E0000007', errorSummary: `Not found: Resource not found: ${user} (User)` });
    if (sessions && req.method === 'DELETE') {
      const oauth = url.searchParams.get('oauthTokens');
      if (oauth !== null && oauth !== 'true' && oauth !== 'false')
        return json(res, 400, { errorCode: 'E0000001', errorSummary: 'Api validation failed: oauthTokens' });
      res.writeHead(204);
      return res.end();
    }
    if (suspend && req.method === 'POST') return json(res, 200, {});
    return json(res, 405, { errorCode: 'E0000022', errorSummary: 'The endpoint does not support the provided HTTP method' });
  });
}

export interface K8sBinding {
  kind: 'ClusterRoleBinding' | 'RoleBinding';
  name: string;
  namespace?: string;
  role: string;
  subjects: { kind: 'User' | 'Group' | 'ServiceAccount'; name: string; namespace?: string }[];
}

/** Kubernetes RBAC API: list and delete (cluster)rolebindings, bearer-token authenticated. */
export function k8sStandIn(options: { token: string; bindings: K8sBinding[] }): Promise<StandIn & { bindings: K8sBinding[] }> {
  const bindings = [...options.bindings];
  const item = (b: K8sBinding) => ({
    metadata: { name: b.name, ...(b.namespace ? { namespace: b.namespace } : {}) },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: b.kind === 'ClusterRoleBinding' ? 'ClusterRole' : 'Role', name: b.role },
    subjects: b.subjects.map((s) => ({ ...s, ...(s.kind === 'ServiceAccount' ? {} : { apiGroup: 'rbac.authorization.k8s.io' }) })),
  });
  const status = (code: number, reason: string, message: string) => ({
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
    code,
  });
  return serve((req, res) => {
    if (req.headers.authorization !== `Bearer ${options.token}`) return json(res, 401, status(401, 'Unauthorized', 'Unauthorized'));
    const base = '/apis/rbac.authorization.k8s.io/v1';
    if (req.method === 'GET' && req.path === `${base}/clusterrolebindings`) {
      return json(res, 200, {
        kind: 'ClusterRoleBindingList',
        apiVersion: 'rbac.authorization.k8s.io/v1',
        metadata: {},
        items: bindings.filter((b) => b.kind === 'ClusterRoleBinding').map(item),
      });
    }
    if (req.method === 'GET' && req.path === `${base}/rolebindings`) {
      return json(res, 200, {
        kind: 'RoleBindingList',
        apiVersion: 'rbac.authorization.k8s.io/v1',
        metadata: {},
        items: bindings.filter((b) => b.kind === 'RoleBinding').map(item),
      });
    }
    const crb = new RegExp(`^${base}/clusterrolebindings/([^/]+)$`).exec(req.path);
    const rb = new RegExp(`^${base}/namespaces/([^/]+)/rolebindings/([^/]+)$`).exec(req.path);
    if (req.method === 'DELETE' && (crb || rb)) {
      const name = decodeURIComponent((crb ? crb[1] : rb![2])!);
      const ns = rb ? decodeURIComponent(rb[1]!) : undefined;
      const i = bindings.findIndex(
        (b) => b.name === name && (crb ? b.kind === 'ClusterRoleBinding' : b.kind === 'RoleBinding' && b.namespace === ns),
      );
      if (i < 0)
        return json(
          res,
          404,
          status(404, 'NotFound', `${crb ? 'clusterrolebindings' : 'rolebindings'}.rbac.authorization.k8s.io "${name}" not found`),
        );
      bindings.splice(i, 1);
      return json(res, 200, {
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Success',
        details: { name, group: 'rbac.authorization.k8s.io', kind: crb ? 'clusterrolebindings' : 'rolebindings' },
      });
    }
    return json(res, 404, status(404, 'NotFound', 'the server could not find the requested resource'));
  }).then((s) => Object.assign(s, { bindings }));
}

/**
 * AWS IAM Query API (what the SDK sends to the endpoint): form-encoded POST, SigV4
 * `Authorization` header scoped to `<date>/us-east-1/iam/aws4_request`. Checks the
 * signature's structure and access key, and the exact parameters of PutRolePolicy,
 * ListAccessKeys and UpdateAccessKey.
 */
export function iamStandIn(options: {
  accessKeyId: string;
  users?: Record<string, string[]>;
  /** The account's roles: PutRolePolicy on another answers NoSuchEntity, as IAM does. Absent: any role. */
  roles?: string[];
}): Promise<StandIn & { calls: Record<string, string>[] }> {
  const calls: Record<string, string>[] = [];
  const xml = (res: ServerResponse, status: number, body: string) => {
    res.writeHead(status, { 'content-type': 'text/xml' });
    res.end(body);
  };
  const error = (res: ServerResponse, status: number, code: string, message: string) =>
    xml(
      res,
      status,
      `<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>Sender</Type><Code>${code}</Code><Message>${message}</Message></Error><RequestId>standin</RequestId></ErrorResponse>`,
    );
  const sigv4 =
    /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/us-east-1\/iam\/aws4_request, SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$/;
  return serve((req, res) => {
    const auth = String(req.headers.authorization ?? '');
    const m = sigv4.exec(auth);
    if (req.method !== 'POST' || !m || m[1] !== options.accessKeyId || !m[3]!.split(';').includes('host') || !req.headers['x-amz-date']) {
      return error(res, 403, 'SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided.');
    }
    if (!String(req.headers['content-type']).startsWith('application/x-www-form-urlencoded'))
      return error(res, 400, 'InvalidParameterValue', 'bad content type');
    const params = Object.fromEntries(new URLSearchParams(req.body));
    calls.push(params);
    const ns = 'xmlns="https://iam.amazonaws.com/doc/2010-05-08/"';
    if (params.Version !== '2010-05-08') return error(res, 400, 'InvalidParameterValue', 'Version');
    switch (params.Action) {
      case 'PutRolePolicy':
        if (!params.RoleName || !params.PolicyName || !params.PolicyDocument)
          return error(res, 400, 'ValidationError', 'missing parameter');
        // PutRolePolicy's documented PolicyName constraint: 1-128 characters of [\w+=,.@-].
        if (!/^[\w+=,.@-]{1,128}$/.test(params.PolicyName))
          return error(res, 400, 'ValidationError', `1 validation error detected: Value at 'policyName' failed to satisfy constraint`);
        if (options.roles && !options.roles.includes(params.RoleName))
          return error(res, 404, 'NoSuchEntity', `The role with name ${params.RoleName} cannot be found.`);
        try {
          JSON.parse(params.PolicyDocument);
        } catch {
          return error(res, 400, 'MalformedPolicyDocument', 'Syntax errors in policy.');
        }
        return xml(
          res,
          200,
          `<PutRolePolicyResponse ${ns}><ResponseMetadata><RequestId>standin</RequestId></ResponseMetadata></PutRolePolicyResponse>`,
        );
      case 'ListAccessKeys': {
        const keys = options.users?.[params.UserName ?? ''];
        if (!keys) return error(res, 404, 'NoSuchEntity', `The user with name ${params.UserName} cannot be found.`);
        const members = keys
          .map(
            (k) =>
              `<member><UserName>${params.UserName}</UserName><AccessKeyId>${k}</AccessKeyId><Status>Active</Status><CreateDate>2026-01-01T00:00:00Z</CreateDate></member>`,
          )
          .join('');
        return xml(
          res,
          200,
          `<ListAccessKeysResponse ${ns}><ListAccessKeysResult><AccessKeyMetadata>${members}</AccessKeyMetadata><IsTruncated>false</IsTruncated></ListAccessKeysResult><ResponseMetadata><RequestId>standin</RequestId></ResponseMetadata></ListAccessKeysResponse>`,
        );
      }
      case 'UpdateAccessKey':
        if (params.Status !== 'Inactive' || !params.AccessKeyId) return error(res, 400, 'ValidationError', 'Status');
        return xml(
          res,
          200,
          `<UpdateAccessKeyResponse ${ns}><ResponseMetadata><RequestId>standin</RequestId></ResponseMetadata></UpdateAccessKeyResponse>`,
        );
      default:
        return error(res, 400, 'InvalidAction', `Could not find operation ${params.Action}`);
    }
  }).then((s) => Object.assign(s, { calls }));
}
