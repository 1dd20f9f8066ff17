import { hostname } from 'node:os';
import type { Bus, Subscription } from '../core/bus/types.js';
import { Fields, type GlasswatchConfig } from '../core/config.js';
import { GlasswatchError } from '../core/errors.js';
import type { AuditEvent } from '../core/event.js';
import type { Logger } from '../core/log.js';
import type { Store } from '../core/store/client.js';
import { collectorsFields, parseCollectorsCommon } from '../ingest/collector/options.js';
import type { Alert } from './alerts/alert.js';
import { buildDetector, type DetectorBuild } from './build.js';
import { DetectorMetrics, ProcessMetrics } from './metrics.js';
import { PersonSightings } from './people/sightings.js';
import { openSessionsFromStore } from './restore.js';
import { settleAppends } from './stages/alert-stage.js';
import { DrainTracker, type RunningStages, startStages } from './stages/index.js';
import { DetectorChangelog } from './state/changelog.js';
import { TicketReceiver } from './tickets/receiver.js';
import { approvalSlaOf, TicketRequestAlerts } from './tickets/requests.js';
import { forgedTicketAlert, TicketService } from './tickets/service.js';
import { JIRA_PRESET, SERVICENOW_PRESET, type TicketMapping } from './tickets/sources.js';

export interface DetectorService {
  build: DetectorBuild;
  tickets: TicketService;
  /** URL of the tickets endpoint when `tickets.http` is configured. */
  ticketsUrl: string | null;
  /** The delivery and revocation workers run in this process (null with `workers: false`). */
  stages: RunningStages | null;
  /** breakglass.requested / approved / approval_overdue from the ticket versions this detector reads. */
  requests: TicketRequestAlerts;
  /** Prometheus metrics of this detector (open sessions, alerts, latency, revocations, waiting requests). */
  metrics: DetectorMetrics;
  /** `http://host:port` of the detector's own /metrics listener, when it serves one. */
  metricsUrl: string | null;
  stop(): Promise<void>;
}

export interface DetectorServiceOptions {
  config: GlasswatchConfig;
  bus: Bus;
  store: Store | null;
  log: Logger;
  /** Consumer group of the detector. @default "glasswatch-detector" */
  groupId?: string;
  /** Names this process's own consumer groups (the tickets follower). @default host-pid */
  instanceId?: string;
  onAlert?: (a: Alert) => void;
  /**
   * Run the delivery and revocation workers in this process (`glasswatch start`); false when
   * `glasswatch deliver` / `glasswatch revoke` run them. The detector itself only appends. @default true
   */
  workers?: boolean;
  /** Consumer-group prefix of the in-process workers. @default "glasswatch" */
  workerGroupPrefix?: string;
  /**
   * Where to serve `/metrics` with the detector's metrics. @default `collectors.metrics` of the
   * config (`glasswatch detect`); null serves none (`start` adds `metrics` to the one listener
   * of the process, beside the collectors').
   */
  metricsServer?: { host: string; port: number } | null;
  /**
   * Ticket versions older than this raise no request or approval alert (history read from the tickets
   * topic at start); null alerts every version (replaying a past day into a fresh store). @default 24 h
   */
  ticketRequestHistoryMs?: number | null;
}

/**
 * The live detector: rebuilds the ticket ledger from the tickets topic, serves the
 * tickets endpoint, and consumes the events topic with the very `BreakGlassDetector`
 * stage `glasswatch replay` runs. Events are judged one by one and written once per
 * fetched batch (at most `afterBatchEvery` events): a batch's offsets are committed only
 * after its alerts and revocation orders are on their topics, its state is in the
 * changelog and its rows are stored — so a crash re-delivers it, and the alert ids and
 * the delivery ledger keep the re-delivery from alerting twice.
 */
