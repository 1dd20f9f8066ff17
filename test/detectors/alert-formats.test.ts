import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ALERT_TYPES, type CompleteAlert } from '../../detectors/alerts/alert.js';
import { ECS_VERSION } from '../../detectors/alerts/formats/ecs.js';
import { formatAlert } from '../../detectors/alerts/formats/index.js';
import { OCSF_VERSION } from '../../detectors/alerts/formats/ocsf.js';
import { type DemoAlert, replayDemo } from '../support/demo-alerts.js';
import { loadEcsFlat, validateEcs } from '../support/ecs-schema.js';
import { loadOcsfSchema, validateOcsf } from '../support/ocsf-schema.js';

/**
 * Issue 13, item 3: `format: native | ocsf | ecs` on every output. OCSF findings are validated
 * against the OCSF schema itself (the schema repository's dictionary, objects and classes,
 * installed from PyPI into the test venv), not against a field list copied into this test.
 */
let demo: { alerts: DemoAlert[]; dir: string };
let schema: ReturnType<typeof loadOcsfSchema>;
const lines = (file: string) =>
  readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as DemoAlert);

beforeAll(async () => {
  schema = loadOcsfSchema();
  demo = await replayDemo((dir) => ({ jsonl: { path: join(dir, 'ocsf.jsonl'), format: 'ocsf' } }), ['--deliver']);
}, 300_000);

describe('OCSF Detection Finding', () => {
  it('every demo alert, of every type, validates against the OCSF schema', () => {
    expect(schema.version).toMatch(/^1\.\d+\.\d+$/);
    const types = new Set<string>();
    for (const a of demo.alerts) {
      const f = formatAlert(a as CompleteAlert, 'ocsf');
      expect(validateOcsf(schema, f, 'detection_finding'), `${a.type} ${a.id}`).toEqual([]);
      types.add(a.type);
    }
    expect(types).toEqual(
      new Set([
        'breakglass.unauthorized',
        'breakglass.authorized',
        'breakglass.attempt',
        'breakglass.activity',
        'breakglass.revocation',
        'rule.match',
      ]),
    );
  });

  it('carries class 2004, the OCSF version, severity, ATT&CK, actor, source endpoint and resources', () => {
    const u = demo.alerts.find((a) => a.type === 'breakglass.unauthorized' && a.identity === 'aws-root') as CompleteAlert;
    const f = formatAlert(u, 'ocsf') as DemoAlert;
    expect(f).toMatchObject({
      class_uid: 2004,
      category_uid: 2,
      activity_id: 1,
      type_uid: 200401,
      severity_id: 5,
      status_id: 1,
      time: Date.parse(u.detectedAt),
      metadata: { version: OCSF_VERSION, product: { name: 'glasswatch' }, uid: u.id, correlation_uid: u.sessionId },
      finding_info: { uid: u.id, analytic: { type_id: 1 }, types: ['breakglass.unauthorized'] },
      evidences: [{ actor: { user: { name: u.principal, account: { uid: '111122223333' } } }, src_endpoint: { ip: u.sourceIp } }],
      unmapped: { revocation_mode: 'manual', session_id: u.sessionId },
    });
    const activity = demo.alerts.find((a) => a.type === 'breakglass.activity' && a.attack.techniques.length) as CompleteAlert;
    const fa = formatAlert(activity, 'ocsf') as DemoAlert;
    expect(fa.finding_info.attacks.length).toBeGreaterThan(0);
    expect(fa.finding_info.attacks[0].technique.uid).toMatch(/^T\d{4}$/);
  });

  it('the validator is not a rubber stamp: a broken finding is reported', () => {
    const f = formatAlert(demo.alerts[0] as CompleteAlert, 'ocsf') as DemoAlert;
    const broken = { ...f, severity_id: 9, type_uid: 200499, finding_info: { title: 'x' }, bogus: 1 };
    const errors = validateOcsf(schema, broken, 'detection_finding');
    expect(errors.join('\n')).toMatch(/severity_id/);
    expect(errors.join('\n')).toMatch(/finding_info\.uid: required/);
    expect(errors.join('\n')).toMatch(/bogus: not an attribute/);
    expect(errors.join('\n')).toMatch(/type_uid/);
  });

  it('an output configured with format: ocsf writes findings (the jsonl output of the replay)', () => {
    const written = lines(join(demo.dir, 'ocsf.jsonl'));
    expect(written.length).toBe(demo.alerts.length);
    for (const f of written) expect(validateOcsf(schema, f, 'detection_finding')).toEqual([]);
  });
});

