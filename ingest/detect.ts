/**
 * Shape recognition: walks one parsed JSON value, unwraps the envelopes it knows (S3 `Records[]`,
 * EventBridge, Okta Event Hook, EventList, Azure diagnostics, sample-file wrappers) and hands each
 * record to its source's normalizer. Results are pushed onto `walk.out` (no generator or closure per
 * record: this is the hot path).
 *
 * Every record yields exactly one result (event, skipped or dead), so counts add up to the input.
 */
import type { Source } from '../core/event.js';
import { type CloudTrailContext, normalizeCloudTrailRecord } from './cloudtrail/normalize.js';
import { isObject, type JsonObject, jsonText, keyList, looseString, measureJson } from './fields.js';
import { type K8sContext, normalizeK8sEvent } from './k8s/normalize.js';
import { normalizeOktaEvent, type OktaContext } from './okta/normalize.js';
import { DEFAULT_MAX_DEPTH, DEFAULT_MAX_RECORD_BYTES, type NormalizeOptions, type NormalizeResult } from './types.js';

/** Per-document state. One allocation per file (or per collector body), reused for every record. */
export interface Walk {
  file: string;
  /** 1-based line of the current JSON-lines value, null for a whole document. */
  line: number | null;
  /** Text of the current line or document: the dead-letter text when that whole unit is the bad record. */
  unitText: string;
  /**
   * Size of the current line or document (bytes or characters): no record inside it can be larger,
   * so records are only measured against `maxRecordBytes` when their unit is over it.
   */
  unitBytes: number;
  restrict: Source | null;
  maxDepth: number;
  maxRecordBytes: number;
  out: NormalizeResult[];
  cloudtrail: CloudTrailContext;
  okta: OktaContext;
  k8s: K8sContext;
  /** Values still to route, innermost last (see `routeValue`). */
  stack: Frame[];
}

/**
 * Values still to route: the elements of an array or envelope list, or one unwrapped value
 * (`single`). Routing pops from the end of `walk.stack`, so nesting costs heap, not call stack.
 */
interface Frame {
  values: readonly unknown[];
  next: number;
  /** One value whose index and path are the frame's own, not its position. */
  single: boolean;
  index: number | null;
  path: string | undefined;
  hint: Source | null;
  /** Elements of a bare array may be StreamAlert rule-test descriptors; envelope lists hold records. */
  descriptors: boolean;
  /** Nesting level of the values in this frame (the document is level 1). */
  depth: number;
  cloudtrail: CloudTrailContext;
  okta: OktaContext;
  k8s: K8sContext;
}

const ORG_TRAIL_KEY = /(?:^|\/)AWSLogs\/(o-[a-z0-9]{10,32})\/\d{12}\/CloudTrail/;

export function createWalk(file: string, options: NormalizeOptions, out: NormalizeResult[] = []): Walk {
  return {
    file,
    line: null,
    unitText: '',
    unitBytes: 0,
    restrict: options.source ?? null,
    maxDepth: options.maxDepth ?? DEFAULT_MAX_DEPTH,
    maxRecordBytes: options.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES,
    out,
    cloudtrail: { org: options.awsOrg ?? ORG_TRAIL_KEY.exec(file)?.[1] ?? null, account: null },
    okta: { org: options.oktaOrg ?? null },
    k8s: { cluster: options.cluster ?? null },
    stack: [],
  };
}

function child(path: string | undefined, key: string): string {
  return path === undefined ? key : `${path}.${key}`;
}

function item(path: string | undefined, index: number): string {
  return `${path ?? ''}[${index}]`;
}

/** ` at line 4, Records[3]`: appended to every dead reason; `reasonWithoutLocation` strips it again. */
function location(walk: Walk, path: string | undefined): string {
  if (walk.line === null) return path === undefined ? '' : ` at ${path}`;
  return path === undefined ? ` at line ${walk.line}` : ` at line ${walk.line}, ${path}`;
}

const LOCATION_SUFFIX = / at (?:line \d+(?:, )?)?[\w.[\]-]*$/;

/** The reason with its location suffix removed: what to group dead letters by. */
export function reasonWithoutLocation(reason: string): string {
  return reason.replace(LOCATION_SUFFIX, '');
}

function origin(walk: Walk, index: number | null, path: string | undefined) {
  return { file: walk.file, line: walk.line, index, path };
}

function skip(walk: Walk, source: Source | null, what: string, index: number | null, path: string | undefined): void {
  walk.out.push({ kind: 'skipped', source, what, origin: origin(walk, index, path) });
}