export async function startDetectorService(o: DetectorServiceOptions): Promise<DetectorService> {
  const { config, bus, store, log } = o;
  // The detector appends alerts and revocation orders to their topics and never waits on an output or target.
  const tracker = new DrainTracker();
  let metrics: DetectorMetrics | null = null;
  const onAlert = o.onAlert;
  const build = await buildDetector({
    config,
    store,
    bus,
    log,
    clock: 'live',
    onAlert: (a) => {
      metrics?.observeAlert(a);
      onAlert?.(a);
    },
    stages: { bus, onAlertAppended: (id) => tracker.alertAppended(id), onOrderAppended: (id) => tracker.orderAppended(id) },
  });
  const stages =
    o.workers === false
      ? null
      : await startStages({
          config,
          bus,
          store,
          log,
          tracker,
          // Without a store, the workers record outcomes where the detector verifies them from.
          ...(store ? {} : { revocationLedger: build.detector.options.revocations.ledger }),
          ...(o.workerGroupPrefix ? { groupPrefix: o.workerGroupPrefix } : {}),
        });
  const t = Fields.of(config.file, 'tickets', config.sections.tickets);
  const http = t.section('http');
  // The tickets secret signs every record on the tickets topic and every detector verifies it:
  // without it, anyone who can produce to Kafka could authorize a break-glass use.
  const secret = t.optionalString('secret') ?? (http.value.secret === undefined ? null : http.string('secret'));
  const tickets = new TicketService(build.ledger, {
    store,
    bus,
    topic: config.topics.tickets,
    log,
    identities: build.registry.identities.map((i) => i.id),
    secret,
    previousSecrets: t.strings('previousSecrets', []),
  });
  // Listening before the tickets topic is read: versions replayed at a restart are checked against
  // the alerts already in the store, so nothing is raised twice.
  const requests = new TicketRequestAlerts({
    ledger: build.ledger,
    raise: (a) => build.detector.raisePipelineAlert(a),
    store,
    log: log.child({ component: 'ticket-requests' }),
    slaMinutes: approvalSlaOf(config),
    sourceOf: (id) => build.registry.identities.find((i) => i.id === id)?.source ?? null,
    ...(o.ticketRequestHistoryMs === undefined ? {} : { historyMs: o.ticketRequestHistoryMs }),
  });
  requests.start();
  const detectorMetrics = new DetectorMetrics(build.registry.identities.map((i) => i.id));
  metrics = detectorMetrics;
  detectorMetrics.attach({
    totals: () => build.detector.totals,
    openSession: (id) => build.detector.sessions.get(id),
    waiting: () => requests.waiting(),
    revocations: () => (stages?.revocation ?? []).map((w) => ({ target: w.o.target, totals: w.totals })),
    verification: () => ({ watching: build.detector.verifier.watches.size, ...build.detector.verifier.totals }),
  });
  // Sessions continued from before a restart count as open before their next alert (the longest idle gap
  // over-approximates; the tracker decides which are open).
  if (store) detectorMetrics.watchSessions((await openSessionsFromStore(store, 7 * 86_400)).map((s) => s.id));
  const listen = o.metricsServer === undefined ? parseCollectorsCommon(collectorsFields(config)).metrics : o.metricsServer;
  const metricsServer = listen ? await new ProcessMetrics().with(detectorMetrics).listen({ ...listen, logger: log }) : null;
  const group = o.groupId ?? 'glasswatch-detector';
  // Every detector instance reads all ticket versions: its own group per instance.
  // Named by instance (--instance, else host and pid) and deleted at a clean stop.
  const instance = o.instanceId ?? `${hostname()}-${process.pid}`;
  const ticketFollow = await tickets.follow(`${group}-tickets-${instance}`, {
    temporary: true,
    deadLetterTopic: config.topics.deadLetters,
    onForged: (m, reason) => build.detector.raisePipelineAlert(forgedTicketAlert(m, reason, config.topics.deadLetters)),
  });

  let receiver: TicketReceiver | null = null;
  let ticketsUrl: string | null = null;
  if (Object.keys(http.value).length > 0) {
    http.only(['listen', 'secret', 'windowSeconds', 'jiraSecret', 'jiraWindowSeconds']);
    // Jira's webhook secret is its own (a name ending in "secret": never shown, redacted from logs).
    const jiraSecret = http.optionalString('jiraSecret');
    if (jiraSecret !== null && (jiraSecret === secret || jiraSecret === http.value.secret)) {
      http.fail('jiraSecret', 'must differ from the tickets secret');
    }
    const [host, port] = splitListen(http.string('listen', '127.0.0.1:8470'), config.file);
    receiver = new TicketReceiver(
      tickets,
      {
        secret: http.string('secret'),
        windowSeconds: http.number('windowSeconds', 300, { min: 1, max: 3600 }),
        jiraSecret,
        jiraWindowSeconds: http.number('jiraWindowSeconds', 3600, { min: 60, max: 86_400 }),
        host,
        port,
        jira: mappingOf(t, 'jira', JIRA_PRESET),
        servicenow: mappingOf(t, 'servicenow', SERVICENOW_PRESET),
      },
      log,
    );
    ticketsUrl = await receiver.listen();
  }

  // Open sessions and pending verdicts live in changelogs co-partitioned with the events: a member
  // takes the state of exactly the partitions it is assigned, on every assignment, before their events.
  // The in-process bus dies with the process and compacts nothing: state stays in memory there.
  const changelog =
    bus.kind === 'kafka'
      ? new DetectorChangelog({
          bus,
          eventsTopic: config.topics.events,
          group,
          // Its own copy of every partition, read from the beginning at each start (deleted at a clean
          // stop, and before it is joined, so a kill -9 leaves nothing behind for long).
          readerGroup: `${group}-state-${instance}`,
          log,
        })
      : null;
  await changelog?.start();
  if (changelog) build.detector.keepStateIn(changelog);
  // One person across planes with several members: each shares the activity it sees (its partitions)
  // and links its own break-glass sessions to what the others saw.
  const linker = build.detector.people?.linker ?? null;
  const sightings =
    linker && bus.kind === 'kafka'
      ? new PersonSightings({ bus, topic: config.topics.people, member: instance, windowMs: linker.options.windowMs, log })
      : null;
  if (sightings) linker!.share();
  const sightingsFollow = await sightings?.follow(
    `${group}-people-${instance}`,
    async (batch) => {
      await build.detector.linkSightings(batch);
      await settleAppends(build.detector);
    },
    { deadLetterTopic: config.topics.deadLetters },
  );
  let owned = new Set<number>();
  const events: Subscription = await bus.subscribe({
    topics: [config.topics.events],
    groupId: group,
    fromBeginning: true,
    deadLetterTopic: config.topics.deadLetters,
    // The partitions of a fetch are judged together and share one flush; while it writes, the
    // other partitions' events are judged (one at a time, they waited for every flush: issue 14).
    partitionsConcurrently: 8,
    onAssignment: async (assigned) => {
      if (!changelog) return;
      const mine = new Set(assigned.filter((a) => a.topic === config.topics.events).map((a) => a.partition));
      // Every assigned partition is taken again from the changelog, kept ones too (eager rebalancing,
      // as Kafka Streams does): after a consumer restart the group re-delivers from the last commit,
      // and only the changelog (with its applied offsets) knows what was already applied.
      const lost = new Set(owned);
      const gained = [...mine];
      const state = await changelog.restore(gained);
      await build.detector.assignPartitions(lost, state);
      owned = mine;
      log.info('detector partitions assigned', {
        partitions: [...mine],
        previously: [...lost],
        sessions: state.sessions.length,
        pending: state.pending.length,
      });
    },
    handler: async (m) => {
      let event: AuditEvent;
      try {
        event = JSON.parse(m.value.toString('utf8')) as AuditEvent;
      } catch (cause) {
        throw new GlasswatchError('BG_DETECT_DECODE', `event at ${m.topic}/${m.partition}@${m.offset} is not JSON`, {
          stage: 'processing',
          cause,
        });
      }
      // No per-event await on a peer: sessions, state, alerts and orders are written once per batch.
      await build.detector.handle([event], { partition: m.partition, offset: m.offset, defer: true });
    },
    // A batch's offsets are committed only once its sessions and state are written and its alerts
    // and revocation orders are on their topics; if that fails, the batch is handled again.
    afterBatch: async () => {
      await build.detector.flush();
      await settleAppends(build.detector);
      if (sightings) {
        const shared = linker!.takeShared();
        await sightings.publish(shared).catch((err: unknown) => {
          linker!.requeue(shared);
          throw err;
        });
      }
    },
    afterBatchEvery: 2000,
  });

  return {
    build,
    tickets,
    ticketsUrl,
    stages,
    requests,
    metrics: detectorMetrics,
    metricsUrl: metricsServer?.url ?? null,
    stop: async () => {
      await metricsServer?.close();
      await events.stop();
      await changelog?.stop();
      await sightingsFollow?.stop();
      await ticketFollow.stop();
      await receiver?.close();
      await requests.stop();
      await build.detector.close();
      await settleAppends(build.detector);
      // What this process detected is delivered before it stops (bounded: a down output keeps its
      // alerts uncommitted on Kafka for the next worker).
      if (stages && !(await stages.drain(10_000)))
        log.warn('stopping with alerts or revocations still in retry', { pending: tracker.pending });
      await stages?.stop();
    },
  };
}

