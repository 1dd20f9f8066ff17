// glasswatch console: live updates over server-sent events. The server renders every view; on a
// change this asks for the current view again (x-glasswatch-fragment: 1) and swaps <main>'s content.
// No inline script (the Content Security Policy forbids it) and no template on this side.
(() => {
  const main = document.getElementById('view');
  const meta = document.querySelector('meta[name="csrf-token"]');
  if (!main || !meta || !('EventSource' in window)) return;
  const csrf = meta.getAttribute('content') || '';
  const indicator = document.getElementById('live');
  let timer = null;
  let inFlight = false;
  let again = false;

  const editing = () => {
    const a = document.activeElement;
    return a && main.contains(a) && /^(INPUT|SELECT|TEXTAREA)$/.test(a.tagName);
  };

  const provisional = new Map();
  const CLASS = {
    critical: 'bad',
    high: 'bad',
    medium: 'warn',
    low: 'info',
    informational: 'info',
    unauthorized: 'bad',
    authorized: 'ok',
    open: 'warn',
  };
  const when = (iso) => (typeof iso === 'string' ? iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '—');

  function cell(tr, text, className) {
    const td = document.createElement('td');
    if (className) td.className = className;
    td.textContent = text === undefined || text === null || text === '' ? '—' : String(text);
    tr.appendChild(td);
    return td;
  }
  function badge(tr, text, className) {
    const td = document.createElement('td');
    if (className) td.className = className;
    const span = document.createElement('span');
    span.className = `badge ${CLASS[text] || 'plain'}`;
    span.textContent = text;
    td.appendChild(span);
    tr.appendChild(td);
  }
  function sessionLink(tr, id) {
    const td = document.createElement('td');
    if (id) {
      const link = document.createElement('a');
      link.href = `/sessions/${encodeURIComponent(id)}`;
      link.textContent = id.slice(0, 24);
      td.appendChild(link);
    } else td.textContent = '—';
    tr.appendChild(td);
  }
  /** The view's table, created over its "nothing yet" line when the view was empty. */
  function table(id, headers) {
    let t = document.getElementById(id);
    if (t) return t.tBodies[0];
    const empty = main.querySelector('p.empty');
    if (!empty) return null;
    t = document.createElement('table');
    t.id = id;
    const row = t.createTHead().insertRow();
    for (const h of headers) {
      const th = document.createElement('th');
      th.textContent = h;
      row.appendChild(th);
    }
    t.createTBody();
    empty.replaceWith(t);
    return t.tBodies[0];
  }
  function matchesFilters(a) {
    const q = new URLSearchParams(location.search);
    const is = (key, value) => !q.get(key) || q.get(key) === value;
    const since = Date.parse(q.get('since') || '');
    const until = Date.parse(q.get('until') || '');
    const t = Date.parse(a.time);
    return (
      is('type', a.type) &&
      is('severity', a.severity) &&
      is('identity', a.identity) &&
      is('triage', 'open') &&
      !(t < since) &&
      !(t >= until)
    );
  }
  function showProvisional(a) {
    const view = main.dataset.view;
    if (view === 'alerts' && matchesFilters(a) && !main.querySelector(`tr[data-alert="${CSS.escape(a.alert_id)}"]`)) {
      const body = table('alerts', ['detected', 'type', 'severity', 'identity', 'principal', 'session', 'summary', 'triage', '']);
      if (!body) return;
      const tr = body.insertRow(0);
      tr.className = 'provisional';
      tr.dataset.alert = a.alert_id;
      tr.dataset.type = a.type;
      cell(tr, when(a.detected_at));
      cell(tr, a.type);
      badge(tr, a.severity);
      cell(tr, a.identity);
      cell(tr, a.principal);
      sessionLink(tr, a.session_id);
      cell(tr, a.summary, 'summary');
      badge(tr, 'open', 'triage-state');
      cell(tr, '');
    }
    const verdict = a.type === 'breakglass.unauthorized' ? 'unauthorized' : a.type === 'breakglass.authorized' ? 'authorized' : null;
    if (view === 'now' && verdict && a.session_id && !main.querySelector(`tr[data-session="${CSS.escape(a.session_id)}"]`)) {
      const body = table('sessions', [
        'session',
        'identity',
        'principal',
        'source IP',
        'verdict',
        'reason',
        'ticket',
        'started',
        'last event',
        'events',
        'command/data/config',
        'revocation',
      ]);
      if (!body) return;
      const tr = body.insertRow(0);
      tr.className = 'provisional';
      tr.dataset.session = a.session_id;
      sessionLink(tr, a.session_id);
      cell(tr, a.identity);
      cell(tr, a.principal);
      cell(tr, a.source_ip);
      badge(tr, verdict);
      cell(tr, a.reason);
      cell(tr, a.ticket_id);
      cell(tr, when(a.time));
      cell(tr, when(a.time));
      cell(tr, '', 'num');
      cell(tr, '', 'num');
      cell(tr, '');
    }
  }

  async function refresh() {
    if (inFlight) {
      again = true;
      return;
    }
    // Never replace a form someone is typing into: wait until they leave it.
    if (editing()) {
      document.activeElement.addEventListener('blur', () => schedule(50), { once: true });
      return;
    }
    inFlight = true;
    try {
      const res = await fetch(location.pathname + location.search, {
        headers: { 'x-glasswatch-fragment': '1' },
        credentials: 'same-origin',
      });
      if (res.status === 401) {
        location.assign('/login');
        return;
      }
      if (!res.ok) return;
      const text = await res.text();
      // They may have started typing while the request was out.
      if (editing()) {
        document.activeElement.addEventListener('blur', () => schedule(50), { once: true });
        return;
      }
      const open = new Set([...main.querySelectorAll('details[open] > summary')].map((s) => s.textContent));
      const drafts = unsent();
      main.innerHTML = text;
      restore(drafts);
      for (const s of main.querySelectorAll('details > summary')) if (open.has(s.textContent)) s.parentElement.open = true;
      // Alerts pushed in the last seconds whose rows the store did not have yet stay on screen.
      for (const [id, p] of provisional) {
        if (Date.now() - p.at > 5000) provisional.delete(id);
        else showProvisional(p.alert);
      }
      document.body.dataset.refreshed = String(Date.now());
    } finally {
      inFlight = false;
      if (again) {
        again = false;
        schedule(100);
      }
    }
  }

  // A triage form changed but not yet sent (a state chosen, a comment typed, then the field left)
  // survives a refresh: its values are carried into the re-rendered form of the same alert.
  function unsent() {
    const drafts = [];
    for (const form of main.querySelectorAll('form.triage')) {
      const changed = [];
      for (const el of form.elements) {
        if (!el.name) continue;
        const dirty =
          el instanceof HTMLSelectElement
            ? [...el.options].some((o) => o.selected !== o.defaultSelected)
            : 'defaultValue' in el && el.value !== el.defaultValue;
        if (dirty) changed.push([el.name, el.value]);
      }
      if (changed.length > 0) drafts.push([form.getAttribute('action'), changed]);
    }
    return drafts;
  }
  function restore(drafts) {
    for (const [action, changed] of drafts) {
      const form = main.querySelector(`form.triage[action="${CSS.escape(action)}"]`);
      if (!form) continue;
      for (const [name, value] of changed) {
        const el = form.elements.namedItem(name);
        if (el && 'value' in el) el.value = value;
      }
    }
  }

  function schedule(ms) {
    if (timer) return;
    timer = setTimeout(() => {
      timer = null;
      refresh();
    }, ms);
  }

  const stream = new EventSource('/api/stream');
  stream.addEventListener('hello', () => {
    document.body.dataset.live = 'on';
    if (indicator) indicator.classList.add('on');
  });
  stream.addEventListener('error', () => {
    document.body.dataset.live = 'off';
    if (indicator) indicator.classList.remove('on');
  });
  for (const kind of ['sessions', 'stored', 'tickets', 'triage', 'health']) {
    stream.addEventListener(kind, () => {
      document.body.dataset.lastChange = kind;
      schedule(kind === 'stored' ? 0 : 150);
    });
  }
  // An alert is on screen the moment it arrives: a provisional row built with textContent (never
  // markup), replaced by the server's rendering once its rows are in the store (the `stored` message).
  stream.addEventListener('alert', (event) => {
    document.body.dataset.lastChange = 'alert';
    let a;
    try {
      a = JSON.parse(event.data).alert;
    } catch {
      return;
    }
    provisional.set(a.alert_id, { alert: a, at: Date.now() });
    showProvisional(a);
  });
  // Triage without leaving the page: the same form, posted with the CSRF header.
  main.addEventListener('submit', async (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.classList.contains('triage')) return;
    event.preventDefault();
    const body = new URLSearchParams(new FormData(form));
    const res = await fetch(form.action, {
      method: 'POST',
      body,
      credentials: 'same-origin',
      headers: { 'x-csrf-token': csrf, 'content-type': 'application/x-www-form-urlencoded' },
      redirect: 'manual',
    });
    if (res.status >= 400) {
      form.classList.add('failed');
      return;
    }
    form.reset(); // sent: not a draft to carry over
    if (document.activeElement) document.activeElement.blur();
    schedule(0);
  });
})();