export function dead(
  walk: Walk,
  source: Source | null,
  reason: string,
  index: number | null,
  path: string | undefined,
  value: unknown,
): void {
  // A record that is the whole line or document keeps its exact original text; a nested one is re-serialized.
  const text = path === undefined ? walk.unitText : typeof value === 'string' ? value : jsonText(value);
  walk.out.push({ kind: 'dead', source, reason: reason + location(walk, path), origin: origin(walk, index, path), text });
}

/** Which source a bare record belongs to, by the keys only that source writes; null when none. */
export function recordSource(obj: JsonObject): Source | null {
  const eventSource = obj.eventSource;
  if (typeof eventSource === 'string' && eventSource.endsWith('.amazonaws.com')) return 'cloudtrail';
  if (obj.eventType === 'AwsCloudTrailInsight') return 'cloudtrail';
  if ('eventVersion' in obj && ('eventID' in obj || 'eventTime' in obj || 'userIdentity' in obj)) return 'cloudtrail';
  const apiVersion = obj.apiVersion;
  if (typeof apiVersion === 'string') {
    if (apiVersion.startsWith('audit.k8s.io/')) return 'k8s';
  } else if (obj.kind === 'Event' || ('auditID' in obj && ('verb' in obj || 'stage' in obj || 'requestURI' in obj))) {
    // Log-backend lines often omit apiVersion (Falco traces, Panther tests); a core/v1 Event has `apiVersion: v1`.
    return 'k8s';
  }
  if (
    typeof obj.eventType === 'string' &&
    ('uuid' in obj || 'published' in obj || 'legacyEventType' in obj || 'displayMessage' in obj || 'actor' in obj || 'outcome' in obj)
  ) {
    return 'okta';
  }
  return null;
}

function normalizeAs(walk: Walk, source: Source, record: JsonObject, index: number | null, path: string | undefined): void {
  // Sizes are only counted when the unit is big enough to hold an oversized record.
  const maxBytes = walk.unitBytes > walk.maxRecordBytes ? walk.maxRecordBytes : Number.POSITIVE_INFINITY;
  const limit = measureJson(record, walk.maxDepth, maxBytes);
  if (limit !== null) {
    const reason =
      limit === 'depth'
        ? `record nested deeper than ${walk.maxDepth} levels (maxDepth)`
        : `record is larger than ${walk.maxRecordBytes} bytes (maxRecordBytes)`;
    dead(walk, source, `${source}: ${reason}`, index, path, record);
    return;
  }
  const result =
    source === 'cloudtrail'
      ? normalizeCloudTrailRecord(record, walk.cloudtrail)
      : source === 'okta'
        ? normalizeOktaEvent(record, walk.okta)
        : normalizeK8sEvent(record, walk.k8s);
  if (typeof result === 'string') dead(walk, source, `${source}: ${result}`, index, path, record);
  else walk.out.push({ kind: 'event', event: result, origin: origin(walk, index, path) });
}

/** Queues the elements of a list (`Records[]`, `items[]`, a bare array) at nesting level `depth`, in the current contexts. */
function pushList(
  walk: Walk,
  values: readonly unknown[],
  path: string | undefined,
  hint: Source | null,
  depth: number,
  descriptors = false,
): void {
  const { cloudtrail, okta, k8s } = walk;
  walk.stack.push({ values, next: 0, single: false, index: null, path, hint, descriptors, depth, cloudtrail, okta, k8s });
}

/** Queues one unwrapped value (an EventBridge `detail`, an AKS `properties.log`) with its own index and path. */
function pushValue(walk: Walk, value: unknown, index: number | null, path: string | undefined, hint: Source | null, depth: number): void {
  const { cloudtrail, okta, k8s } = walk;
  walk.stack.push({ values: [value], next: 0, single: true, index, path, hint, descriptors: false, depth, cloudtrail, okta, k8s });
}

/**
 * Route one parsed value: every record in it yields exactly one result, in document order.
 * Envelopes and arrays are unwrapped with an explicit stack, never recursion, so a value nested
 * 100,000 deep costs heap, not call stack, and stops at `maxDepth` as a dead letter. An exception
 * from a normalizer (or from a value a collector built) becomes a dead result for that record.
 * `hint` is the source the surrounding envelope implies (`Records[]` → cloudtrail): used only when
 * the record's own keys don't say, so the dead letter names the missing field instead of "unrecognised".
 */