const MAPPING_FIELDS = ['id', 'requester', 'approvers', 'identities', 'notBefore', 'notAfter', 'updatedAt', 'reason'] as const;

/** An ITSM mapping: the preset with the configured field paths (custom field ids differ per site). */
function mappingOf(tickets: Fields, key: 'jira' | 'servicenow', preset: TicketMapping): TicketMapping {
  if (tickets.value[key] === undefined) return preset;
  const m = tickets.section(key).only([...MAPPING_FIELDS, 'status', 'scope']);
  const out: TicketMapping = { ...preset, status: { ...preset.status } };
  for (const f of MAPPING_FIELDS) {
    const v = m.optionalString(f);
    if (v) out[f] = v;
  }
  if (m.value.status !== undefined) {
    const st = m.section('status').only(['path', 'map', 'default']);
    const map = st.section('map');
    for (const [k, v] of Object.entries(map.value)) if (typeof v !== 'string') map.fail(k, 'must name a ticket status');
    out.status = {
      path: st.string('path', preset.status.path),
      map: Object.keys(map.value).length ? (map.value as Record<string, string>) : preset.status.map,
      ...(st.optionalString('default') ? { default: st.string('default') } : {}),
    };
  }
  if (m.value.scope !== undefined) {
    const sc = m.section('scope').only(['accounts', 'orgs', 'clusters']);
    out.scope = {
      ...(sc.optionalString('accounts') ? { accounts: sc.string('accounts') } : {}),
      ...(sc.optionalString('orgs') ? { orgs: sc.string('orgs') } : {}),
      ...(sc.optionalString('clusters') ? { clusters: sc.string('clusters') } : {}),
    };
  }
  return out;
}

function splitListen(listen: string, file: string | null): [string, number] {
  const i = listen.lastIndexOf(':');
  const port = Number(listen.slice(i + 1));
  if (i < 1 || !Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new GlasswatchError('BG_CONFIG', `${file ?? 'config'}: tickets.http.listen: must be host:port, got "${listen}"`, {
      stage: 'config',
    });
  }
  return [listen.slice(0, i), port];
}
