import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { main } from '../../cli/main.js';
import { openStore, type Store } from '../../core/store/index.js';

/**
 * The Grafana dashboards cannot rot: every panel's SQL, with the ClickHouse data source's macros
 * expanded the way the plugin expands them (a concrete time range, as query parameters), runs
 * against a real chDB store migrated by core/store/migrations.ts and filled by the demo day, with
 * readonly=1 like the read-only user Grafana connects as. The provisioning files, the read-only
 * ClickHouse user and every file docker-compose.yml mounts are checked against each other.
 */
const root = new URL('../../', import.meta.url).pathname;
type Service = { image?: string; environment?: Record<string, string>; volumes?: string[] };
const compose = parse(readFileSync(join(root, 'docker-compose.yml'), 'utf8')) as { services: Record<string, Service> };
const services = compose.services;
const example = readFileSync(join(root, 'deploy/example.env'), 'utf8');

interface Target {
  datasource: { type: string; uid: string };
  editorType: string;
  queryType: string;
  format: number;
  rawSql: string;
  refId: string;
}
interface Panel {
  id: number;
  type: string;
  title: string;
  datasource: { type: string; uid: string };
  targets: Target[];
}
interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: unknown[] };
}
const dashboardsDir = join(root, 'deploy/grafana/dashboards');
const dashboards = readdirSync(dashboardsDir)
  .filter((f) => f.endsWith('.json'))
  .map((f) => ({ file: f, board: JSON.parse(readFileSync(join(dashboardsDir, f), 'utf8')) as Dashboard }));
const datasources = parse(readFileSync(join(root, 'deploy/grafana/provisioning/datasources/clickhouse.yml'), 'utf8')) as {
  datasources: {
    uid: string;
    type: string;
    jsonData: { host: string; port: number; protocol: string; username: string; defaultDatabase: string };
    secureJsonData: { password: string };
  }[];
};
const ds = datasources.datasources[0]!;
const usersXml = readFileSync(join(root, 'deploy/clickhouse/users.d/grafana-readonly.xml'), 'utf8');

/** Host-side bind mount sources (`./path:/container[:ro]`) of a service. */
const mounts = (s: Service) =>
  (s.volumes ?? []).filter((v) => v.startsWith('./')).map((v) => ({ host: v.split(':')[0]!, container: v.split(':')[1]! }));

/** `${NAME}` references of a text. */
const envRefs = (text: string) => [...text.matchAll(/\$\{([A-Z_][A-Z0-9_]*)\}/g)].map((m) => m[1]!);

