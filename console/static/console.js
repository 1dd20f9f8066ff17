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
      const open = new Set([...main.querySelectorAll('details[open] > summary')].map((s) => s.textContent));
      main.innerHTML = text;
      for (const s of main.querySelectorAll('details > summary')) if (open.has(s.textContent)) s.parentElement.open = true;
      document.body.dataset.refreshed = String(Date.now());
    } finally {
      inFlight = false;
      if (again) {
        again = false;
        schedule(100);
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
  for (const kind of ['alert', 'sessions', 'tickets', 'triage', 'health']) {
    stream.addEventListener(kind, () => {
      document.body.dataset.lastChange = kind;
      schedule(kind === 'alert' ? 0 : 150);
    });
  }

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
    if (document.activeElement) document.activeElement.blur();
    schedule(0);
  });
})();