describe('ECS 9', () => {
  it('every alert validates against the ECS field reference (ecs_flat of @elastic/ecs, same release)', () => {
    const ecs = loadEcsFlat();
    expect(ecs.version).toBe(ECS_VERSION);
    for (const a of demo.alerts) {
      const d = formatAlert(a as CompleteAlert, 'ecs');
      expect(validateEcs(ecs.fields, d, ['glasswatch']), `${a.type} ${a.id}`).toEqual([]);
    }
    // Not a rubber stamp.
    const bad = {
      ...formatAlert(demo.alerts[0] as CompleteAlert, 'ecs'),
      event: { kind: 'signals', severity: 'high', type: ['indicator'], category: ['iam'] },
      user: { nmae: 'x' },
    };
    const errors = validateEcs(ecs.fields, bad, ['glasswatch']).join('\n');
    expect(errors).toMatch(/event\.kind: "signals" is not an allowed value/);
    expect(errors).toMatch(/event\.severity: "high" is not long/);
    expect(errors).toMatch(/user\.nmae: not an ECS field/);
    expect(errors).toMatch(/event\.type: "indicator" is expected by none/);
  });

  const ECS_ROOTS = new Set([
    '@timestamp',
    'ecs',
    'message',
    'tags',
    'labels',
    'event',
    'rule',
    'threat',
    'user',
    'source',
    'cloud',
    'orchestrator',
    'related',
    'glasswatch',
  ]);

  it('every alert maps to an ECS alert document with the documented fields', () => {
    for (const a of demo.alerts) {
      const d = formatAlert(a as CompleteAlert, 'ecs') as DemoAlert;
      for (const k of Object.keys(d)) expect(ECS_ROOTS.has(k), k).toBe(true);
      expect(d['@timestamp']).toBe(a.detectedAt);
      expect(d.ecs.version).toBe(ECS_VERSION);
      expect(ECS_VERSION).toMatch(/^9\./);
      expect(d.event).toMatchObject({ kind: 'alert', id: a.id, severity: a.severityId });
      expect(Array.isArray(d.event.category) && Array.isArray(d.event.type)).toBe(true);
      expect(d.message).toBe(a.summary);
      if (a.principal) expect(d.user.name).toBe(a.principal);
      if (a.sourceIp) expect(d.source.ip).toBe(a.sourceIp);
      if (a.account) expect(d.cloud.account.id).toBe(a.account);
      if (a.cluster) expect(d.orchestrator.cluster.name).toBe(a.cluster);
      if (a.ruleId) expect(d.rule).toMatchObject({ id: a.ruleId, name: a.ruleTitle });
      if (a.attack.tactics.length) {
        expect(d.threat.framework).toBe('MITRE ATT&CK');
        expect(d.threat.tactic.id).toEqual(a.attack.tactics.map((t: { id: string }) => t.id));
      }
    }
    const k8s = demo.alerts.find((a) => a.cluster === 'prod-eu1');
    expect(k8s).toBeDefined();
  });
});

describe('docs/alerts.md examples', () => {
  // Every alert type has an example section, and its OCSF and ECS forms pass the schemas: the documentation
  // cannot drift from what the code emits (new types come from scripts/alert-examples.ts).
  const doc = readFileSync(new URL('../../docs/alerts.md', import.meta.url), 'utf8');
  const sections = doc.split('\n### Example: ').slice(1);
  const blocks = (section: string, format: string) => {
    const m = new RegExp(`<summary>${format}</summary>\\s*\`\`\`json\\n([\\s\\S]*?)\\n\`\`\``).exec(section);
    return m ? (JSON.parse(m[1]!) as Record<string, unknown>) : null;
  };
  it('has an example of every alert type', () => {
    const documented = sections.map((s) => s.slice(1, s.indexOf('`', 1)));
    expect([...ALERT_TYPES].filter((t) => !documented.includes(t))).toEqual([]);
  });
  it('every OCSF and ECS example validates', () => {
    const ecs = loadEcsFlat();
    for (const section of sections) {
      const type = section.slice(1, section.indexOf('`', 1));
      const ocsf = blocks(section, 'ocsf');
      const doc = blocks(section, 'ecs');
      expect(ocsf, `${type}: ocsf block`).not.toBeNull();
      expect(doc, `${type}: ecs block`).not.toBeNull();
      expect(validateOcsf(schema, ocsf!, 'detection_finding'), type).toEqual([]);
      expect(validateEcs(ecs.fields, doc!, ['glasswatch']), type).toEqual([]);
    }
  });
});
