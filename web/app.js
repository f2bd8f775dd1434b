// portier web admin page: plain JavaScript over the REST API (/api/v1).
//
// Rules kept throughout this file:
//  - every value that comes from the API (or the user) reaches the page as text:
//    textContent, createTextNode, form values; never innerHTML, never an
//    attribute that the browser would interpret (href, src, on*, style);
//  - no inline script or style anywhere (the page is served with a strict CSP);
//  - the token is asked once and kept in sessionStorage (this tab only).
'use strict';

(function () {
  const API = '/api/v1';
  const TOKEN_KEY = 'portier.token';
  const POLL_MS = 4000;
  const VIEWS = ['domains', 'backends', 'streams', 'certificates', 'bans', 'workers'];

  let token = '';
  try { token = sessionStorage.getItem(TOKEN_KEY) || ''; } catch (e) { token = ''; }

  const state = {
    status: null,
    domains: [],
    backends: [],
    streams: [],
    bans: [],
    certs: [],
    certsAvailable: null, // null: unknown yet, false: the API answered 404
    editing: { domain: null, backend: null, stream: null },
  };
  const signatures = new Map(); // tbody id -> what it shows now (re-render only on change)
  let armed = null;             // {table, key, until}: a delete waiting for its confirmation
  let pollTimer = null;
  let refreshing = null;

  // ---- DOM helpers ----------------------------------------------------------

  const $ = (sel, root) => (root || document).querySelector(sel);

  function text(node, value) {
    node.textContent = value == null ? '' : String(value);
    return node;
  }

  // el('td', {class: 'x', label: 'Domain'}, 'text', childNode...)
  function el(tag, opts, ...children) {
    const e = document.createElement(tag);
    const o = opts || {};
    if (o.class) e.className = o.class;
    if (o.label) e.setAttribute('data-label', o.label);
    if (o.type) e.type = o.type;
    if (o.data) for (const k of Object.keys(o.data)) e.dataset[k] = String(o.data[k]);
    if (o.aria) for (const k of Object.keys(o.aria)) e.setAttribute('aria-' + k, String(o.aria[k]));
    for (const c of children) {
      if (c == null) continue;
      e.appendChild(typeof c === 'string' || typeof c === 'number'
        ? document.createTextNode(String(c)) : c);
    }
    return e;
  }

  function setHidden(node, hidden) { node.hidden = !!hidden; }

  // ---- formatting -------------------------------------------------------------

  function fmtTime(iso) {
    if (!iso) return '—';
    return String(iso).replace('T', ' ').replace(/Z$/, ' UTC');
  }

  function fmtDuration(secs) {
    secs = Math.max(0, Math.floor(secs));
    const d = Math.floor(secs / 86400), h = Math.floor((secs % 86400) / 3600);
    const m = Math.floor((secs % 3600) / 60);
    if (d > 0) return d + ' d ' + h + ' h';
    if (h > 0) return h + ' h ' + m + ' min';
    if (m > 0) return m + ' min';
    return 'under a minute';
  }

  function daysLeft(iso) {
    const t = Date.parse(iso || '');
    if (isNaN(t)) return '';
    const days = (t - Date.now()) / 86400000;
    if (days <= 0) return 'expired';
    const n = Math.floor(days);
    if (n === 0) return 'expires within a day';
    return n === 1 ? '1 day left' : n + ' days left';
  }

  function plural(n, one, many) { return n + ' ' + (n === 1 ? one : many); }

  const STATUS_CLASS = {
    valid: 'good', live: 'good', up: 'good',
    pending: 'warn', renewing: 'warn', none: 'warn', lagging: 'warn',
    failed: 'bad', expired: 'bad', down: 'bad',
  };

  // A status word: shown as text (with a symbol), colour only adds to it.
  function badge(word, extra, sep) {
    const cls = STATUS_CLASS[word] || '';
    const sym = cls === 'good' ? '✓ ' : cls === 'bad' ? '✗ ' : cls === 'warn' ? '… ' : '';
    const span = el('span', { class: 'badge ' + cls }, sym + word);
    return extra ? el('span', null, span, (sep || ', ') + extra) : span;
  }

  // ---- API ------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, body, fallback) {
      const err = body && typeof body === 'object' && body.error ? body.error : {};
      super(err.message || fallback || ('HTTP ' + status));
      this.status = status;
      this.code = err.code || '';
      this.field = typeof err.field === 'string' ? err.field : '';
    }
  }

  // quiet: a 401 is only returned (the login form asks with it).
  async function api(method, path, body, quiet) {
    const opt = { method, headers: { Authorization: 'Bearer ' + token }, cache: 'no-store' };
    if (body !== undefined) {
      opt.headers['Content-Type'] = 'application/json';
      opt.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(API + path, opt);
    } catch (e) {
      throw new ApiError(0, null, 'cannot reach portier (' + (e && e.message ? e.message : 'network error') + ')');
    }
    const raw = await res.text();
    let data = raw;
    if ((res.headers.get('Content-Type') || '').indexOf('application/json') === 0 && raw !== '') {
      try { data = JSON.parse(raw); } catch (e) { data = null; }
    }
    if (res.status === 204) {
      // Deletions carry the config version in headers.
      const v = res.headers.get('X-Config-Version');
      return v == null ? null : { config_version: Number(v), applied: res.headers.get('X-Config-Applied') === 'true' };
    }
    if (res.status === 401) {
      if (token && !quiet) logout('The API refused the token (401): log in again.');
      throw new ApiError(401, data, 'missing or wrong token');
    }
    if (!res.ok) throw new ApiError(res.status, data);
    return data;
  }

  const enc = (name) => encodeURIComponent(name);

  function appliedText(r) {
    if (!r || typeof r !== 'object' || r.config_version == null) return '';
    return ' (config version ' + r.config_version + ', ' +
      (r.applied ? 'applied by every worker)' : 'not yet applied by every worker)');
  }

  // ---- forms and their errors --------------------------------------------------

  function clearErrors(form) {
    for (const p of form.querySelectorAll('[data-error-for]')) text(p, '');
    for (const c of form.querySelectorAll('[aria-invalid]')) c.removeAttribute('aria-invalid');
  }

  function formStatus(form, msg, bad) {
    const p = $('.form-status', form);
    if (!p) return;
    text(p, msg);
    p.classList.toggle('bad', !!bad);
  }

  // Shows an API error next to the field it names ("servers[0]" -> servers,
  // "response_headers.X-Foo" -> response_headers), else at the form's foot.
  function fieldError(form, field, message) {
    const base = (field || '').split(/[[.]/)[0];
    let target = base ? form.querySelector('[data-error-for="' + CSS.escape(base) + '"]') : null;
    let msg = message;
    const idx = /^[^[]+\[(\d+)\]/.exec(field || '');
    if (target && idx) msg += ' (line ' + (Number(idx[1]) + 1) + ')';
    if (!target) target = form.querySelector('[data-error-for=""]');
    text(target, msg);
    const control = base ? form.elements.namedItem(base) : null;
    if (control && control.setAttribute) {
      control.setAttribute('aria-invalid', 'true');
      control.focus();
    }
  }

  function showError(form, err) {
    if (err.status === 401) return;
    if (err.status === 0) {
      fieldError(form, '', err.message);
      return;
    }
    fieldError(form, err.field, err.message);
  }

  function lines(value) {
    return value.split(/\r?\n/).map((s) => s.trim()).filter((s) => s !== '');
  }

  function onSubmit(form, action) {
    // Editing a field withdraws the error shown next to it.
    form.addEventListener('input', (ev) => {
      const name = ev.target && ev.target.name;
      if (!name) return;
      const p = form.querySelector('[data-error-for="' + CSS.escape(name) + '"]');
      if (p) text(p, '');
      ev.target.removeAttribute('aria-invalid');
    });
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      clearErrors(form);
      formStatus(form, '');
      const button = $('button[type="submit"]', form);
      button.disabled = true;
      try {
        await action();
      } catch (err) {
        if (err instanceof ApiError) showError(form, err);
        else fieldError(form, '', String(err && err.message ? err.message : err));
      } finally {
        button.disabled = false;
      }
    });
  }

  // ---- tables -------------------------------------------------------------------

  // rows: [{key, cells: [{label, value (string|Node), cls}], actions: [{act, label, danger}]}]
  // Rebuilt only when what they show changed, so a poll does not pull a button
  // from under a pointer.
  function renderTable(tbodyId, rows, sigExtra) {
    const tbody = document.getElementById(tbodyId);
    const sig = JSON.stringify(rows.map((r) => [r.key, r.sig])) + '|' + (sigExtra || '');
    if (signatures.get(tbodyId) === sig) return;
    signatures.set(tbodyId, sig);
    const frag = document.createDocumentFragment();
    for (const r of rows) {
      const tr = el('tr', { data: { key: r.key } });
      r.cells.forEach((c, i) => {
        const td = el(i === 0 ? 'th' : 'td', { label: c.label, class: c.cls || '' },
          c.value == null ? '—' : c.value);
        if (i === 0) td.setAttribute('scope', 'row');
        tr.appendChild(td);
      });
      if (r.actions) {
        const td = el('td', { class: 'row-actions', label: 'Actions' });
        for (const a of r.actions) {
          const isArmed = armed && armed.table === tbodyId && armed.key === r.key && armed.act === a.act;
          const b = el('button', {
            type: 'button',
            class: (a.danger ? 'danger' : 'secondary') + (isArmed ? ' armed' : ''),
            data: { act: a.act, key: r.key },
            aria: { label: (isArmed ? 'Confirm: ' : '') + a.label + ' ' + r.key },
          }, isArmed ? 'Confirm ' + a.label.toLowerCase() : a.label);
          td.appendChild(b);
        }
        tr.appendChild(td);
      }
      frag.appendChild(tr);
    }
    tbody.replaceChildren(frag);
  }

  function rerender(tbodyId) { signatures.delete(tbodyId); render(); }

  // A destructive action asks for a second click on the same button (no modal
  // dialog), for 5 s.
  function confirmTwice(tbodyId, key, act) {
    const now = Date.now();
    if (armed && armed.table === tbodyId && armed.key === key && armed.act === act && armed.until > now) {
      armed = null;
      rerender(tbodyId);
      return true;
    }
    armed = { table: tbodyId, key, act, until: now + 5000 };
    rerender(tbodyId);
    setTimeout(() => {
      if (armed && armed.until <= Date.now()) { armed = null; rerender(tbodyId); }
    }, 5100);
    return false;
  }

  function onTableAction(tbodyId, handlers) {
    document.getElementById(tbodyId).addEventListener('click', (ev) => {
      const b = ev.target.closest('button[data-act]');
      if (!b) return;
      const h = handlers[b.dataset.act];
      if (h) h(b.dataset.key, b);
    });
  }

  // ---- liveness -------------------------------------------------------------------

  function liveness() {
    const st = state.status;
    if (!st) return null;
    const workers = Array.isArray(st.workers) ? st.workers : [];
    const cv = st.config_version;
    const behind = workers.filter((w) => w.up === false || w.pid == null || !(w.config_version >= cv));
    return { cv, total: workers.length, behind: behind.length, live: behind.length === 0 };
  }

  function livenessText(l) {
    if (!l) return '';
    if (l.live) return 'applied by ' + (l.total === 1 ? 'the worker' : 'all ' + l.total + ' workers');
    return l.behind + ' of ' + plural(l.total, 'worker', 'workers') + ' behind';
  }

  // ---- rendering of each view ---------------------------------------------------------

  function certFor(d) {
    if (!state.certsAvailable) return null;
    if (d.certificate_id) {
      const c = state.certs.find((x) => x.id === d.certificate_id);
      if (c) return c;
    }
    return state.certs.find((c) => Array.isArray(c.domains) && c.domains.some((n) =>
      n === d.name || (n.indexOf('*.') === 0 && d.name.endsWith(n.slice(1))))) || null;
  }

  function renderDomains() {
    const l = liveness();
    const rows = state.domains.map((d) => {
      let certWord = null, certExtra = '';
      if (d.mode === 'offload') {
        const c = certFor(d);
        certWord = d.certificate_status || (c && c.status) || 'none';
        if (certWord === 'none') certExtra = d.certificate === 'manual' ? 'upload one under Certificates' : 'not obtained yet';
        else if (c && c.not_after) certExtra = daysLeft(c.not_after);
        if (d.certificate === 'manual' && certWord !== 'none') certExtra = (certExtra ? certExtra + ', ' : '') + 'manual';
      }
      const stateWord = l ? (l.live ? 'live' : 'lagging') : null;
      return {
        key: d.name,
        sig: [d.mode, d.backend, certWord, certExtra, stateWord, l && livenessText(l)],
        cells: [
          { label: 'Domain', value: d.name, cls: 'name' },
          { label: 'Mode', value: d.mode },
          { label: 'Backend', value: d.backend },
          { label: 'Certificate', value: d.mode === 'offload' ? badge(certWord, certExtra) : 'backend’s own (passthrough)' },
          { label: 'State', value: stateWord ? badge(stateWord, l.live ? '' : livenessText(l)) : null },
        ],
        actions: [{ act: 'edit', label: 'Edit' }, { act: 'delete', label: 'Delete', danger: true }],
      };
    });
    renderTable('domains-body', rows);
    setHidden($('#domains-empty'), state.domains.length > 0);
  }

  function renderBackends() {
    const rows = state.backends.map((b) => {
      const users = state.domains.filter((d) => d.backend === b.name).map((d) => d.name)
        .concat(state.streams.filter((t) => t.backend === b.name).map((t) => 'stream ' + t.name));
      // Each server with its health as the workers see it (status.servers).
      const health = ((state.status && state.status.servers) || []).filter((h) => h.backend === b.name);
      const mark = (srv) => {
        const h = health.find((x) => x.server === srv);
        return h && h.state === 'down' ? srv + ' (down)' : srv;
      };
      const servers = (b.servers || []).map(mark).join('\n');
      const http = (b.http_servers || []).map(mark).join('\n');
      const tls = b.tls ? (b.tls_verify ? 'yes, verified' : 'yes, not verified') : 'no';
      return {
        key: b.name,
        sig: [servers, b.proxy_protocol, http, tls, users],
        cells: [
          { label: 'Backend', value: b.name, cls: 'name' },
          { label: 'Servers', value: servers, cls: 'list' },
          { label: 'PROXY protocol', value: b.proxy_protocol },
          { label: 'HTTP servers', value: http || '—', cls: 'list' },
          { label: 'TLS to servers', value: tls },
          { label: 'Used by', value: users.length ? users.join(', ') : 'no domain' },
        ],
        actions: [{ act: 'edit', label: 'Edit' }, { act: 'snippet', label: 'Snippet' },
          { act: 'delete', label: 'Delete', danger: true }],
      };
    });
    renderTable('backends-body', rows);
    setHidden($('#backends-empty'), state.backends.length > 0);
    fillBackendSelect();
  }

  function renderStreams() {
    const rows = state.streams.map((t) => {
      const listen = (t.listen || []).join('\n') || 'HTTPS port (ALPN)';
      let names = t.mode === 'tls' ? (t.names || []).join('\n') : 'every connection';
      if (t.alpn && t.alpn.length) names += '\nALPN ' + t.alpn.join(', ');
      const limits = 'idle ' + (t.idle_timeout ? t.idle_timeout + ' s' : 'default') +
        (t.max_connections ? ', at most ' + t.max_connections + ' per worker' : '');
      return {
        key: t.name,
        sig: [t.mode, listen, names, t.backend, limits],
        cells: [
          { label: 'Stream', value: t.name, cls: 'name' },
          { label: 'Mode', value: t.mode },
          { label: 'Listens on', value: listen, cls: 'list' },
          { label: 'Names', value: names, cls: 'list' },
          { label: 'Backend', value: t.backend },
          { label: 'Limits', value: limits },
        ],
        actions: [{ act: 'edit', label: 'Edit' }, { act: 'delete', label: 'Delete', danger: true }],
      };
    });
    renderTable('streams-body', rows);
    setHidden($('#streams-empty'), state.streams.length > 0);
  }

  function fillBackendSelect() {
    fillSelect($('#domain-backend'));
    fillSelect($('#stream-backend'));
  }

  function fillSelect(sel) {
    const names = state.backends.map((b) => b.name);
    const have = Array.from(sel.options).slice(1).map((o) => o.value);
    if (JSON.stringify(names) === JSON.stringify(have)) return;
    const keep = sel.value;
    const opts = [el('option', null, '(choose a backend)')];
    opts[0].value = '';
    for (const n of names) {
      const o = el('option', null, n);
      o.value = n;
      opts.push(o);
    }
    sel.replaceChildren(...opts);
    sel.value = names.indexOf(keep) >= 0 ? keep : '';
  }

  function renderCerts() {
    const avail = state.certsAvailable !== false;
    setHidden($('#certs-unavailable'), avail);
    setHidden($('#certs-wrap'), !avail);
    $('#cert-form').hidden = !avail;
    if (!avail) { setHidden($('#certs-empty'), true); return; }
    const rows = state.certs.map((c) => {
      const names = Array.isArray(c.domains) ? c.domains.join(', ') : '';
      const left = daysLeft(c.not_after);
      const actions = [];
      if (c.source === 'acme') actions.push({ act: 'renew', label: 'Renew' });
      actions.push({ act: 'delete', label: 'Delete', danger: true });
      return {
        key: String(c.id),
        sig: [names, c.source, c.status, c.not_after, left, c.last_error],
        cells: [
          { label: 'Names', value: names || '—', cls: 'name' },
          { label: 'Source', value: c.source },
          { label: 'Status', value: badge(c.status || 'none') },
          { label: 'Expires', value: c.not_after ? fmtTime(c.not_after) + (left ? ' (' + left + ')' : '') : '—' },
          { label: 'Last error', value: c.last_error || '—' },
        ],
        actions,
      };
    });
    renderTable('certs-body', rows);
    setHidden($('#certs-empty'), state.certs.length > 0);
  }

  function banLeft(b) {
    if (!b.expires) return 'permanent (until removed)';
    const secs = (Date.parse(b.expires) - Date.now()) / 1000;
    if (isNaN(secs)) return fmtTime(b.expires);
    if (secs <= 0) return 'expired';
    return fmtDuration(secs);
  }

  function renderBans() {
    const rows = state.bans.map((b) => {
      const left = banLeft(b);
      return {
        key: b.ip,
        sig: [b.reason, b.created_by, b.created, b.expires, left],
        cells: [
          { label: 'Address', value: b.ip, cls: 'name' },
          { label: 'Reason', value: b.reason ? b.reason : '—', cls: 'reason' },
          { label: 'By', value: b.created_by || 'admin' },
          { label: 'Since', value: fmtTime(b.created) },
          { label: 'Time left', value: left },
        ],
        actions: [{ act: 'remove', label: 'Remove' }],
      };
    });
    renderTable('bans-body', rows);
    setHidden($('#bans-empty'), state.bans.length > 0);
  }

  function renderWorkers() {
    const st = state.status;
    const l = liveness();
    if (st) {
      text($('#st-version'), st.version);
      text($('#st-uptime'), fmtDuration(st.uptime_s || 0));
      text($('#st-config'), st.config_version);
      $('#st-applied').replaceChildren(badge(l.live ? 'live' : 'lagging', livenessText(l), ': '));
    }
    const workers = st && Array.isArray(st.workers) ? st.workers : [];
    const rows = workers.map((w, i) => {
      const id = w.id != null ? w.id : i;
      const up = w.up !== false && w.pid != null;
      const current = w.config_version >= st.config_version;
      return {
        key: String(id),
        sig: [w.pid, up, w.config_version, w.connections, current],
        cells: [
          { label: 'Worker', value: '#' + id, cls: 'name' },
          { label: 'PID', value: w.pid != null ? String(w.pid) : '—' },
          { label: 'State', value: badge(up ? 'up' : 'down', up ? (current ? 'current' : 'behind') : 'restarting') },
          { label: 'Config version', value: String(w.config_version) },
          { label: 'Connections', value: String(w.connections != null ? w.connections : '—') },
        ],
      };
    });
    renderTable('workers-body', rows);
  }

  function renderSummary() {
    const st = state.status;
    const p = $('#summary');
    if (!st || !token) { p.replaceChildren(); delete p.dataset.sig; return; }
    const l = liveness();
    const sig = st.config_version + '|' + l.live + '|' + livenessText(l);
    if (p.dataset.sig === sig) return; // a live region: speak only on change
    p.dataset.sig = sig;
    p.replaceChildren(
      el('span', null, 'Config version ' + st.config_version + ': '),
      badge(l.live ? 'live' : 'lagging', livenessText(l), ': '));
  }

  function render() {
    renderSummary();
    renderDomains();
    renderBackends();
    renderStreams();
    renderCerts();
    renderBans();
    renderWorkers();
  }

  // ---- refresh (poll) -----------------------------------------------------------------

  async function fetchAll() {
    const [st, doms, bes, bans, certs, strs] = await Promise.allSettled([
      api('GET', '/status'), api('GET', '/domains'), api('GET', '/backends'),
      api('GET', '/bans'), api('GET', '/certificates'), api('GET', '/streams'),
    ]);
    if (!token) return;
    const problems = [];
    const take = (r, key, fallback) => {
      if (r.status === 'fulfilled') return (r.value && r.value[key]) || fallback;
      if (r.reason && r.reason.status !== 401) problems.push(r.reason.message);
      return null;
    };
    if (st.status === 'fulfilled') state.status = st.value;
    else if (st.reason && st.reason.status !== 401) problems.push(st.reason.message);
    const d = take(doms, 'domains', []); if (d) state.domains = d;
    const b = take(bes, 'backends', []); if (b) state.backends = b;
    const t = take(strs, 'streams', []); if (t) state.streams = t;
    const n = take(bans, 'bans', []); if (n) state.bans = n;
    if (certs.status === 'fulfilled') {
      state.certsAvailable = true;
      state.certs = (certs.value && certs.value.certificates) || [];
    } else if (certs.reason && certs.reason.status === 404) {
      state.certsAvailable = false;
      state.certs = [];
    } else if (certs.reason && certs.reason.status !== 401) {
      problems.push(certs.reason.message);
    }
    state.domains.sort((x, y) => x.name.localeCompare(y.name));
    state.backends.sort((x, y) => x.name.localeCompare(y.name));
    const ge = $('#global-error');
    text(ge, problems.length ? 'Refresh failed: ' + Array.from(new Set(problems)).join('; ') + '. Retrying.' : '');
    setHidden(ge, problems.length === 0);
    text($('#last-refresh'), 'Last refresh: ' + new Date().toLocaleTimeString() + '.');
    render();
  }

  // Refreshes now; concurrent callers share one refresh.
  function refresh() {
    if (!token) return Promise.resolve();
    if (!refreshing) refreshing = fetchAll().finally(() => { refreshing = null; });
    return refreshing;
  }

  function schedule() {
    clearTimeout(pollTimer);
    pollTimer = setTimeout(async () => {
      if (!token) return;
      if (document.visibilityState !== 'hidden') {
        try { await refresh(); } catch (e) { /* shown by fetchAll */ }
      }
      schedule();
    }, POLL_MS);
  }

  // ---- navigation and login -------------------------------------------------------

  function currentView() {
    const v = location.hash.replace(/^#/, '');
    return VIEWS.indexOf(v) >= 0 ? v : 'domains';
  }

  function showView() {
    const logged = !!token;
    setHidden($('#login'), logged);
    setHidden($('#nav'), !logged);
    setHidden($('#logout'), !logged);
    const v = currentView();
    for (const name of VIEWS) setHidden(document.getElementById('view-' + name), !logged || name !== v);
    for (const a of document.querySelectorAll('#nav a')) {
      if (a.getAttribute('href') === '#' + v) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    document.title = logged ? 'portier: ' + v : 'portier: log in';
  }

  function logout(message) {
    token = '';
    try { sessionStorage.removeItem(TOKEN_KEY); } catch (e) { /* private mode */ }
    clearTimeout(pollTimer);
    state.status = null;
    state.domains = []; state.backends = []; state.streams = []; state.bans = []; state.certs = [];
    signatures.clear();
    render();
    setHidden($('#global-error'), true);
    showView();
    const form = $('#login-form');
    clearErrors(form);
    if (message) text($('#login-token-error'), message);
    $('#login-token').focus();
  }

  function startSession() {
    showView();
    refresh().finally(schedule);
  }

  onSubmit($('#login-form'), async () => {
    const form = $('#login-form');
    const value = $('#login-token').value.trim();
    if (!value) { fieldError(form, 'token', 'Enter the token.'); return; }
    token = value;
    try {
      // listing backends takes an admin token: bans and backend:NAME tokens get 403
      await api('GET', '/backends', undefined, true);
    } catch (err) {
      token = '';
      if (err.status === 401) return fieldError(form, 'token', 'The API refused this token (401).');
      if (err.status === 403) return fieldError(form, 'token', 'This token is limited to bans or to one backend (403): use the admin token.');
      throw err;
    }
    try { sessionStorage.setItem(TOKEN_KEY, token); } catch (e) { /* kept in memory only */ }
    $('#login-token').value = '';
    startSession();
  });

  $('#logout').addEventListener('click', () => logout(''));
  window.addEventListener('hashchange', () => {
    // Messages about the last action belong to the view it was done in.
    for (const p of document.querySelectorAll('.form-status')) formStatus(p.closest('form'), '');
    showView();
  });
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible' && token) refresh();
  });

  // ---- domains -----------------------------------------------------------------------

  const domainForm = $('#domain-form');

  function syncOffload() {
    setHidden($('#domain-offload'), $('#domain-mode').value !== 'offload');
  }
  $('#domain-mode').addEventListener('change', syncOffload);

  function resetDomainForm() {
    state.editing.domain = null;
    domainForm.reset();
    clearErrors(domainForm);
    $('#domain-name').readOnly = false;
    text($('#domain-form-h'), 'Add a domain');
    setHidden($('.cancel', domainForm), true);
    syncOffload();
  }

  function editDomain(name) {
    const d = state.domains.find((x) => x.name === name);
    if (!d) return;
    resetDomainForm();
    state.editing.domain = name;
    text($('#domain-form-h'), 'Edit domain ' + name);
    $('#domain-name').value = d.name;
    $('#domain-name').readOnly = true;
    $('#domain-mode').value = d.mode;
    fillBackendSelect();
    $('#domain-backend').value = d.backend;
    $('#domain-certificate').value = d.certificate || 'acme';
    $('#domain-redirect').checked = d.redirect_http !== false;
    $('#domain-hsts').checked = !!d.hsts;
    $('#domain-http2').checked = d.http2 !== false;
    const h = d.response_headers || {};
    $('#domain-headers').value = Object.keys(h).map((k) => k + ': ' + h[k]).join('\n');
    setHidden($('.cancel', domainForm), false);
    syncOffload();
    domainForm.scrollIntoView({ block: 'start' });
    $('#domain-mode').focus();
  }

  $('.cancel', domainForm).addEventListener('click', resetDomainForm);

  onSubmit(domainForm, async () => {
    const name = $('#domain-name').value.trim().toLowerCase();
    if (!name) return fieldError(domainForm, 'name', 'name: required');
    if (!state.editing.domain && state.domains.some((d) => d.name === name.replace(/\.$/, ''))) {
      return fieldError(domainForm, 'name', 'name: ' + name + ' already exists (use its Edit button to change it)');
    }
    const body = { mode: $('#domain-mode').value, backend: $('#domain-backend').value };
    if (!body.backend) return fieldError(domainForm, 'backend', 'backend: choose one (add it under Backends first)');
    if (body.mode === 'offload') {
      body.certificate = $('#domain-certificate').value;
      body.redirect_http = $('#domain-redirect').checked;
      body.hsts = $('#domain-hsts').checked;
      body.http2 = $('#domain-http2').checked;
      const headers = {};
      for (const line of lines($('#domain-headers').value)) {
        const i = line.indexOf(':');
        if (i <= 0) return fieldError(domainForm, 'response_headers', 'response_headers: "' + line + '" is not "Name: value"');
        headers[line.slice(0, i).trim()] = line.slice(i + 1).trim();
      }
      body.response_headers = headers;
    }
    const r = await api('PUT', '/domains/' + enc(name), body);
    const shown = (r && r.name) || name;
    resetDomainForm();
    formStatus(domainForm, 'Saved domain ' + shown + appliedText(r) + '.');
    await refresh();
  });

  onTableAction('domains-body', {
    edit: (name) => editDomain(name),
    delete: async (name) => {
      if (!confirmTwice('domains-body', name, 'delete')) return;
      try {
        const r = await api('DELETE', '/domains/' + enc(name));
        if (state.editing.domain === name) resetDomainForm();
        formStatus(domainForm, 'Deleted domain ' + name + appliedText(r) + '.');
      } catch (err) {
        formStatus(domainForm, 'Cannot delete ' + name + ': ' + err.message, true);
      }
      await refresh();
    },
  });

  // ---- backends ----------------------------------------------------------------------

  const backendForm = $('#backend-form');

  function resetBackendForm() {
    state.editing.backend = null;
    backendForm.reset();
    clearErrors(backendForm);
    $('#backend-name').readOnly = false;
    text($('#backend-form-h'), 'Add a backend');
    setHidden($('.cancel', backendForm), true);
  }

  function editBackend(name) {
    const b = state.backends.find((x) => x.name === name);
    if (!b) return;
    resetBackendForm();
    state.editing.backend = name;
    text($('#backend-form-h'), 'Edit backend ' + name);
    $('#backend-name').value = b.name;
    $('#backend-name').readOnly = true;
    $('#backend-servers').value = (b.servers || []).join('\n');
    $('#backend-pp').value = b.proxy_protocol || 'none';
    $('#backend-http').value = (b.http_servers || []).join('\n');
    $('#backend-tls').checked = !!b.tls;
    $('#backend-verify').checked = b.tls_verify !== false;
    setHidden($('.cancel', backendForm), false);
    backendForm.scrollIntoView({ block: 'start' });
    $('#backend-servers').focus();
  }

  $('.cancel', backendForm).addEventListener('click', resetBackendForm);

  onSubmit(backendForm, async () => {
    const name = $('#backend-name').value.trim();
    if (!name) return fieldError(backendForm, 'name', 'name: required');
    if (!state.editing.backend && state.backends.some((b) => b.name === name)) {
      return fieldError(backendForm, 'name', 'name: ' + name + ' already exists (use its Edit button to change it)');
    }
    const body = {
      servers: lines($('#backend-servers').value),
      proxy_protocol: $('#backend-pp').value,
      http_servers: lines($('#backend-http').value),
      tls: $('#backend-tls').checked,
      tls_verify: $('#backend-verify').checked,
    };
    const r = await api('PUT', '/backends/' + enc(name), body);
    resetBackendForm();
    formStatus(backendForm, 'Saved backend ' + ((r && r.name) || name) + appliedText(r) + '.');
    await refresh();
  });

  let snippetFor = null;
  async function showSnippet(name) {
    snippetFor = name;
    const kind = $('#snippet-for').value;
    text($('#snippet-h'), 'What backend ' + name + ' needs (' + kind + ')');
    text($('#snippet-text'), 'Loading…');
    setHidden($('#snippet-box'), false);
    try {
      const t = await api('GET', '/backends/' + enc(name) + '/snippet?for=' + enc(kind));
      text($('#snippet-text'), typeof t === 'string' ? t : JSON.stringify(t, null, 2));
    } catch (err) {
      text($('#snippet-text'), 'Cannot get the snippet: ' + err.message);
    }
    $('#snippet-text').focus();
  }
  $('#snippet-for').addEventListener('change', () => { if (snippetFor) showSnippet(snippetFor); });
  $('#snippet-close').addEventListener('click', () => { snippetFor = null; setHidden($('#snippet-box'), true); });

  onTableAction('backends-body', {
    edit: (name) => editBackend(name),
    snippet: (name) => showSnippet(name),
    delete: async (name) => {
      if (!confirmTwice('backends-body', name, 'delete')) return;
      try {
        const r = await api('DELETE', '/backends/' + enc(name));
        if (state.editing.backend === name) resetBackendForm();
        formStatus(backendForm, 'Deleted backend ' + name + appliedText(r) + '.');
      } catch (err) {
        formStatus(backendForm, 'Cannot delete ' + name + ': ' + err.message, true);
      }
      await refresh();
    },
  });

  // ---- streams ------------------------------------------------------------------------

  const streamForm = $('#stream-form');

  function resetStreamForm() {
    state.editing.stream = null;
    streamForm.reset();
    clearErrors(streamForm);
    $('#stream-name').readOnly = false;
    text($('#stream-form-h'), 'Add a stream');
    setHidden($('.cancel', streamForm), true);
  }

  function editStream(name) {
    const t = state.streams.find((x) => x.name === name);
    if (!t) return;
    resetStreamForm();
    state.editing.stream = name;
    text($('#stream-form-h'), 'Edit stream ' + name);
    $('#stream-name').value = t.name;
    $('#stream-name').readOnly = true;
    $('#stream-mode').value = t.mode;
    $('#stream-listen').value = (t.listen || []).join('\n');
    $('#stream-names').value = (t.names || []).join('\n');
    $('#stream-alpn').value = (t.alpn || []).join(', ');
    fillBackendSelect();
    $('#stream-backend').value = t.backend;
    $('#stream-idle').value = t.idle_timeout || 0;
    $('#stream-max').value = t.max_connections || 0;
    setHidden($('.cancel', streamForm), false);
    streamForm.scrollIntoView({ block: 'start' });
    $('#stream-listen').focus();
  }

  $('.cancel', streamForm).addEventListener('click', resetStreamForm);

  onSubmit(streamForm, async () => {
    const name = $('#stream-name').value.trim();
    if (!name) return fieldError(streamForm, 'name', 'name: required');
    if (!state.editing.stream && state.streams.some((t) => t.name === name)) {
      return fieldError(streamForm, 'name', 'name: ' + name + ' already exists (use its Edit button to change it)');
    }
    const body = {
      mode: $('#stream-mode').value,
      listen: lines($('#stream-listen').value),
      backend: $('#stream-backend').value,
      idle_timeout: Number($('#stream-idle').value) || 0,
      max_connections: Number($('#stream-max').value) || 0,
    };
    if (!body.backend) return fieldError(streamForm, 'backend', 'backend: choose one (add it under Backends first)');
    if (body.mode === 'tls') {
      body.names = lines($('#stream-names').value);
      body.alpn = $('#stream-alpn').value.split(/[\s,]+/).filter((x) => x);
    }
    const r = await api('PUT', '/streams/' + enc(name), body);
    resetStreamForm();
    formStatus(streamForm, 'Saved stream ' + ((r && r.name) || name) + appliedText(r) + '.');
    await refresh();
  });

  onTableAction('streams-body', {
    edit: (name) => editStream(name),
    delete: async (name) => {
      if (!confirmTwice('streams-body', name, 'delete')) return;
      try {
        const r = await api('DELETE', '/streams/' + enc(name));
        if (state.editing.stream === name) resetStreamForm();
        formStatus(streamForm, 'Deleted stream ' + name + appliedText(r) + '.');
      } catch (err) {
        formStatus(streamForm, 'Cannot delete ' + name + ': ' + err.message, true);
      }
      await refresh();
    },
  });

  // ---- certificates -------------------------------------------------------------------

  const certForm = $('#cert-form');

  function readInto(fileInput, textarea) {
    fileInput.addEventListener('change', async () => {
      const f = fileInput.files && fileInput.files[0];
      if (!f) return;
      if (f.size > 512 * 1024) { text($('[data-error-for="' + textarea.name + '"]', certForm), 'That file is too large for a PEM.'); return; }
      textarea.value = await f.text();
    });
  }
  readInto($('#cert-pem-file'), $('#cert-pem'));
  readInto($('#cert-key-file'), $('#cert-key'));

  onSubmit(certForm, async () => {
    const body = { cert_pem: $('#cert-pem').value, key_pem: $('#cert-key').value };
    if (!body.cert_pem.trim()) return fieldError(certForm, 'cert_pem', 'cert_pem: paste the certificate (PEM)');
    if (!body.key_pem.trim()) return fieldError(certForm, 'key_pem', 'key_pem: paste the private key (PEM)');
    let r;
    try {
      r = await api('POST', '/certificates', body);
    } catch (err) {
      if (err.status === 404 && err.code === 'not_found') {
        state.certsAvailable = false;
        render();
      }
      throw err;
    }
    certForm.reset();
    const names = r && Array.isArray(r.domains) ? r.domains.join(', ') : '';
    formStatus(certForm, 'Uploaded the certificate' + (names ? ' for ' + names : '') +
      (r && r.not_after ? ', valid until ' + fmtTime(r.not_after) : '') + '.');
    await refresh();
  });

  onTableAction('certs-body', {
    renew: async (id) => {
      try {
        await api('POST', '/certificates/' + enc(id) + '/renew', {});
        formStatus(certForm, 'Renewal of certificate ' + id + ' started.');
      } catch (err) {
        formStatus(certForm, 'Cannot renew: ' + err.message, true);
      }
      await refresh();
    },
    delete: async (id) => {
      if (!confirmTwice('certs-body', id, 'delete')) return;
      try {
        await api('DELETE', '/certificates/' + enc(id));
        formStatus(certForm, 'Deleted certificate ' + id + '.');
      } catch (err) {
        formStatus(certForm, 'Cannot delete: ' + err.message, true);
      }
      await refresh();
    },
  });

  // ---- bans ------------------------------------------------------------------------------

  const banForm = $('#ban-form');

  onSubmit(banForm, async () => {
    const ip = $('#ban-ip').value.trim();
    if (!ip) return fieldError(banForm, 'ip', 'ip: required');
    const raw = $('#ban-duration').value.trim();
    const n = raw === '' ? 0 : Number(raw);
    if (!Number.isFinite(n) || n < 0 || Math.floor(n) !== n) {
      return fieldError(banForm, 'duration', 'duration: a whole number, 0 for until removed');
    }
    const body = { ip, duration: n * Number($('#ban-unit').value) };
    const reason = $('#ban-reason').value;
    if (reason.trim()) body.reason = reason.trim();
    const r = await api('POST', '/bans', body);
    $('#ban-ip').value = '';
    $('#ban-reason').value = '';
    formStatus(banForm, 'Banned ' + ((r && r.ip) || ip) + appliedText(r) + '.');
    await refresh();
  });

  onTableAction('bans-body', {
    remove: async (ip) => {
      try {
        const r = await api('DELETE', '/bans/' + enc(ip));
        formStatus(banForm, 'Removed the ban on ' + ip + appliedText(r) + '.');
      } catch (err) {
        formStatus(banForm, 'Cannot remove the ban on ' + ip + ': ' + err.message, true);
      }
      await refresh();
    },
  });

  // ---- start ---------------------------------------------------------------------------------

  syncOffload();
  if (token) startSession();
  else logout('');
})();