describe('docker-compose.yml: Grafana over the store with a read-only ClickHouse user', () => {
  it('mounts only files and folders that exist in the repo (or that deploy/make-dev-certs.sh makes)', () => {
    const certs = readFileSync(join(root, 'deploy/make-dev-certs.sh'), 'utf8');
    let checked = 0;
    for (const [name, s] of Object.entries(services))
      for (const m of mounts(s)) {
        // ./deploy/tls is the dev TLS material the script writes beside itself (never committed).
        if (m.host === './deploy/tls') expect(certs).toMatch(/dir="\$\(cd "\$\(dirname "\$0"\)" && pwd\)\/tls"/);
        else expect(existsSync(join(root, m.host)), `${name}: ${m.host}`).toBe(true);
        checked++;
      }
    expect(checked).toBeGreaterThanOrEqual(6);
  });

  it('provisions the ClickHouse data source for the compose ClickHouse, as the read-only user', () => {
    const grafana = services.grafana!;
    expect(grafana.environment?.GF_PLUGINS_PREINSTALL_SYNC).toMatch(/^grafana-clickhouse-datasource@4\.\d+\.\d+$/);
    expect(datasources.datasources).toHaveLength(1);
    expect(ds.type).toBe('grafana-clickhouse-datasource');
    expect(Object.keys(services)).toContain(ds.jsonData.host);
    expect(ds.jsonData).toMatchObject({ port: 9000, protocol: 'native' });
    expect(ds.jsonData.defaultDatabase).toBe(services[ds.jsonData.host]!.environment?.CLICKHOUSE_DB);
    // The folders Grafana reads are the repo's provisioning folders and dashboards.
    const byContainer = new Map(mounts(grafana).map((m) => [m.container, m.host]));
    expect(byContainer.get('/etc/grafana/provisioning/datasources')).toBe('./deploy/grafana/provisioning/datasources');
    expect(byContainer.get('/etc/grafana/provisioning/dashboards')).toBe('./deploy/grafana/provisioning/dashboards');
    const provider = parse(readFileSync(join(root, 'deploy/grafana/provisioning/dashboards/glasswatch.yml'), 'utf8')) as {
      providers: { type: string; options: { path: string } }[];
    };
    expect(byContainer.get(provider.providers[0]!.options.path)).toBe('./deploy/grafana/dashboards');
    expect(statSync(join(root, 'deploy/grafana/dashboards')).isDirectory()).toBe(true);
    // The password is an environment variable, passed by compose to both sides and listed in example.env.
    expect(envRefs(ds.secureJsonData.password)).toEqual(['GRAFANA_CLICKHOUSE_PASSWORD']);
    const fromEnv = /<password from_env="([A-Z_]+)"\s*\/>/.exec(usersXml)?.[1];
    expect(fromEnv).toBe('GRAFANA_CLICKHOUSE_PASSWORD');
    for (const name of ['grafana', ds.jsonData.host])
      expect(services[name]!.environment?.GRAFANA_CLICKHOUSE_PASSWORD, name).toMatch(/^\$\{GRAFANA_CLICKHOUSE_PASSWORD:\?/);
    expect(grafana.environment?.GF_SECURITY_ADMIN_PASSWORD).toMatch(/^\$\{GRAFANA_ADMIN_PASSWORD:\?/);
    for (const v of ['GRAFANA_CLICKHOUSE_PASSWORD', 'GRAFANA_ADMIN_PASSWORD'])
      expect(example, `example.env lists ${v}`).toMatch(new RegExp(`^${v}=`, 'm'));
  });

  it('defines the read-only user in users.d: readonly=1, SELECT on the glasswatch database only', () => {
    const clickhouse = services[ds.jsonData.host]!;
    expect(mounts(clickhouse)).toContainEqual({
      host: './deploy/clickhouse/users.d/grafana-readonly.xml',
      container: '/etc/clickhouse-server/users.d/grafana-readonly.xml',
    });
    expect(wellFormed(usersXml)).toBe(true);
    // changeable_in_readonly is honoured only with settings_constraints_replace_previous on (server config).
    expect(mounts(clickhouse)).toContainEqual({
      host: './deploy/clickhouse/config.d/settings-constraints.xml',
      container: '/etc/clickhouse-server/config.d/settings-constraints.xml',
    });
    const serverXml = readFileSync(join(root, 'deploy/clickhouse/config.d/settings-constraints.xml'), 'utf8');
    expect(wellFormed(serverXml)).toBe(true);
    expect(serverXml).toMatch(
      /<access_control_improvements>\s*<settings_constraints_replace_previous>true<\/settings_constraints_replace_previous>\s*<\/access_control_improvements>/,
    );
    const user = new RegExp(`<users>\\s*<${ds.jsonData.username}>([\\s\\S]*?)</${ds.jsonData.username}>\\s*</users>`).exec(usersXml)?.[1];
    expect(user, `user ${ds.jsonData.username} is defined`).toBeDefined();
    const profile = /<profile>([a-z_]+)<\/profile>/.exec(user!)?.[1];
    const profileBody = new RegExp(`<${profile}>([\\s\\S]*?)</${profile}>`).exec(usersXml)?.[1] ?? '';
    expect(profileBody).toMatch(/^\s*<readonly>1<\/readonly>/m);
    // Only max_execution_time may change under readonly (the plugin's client sets it).
    expect([...profileBody.matchAll(/<changeable_in_readonly\s*\/>/g)]).toHaveLength(1);
    expect(profileBody).toMatch(/<max_execution_time>\s*<max>\d+<\/max>\s*<changeable_in_readonly\s*\/>/);
    const grants = [...user!.matchAll(/<query>([^<]*)<\/query>/g)].map((m) => m[1]);
    expect(grants).toEqual([`GRANT SELECT ON ${ds.jsonData.defaultDatabase}.*`]);
    expect(user).not.toMatch(/access_management/);
  });
});

describe('Grafana dashboards', () => {
  let store: Store;
  let range: { from: number; to: number };
  const dir = mkdtempSync(join(tmpdir(), 'gw-dash-'));

  beforeAll(async () => {
    // The demo day through the whole pipeline into a store made by the migrations: events, dead
    // letters, tickets, sessions, alerts, revocations, deliveries.
    expect(await main(['demo', '--store', join(dir, 'store')])).toBe(0);
    store = openStore({ kind: 'chdb', path: join(dir, 'store') });
    const [r] = await (
      await store.client.query({
        query: 'SELECT toUnixTimestamp(min(time)) AS lo, toUnixTimestamp(max(time)) AS hi FROM events',
        format: 'JSONEachRow',
      })
    ).json<{ lo: number; hi: number }>();
    // The demo day, with a day on either side (ticket windows and detections reach past the events).
    range = { from: Number(r!.lo) - 86_400, to: Number(r!.hi) + 86_400 };
  }, 180_000);
  afterAll(async () => {
    await store?.close();
  });

  it('every panel queries the provisioned data source with raw SQL, and time series return `time` first', () => {
    const uids = new Set<string>();
    for (const { file, board } of dashboards) {
      expect(uids.has(board.uid), `${file}: uid ${board.uid} unique`).toBe(false);
      uids.add(board.uid);
      expect(board.templating.list, `${file}: no template variables (none would be expanded below)`).toEqual([]);
      const ids = board.panels.map((p) => p.id);
      expect(new Set(ids).size, `${file}: panel ids unique`).toBe(ids.length);
      for (const p of board.panels) {
        const where = `${file} "${p.title}"`;
        expect(p.datasource, where).toEqual({ type: 'grafana-clickhouse-datasource', uid: ds.uid });
        expect(p.targets.length, where).toBeGreaterThan(0);
        for (const t of p.targets) {
          expect(t.datasource, where).toEqual(p.datasource);
          expect(t.editorType, where).toBe('sql');
          const series = p.type === 'timeseries';
          expect([t.queryType, t.format], where).toEqual(series ? ['timeSeries', 0] : ['table', 1]);
          if (series) expect(t.rawSql, where).toMatch(/^SELECT \$__timeInterval\([^)]+\) AS time,/);
        }
      }
    }
    expect(uids.size).toBeGreaterThanOrEqual(2);
  });

  it("every panel's SQL runs on the migrated store, read-only, over the demo day", async () => {
    const rowsByPanel = new Map<string, number>();
    for (const { file, board } of dashboards)
      for (const p of board.panels)
        for (const t of p.targets) {
          const { sql, params } = expandMacros(t.rawSql, { ...range, intervalSeconds: 600 });
          let rows: unknown[];
          try {
            rows = await (
              await store.client.query({ query: sql, query_params: params, format: 'JSONEachRow', clickhouse_settings: { readonly: '1' } })
            ).json();
          } catch (err) {
            throw new Error(`${file} "${p.title}": ${(err as Error).message}\n${sql}`);
          }
          rowsByPanel.set(`${board.uid}/${p.title}`, rows.length);
        }
    // The demo night's incident shows: these panels are never empty on it.
    for (const title of [
      'glasswatch-breakglass/Unauthorized sessions',
      'glasswatch-breakglass/Alerts by type',
      'glasswatch-breakglass/Sessions by verdict',
      'glasswatch-breakglass/Unauthorized sessions (newest first)',
      'glasswatch-breakglass/Time to detect by identity',
      'glasswatch-breakglass/Revocations by target and outcome',
      'glasswatch-breakglass/Ticket changes',
      'glasswatch-breakglass/Alerts (newest first)',
      'glasswatch-pipeline/Events per source',
      'glasswatch-pipeline/Sources: last event, silence and lag',
    ])
      expect(rowsByPanel.get(title), title).toBeGreaterThan(0);
  });

  it('a panel writing to the store is refused by readonly=1 (what the read-only user enforces)', async () => {
    await expect(store.client.command({ query: 'TRUNCATE TABLE alerts', clickhouse_settings: { readonly: '1' } })).rejects.toThrow(
      /readonly/i,
    );
  });

  it('expands macros the way the plugin does and refuses unknown ones', () => {
    const r = { from: 100, to: 200, intervalSeconds: 60 };
    expect(expandMacros('SELECT $__timeInterval(t) AS time FROM x WHERE $__timeFilter(s.start) AND y < $__toTime', r).sql).toBe(
      'SELECT toStartOfInterval(toDateTime(t), toIntervalSecond({gw_interval:UInt32})) AS time FROM x WHERE (s.start >= toDateTime({gw_from:UInt32}) AND s.start <= toDateTime({gw_to:UInt32})) AND y < toDateTime({gw_to:UInt32})',
    );
    expect(() => expandMacros('SELECT 1 WHERE $__unknown(x)', r)).toThrow(/unknown macro/);
    expect(() => expandMacros('SELECT 1 WHERE a = $identity', r)).toThrow(/template variable/);
  });
});

/**
 * The grafana-clickhouse-datasource macros the dashboards use, expanded as the plugin expands them
 * (`$__timeFilter(c)` → `c >= toDateTime(from) AND c <= toDateTime(to)`, `$__timeInterval(c)` →
 * `toStartOfInterval(toDateTime(c), INTERVAL n second)`), with the range as query parameters.
 */
function expandMacros(raw: string, r: { from: number; to: number; intervalSeconds: number }) {
  const params = { gw_from: r.from, gw_to: r.to, gw_interval: r.intervalSeconds };
  const from = 'toDateTime({gw_from:UInt32})';
  const to = 'toDateTime({gw_to:UInt32})';
  const withArg: Record<string, (arg: string) => string> = {
    timeFilter: (c) => `(${c} >= ${from} AND ${c} <= ${to})`,
    timeInterval: (c) => `toStartOfInterval(toDateTime(${c}), toIntervalSecond({gw_interval:UInt32}))`,
  };
  const bare: Record<string, string> = { fromTime: from, toTime: to, interval_s: '{gw_interval:UInt32}' };
  let out = '';
  let i = 0;
  while (i < raw.length) {
    const at = raw.indexOf('$', i);
    if (at < 0) {
      out += raw.slice(i);
      break;
    }
    out += raw.slice(i, at);
    const m = /^\$__([A-Za-z_]+)/.exec(raw.slice(at));
    if (!m) throw new Error(`template variable at "${raw.slice(at, at + 20)}": the dashboards define none`);
    const name = m[1]!;
    let end = at + m[0].length;
    if (withArg[name] && raw[end] === '(') {
      let depth = 0;
      let j = end;
      for (; j < raw.length; j++) {
        if (raw[j] === '(') depth++;
        else if (raw[j] === ')' && --depth === 0) break;
      }
      out += withArg[name](raw.slice(end + 1, j).trim());
      end = j + 1;
    } else if (bare[name] !== undefined) out += bare[name];
    else throw new Error(`unknown macro $__${name}`);
    i = end;
  }
  return { sql: out, params };
}

/** Tags open and close in order (comments and the prolog aside). */
function wellFormed(xml: string): boolean {
  const stack: string[] = [];
  const body = xml.replace(/<\?[\s\S]*?\?>/g, '').replace(/<!--[\s\S]*?-->/g, '');
  for (const m of body.matchAll(/<(\/?)([A-Za-z_][\w.-]*)[^>]*?(\/?)>/g)) {
    if (m[3]) continue;
    if (!m[1]) stack.push(m[2]!);
    else if (stack.pop() !== m[2]) return false;
  }
  return stack.length === 0;
}
