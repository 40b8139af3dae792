/* Switchboard console: one page, hash routes, plain JavaScript (no build step).
 *
 * Everything shown comes from the REST API with the session cookie. Every value put into
 * the page goes through textContent, attributes or dataset (helpers h() and svg() below):
 * never through an HTML or markup parser, so a customer named <script> is
 * shown as the text "<script>". The server adds a Content Security Policy as a second
 * line of defence.
 */
(() => {
  'use strict';

  // ------------------------------------------------------------------ API paths
  // Full paths, written out: tests/unit/test_console.py checks each against the app's
  // routes, so a renamed route breaks a test instead of this page.
  const enc = encodeURIComponent;
  const P = {
    login: () => '/api/auth/login',
    logout: () => '/api/auth/logout',
    me: () => '/api/auth/me',
    events: () => '/api/alarms/events',
    alarms: (q) => `/tmf-api/alarmManagement/v4/alarm${qs(q)}`,
    alarm: (id) => `/tmf-api/alarmManagement/v4/alarm/${enc(id)}`,
    devices: () => '/api/devices?limit=1000',
    device: (name) => `/api/devices/${enc(name)}`,
    links: () => '/api/links?limit=1000',
    ifSeries: (dev, ifname, since) =>
      `/api/perf/interfaces/${enc(dev)}/${enc(ifname)}${qs({ since })}`,
    devSeries: (dev, since) => `/api/perf/devices/${enc(dev)}${qs({ since })}`,
    orders: (q) => `/tmf-api/productOrderingManagement/v4/productOrder${qs(q)}`,
    order: (id) => `/tmf-api/productOrderingManagement/v4/productOrder/${enc(id)}`,
    customers: () => '/tmf-api/customerManagement/v4/customer?limit=1000',
    customer: (id) => `/tmf-api/customerManagement/v4/customer/${enc(id)}`,
    products: (q) => `/tmf-api/productInventory/v4/product${qs(q)}`,
    bills: (q) => `/tmf-api/customerBillManagement/v4/customerBill${qs(q)}`,
    billHtml: (id) => `/tmf-api/customerBillManagement/v4/customerBill/${enc(id)}/html`,
  };

  function qs(params) {
    if (!params) return '';
    const parts = [];
    for (const [k, v] of Object.entries(params)) {
      if (v === undefined || v === null || v === '') continue;
      parts.push(`${enc(k)}=${enc(String(v))}`);
    }
    return parts.length ? `?${parts.join('&')}` : '';
  }

  // ------------------------------------------------------------------ DOM helpers
  const SVG_NS = 'http://www.w3.org/2000/svg';

  /** A safe link target: an in-page route or a path on this server, nothing else. */
  function safeHref(value) {
    const v = String(value);
    return (v.startsWith('#') || (v.startsWith('/') && !v.startsWith('//'))) ? v : '#';
  }

  function applyProps(el, props) {
    if (!props) return;
    for (const [key, value] of Object.entries(props)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === 'class') el.setAttribute('class', String(value));
      else if (key === 'text') el.textContent = String(value);
      else if (key === 'data') {
        for (const [dk, dv] of Object.entries(value)) {
          if (dv !== undefined && dv !== null) el.dataset[dk] = String(dv);
        }
      } else if (key.startsWith('on') && typeof value === 'function') {
        el.addEventListener(key.slice(2), value);
      } else if (key === 'href') el.setAttribute('href', safeHref(value));
      else el.setAttribute(key, value === true ? '' : String(value));
    }
  }

  function appendKids(el, kids) {
    for (const kid of kids.flat(Infinity)) {
      if (kid === undefined || kid === null || kid === false) continue;
      el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    }
  }

  /** An HTML element; strings among the children become text nodes. */
  function h(tag, props, ...kids) {
    const el = document.createElement(tag);
    applyProps(el, props);
    appendKids(el, kids);
    return el;
  }

  /** An SVG element, the same way. */
  function svg(tag, props, ...kids) {
    const el = document.createElementNS(SVG_NS, tag);
    applyProps(el, props);
    appendKids(el, kids);
    return el;
  }

  const $ = (sel) => document.querySelector(sel);
  const main = () => $('#main');

  function table(headers, rows, empty) {
    if (!rows.length) return h('p', { class: 'muted', text: empty || 'Nothing yet.' });
    return h('table', null,
      h('thead', null, h('tr', null, headers.map((t) => h('th', { text: t })))),
      h('tbody', null, rows.map((cells) => h('tr', null, cells.map((c) => h('td', null, c))))));
  }

  function facts(pairs) {
    return h('dl', { class: 'facts' },
      pairs.filter(([, v]) => v !== undefined).map(([k, v]) => [h('dt', { text: k }),
        h('dd', null, v === null || v === '' ? '—' : v)]));
  }

  function link(href, text) { return h('a', { href, text }); }

  /** Replace the page's content (children as for h(): nested lists, nulls skipped). */
  function show(...kids) {
    main().replaceChildren();
    appendKids(main(), kids);
  }

  /** A page's answer came back after the user moved on: dropped, never painted over the
   * page they are on now (route() ignores it). */
  const STALE = new Error('a later page was asked for');

  /** Show a page's content, if it is still the page asked for last. */
  function paint(mine, ...kids) {
    if (mine !== state.routeSeq) throw STALE;
    show(...kids);
  }

  let noticeTimer = null;
  function notice(message, ok) {
    const el = $('#notice');
    el.textContent = message;
    el.className = ok ? 'ok' : '';
    el.hidden = false;
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(() => { el.hidden = true; }, ok ? 5000 : 12000);
  }

  // ------------------------------------------------------------------ formatting
  const SEVERITIES = ['critical', 'major', 'minor', 'warning', 'indeterminate', 'cleared'];
  const RANK = { critical: 5, major: 4, minor: 3, warning: 2, indeterminate: 1, cleared: 0 };

  function sevClass(sev) {
    return `sev-${SEVERITIES.includes(sev) ? sev : (sev === 'ok' ? 'ok' : 'indeterminate')}`;
  }

  function badge(sev) { return h('span', { class: `badge ${sevClass(sev)}`, text: sev }); }

  function fmtTime(iso) {
    if (!iso) return '—';
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleString();
  }

  function fmtShortTime(ms) {
    const d = new Date(ms);
    return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
  }

  function fmtBps(v) {
    if (v === null || v === undefined) return '—';
    const units = ['bit/s', 'kbit/s', 'Mbit/s', 'Gbit/s', 'Tbit/s'];
    let i = 0;
    let x = Number(v);
    while (Math.abs(x) >= 1000 && i < units.length - 1) { x /= 1000; i += 1; }
    return `${x.toFixed(x >= 100 || i === 0 ? 0 : 1)} ${units[i]}`;
  }

  function fmtMoney(m) {
    if (!m) return '—';
    return `${m.x_text !== undefined ? m.x_text : m.value} ${m.unit || ''}`.trim();
  }

  // ------------------------------------------------------------------ API calls
  class ApiError extends Error {
    constructor(status, message, body) {
      super(message);
      this.status = status;
      this.body = body;
    }
  }

  async function call(path, options) {
    const opts = { method: 'GET', credentials: 'same-origin',
      headers: { Accept: 'application/json' }, ...(options || {}) };
    if (opts.json !== undefined) {
      opts.headers = { ...opts.headers, 'Content-Type': 'application/json' };
      opts.body = JSON.stringify(opts.json);
      delete opts.json;
    }
    let res;
    try {
      res = await fetch(path, opts);
    } catch (exc) {
      throw new ApiError(0, `the server did not answer (${exc.message})`, null);
    }
    const type = res.headers.get('content-type') || '';
    const body = type.includes('json') ? await res.json().catch(() => null) : await res.text();
    if (!res.ok) {
      const detail = body && typeof body === 'object' && body.detail ? body.detail
        : `${res.status} ${res.statusText}`;
      throw new ApiError(res.status, String(detail), body);
    }
    return { body, headers: res.headers };
  }

  async function api(path, options) { return (await call(path, options)).body; }

  // ------------------------------------------------------------------ state
  const state = {
    me: null, // {name, role}
    alarms: new Map(), // id -> TMF642 alarm (list shape, or detail shape when fetched)
    details: new Map(), // id -> {key, doc}: the detail (impact, comments) seen for a version
    pendingDetails: new Set(),
    filters: { severity: '', scope: 'active', rootOnly: false },
    ui: { expanded: new Set(), form: null }, // form: {id, kind, text}
    view: null, // what the current page needs to refresh itself
    stream: null,
    streamDown: false,
    positions: new Map(), // topology layout, by device name
    routeSeq: 0, // which page was asked for last (see paint())
    mapView: { x: 0, y: 0, k: 1 }, // topology zoom and pan, kept across redraws
    mapFound: null, // the device the map's search found
    customers: null, // id -> name
  };

  const canOperate = () => !!state.me && (state.me.role === 'operator' || state.me.role === 'admin');
  const parentId = (a) => (a.parentAlarm && a.parentAlarm.length ? String(a.parentAlarm[0].id) : null);
  const isActive = (a) => a.state !== 'cleared' && a.state !== 'archived';

  function mergeAlarm(doc) {
    if (!doc || doc.id === undefined) return;
    const id = String(doc.id);
    const had = state.alarms.get(id);
    if (!had || String(doc.alarmChangedTime || '') >= String(had.alarmChangedTime || '')) {
      state.alarms.set(id, doc);
    }
  }

  async function loadAlarms(scope) {
    const q = { limit: 1000 };
    if (scope === 'active' || scope === 'cleared') q.state = scope;
    const docs = await api(P.alarms(q));
    for (const doc of docs) mergeAlarm(doc);
  }

  // ------------------------------------------------------------------ live stream
  function setLive(on) {
    const el = $('#live');
    el.classList.toggle('on', on);
    el.title = on ? 'live: alarm changes arrive as they happen' : 'not connected';
  }

  function openStream() {
    closeStream();
    const es = new EventSource(P.events());
    es.addEventListener('open', () => {
      setLive(true);
      if (state.streamDown) { // changes may have been missed: read the list again
        state.streamDown = false;
        loadAlarms(state.filters.scope).then(refreshSoon).catch(() => {});
      }
    });
    es.addEventListener('alarm', (ev) => {
      try { mergeAlarm(JSON.parse(ev.data)); } catch (exc) { return; }
      refreshSoon();
    });
    es.addEventListener('error', () => {
      setLive(false);
      state.streamDown = true;
      if (es.readyState === EventSource.CLOSED) { // refused: logged out, or the server is gone
        setTimeout(() => {
          if (state.stream !== es) return;
          call(P.me()).then(openStream).catch((exc) => {
            if (exc.status === 401) showLogin('Your session ended: log in again.');
            else setTimeout(openStream, 5000);
          });
        }, 3000);
      }
    });
    state.stream = es;
  }

  function closeStream() {
    if (state.stream) state.stream.close();
    state.stream = null;
    setLive(false);
  }

  let refreshTimer = null;
  function refreshSoon() {
    if (refreshTimer) return;
    refreshTimer = setTimeout(() => {
      refreshTimer = null;
      if (state.view && state.view.refresh) state.view.refresh();
    }, 150);
  }

  // ------------------------------------------------------------------ login
  function showLogin(message) {
    closeStream();
    state.me = null;
    state.view = null;
    $('#top').hidden = true;
    const error = h('div', { class: 'error', role: 'alert', text: message || '' });
    const name = h('input', { id: 'login-name', name: 'name', autocomplete: 'username',
      required: true });
    const password = h('input', { id: 'login-password', name: 'password', type: 'password',
      autocomplete: 'current-password', required: true });
    const form = h('form', { class: 'login panel', id: 'login-form' },
      h('h1', { text: 'Switchboard' }),
      h('label', { for: 'login-name', text: 'Name' }), name,
      h('label', { for: 'login-password', text: 'Password' }), password,
      h('button', { type: 'submit', class: 'act primary', text: 'Log in' }),
      error);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      error.textContent = '';
      try {
        const me = await api(P.login(), { method: 'POST',
          json: { name: name.value, password: password.value } });
        state.me = { name: me.name, role: me.role };
        if (!location.hash || location.hash === '#/login') location.hash = '#/alarms';
        await started();
      } catch (exc) {
        error.textContent = exc.status === 401 ? 'Wrong name or password.' : exc.message;
      }
    });
    show(form);
    name.focus();
  }

  async function logout() {
    try { await api(P.logout(), { method: 'POST' }); } catch (exc) { /* gone anyway */ }
    state.alarms.clear();
    state.details.clear();
    showLogin('Logged out.');
  }

  async function started() {
    $('#top').hidden = false;
    $('#who').textContent = `${state.me.name} (${state.me.role})`;
    try {
      await loadAlarms(state.filters.scope);
    } catch (exc) {
      if (exc.status === 401) { showLogin(); return; }
      notice(`alarms: ${exc.message}`);
    }
    openStream();
    await route();
  }

  // ------------------------------------------------------------------ router
  const PAGES = {
    alarms: pageAlarms,
    topology: pageTopology,
    inventory: pageInventory,
    device: pageDevice,
    orders: pageOrders,
    order: pageOrder,
    customers: pageCustomers,
    customer: pageCustomer,
    bills: pageBills,
  };
  const NAV_OF = { device: 'inventory', order: 'orders', customer: 'customers' };

  async function route() {
    if (!state.me) return;
    const parts = (location.hash || '#/alarms').replace(/^#\/?/, '').split('/')
      .map((p) => { try { return decodeURIComponent(p); } catch (exc) { return p; } });
    const page = PAGES[parts[0]] ? parts[0] : 'alarms';
    for (const a of document.querySelectorAll('#nav a')) {
      a.classList.toggle('active', a.dataset.page === (NAV_OF[page] || page));
    }
    state.view = null;
    state.routeSeq += 1;
    const seq = state.routeSeq;
    if ($('#notice').className === 'ok') $('#notice').hidden = true; // news of the last page
    show(h('p', { class: 'muted', text: 'Loading…' }));
    try {
      await PAGES[page](...parts.slice(1));
    } catch (exc) {
      if (exc === STALE || seq !== state.routeSeq) return; // the user has moved on
      if (exc.status === 401) { showLogin('Your session ended: log in again.'); return; }
      show(h('h1', { text: 'Could not load this page' }),
        h('p', { class: 'error', text: exc.message }));
    }
  }

  // ------------------------------------------------------------------ alarms
  function select(options, value, onchange, props) {
    const el = h('select', props, options.map(([v, label]) =>
      h('option', { value: v, text: label, selected: v === value })));
    el.addEventListener('change', () => onchange(el.value));
    return el;
  }

  async function pageAlarms() {
    const mine = state.routeSeq; // this page's turn: a later route wins
    const f = state.filters;
    const list = h('div', { id: 'alarm-list' });
    const summary = h('span', { class: 'summary', id: 'alarm-summary' });
    const rootOnly = h('input', { type: 'checkbox', id: 'filter-root', checked: f.rootOnly });
    rootOnly.addEventListener('change', () => { f.rootOnly = rootOnly.checked; renderAlarms(); });
    const filters = h('div', { class: 'filters' },
      h('label', null, 'Severity',
        select([['', 'any'], ...SEVERITIES.map((s) => [s, s])], f.severity,
          (v) => { f.severity = v; renderAlarms(); }, { id: 'filter-severity' })),
      h('label', null, 'State',
        select([['active', 'active'], ['cleared', 'cleared'], ['all', 'all']], f.scope,
          async (v) => {
            f.scope = v;
            try { await loadAlarms(v); } catch (exc) { notice(exc.message); }
            renderAlarms();
          }, { id: 'filter-state' })),
      h('label', null, rootOnly, 'root causes only'),
      summary);
    paint(mine, h('h1', { text: 'Alarms' }), filters, list);
    state.view = { refresh: renderAlarms, list, summary };
    renderAlarms();
  }

  function visibleAlarm(a) {
    const f = state.filters;
    if (f.scope === 'active' && !isActive(a)) return false;
    if (f.scope === 'cleared' && isActive(a)) return false;
    if (f.severity && a.perceivedSeverity !== f.severity) return false;
    return true;
  }

  const byWorst = (x, y) => (RANK[y.perceivedSeverity] || 0) - (RANK[x.perceivedSeverity] || 0)
    || String(y.alarmRaisedTime || '').localeCompare(String(x.alarmRaisedTime || ''))
    || Number(y.id) - Number(x.id);

  function renderAlarms() {
    const view = state.view;
    if (!view || !view.list || !view.list.isConnected) return;
    // keep what the operator is typing across the re-render
    const active = document.activeElement;
    const typing = active && active.dataset && active.dataset.noteFor ? {
      id: active.dataset.noteFor, start: active.selectionStart, end: active.selectionEnd } : null;

    const shown = [...state.alarms.values()].filter(visibleAlarm);
    const ids = new Set(shown.map((a) => String(a.id)));
    const kids = new Map();
    let tops = [];
    for (const a of shown) {
      const p = parentId(a);
      if (p && ids.has(p)) {
        if (!kids.has(p)) kids.set(p, []);
        kids.get(p).push(a);
      } else tops.push(a);
    }
    if (state.filters.rootOnly) tops = tops.filter((a) => !parentId(a));
    tops.sort(byWorst);
    for (const list of kids.values()) list.sort(byWorst);

    const roots = tops.filter((a) => a.isRootCause).length;
    view.summary.textContent = `${tops.length} on top (${roots} root causes), ${shown.length} alarms`;
    view.list.replaceChildren(...(tops.length ? tops.map((a) => alarmNode(a, kids))
      : [h('p', { class: 'muted', id: 'no-alarms', text: 'No alarm matches.' })]));
    if (typing) {
      const input = view.list.querySelector(`input[data-note-for="${CSS.escape(typing.id)}"]`);
      if (input) { input.focus(); input.setSelectionRange(typing.start, typing.end); }
    }
    // details (impact, comments) for what is in view: the tops and the open folds
    const inView = [...tops];
    for (let i = 0; i < inView.length; i += 1) {
      const id = String(inView[i].id);
      if (state.ui.expanded.has(id) && !state.filters.rootOnly) inView.push(...(kids.get(id) || []));
    }
    wantDetails(inView.filter(isActive).concat(
      state.ui.form ? [state.alarms.get(state.ui.form.id)].filter(Boolean) : []));
  }

  function alarmNode(a, kids) {
    const id = String(a.id);
    const sev = a.perceivedSeverity;
    const detail = state.details.has(id) ? state.details.get(id).doc : null;
    const children = kids.get(id) || [];
    const obj = a.alarmedObject || {};
    const row = h('div', { class: `alarm ${sevClass(sev)}`, id: `alarm-${id}`, data: {
      alarmId: id, root: String(!!a.isRootCause), top: String(!parentId(a)),
      objectType: a.alarmedObjectType, object: obj.name, device: a.x_device,
      severity: sev, state: a.state, ackState: a.ackState } });

    const actions = h('span', { class: 'actions' });
    if (canOperate()) {
      if (isActive(a) && a.ackState !== 'acknowledged') {
        actions.append(h('button', { type: 'button', class: 'act', text: 'Acknowledge',
          data: { action: 'ack', alarmId: id }, onclick: () => openForm(id, 'ack') }));
      } else if (isActive(a) && a.ackState === 'acknowledged') {
        actions.append(h('button', { type: 'button', class: 'act', text: 'Unacknowledge',
          data: { action: 'unack', alarmId: id }, onclick: () => unack(id) }));
      }
      actions.append(h('button', { type: 'button', class: 'act', text: 'Comment',
        data: { action: 'comment', alarmId: id }, onclick: () => openForm(id, 'comment') }));
    }

    row.append(h('div', { class: 'line' },
      badge(sev),
      a.isRootCause ? h('span', { class: 'root-tag', text: 'root cause' }) : null,
      h('span', { class: 'object', text: obj.name || obj.id || '?' }),
      h('span', { class: 'problem', text: a.specificProblem || a.probableCause || a.x_problem }),
      a.x_count > 1 ? h('span', { class: 'meta', text: `×${a.x_count}` }) : null,
      a.x_flapping ? h('span', { class: 'meta', text: 'flapping' }) : null,
      h('span', { class: 'meta', text: `#${id} · ${a.state} since ${fmtTime(a.alarmRaisedTime)}` }),
      actions));
    const meta = [a.alarmType, a.probableCause, a.x_device ? `device ${a.x_device}` : null]
      .filter(Boolean).join(' · ');
    row.append(h('div', { class: 'meta', text: meta }));
    if (a.x_correlation && parentId(a)) {
      row.append(h('div', { class: 'meta', text: `under #${parentId(a)}: ${a.x_correlation}` }));
    }
    if (a.ackState === 'acknowledged') {
      row.append(h('div', { class: 'acked', data: { role: 'ack-info' },
        text: `acknowledged by ${a.ackUserId || '?'} at ${fmtTime(a.x_ackTime)}`
          + (a.x_ackNote ? `: ${a.x_ackNote}` : '') }));
    }
    if (detail && Array.isArray(detail.x_impact)) {
      const seen = new Map();
      for (const s of detail.x_impact) {
        const key = s.customerId || s.customer || '?';
        if (!seen.has(key)) seen.set(key, { name: s.customer || s.customerId, id: s.customerId, services: [] });
        seen.get(key).services.push(s.serviceId);
      }
      row.append(h('div', { class: 'impact', data: { role: 'impact' } },
        seen.size ? ['Customers hit: ', [...seen.values()].map((c) => h('a', {
          class: 'cust', href: c.id ? `#/customer/${enc(c.id)}` : '#/customers',
          title: `services: ${c.services.join(', ')}`, text: c.name }))]
          : h('span', { class: 'muted', text: 'No customer service on what this alarm hits.' })));
    }
    if (detail && detail.comment && detail.comment.length) {
      row.append(h('ul', { class: 'comments' }, detail.comment.map((c) =>
        h('li', { text: `${c.userId} (${fmtTime(c.time)}): ${c.comment}` }))));
    }
    const form = state.ui.form;
    if (form && form.id === id && canOperate()) row.append(noteForm(a, form));
    if (children.length) {
      if (state.filters.rootOnly) {
        row.append(h('div', { class: 'meta', text: `${children.length} symptoms folded` }));
      } else {
        const fold = h('details', { class: 'symptoms', open: state.ui.expanded.has(id),
          data: { symptomsOf: id } },
          h('summary', { text: `${children.length} symptom${children.length > 1 ? 's' : ''}` }),
          children.map((c) => alarmNode(c, kids)));
        fold.addEventListener('toggle', () => {
          if (fold.open) {
            if (!state.ui.expanded.has(id)) wantDetails(children.filter(isActive));
            state.ui.expanded.add(id);
          } else state.ui.expanded.delete(id);
        });
        row.append(fold);
      }
    }
    return row;
  }

  function openForm(id, kind) {
    state.ui.form = { id, kind, text: '' };
    renderAlarms();
    const input = document.querySelector(`input[data-note-for="${CSS.escape(id)}"]`);
    if (input) input.focus();
  }

  function noteForm(a, form) {
    const id = String(a.id);
    const input = h('input', { name: 'note', required: true, maxlength: 2000,
      placeholder: form.kind === 'ack' ? 'Note (required): why, ticket…' : 'Comment',
      'aria-label': form.kind === 'ack' ? 'acknowledgement note' : 'comment',
      data: { noteFor: id } });
    input.value = form.text;
    input.addEventListener('input', () => { form.text = input.value; });
    const el = h('form', { class: 'note', data: { form: form.kind, alarmId: id } }, input,
      h('button', { type: 'submit', class: 'act primary',
        data: { action: `${form.kind}-submit`, alarmId: id },
        text: form.kind === 'ack' ? 'Acknowledge' : 'Add comment' }),
      h('button', { type: 'button', class: 'act', text: 'Cancel',
        onclick: () => { state.ui.form = null; renderAlarms(); } }));
    el.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const text = input.value.trim();
      if (!text) { notice('A note is required.'); return; }
      const body = form.kind === 'ack'
        ? { ackState: 'acknowledged', x_note: text }
        : { comment: [{ comment: text, userId: state.me.name }] };
      try {
        const doc = await api(P.alarm(id), { method: 'PATCH', json: body });
        state.ui.form = null;
        gotDetail(doc);
        notice(form.kind === 'ack' ? `Alarm #${id} acknowledged.` : `Comment added to #${id}.`, true);
      } catch (exc) {
        notice(`#${id}: ${exc.message}`);
      }
      renderAlarms();
    });
    return el;
  }

  async function unack(id) {
    try {
      gotDetail(await api(P.alarm(id), { method: 'PATCH', json: { ackState: 'unacknowledged' } }));
      notice(`Alarm #${id} unacknowledged.`, true);
    } catch (exc) {
      notice(`#${id}: ${exc.message}`);
    }
    renderAlarms();
  }

  const detailKey = (a) => `${a.alarmChangedTime}|${(a.correlatedAlarm || []).map((c) => c.id).join(',')}`;

  function gotDetail(doc) {
    mergeAlarm(doc);
    const id = String(doc.id);
    state.details.set(id, { key: detailKey(state.alarms.get(id) || doc), doc });
  }

  /** Fetch the details (impacted customers, comments) of these alarms, four at a time,
   *  once per version of each alarm. */
  function wantDetails(alarms) {
    const queue = alarms.filter((a) => {
      const id = String(a.id);
      const had = state.details.get(id);
      return !state.pendingDetails.has(id) && (!had || had.key !== detailKey(a));
    }).slice(0, 50);
    const next = async () => {
      const a = queue.shift();
      if (!a) return;
      const id = String(a.id);
      state.pendingDetails.add(id);
      try {
        gotDetail(await api(P.alarm(id)));
      } catch (exc) {
        state.details.set(id, { key: detailKey(a), doc: null });
      } finally {
        state.pendingDetails.delete(id);
      }
      refreshSoon();
      await next();
    };
    for (let i = 0; i < 4; i += 1) next();
  }

  // ------------------------------------------------------------------ topology
  function worst(alarms) {
    let best = null;
    for (const a of alarms) {
      if (!best || (RANK[a.perceivedSeverity] || 0) > (RANK[best.perceivedSeverity] || 0)) best = a;
    }
    return best ? best.perceivedSeverity : 'ok';
  }

  function splitEnd(end) {
    const i = String(end).indexOf(':');
    return i < 0 ? [String(end), ''] : [end.slice(0, i), end.slice(i + 1)];
  }

  async function pageTopology() {
    const mine = state.routeSeq; // this page's turn: a later route wins
    const [devices, links] = await Promise.all([api(P.devices()), api(P.links())]);
    const holder = h('div', { id: 'topology' });
    const legend = h('div', { class: 'legend' }, 'Colour: worst active alarm —',
      ['ok', 'warning', 'minor', 'major', 'critical'].map((s) => badge(s)),
      h('span', { class: 'muted', text: 'click a device for its page' }));
    const names = devices.map((d) => d.name).sort();
    const find = h('input', { id: 'map-find', type: 'search', list: 'map-devices',
      placeholder: 'find a device', 'aria-label': 'find a device on the map' });
    const tools = h('div', { class: 'map-tools' },
      h('button', { type: 'button', class: 'act', id: 'map-zoom-in', title: 'zoom in',
        text: '+', onclick: () => zoomMap(1.25) }),
      h('button', { type: 'button', class: 'act', id: 'map-zoom-out', title: 'zoom out',
        text: '−', onclick: () => zoomMap(0.8) }),
      h('button', { type: 'button', class: 'act', id: 'map-fit', title: 'the whole network',
        text: 'fit', onclick: () => { state.mapView = { x: 0, y: 0, k: 1 }; applyMapView(); } }),
      find, h('datalist', { id: 'map-devices' }, names.map((n) => h('option', { value: n }))),
      h('span', { class: 'muted', text: 'wheel zooms, drag pans' }));
    find.addEventListener('change', () => findOnMap(find.value.trim()));
    paint(mine, h('h1', { text: 'Topology' }), legend, tools, holder);
    const refresh = () => renderTopology(holder, devices, links);
    state.view = { refresh };
    refresh();
  }

  const MAP_W = 1000;
  const MAP_H = 600;

  function applyMapView() {
    const view = $('#topology-view');
    const v = state.mapView;
    if (view) view.setAttribute('transform', `translate(${v.x} ${v.y}) scale(${v.k})`);
    const map = $('#topology-map');
    if (map) map.dataset.zoom = String(Math.round(v.k * 1000) / 1000);
  }

  /** Zoom by ``factor`` keeping the map point under (cx, cy) (map units) in place. */
  function zoomMap(factor, cx = MAP_W / 2, cy = MAP_H / 2) {
    const v = state.mapView;
    const k = Math.min(8, Math.max(0.25, v.k * factor));
    state.mapView = { k, x: cx - ((cx - v.x) * k) / v.k, y: cy - ((cy - v.y) * k) / v.k };
    applyMapView();
  }

  function findOnMap(name) {
    const p = state.positions.get(name);
    state.mapFound = p ? name : null;
    for (const g of document.querySelectorAll('#topology-map .node')) {
      g.classList.toggle('found', g.dataset.device === state.mapFound);
    }
    if (!p) {
      if (name) notice(`no device ${name} on the map`);
      return;
    }
    const k = Math.max(state.mapView.k, 2);
    state.mapView = { k, x: MAP_W / 2 - p.x * k, y: MAP_H / 2 - p.y * k };
    applyMapView();
  }

  /** A pointer event's position in the map's own units (its viewBox). */
  function mapPoint(root, ev) {
    const ctm = root.getScreenCTM();
    if (!ctm) return { x: 0, y: 0 };
    const pt = new DOMPoint(ev.clientX, ev.clientY).matrixTransform(ctm.inverse());
    return { x: pt.x, y: pt.y };
  }

  function makeMapMovable(root) {
    root.addEventListener('wheel', (ev) => {
      ev.preventDefault();
      const at = mapPoint(root, ev);
      zoomMap(ev.deltaY < 0 ? 1.2 : 1 / 1.2, at.x, at.y);
    }, { passive: false });
    let drag = null;
    root.addEventListener('pointerdown', (ev) => {
      if (ev.button !== 0 || ev.target.closest('.node')) return; // a node opens its page
      drag = { from: mapPoint(root, ev), view: { ...state.mapView } };
      root.setPointerCapture(ev.pointerId);
      root.classList.add('panning');
    });
    root.addEventListener('pointermove', (ev) => {
      if (!drag) return;
      const at = mapPoint(root, ev);
      state.mapView = { k: drag.view.k, x: drag.view.x + at.x - drag.from.x,
        y: drag.view.y + at.y - drag.from.y };
      applyMapView();
    });
    const end = () => { drag = null; root.classList.remove('panning'); };
    root.addEventListener('pointerup', end);
    root.addEventListener('pointercancel', end);
  }

  function layout(names, edges, width, height) {
    const known = names.every((n) => state.positions.has(n));
    if (known) return state.positions;
    const n = names.length;
    const pos = new Map();
    names.forEach((name, i) => {
      const angle = (2 * Math.PI * i) / Math.max(n, 1);
      pos.set(name, { x: width / 2 + (width / 3) * Math.cos(angle),
        y: height / 2 + (height / 3) * Math.sin(angle) });
    });
    // Fruchterman-Reingold, deterministic (no randomness: the same network, the same map)
    const k = Math.sqrt((width * height) / Math.max(n, 1)) * 0.6;
    let temperature = width / 8;
    for (let step = 0; step < 300; step += 1) {
      const disp = new Map(names.map((name) => [name, { x: 0, y: 0 }]));
      for (let i = 0; i < n; i += 1) {
        for (let j = i + 1; j < n; j += 1) {
          const a = pos.get(names[i]);
          const b = pos.get(names[j]);
          let dx = a.x - b.x;
          let dy = a.y - b.y;
          let dist = Math.hypot(dx, dy);
          if (dist < 0.01) { dx = 0.01 * (i - j); dy = 0.01; dist = Math.hypot(dx, dy); }
          const force = (k * k) / dist;
          const da = disp.get(names[i]);
          const db = disp.get(names[j]);
          da.x += (dx / dist) * force; da.y += (dy / dist) * force;
          db.x -= (dx / dist) * force; db.y -= (dy / dist) * force;
        }
      }
      for (const [u, v] of edges) {
        const a = pos.get(u);
        const b = pos.get(v);
        if (!a || !b || u === v) continue;
        const dx = a.x - b.x;
        const dy = a.y - b.y;
        const dist = Math.max(Math.hypot(dx, dy), 0.01);
        const force = (dist * dist) / k;
        const da = disp.get(u);
        const db = disp.get(v);
        da.x -= (dx / dist) * force; da.y -= (dy / dist) * force;
        db.x += (dx / dist) * force; db.y += (dy / dist) * force;
      }
      for (const name of names) {
        const p = pos.get(name);
        const d = disp.get(name);
        const len = Math.max(Math.hypot(d.x, d.y), 0.01);
        p.x += (d.x / len) * Math.min(len, temperature);
        p.y += (d.y / len) * Math.min(len, temperature);
      }
      temperature *= 0.985;
    }
    // fit into the frame with a margin
    const xs = [...pos.values()].map((p) => p.x);
    const ys = [...pos.values()].map((p) => p.y);
    const [minX, maxX, minY, maxY] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
    const margin = 60;
    for (const p of pos.values()) {
      p.x = maxX > minX ? margin + ((p.x - minX) / (maxX - minX)) * (width - 2 * margin) : width / 2;
      p.y = maxY > minY ? margin + ((p.y - minY) / (maxY - minY)) * (height - 2 * margin) : height / 2;
    }
    state.positions = pos;
    return pos;
  }

  function renderTopology(holder, devices, links) {
    if (!holder.isConnected) return;
    const width = MAP_W;
    const height = MAP_H;
    const active = [...state.alarms.values()].filter(isActive);
    const names = devices.map((d) => d.name).sort();
    const edges = links.map((l) => [splitEnd(l.a)[0], splitEnd(l.b)[0]]);
    for (const [u, v] of edges) { // a link to a device the inventory lists no more
      if (!names.includes(u)) names.push(u);
      if (!names.includes(v)) names.push(v);
    }
    const pos = layout(names, edges, width, height);
    const root = svg('svg', { class: 'topo', viewBox: `0 0 ${width} ${height}`,
      role: 'img', 'aria-label': 'network topology', id: 'topology-map' });
    const view = svg('g', { id: 'topology-view' });
    for (const l of links) {
      const ends = new Set([l.a, l.b]);
      const hits = active.filter((a) => {
        const obj = a.alarmedObject || {};
        if (a.alarmedObjectType === 'link') {
          const parts = String(obj.id || obj.name || '').split('--');
          return parts.length === 2 && ends.has(parts[0]) && ends.has(parts[1]);
        }
        return a.alarmedObjectType === 'interface' && ends.has(obj.name);
      });
      const sev = worst(hits);
      const a = pos.get(splitEnd(l.a)[0]);
      const b = pos.get(splitEnd(l.b)[0]);
      if (!a || !b) continue;
      view.append(svg('line', { class: `link ${sevClass(sev)}`, x1: a.x, y1: a.y, x2: b.x, y2: b.y,
        data: { link: `${l.a}--${l.b}`, severity: sev } },
        svg('title', { text: `${l.a} — ${l.b}${sev === 'ok' ? '' : ` (${sev})`}` })));
      const mx = (a.x + b.x) / 2;
      const my = (a.y + b.y) / 2;
      view.append(svg('text', { x: mx, y: my - 4, 'text-anchor': 'middle', class: 'link-label',
        text: `${splitEnd(l.a)[1]}–${splitEnd(l.b)[1]}` }));
    }
    const byName = new Map(devices.map((d) => [d.name, d]));
    for (const name of names) {
      const p = pos.get(name);
      const hits = active.filter((a) => a.x_device === name && a.alarmedObjectType !== 'link');
      const sev = worst(hits);
      const d = byName.get(name);
      const g = svg('g', { class: `node${name === state.mapFound ? ' found' : ''}`, transform: `translate(${p.x},${p.y})`, tabindex: 0,
        data: { device: name, severity: sev } },
        svg('title', { text: `${name}${d ? ` (${d.role}, ${d.mgmt_address || 'no address'})` : ''}`
          + `${hits.length ? ` — ${hits.length} active alarm(s), worst ${sev}` : ''}` }),
        svg('circle', { r: 18, class: sevClass(sev) }),
        svg('text', { y: 34, 'text-anchor': 'middle', text: name }));
      const open = () => { location.hash = `#/device/${enc(name)}`; };
      g.addEventListener('click', open);
      g.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') open(); });
      view.append(g);
    }
    root.append(view);
    makeMapMovable(root);
    holder.replaceChildren(devices.length ? root
      : h('p', { class: 'muted', text: 'No device yet: run discovery (switchboard discover).' }));
    applyMapView();
  }

  // ------------------------------------------------------------------ inventory
  async function pageInventory() {
    const mine = state.routeSeq; // this page's turn: a later route wins
    const devices = await api(P.devices());
    const render = () => {
      const active = [...state.alarms.values()].filter(isActive);
      return table(['device', 'alarms', 'role', 'vendor / model', 'OS', 'management address',
        'status', 'last seen'], devices.map((d) => [
        link(`#/device/${enc(d.name)}`, d.name),
        badge(worst(active.filter((a) => a.x_device === d.name))),
        d.role, [d.vendor, d.model].filter(Boolean).join(' ') || '—',
        [d.os_name, d.os_version].filter(Boolean).join(' ') || '—',
        d.mgmt_address || '—', d.status, fmtTime(d.last_seen)]),
      'No device yet: run discovery (switchboard discover).');
    };
    const holder = h('div', { id: 'device-list' }, render());
    paint(mine, h('h1', { text: 'Inventory' }), holder);
    state.view = { refresh: () => holder.replaceChildren(render()) };
  }

  async function pageDevice(name) {
    const mine = state.routeSeq; // this page's turn: a later route wins
    const d = await api(P.device(name));
    const dev = d.device;
    const charts = h('div', { class: 'charts', id: 'charts' });
    let since = '1h';
    const range = select([['1h', 'last hour'], ['6h', 'last 6 hours'], ['1d', 'last day'],
      ['7d', 'last week']], since, (v) => { since = v; drawCharts(); }, { id: 'range' });
    const ifaces = d.interfaces.filter((i) => !i.missing);
    const drawCharts = () => {
      charts.replaceChildren();
      const boxes = [['total', null], ...ifaces.map((i) => [i.name, i])];
      for (const [label, iface] of boxes) {
        const box = h('div', { class: 'chart', data: { chart: label } },
          h('h3', { text: iface ? `${label}${iface.speed_mbps ? ` (${iface.speed_mbps} Mbit/s)` : ''}`
            : 'all interfaces (total traffic)' }),
          h('p', { class: 'muted', text: 'loading…' }));
        charts.append(box);
        const path = iface ? P.ifSeries(dev.name, iface.name, since) : P.devSeries(dev.name, since);
        api(path).then((series) => box.replaceChildren(box.firstChild, chart(series, !!iface)))
          .catch((exc) => box.replaceChildren(box.firstChild, h('p', { class: 'muted',
            text: exc.status === 404 ? 'no samples yet (is the poller running?)' : exc.message })));
      }
    };
    paint(mine,
      h('p', null, link('#/inventory', '← inventory')),
      h('h1', { text: dev.name }),
      h('div', { class: 'panel' }, facts([
        ['role', dev.role], ['vendor', dev.vendor], ['model', dev.model],
        ['OS', [dev.os_name, dev.os_version].filter(Boolean).join(' ')],
        ['serial', dev.serial], ['management address', dev.mgmt_address],
        ['planes', dev.planes], ['status', dev.status_detail ? `${dev.status}: ${dev.status_detail}` : dev.status],
        ['description', dev.sys_descr], ['last seen', fmtTime(dev.last_seen)]])),
      h('h2', { text: 'Interfaces' }),
      table(['name', 'oper', 'admin', 'speed', 'MTU', 'MAC', 'alias / description'],
        d.interfaces.map((i) => [i.name + (i.missing ? ' (missing)' : ''), i.oper_status || '—',
          i.admin_status || '—', i.speed_mbps ? `${i.speed_mbps} Mbit/s` : '—',
          i.mtu === null ? '—' : i.mtu, i.mac || '—', i.alias || i.description || '—'])),
      h('h2', { text: 'Addresses' }),
      table(['address', 'interface'], d.addresses.map((a) => [
        `${a.address}${a.prefix_length !== null ? `/${a.prefix_length}` : ''}`,
        (d.interfaces.find((i) => i.id === a.interface_id) || {}).name || '—'])),
      h('h2', { text: 'Links' }),
      table(['this end', 'other end', 'confirmed'], d.links.map((l) => {
        const here = splitEnd(l.a)[0] === dev.name ? l.a : l.b;
        const there = here === l.a ? l.b : l.a;
        return [here, link(`#/device/${enc(splitEnd(there)[0])}`, there), l.confirmed ? 'yes' : 'no'];
      })),
      h('h2', null, 'Utilisation ', range),
      charts);
    drawCharts();
  }

  /** An SVG line chart of a series: in and out utilisation (%) when the speed is known,
   *  else bit/s; a gap in the data is a gap in the line. */
  function chart(series, perInterface) {
    const points = series.points || [];
    const usePct = perInterface && points.some((p) => p.in_util_pct !== null || p.out_util_pct !== null);
    const keys = usePct ? ['in_util_pct', 'out_util_pct'] : ['in_bps', 'out_bps'];
    const fmt = usePct ? (v) => `${v.toFixed(v >= 10 ? 0 : 1)} %` : fmtBps;
    const width = 420;
    const height = 150;
    const left = 64;
    const bottom = 18;
    const top = 8;
    const t0 = new Date(series.start).getTime();
    const t1 = new Date(series.end).getTime();
    const values = points.flatMap((p) => keys.map((k) => p[k])).filter((v) => v !== null && v !== undefined);
    let max = values.length ? Math.max(...values) : 0;
    if (usePct) max = Math.max(max, 1);
    if (max <= 0) max = 1;
    const x = (t) => left + ((t - t0) / Math.max(t1 - t0, 1)) * (width - left - 4);
    const y = (v) => top + (1 - v / max) * (height - top - bottom);
    const root = svg('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img',
      'aria-label': usePct ? 'utilisation in and out, percent' : 'traffic in and out, bit/s' });
    root.append(svg('line', { x1: left, y1: y(0), x2: width - 4, y2: y(0), class: 'axis' }));
    root.append(svg('line', { x1: left, y1: top, x2: left, y2: y(0), class: 'axis' }));
    root.append(svg('text', { x: left - 4, y: top + 8, 'text-anchor': 'end', text: fmt(max) }));
    root.append(svg('text', { x: left - 4, y: y(0), 'text-anchor': 'end', text: usePct ? '0 %' : '0' }));
    root.append(svg('text', { x: left, y: height - 4, text: fmtShortTime(t0) }));
    root.append(svg('text', { x: width - 4, y: height - 4, 'text-anchor': 'end', text: fmtShortTime(t1) }));
    keys.forEach((key, n) => {
      let d = '';
      let pen = false;
      for (const p of points) {
        const v = p[key];
        if (v === null || v === undefined) { pen = false; continue; }
        d += `${pen ? 'L' : 'M'}${x(new Date(p.t).getTime()).toFixed(1)},${y(v).toFixed(1)} `;
        pen = true;
      }
      if (d) root.append(svg('path', { d, class: n === 0 ? 'series-in' : 'series-out', fill: 'none' }));
    });
    if (!values.length) {
      root.append(svg('text', { x: width / 2, y: height / 2, 'text-anchor': 'middle', text: 'no data in this range' }));
    }
    const last = [...points].reverse().find((p) => keys.some((k) => p[k] !== null && p[k] !== undefined));
    return h('div', null, root, h('div', { class: 'meta' },
      h('span', { class: 'key-in', text: `■ in${last && last[keys[0]] !== null ? ` ${fmt(last[keys[0]])}` : ''}` }), ' ',
      h('span', { class: 'key-out', text: `■ out${last && last[keys[1]] !== null ? ` ${fmt(last[keys[1]])}` : ''}` }),
      ` · ${points.length} points of ${series.step_s} s`));
  }

  // ------------------------------------------------------------------ orders, customers, bills
  async function customerNames() {
    if (!state.customers) {
      const rows = await api(P.customers());
      state.customers = new Map(rows.map((c) => [c.id, c.name]));
    }
    return state.customers;
  }

  function customerLink(names, id) {
    if (!id) return '—';
    return link(`#/customer/${enc(id)}`, names.get(id) || id);
  }

  const stateCell = (s) => h('span', { class: `state-${String(s).replace(/[^A-Za-z]/g, '')}`, text: s });

  function ordersTable(orders, names) {
    return table(['order', 'state', 'customer', 'description', 'items', 'ordered', 'completed'],
      orders.map((o) => [link(`#/order/${enc(o.id)}`, o.id), stateCell(o.state),
        customerLink(names, ((o.relatedParty || [])[0] || {}).id), o.description || '—',
        String((o.productOrderItem || []).length), fmtTime(o.orderDate), fmtTime(o.completionDate)]),
      'No order yet.');
  }

  async function pageOrders() {
    const mine = state.routeSeq; // this page's turn: a later route wins
    state.customers = null;
    let filter = '';
    const holder = h('div', { id: 'order-list' });
    const draw = async () => {
      const [orders, names] = await Promise.all([api(P.orders({ limit: 200, state: filter })),
        customerNames()]);
      holder.replaceChildren(ordersTable(orders, names));
    };
    const states = ['acknowledged', 'inProgress', 'completed', 'failed', 'partial', 'cancelled'];
    paint(mine, h('h1', { text: 'Orders' }),
      h('div', { class: 'filters' }, h('label', null, 'State',
        select([['', 'any'], ...states.map((s) => [s, s])], filter,
          (v) => { filter = v; draw().catch((exc) => notice(exc.message)); }, { id: 'order-state' }))),
      holder);
    await draw();
  }

  async function pageOrder(id) {
    const mine = state.routeSeq; // this page's turn: a later route wins
    const [o, names] = await Promise.all([api(P.order(id)), customerNames()]);
    const customerId = ((o.relatedParty || [])[0] || {}).id;
    paint(mine,
      h('p', null, link('#/orders', '← orders')),
      h('h1', { text: `Order ${o.id}` }),
      h('div', { class: 'panel' }, facts([
        ['state', stateCell(o.state)], ['customer', customerLink(names, customerId)],
        ['billing account', (o.billingAccount || {}).id], ['description', o.description],
        ['requested by', o.requestedBy], ['ordered', fmtTime(o.orderDate)],
        ['completed', fmtTime(o.completionDate)]])),
      (o.errorMessage || []).length ? [h('h2', { text: 'Errors' }), h('ul', null,
        o.errorMessage.map((e) => h('li', { class: 'state-failed',
          text: `${e.productOrderItem ? `item ${e.productOrderItem}: ` : ''}${e.reason}` })))] : null,
      h('h2', { text: 'Items' }),
      table(['item', 'action', 'state', 'offering', 'product', 'characteristics', 'error'],
        (o.productOrderItem || []).map((i) => [i.id, i.action, stateCell(i.state),
          (i.productOffering || {}).id || '—', (i.product || {}).id || '—',
          ((i.product || {}).productCharacteristic || []).map((c) => `${c.name}=${c.value}`).join(', ') || '—',
          i.errorMessage || '—'])),
      h('h2', { text: 'State history' }),
      table(['when', 'item', 'from', 'to', 'why'], (o.x_stateHistory || []).map((s) => [
        fmtTime(s.at), s.productOrderItem || 'order', s.from || '—', s.to, s.reason || '—']),
      'No state change recorded.'),
      h('h2', { text: 'Saga steps' }),
      table(['when', 'item', 'step', 'state'], (o.x_sagaSteps || []).map((s) => [
        fmtTime(s.at), s.productOrderItem || 'order', s.step, s.state]), 'No step ran.'));
  }

  async function pageCustomers() {
    const mine = state.routeSeq; // this page's turn: a later route wins
    state.customers = null;
    const rows = await api(P.customers());
    paint(mine, h('h1', { text: 'Customers' }),
      h('div', { id: 'customer-list' }, table(['customer', 'status', 'billing accounts', 'contacts'],
        rows.map((c) => [link(`#/customer/${enc(c.id)}`, c.name), c.status,
          (c.account || []).map((a) => a.name || a.id).join(', ') || '—',
          (c.relatedParty || []).map((p) => p.name).join(', ') || '—']), 'No customer yet.')));
  }

  function billsTable(bills, names) {
    return table(['bill', 'kind', 'customer', 'period', 'total', 'state', 'invoice'],
      bills.map((b) => [b.billNo || b.id, b.category === 'creditNote' ? 'credit note' : 'invoice',
        customerLink(names, ((b.relatedParty || [])[0] || {}).id),
        `${fmtTime((b.billingPeriod || {}).startDateTime)} – ${fmtTime((b.billingPeriod || {}).endDateTime)}`,
        fmtMoney(b.taxIncludedAmount), b.x_state || b.state,
        h('a', { href: P.billHtml(b.id), target: '_blank', rel: 'noopener', text: 'view',
          data: { bill: b.id } })]), 'No bill yet.');
  }

  async function pageCustomer(id) {
    const mine = state.routeSeq; // this page's turn: a later route wins
    const [c, names, orders, products] = await Promise.all([api(P.customer(id)), customerNames(),
      api(P.orders({ customer: id, limit: 200 })), api(P.products({ customer: id, limit: 200 }))]);
    const bills = (await Promise.all((c.account || []).map((a) =>
      api(P.bills({ 'billingAccount.id': a.id, limit: 200 }))))).flat();
    paint(mine,
      h('p', null, link('#/customers', '← customers')),
      h('h1', { text: c.name }),
      h('div', { class: 'panel' }, facts([['id', c.id], ['status', c.status],
        ['since', fmtTime((c.validFor || {}).startDateTime)]])),
      h('h2', { text: 'Contacts' }),
      table(['name', 'role', 'email', 'phone'], (c.relatedParty || []).map((p) => [
        p.name, p.role, p.email || '—', p.phone || '—']), 'No contact.'),
      h('h2', { text: 'Billing accounts' }),
      table(['account', 'id'], (c.account || []).map((a) => [a.name || '—', a.id]), 'No account.'),
      h('h2', { text: 'Products' }),
      table(['product', 'status', 'offering', 'site', 'port', 'since'], products.map((p) => [
        p.name, p.status, (p.productOffering || {}).id, ((p.place || [])[0] || {}).id || '—',
        ((p.realizingResource || [])[0] || {}).id || '—', fmtTime(p.startDate)]), 'No product.'),
      h('h2', { text: 'Orders' }), ordersTable(orders, names),
      h('h2', { text: 'Invoices' }), billsTable(bills, names));
  }

  async function pageBills() {
    const mine = state.routeSeq; // this page's turn: a later route wins
    state.customers = null;
    const [bills, names] = await Promise.all([api(P.bills({ limit: 200 })), customerNames()]);
    paint(mine, h('h1', { text: 'Invoices and credit notes' }),
      h('div', { id: 'bill-list' }, billsTable(bills, names)));
  }

  // ------------------------------------------------------------------ start
  async function boot() {
    $('#logout').addEventListener('click', logout);
    window.addEventListener('hashchange', () => { route(); });
    try {
      const me = await api(P.me());
      state.me = { name: me.name, role: me.role };
    } catch (exc) {
      showLogin(exc.status === 401 ? '' : exc.message);
      return;
    }
    await started();
  }

  document.addEventListener('DOMContentLoaded', boot);
})();