export function routeValue(walk: Walk, value: unknown, index: number | null, path: string | undefined, hint: Source | null): void {
  const stack = walk.stack;
  const base = stack.length;
  const { cloudtrail, okta, k8s } = walk;
  pushValue(walk, value, index, path, hint, 1);
  while (stack.length > base) {
    const frame = stack[stack.length - 1] as Frame;
    if (frame.next >= frame.values.length) {
      stack.pop();
      continue;
    }
    const i = frame.next++;
    let element: unknown = frame.values[i];
    let at = frame.index;
    let where = frame.path;
    let elementHint = frame.hint;
    walk.cloudtrail = frame.cloudtrail;
    walk.okta = frame.okta;
    walk.k8s = frame.k8s;
    try {
      if (!frame.single) {
        at = i;
        where = item(frame.path, i);
        if (frame.descriptors && isObject(element) && 'data' in element && typeof element.log === 'string' && 'service' in element) {
          // StreamAlert rule-test descriptor (sample files only): unwrapped to its `data`, the path pointing inside it.
          const log = element.log;
          elementHint =
            log.startsWith('cloudtrail') || log.startsWith('cloudwatch') ? 'cloudtrail' : log.startsWith('okta') ? 'okta' : null;
          element = element.data;
          where = child(where, 'data');
        }
      }
      routeOne(walk, element, at, where, elementHint, frame.depth);
    } catch (err) {
      dead(walk, elementHint, `record could not be routed: ${errorText(err)}`, at, where, element);
    }
  }
  walk.cloudtrail = cloudtrail;
  walk.okta = okta;
  walk.k8s = k8s;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** One value at nesting level `depth`: arrays and envelopes are queued, a record is normalized. */
function routeOne(walk: Walk, value: unknown, index: number | null, path: string | undefined, hint: Source | null, depth: number): void {
  if (depth > walk.maxDepth && typeof value === 'object' && value !== null) {
    const source = isObject(value) ? (recordSource(value) ?? walk.restrict ?? hint) : hint;
    const reason = `record nested deeper than ${walk.maxDepth} levels (maxDepth)`;
    dead(walk, source, source === null ? reason : `${source}: ${reason}`, index, path, value);
    return;
  }
  if (Array.isArray(value)) {
    pushList(walk, value, path, hint, depth + 1, true);
    return;
  }
  if (!isObject(value)) {
    const what = value === null ? 'null' : typeof value;
    dead(walk, hint, `unrecognised record: a JSON ${what}, not an object`, index, path, value);
    return;
  }
  const obj = value;
  if (routeEnvelope(walk, obj, index, path, hint, depth)) return;

  const detected = recordSource(obj);
  const source = detected ?? walk.restrict ?? hint;
  if (source === null) {
    dead(walk, null, `unrecognised record: no CloudTrail, Okta or Kubernetes audit shape (keys: ${keyList(obj)})`, index, path, obj);
    return;
  }
  if (walk.restrict !== null && source !== walk.restrict) {
    dead(walk, source, `${source} record, but this input only accepts ${walk.restrict}`, index, path, obj);
    return;
  }
  try {
    normalizeAs(walk, source, obj, index, path);
  } catch (err) {
    dead(walk, source, `${source}: normalizer failed: ${errorText(err)}`, index, path, obj);
  }
}

/**
 * Envelopes and recognised non-events, checked before records (an envelope also has generic keys
 * like `eventType`). Returns false when `obj` is none of them.
 */
function routeEnvelope(
  walk: Walk,
  obj: JsonObject,
  index: number | null,
  path: string | undefined,
  hint: Source | null,
  depth: number,
): boolean {
  if (Array.isArray(obj.Records)) {
    pushList(walk, obj.Records, child(path, 'Records'), 'cloudtrail', depth + 2);
  } else if (typeof obj['detail-type'] === 'string' && 'detail' in obj) {
    routeEventBridge(walk, obj, obj['detail-type'], index, path, depth);
  } else if (obj.eventType === 'com.okta.event_hook' && isObject(obj.data) && Array.isArray(obj.data.events)) {
    routeOktaHook(walk, obj, obj.data.events, path, depth);
  } else if (obj.kind === 'EventList' && Array.isArray(obj.items)) {
    pushList(walk, obj.items, child(path, 'items'), 'k8s', depth + 2);
  } else if (Array.isArray(obj.records)) {
    pushList(walk, obj.records, child(path, 'records'), null, depth + 2);
  } else if (typeof obj.category === 'string' && isObject(obj.properties)) {
    routeAzureDiagnostic(walk, obj, obj.category, obj.properties, index, path, depth);
  } else if (isObject(obj.protoPayload) && obj.protoPayload.serviceName === 'k8s.io') {
    skip(walk, 'k8s', 'gke-cloud-audit-log', index, path);
  } else if ('digestS3Object' in obj || ('logFiles' in obj && 'digestPublicKeyFingerprint' in obj)) {
    skip(walk, 'cloudtrail', 'cloudtrail-digest', index, path);
  } else if (('configRuleArn' in obj || 'configRuleId' in obj) && 'invokingEvent' in obj) {
    skip(walk, 'cloudtrail', 'aws-config-rule-invocation', index, path);
  } else if (isObject(obj.input) && typeof obj.input.message === 'string' && 'expected' in obj) {
    routeSampleMessage(walk, obj.input.message, index, child(path, 'input.message'), hint, depth);
  } else {
    // S3 / SNS / SQS notifications share the `Records[]` envelope with CloudTrail deliveries.
    const notification = looseString(obj.eventSource) ?? looseString(obj.EventSource);
    if (!notification?.startsWith('aws:')) return false;
    skip(walk, null, `aws-event-notification:${notification}`, index, path);
  }
  return true;
}

/** EventBridge: CloudTrail-delivered events are unwrapped (raw = the CloudTrail record); others are counted and skipped. */
function routeEventBridge(
  walk: Walk,
  envelope: JsonObject,
  detailType: string,
  index: number | null,
  path: string | undefined,
  depth: number,
): void {
  const detail = envelope.detail;
  const detailSource = isObject(detail) ? recordSource(detail) : null;
  if (detailType.endsWith('via CloudTrail') || detailSource === 'cloudtrail') {
    const saved = walk.cloudtrail;
    walk.cloudtrail = { org: saved.org, account: looseString(envelope.account) };
    pushValue(walk, detail, index, child(path, 'detail'), 'cloudtrail', depth + 1);
    walk.cloudtrail = saved;
  } else if (detailSource === 'okta') {
    // Okta Log Streams deliver System Log events to an EventBridge partner bus.
    pushValue(walk, detail, index, child(path, 'detail'), 'okta', depth + 1);
  } else {
    skip(walk, null, `eventbridge-non-cloudtrail:${detailType}`, index, path);
  }
}

const HOSTNAME = /^[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?$/;

function hookOrg(source: unknown): string | null {
  if (typeof source !== 'string') return null;
  try {
    const host = new URL(source).hostname;
    return HOSTNAME.test(host) ? host : null; // the docs' samples carry a `{yourOktaDomain}` placeholder
  } catch {
    return null;
  }
}

/** Okta Event Hook delivery (2019 `eventId` and current shapes): the org host comes from `source` unless configured. */
function routeOktaHook(walk: Walk, hook: JsonObject, events: unknown[], path: string | undefined, depth: number): void {
  const saved = walk.okta;
  if (saved.org === null || saved.org === undefined) walk.okta = { org: hookOrg(hook.source) };
  pushList(walk, events, child(path, 'data.events'), 'okta', depth + 3);
  walk.okta = saved;
}

const AKS_CLUSTER = /\/managedclusters\/([^/]+)/i;

/** Azure diagnostic record: AKS `kube-audit*` categories carry an audit Event under `properties.log` (string or object). */
function routeAzureDiagnostic(
  walk: Walk,
  record: JsonObject,
  category: string,
  properties: JsonObject,
  index: number | null,
  path: string | undefined,
  depth: number,
): void {
  if (!category.startsWith('kube-audit')) {
    const aks = typeof record.resourceId === 'string' && AKS_CLUSTER.test(record.resourceId);
    skip(walk, aks ? 'k8s' : null, `azure-diagnostic:${category}`, index, path);
    return;
  }
  const logPath = child(path, 'properties.log');
  let event: unknown = properties.log;
  if (typeof event === 'string') {
    try {
      event = JSON.parse(event);
    } catch (err) {
      dead(walk, 'k8s', `k8s: properties.log is not valid JSON (${(err as Error).message})`, index, logPath, properties.log);
      return;
    }
  }
  const saved = walk.k8s;
  // The wrapper names the cluster; it beats the configured default, which cannot know per-record origin.
  const cluster = typeof record.resourceId === 'string' ? AKS_CLUSTER.exec(record.resourceId)?.[1] : undefined;
  if (cluster !== undefined) walk.k8s = { cluster };
  pushValue(walk, event, index, logPath, 'k8s', depth + 2);
  walk.k8s = saved;
}

/**
 * SEKOIA intake-format test files (`{"input":{"message":"<json>"},"expected":…}`): sample files
 * only, unwrapped so the corpus check can account for the record inside.
 */
function routeSampleMessage(walk: Walk, message: string, index: number | null, path: string, hint: Source | null, depth: number): void {
  let inner: unknown;
  try {
    inner = JSON.parse(message);
  } catch (err) {
    dead(walk, hint, `malformed JSON in sample wrapper (${(err as Error).message})`, index, path, message);
    return;
  }
  pushValue(walk, inner, index, path, hint, depth + 2);
}
