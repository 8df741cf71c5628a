// Triggers operator dashboard. Plain JavaScript, no dependencies, no network
// access beyond this node's own API (the Content-Security-Policy enforces it).
// Every piece of data is put on the page with textContent or attributes,
// never parsed as HTML.
'use strict';

(function () {
  const KEY_STORAGE = 'triggers.key';
  const POLL_MS = 5000;
  const HEALTH_MS = 10000;
  const SUBS_MS = 15000;
  const MAX_LIVE = 50;
  const STREAM_IDLE_MS = 45000; // keep-alives come every 15 s
  const SVG_NS = 'http://www.w3.org/2000/svg';

  const state = {
    key: null,
    generation: 0, // bumped on every connect/disconnect: stale async work is dropped
    timers: [],
    stats: null,
    statsMissing: false,
    subscriptions: [], // GET /v1/subscriptions
    subsById: new Map(),
    live: [], // newest first
    liveIds: new Set(),
    stream: null, // {abort, gen}
    drawerEventId: null,
    retrying: new Set(),
    retryErrors: new Map(), // delivery id -> {text, at}: shown next to its Retry button for a while
  };

  // ------------------------------------------------------------- helpers
  const $ = (id) => document.getElementById(id);

  // el('div', {class: 'x', 'data-testid': 'y'}, 'text', child, ...): text
  // children become text nodes; attributes go through setAttribute.
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    setAttrs(node, attrs);
    append(node, children);
    return node;
  }
  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG_NS, tag);
    setAttrs(node, attrs);
    append(node, children);
    return node;
  }
  function setAttrs(node, attrs) {
    if (!attrs) return;
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith('on') && typeof v === 'function') {
        node.addEventListener(k.slice(2), v);
      } else {
        node.setAttribute(k, v === true ? '' : String(v));
      }
    }
  }
  function append(node, children) {
    for (const c of children.flat()) {
      if (c === undefined || c === null || c === false) continue;
      node.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
    }
  }
  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }
  function show(node, on) {
    node.hidden = !on;
  }
  function setText(id, text) {
    $(id).textContent = text;
  }
  function showError(id, err) {
    const node = $(id);
    if (!err) {
      node.hidden = true;
      node.textContent = '';
      return;
    }
    node.textContent = typeof err === 'string' ? err : describeError(err);
    node.hidden = false;
  }

  const nf = new Intl.NumberFormat('en-US');
  function fmtNum(n) {
    return typeof n === 'number' && isFinite(n) ? nf.format(n) : '–';
  }
  function pad(n) {
    return String(n).padStart(2, '0');
  }
  function fmtClock(d) {
    return pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
  }
  function fmtDateTime(iso) {
    const d = new Date(iso);
    if (isNaN(d)) return String(iso);
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' + fmtClock(d) +
      '.' + String(d.getMilliseconds()).padStart(3, '0');
  }
  function fmtDuration(s) {
    if (typeof s !== 'number' || !isFinite(s)) return '–';
    if (s < 1) return s <= 0 ? '0 s' : s.toFixed(1) + ' s';
    if (s < 60) return Math.round(s) + ' s';
    if (s < 3600) return Math.floor(s / 60) + ' min ' + pad(Math.round(s % 60)) + ' s';
    if (s < 86400) return Math.floor(s / 3600) + ' h ' + pad(Math.floor((s % 3600) / 60)) + ' min';
    return Math.floor(s / 86400) + ' d ' + Math.floor((s % 86400) / 3600) + ' h';
  }
  function fmtAgo(iso) {
    const t = new Date(iso).getTime();
    if (isNaN(t)) return '';
    const s = Math.max(0, (Date.now() - t) / 1000);
    if (s < 5) return 'just now';
    if (s < 60) return Math.round(s) + ' s ago';
    if (s < 3600) return Math.round(s / 60) + ' min ago';
    if (s < 86400) return Math.round(s / 3600) + ' h ago';
    return Math.round(s / 86400) + ' d ago';
  }
  function capitalize(s) {
    return s ? s[0].toUpperCase() + s.slice(1) : s;
  }
  function shortId(id) {
    if (typeof id !== 'string') return '';
    const u = id.indexOf('_');
    return u >= 0 && id.length > u + 10 ? id.slice(0, u + 1) + '…' + id.slice(-8) : id;
  }

  // --------------------------------------------------------------- API
  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }
  function describeError(err) {
    if (!(err instanceof ApiError)) return String(err && err.message ? err.message : err);
    if (err.status === 401) return 'This key was refused: ' + err.message;
    if (err.status === 403) return 'Not allowed: ' + err.message;
    if (err.status === 0) return err.message;
    return err.message + ' (HTTP ' + err.status + ')';
  }

  async function api(method, path, body) {
    const gen = state.generation;
    const headers = { Accept: 'application/json' };
    if (state.key) headers.Authorization = 'Bearer ' + state.key;
    const init = { method, headers, cache: 'no-store', credentials: 'omit' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      throw new ApiError(0, 'network', 'The node did not answer (' + (e && e.message ? e.message : e) + ').');
    }
    const text = await res.text();
    let json = null;
    if (text) {
      try {
        json = JSON.parse(text);
      } catch (e) {
        json = null;
      }
    }
    if (!res.ok) {
      const info = (json && json.error) || {};
      const err = new ApiError(res.status, info.code || 'http_' + res.status,
        info.message || res.statusText || 'request failed');
      if (res.status === 401 && gen === state.generation && state.key) onRefused(err);
      throw err;
    }
    return json;
  }

  // ------------------------------------------------------ node health
  async function pollHealth() {
    const pill = $('node-status');
    try {
      const res = await fetch('/health', { cache: 'no-store', credentials: 'omit' });
      const h = await res.json().catch(() => ({}));
      if (res.ok && h.status === 'ok') {
        pill.dataset.state = 'ok';
        setText('node-status-text', 'Healthy · v' + (h.version || '?') + ' · up ' + fmtDuration(h.uptime_s));
      } else {
        pill.dataset.state = 'down';
        const store = h.checks && h.checks.store ? ' (store ' + h.checks.store + ')' : '';
        setText('node-status-text', 'Unavailable' + store);
      }
    } catch (e) {
      pill.dataset.state = 'down';
      setText('node-status-text', 'Unreachable');
    }
  }

  // ------------------------------------------------- connect / disconnect
  async function connect(key, fromStorage) {
    key = key.trim();
    showError('key-error', null);
    if (!key) {
      showError('key-error', 'Paste an API key first.');
      return;
    }
    const btn = $('connect');
    btn.disabled = true;
    btn.textContent = 'Connecting…';
    const gen = ++state.generation;
    state.key = key;
    try {
      // Proves the key and its read scope (and fills the subscriptions table).
      const subs = await api('GET', '/v1/subscriptions?limit=1000');
      if (gen !== state.generation) return;
      sessionStorage.setItem(KEY_STORAGE, key);
      setSubscriptions(subs);
      enterDashboard();
    } catch (err) {
      if (gen !== state.generation) return;
      state.key = null;
      if (fromStorage) sessionStorage.removeItem(KEY_STORAGE);
      showError('key-error', err.status === 401 ? 'This key was refused (' + err.message + ').' : describeError(err));
      $('key-input').focus();
    } finally {
      btn.disabled = false;
      btn.textContent = 'Connect';
    }
  }

  function enterDashboard() {
    $('key-input').value = '';
    show($('connect-panel'), false);
    show($('dashboard'), true);
    show($('disconnect'), true);
    const badge = $('key-badge');
    badge.textContent = 'Key ' + state.key.slice(0, 8) + '…' + state.key.slice(-4);
    show(badge, true);
    const gen = state.generation;
    refreshAll();
    state.timers.push(setInterval(() => gen === state.generation && tick(), POLL_MS));
    state.timers.push(setInterval(() => gen === state.generation && refreshSubscriptions(), SUBS_MS));
    state.timers.push(setInterval(renderRelativeTimes, 1000));
    startStream();
  }

  function disconnect(message) {
    state.generation++;
    state.key = null;
    sessionStorage.removeItem(KEY_STORAGE);
    for (const t of state.timers) clearInterval(t);
    state.timers = [];
    stopStream();
    closeDrawer();
    state.stats = null;
    state.statsMissing = false;
    state.subscriptions = [];
    state.subsById = new Map();
    state.live = [];
    state.liveIds = new Set();
    state.retrying = new Set();
    state.retryErrors = new Map();
    clear($('live-body'));
    clear($('subs-body'));
    clear($('dead-list'));
    clear($('rates-chart'));
    clear($('rates-legend'));
    for (const id of ['rates-error', 'queue-error', 'subs-error', 'live-error', 'dead-error']) showError(id, null);
    show($('dashboard'), false);
    show($('connect-panel'), true);
    show($('disconnect'), false);
    show($('key-badge'), false);
    showError('key-error', message || null);
    $('key-input').focus();
  }

  function onRefused(err) {
    disconnect('This key was refused (' + err.message + '). Paste a valid key to reconnect.');
  }

  // ---------------------------------------------------------- polling
  function refreshAll() {
    tick();
  }
  function tick() {
    refreshStats();
    refreshDeadLetters();
    if (state.drawerEventId) loadDrawer(state.drawerEventId, false);
  }

  async function refreshStats() {
    const gen = state.generation;
    try {
      const stats = await api('GET', '/v1/stats');
      if (gen !== state.generation) return;
      state.stats = stats;
      state.statsMissing = false;
      showError('rates-error', null);
      showError('queue-error', null);
    } catch (err) {
      if (gen !== state.generation) return;
      if (err.status === 404) {
        state.statsMissing = true;
        state.stats = null;
        const msg = 'Statistics are not available on this node (GET /v1/stats answered 404).';
        showError('rates-error', msg);
        showError('queue-error', msg);
      } else {
        showError('rates-error', err);
        showError('queue-error', err);
      }
    }
    renderRates();
    renderQueue();
    renderSubscriptions();
  }

  async function refreshSubscriptions() {
    const gen = state.generation;
    try {
      const subs = await api('GET', '/v1/subscriptions?limit=1000');
      if (gen !== state.generation) return;
      setSubscriptions(subs);
      showError('subs-error', null);
    } catch (err) {
      if (gen === state.generation) showError('subs-error', err);
    }
    renderSubscriptions();
  }

  function setSubscriptions(resp) {
    const list = resp && Array.isArray(resp.data) ? resp.data : [];
    state.subscriptions = list;
    state.subsById = new Map(list.map((s) => [s.id, s]));
  }

  // ------------------------------------------------------------ rates
  const SERIES = [
    { key: 'ingested', label: 'Ingested', cls: 's-ingested' },
    { key: 'delivered', label: 'Delivered', cls: 's-delivered' },
    { key: 'failed', label: 'Failed', cls: 's-failed' },
  ];

  function niceMax(v) {
    if (v <= 4) return 4;
    const exp = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) {
      if (m * exp >= v) return m * exp;
    }
    return 10 * exp;
  }

  function renderRates() {
    const legend = $('rates-legend');
    const host = $('rates-chart');
    const stats = state.stats;
    const series = stats && Array.isArray(stats.series) ? stats.series : [];
    const bucketS = stats && stats.bucket_s ? stats.bucket_s : 10;

    clear(legend);
    for (const s of SERIES) {
      const total = series.reduce((a, b) => a + (Number(b[s.key]) || 0), 0);
      legend.appendChild(el('span', { class: 'legend-item ' + s.cls, 'data-series': s.key },
        el('span', { class: 'legend-swatch' }),
        el('span', { class: 'legend-label' }, s.label),
        el('span', { class: 'legend-value', 'data-testid': 'total-' + s.key }, fmtNum(stats ? total : NaN))));
    }

    clear(host);
    const width = Math.max(320, host.clientWidth || 640);
    const height = 240;
    const m = { top: 12, right: 16, bottom: 28, left: 44 };
    const w = width - m.left - m.right;
    const h = height - m.top - m.bottom;
    const n = Math.max(series.length, 30);
    let max = 0;
    for (const b of series) for (const s of SERIES) max = Math.max(max, Number(b[s.key]) || 0);
    const yMax = niceMax(max);
    const x = (i) => m.left + (n === 1 ? w / 2 : (i * w) / (n - 1));
    const y = (v) => m.top + h - (v / yMax) * h;

    const root = svg('svg', {
      viewBox: '0 0 ' + width + ' ' + height, width, height, class: 'chart-svg',
      role: 'img', 'aria-label': 'Ingested, delivered and failed events per ' + bucketS + ' s',
    });
    const grid = svg('g', { class: 'chart-grid' });
    const ticks = 4;
    for (let i = 0; i <= ticks; i++) {
      const v = (yMax * i) / ticks;
      const yy = y(v);
      grid.appendChild(svg('line', { x1: m.left, x2: m.left + w, y1: yy, y2: yy, class: i === 0 ? 'axis' : 'gridline' }));
      grid.appendChild(svg('text', { x: m.left - 8, y: yy + 4, class: 'tick tick-y' }, fmtNum(Math.round(v * 100) / 100)));
    }
    // x labels: one per minute, the newest bucket is "now".
    const perMin = Math.max(1, Math.round(60 / bucketS));
    for (let i = n - 1, k = 0; i >= 0; i -= perMin, k++) {
      grid.appendChild(svg('line', { x1: x(i), x2: x(i), y1: m.top + h, y2: m.top + h + 4, class: 'axis' }));
      grid.appendChild(svg('text', { x: x(i), y: m.top + h + 18, class: 'tick tick-x' }, k === 0 ? 'now' : '−' + k + ' min'));
    }
    root.appendChild(grid);

    if (series.length) {
      const off = n - series.length; // right-align a short series
      for (const s of SERIES) {
        const pts = series.map((b, i) => [x(i + off), y(Number(b[s.key]) || 0)]);
        const line = pts.map((p, i) => (i ? 'L' : 'M') + p[0].toFixed(1) + ' ' + p[1].toFixed(1)).join(' ');
        if (s.key === 'ingested') {
          const area = line + ' L' + pts[pts.length - 1][0].toFixed(1) + ' ' + (m.top + h) +
            ' L' + pts[0][0].toFixed(1) + ' ' + (m.top + h) + ' Z';
          root.appendChild(svg('path', { d: area, class: 'area ' + s.cls }));
        }
        root.appendChild(svg('path', { d: line, class: 'line ' + s.cls, 'data-series': s.key }));
      }
      // Hover: a guide line and a tooltip with the bucket's numbers.
      const guide = svg('line', { x1: 0, x2: 0, y1: m.top, y2: m.top + h, class: 'guide', visibility: 'hidden' });
      root.appendChild(guide);
      const dots = SERIES.map((s) => {
        const c = svg('circle', { r: 3.5, cx: 0, cy: 0, class: 'dot ' + s.cls, visibility: 'hidden' });
        root.appendChild(c);
        return c;
      });
      const tip = el('div', { class: 'chart-tip', hidden: true });
      const overlay = svg('rect', { x: m.left, y: m.top, width: w, height: h, class: 'overlay' });
      overlay.addEventListener('mousemove', (ev) => {
        const rect = root.getBoundingClientRect();
        const px = ((ev.clientX - rect.left) / rect.width) * width;
        let i = Math.round(((px - m.left) / w) * (n - 1)) - off;
        i = Math.max(0, Math.min(series.length - 1, i));
        const b = series[i];
        const gx = x(i + off);
        guide.setAttribute('x1', gx);
        guide.setAttribute('x2', gx);
        guide.setAttribute('visibility', 'visible');
        SERIES.forEach((s, k) => {
          dots[k].setAttribute('cx', gx);
          dots[k].setAttribute('cy', y(Number(b[s.key]) || 0));
          dots[k].setAttribute('visibility', 'visible');
        });
        clear(tip);
        const t = new Date(b.t);
        tip.appendChild(el('div', { class: 'chart-tip-title' }, isNaN(t) ? String(b.t) : fmtClock(t)));
        for (const s of SERIES) {
          tip.appendChild(el('div', { class: 'chart-tip-row ' + s.cls },
            el('span', { class: 'legend-swatch' }), el('span', null, s.label), el('b', null, fmtNum(Number(b[s.key]) || 0))));
        }
        tip.hidden = false;
        const left = (gx / width) * rect.width;
        tip.style.left = Math.min(rect.width - 150, Math.max(0, left + 12)) + 'px';
        tip.style.top = '8px';
      });
      overlay.addEventListener('mouseleave', () => {
        guide.setAttribute('visibility', 'hidden');
        dots.forEach((d) => d.setAttribute('visibility', 'hidden'));
        tip.hidden = true;
      });
      root.appendChild(overlay);
      host.appendChild(root);
      host.appendChild(tip);
    } else {
      root.appendChild(svg('text', { x: m.left + w / 2, y: m.top + h / 2, class: 'chart-empty' },
        state.statsMissing ? 'No statistics from this node' : 'Loading…'));
      host.appendChild(root);
    }
  }

  // ------------------------------------------------------------ queue
  function renderQueue() {
    const d = state.stats && state.stats.deliveries;
    const val = (k) => (d ? fmtNum(Number(d[k]) || 0) : '–');
    setText('q-pending', val('pending'));
    setText('q-in-flight', val('in_flight'));
    setText('q-retrying', val('retrying'));
    setText('q-dead', val('dead'));
    setText('q-succeeded', val('succeeded'));
    $('queue-card').dataset.dead = d && Number(d.dead) > 0 ? 'yes' : 'no';
    setText('q-oldest', state.stats ? fmtDuration(Number(state.stats.oldest_due_age_s) || 0) : '–');
    setText('q-updated', state.stats && state.stats.now ? fmtClock(new Date(state.stats.now)) : '–');
  }

  // ---------------------------------------------------- subscriptions
  const CIRCUIT = {
    closed: ['Closed', 'badge-ok'],
    open: ['Open', 'badge-danger'],
    half_open: ['Half-open', 'badge-warn'],
  };

  function renderSubscriptions() {
    const body = $('subs-body');
    const health = new Map();
    if (state.stats && Array.isArray(state.stats.subscriptions)) {
      for (const s of state.stats.subscriptions) health.set(s.id, s);
    }
    // Every subscription of GET /v1/subscriptions, plus any the stats know of.
    const rows = state.subscriptions.slice();
    for (const [id, h] of health) if (!state.subsById.has(id)) rows.push(h);
    clear(body);
    for (const s of rows) {
      const hs = health.get(s.id) || {};
      const enabled = s.enabled !== undefined ? s.enabled : hs.enabled;
      const kind = s.kind || hs.kind || 'webhook';
      const url = s.url || hs.url;
      const circuit = CIRCUIT[hs.circuit] || null;
      const attempts = Number(hs.attempts) || 0;
      const rate = typeof hs.success_rate === 'number' ? hs.success_rate : null;

      const rateCell = el('td', { class: 'col-rate' });
      if (rate === null) {
        rateCell.appendChild(el('span', { class: 'muted' }, attempts ? '–' : 'no attempts'));
      } else {
        const level = rate >= 0.99 ? 'ok' : rate >= 0.9 ? 'warn' : 'danger';
        const bar = el('span', { class: 'bar' }, el('span', { class: 'bar-fill bar-' + level }));
        bar.firstChild.style.width = Math.round(rate * 100) + '%';
        rateCell.appendChild(el('span', { class: 'rate' }, bar,
          el('span', { class: 'rate-value rate-' + level }, (rate * 100).toFixed(rate === 1 ? 0 : 1) + '%')));
      }
      body.appendChild(el('tr', { 'data-testid': 'subscription', 'data-subscription-id': s.id },
        el('td', null,
          el('div', { class: 'mono strong' }, s.id),
          el('div', { class: 'muted small' }, s.description || (kind === 'pull' ? 'Pull inbox' : 'Webhook'))),
        el('td', null, el('div', { class: 'url-cell' },
          el('span', { class: 'kind kind-' + kind }, kind),
          el('span', { class: 'mono url', title: url || '' }, url || 'pull inbox'))),
        el('td', null, el('span', { class: 'badge ' + (enabled === false ? 'badge-muted' : 'badge-ok') },
          enabled === false ? 'Disabled' : 'Enabled')),
        el('td', null, circuit ? el('span', { class: 'badge ' + circuit[1], 'data-testid': 'circuit' }, circuit[0])
          : el('span', { class: 'muted' }, kind === 'pull' ? 'n/a' : '–')),
        el('td', { class: 'num' }, attempts ? fmtNum(Number(hs.succeeded) || 0) + ' / ' + fmtNum(attempts) : '–'),
        rateCell));
    }
    setText('subs-count', rows.length ? String(rows.length) : '');
    show($('subs-empty'), rows.length === 0);
  }

  // ------------------------------------------------------ dead letters
  async function refreshDeadLetters() {
    const gen = state.generation;
    try {
      const resp = await api('GET', '/v1/deliveries?status=dead&limit=100');
      if (gen !== state.generation) return;
      showError('dead-error', null);
      renderDeadLetters(resp && Array.isArray(resp.data) ? resp.data : [], !!(resp && resp.next_cursor));
    } catch (err) {
      if (gen === state.generation) showError('dead-error', err);
    }
  }

  function renderDeadLetters(list, more) {
    const ul = $('dead-list');
    list = list.slice().sort((a, b) => String(b.updated_at).localeCompare(String(a.updated_at)));
    clear(ul);
    for (const d of list) {
      const sub = state.subsById.get(d.subscription_id);
      const what = d.last_status_code ? 'HTTP ' + d.last_status_code : 'No response';
      const retryBtn = el('button', {
        type: 'button', class: 'btn btn-small btn-primary', 'data-testid': 'retry', 'data-delivery-id': d.id,
      }, state.retrying.has(d.id) ? 'Retrying…' : 'Retry');
      retryBtn.disabled = state.retrying.has(d.id);
      const rowError = retryErrorNode(d.id);
      retryBtn.addEventListener('click', () => retryDelivery(d.id, retryBtn));
      const eventLink = el('button', { type: 'button', class: 'link mono', title: 'Show the event' }, shortId(d.event_id));
      eventLink.addEventListener('click', () => openDrawer(d.event_id));
      ul.appendChild(el('li', { class: 'dead-item', 'data-testid': 'dead-letter', 'data-delivery-id': d.id, 'data-event-id': d.event_id },
        el('div', { class: 'dead-main' },
          el('div', { class: 'dead-title' },
            el('span', { class: 'badge badge-danger' }, what),
            el('span', { class: 'mono url', title: (sub && sub.url) || d.subscription_id }, (sub && sub.url) || d.subscription_id)),
          el('div', { class: 'dead-meta muted small' },
            el('span', { class: 'mono' }, d.id), ' · event ', eventLink, ' · ',
            fmtNum(d.attempt_count) + (d.attempt_count === 1 ? ' attempt' : ' attempts'), ' · ',
            el('span', { 'data-ago': d.updated_at }, fmtAgo(d.updated_at))),
          d.last_error && d.last_error !== what ? el('div', { class: 'dead-error small', title: d.last_error }, d.last_error) : null,
          rowError),
        el('div', { class: 'dead-actions' }, retryBtn)));
    }
    setText('dead-count', list.length ? (more ? list.length + '+' : String(list.length)) : '');
    show($('dead-empty'), list.length === 0);
  }

  // The error of the last retry of this delivery (for 20 s), or a hidden node.
  function retryErrorNode(id) {
    const e = state.retryErrors.get(id);
    const fresh = e && Date.now() - e.at < 20000;
    return el('p', { class: 'inline-error small', 'data-testid': 'retry-error', hidden: !fresh }, fresh ? e.text : '');
  }

  async function retryDelivery(id, btn) {
    const gen = state.generation;
    state.retrying.add(id);
    state.retryErrors.delete(id);
    if (btn) {
      btn.disabled = true;
      btn.textContent = 'Retrying…';
    }
    try {
      await api('POST', '/v1/deliveries/' + encodeURIComponent(id) + '/retry');
      if (gen !== state.generation) return;
      toast('Delivery ' + shortId(id) + ' queued for another attempt.');
    } catch (err) {
      if (gen !== state.generation) return;
      state.retryErrors.set(id, { text: describeError(err), at: Date.now() });
      toast('Retry failed: ' + describeError(err), true);
    } finally {
      state.retrying.delete(id);
    }
    refreshDeadLetters();
    refreshStats();
    if (state.drawerEventId) loadDrawer(state.drawerEventId, false);
    // The attempt goes out within a moment: look again shortly.
    setTimeout(() => {
      if (gen !== state.generation) return;
      refreshDeadLetters();
      if (state.drawerEventId) loadDrawer(state.drawerEventId, false);
    }, 1200);
  }

  // ------------------------------------------------------ live events
  function setStreamState(s, text) {
    const node = $('stream-status');
    node.dataset.state = s;
    setText('stream-status-text', text);
  }

  function stopStream() {
    if (state.stream) {
      state.stream.stopped = true;
      state.stream.controller.abort();
      clearTimeout(state.stream.retryTimer);
      state.stream = null;
    }
    setStreamState('idle', 'Idle');
  }

  function startStream() {
    stopStream();
    const s = { controller: new AbortController(), stopped: false, backoff: 1000, retryTimer: null, gen: state.generation };
    state.stream = s;
    runStream(s);
  }

  async function runStream(s) {
    const filter = $('type-filter').value.trim();
    const path = '/v1/events/stream' + (filter ? '?type=' + encodeURIComponent(filter) : '');
    let delay = s.backoff;
    setStreamState('connecting', 'Connecting…');
    try {
      const res = await fetch(path, {
        headers: { Authorization: 'Bearer ' + state.key, Accept: 'text/event-stream' },
        cache: 'no-store', credentials: 'omit', signal: s.controller.signal,
      });
      if (!res.ok) {
        let info = {};
        try {
          info = ((await res.json()) || {}).error || {};
        } catch (e) { /* not JSON */ }
        const err = new ApiError(res.status, info.code || 'http_' + res.status, info.message || res.statusText);
        if (res.status === 401) {
          if (!s.stopped && s.gen === state.generation) onRefused(err);
          return;
        }
        throw err;
      }
      if (!res.body) throw new Error('this browser cannot read a streamed response');
      s.backoff = 1000;
      delay = 1000;
      showError('live-error', null);
      setStreamState('live', 'Live');
      await readFrames(s, res.body.getReader());
      if (!s.stopped) setStreamState('connecting', 'Reconnecting…');
    } catch (err) {
      if (s.stopped) return;
      if (err instanceof ApiError && err.status === 404) {
        showError('live-error', 'The live stream is not available on this node (GET /v1/events/stream answered 404).');
        delay = 30000;
      } else if (err instanceof ApiError) {
        showError('live-error', err);
        delay = s.backoff;
        s.backoff = Math.min(s.backoff * 2, 30000);
      } else {
        delay = s.backoff;
        s.backoff = Math.min(s.backoff * 2, 30000);
      }
      setStreamState('down', 'Reconnecting in ' + Math.round(delay / 1000) + ' s');
    }
    if (s.stopped || state.stream !== s) return;
    s.controller = new AbortController();
    s.retryTimer = setTimeout(() => runStream(s), delay);
  }

  // Reads Server-Sent Events frames until the stream ends or goes idle.
  async function readFrames(s, reader) {
    const decoder = new TextDecoder('utf-8');
    let buf = '';
    let idle = null;
    const arm = () => {
      clearTimeout(idle);
      idle = setTimeout(() => s.controller.abort(), STREAM_IDLE_MS);
    };
    arm();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        arm();
        buf += decoder.decode(value, { stream: true });
        buf = buf.replace(/\r\n?/g, '\n');
        let sep;
        while ((sep = buf.indexOf('\n\n')) >= 0) {
          const frame = buf.slice(0, sep);
          buf = buf.slice(sep + 2);
          handleFrame(frame);
        }
      }
    } catch (err) {
      if (s.stopped) return;
      if (err && err.name === 'AbortError') return; // idle: reconnect
      throw err;
    } finally {
      clearTimeout(idle);
    }
  }

  function handleFrame(frame) {
    let type = 'message';
    const data = [];
    for (const line of frame.split('\n')) {
      if (!line || line[0] === ':') continue;
      const c = line.indexOf(':');
      const field = c < 0 ? line : line.slice(0, c);
      let value = c < 0 ? '' : line.slice(c + 1);
      if (value[0] === ' ') value = value.slice(1);
      if (field === 'event') type = value;
      else if (field === 'data') data.push(value);
    }
    if (!data.length || (type !== 'event' && type !== 'message')) return;
    let ev;
    try {
      ev = JSON.parse(data.join('\n'));
    } catch (e) {
      return;
    }
    if (ev && typeof ev.id === 'string') addLiveEvent(ev);
  }

  function addLiveEvent(ev) {
    if (state.liveIds.has(ev.id)) return;
    state.live.unshift(ev);
    state.liveIds.add(ev.id);
    while (state.live.length > MAX_LIVE) state.liveIds.delete(state.live.pop().id);
    const body = $('live-body');
    body.insertBefore(liveRow(ev, true), body.firstChild);
    while (body.children.length > MAX_LIVE) body.removeChild(body.lastChild);
    show($('live-empty'), false);
  }

  function liveRow(ev, fresh) {
    const t = new Date(ev.time);
    const row = el('tr', {
      class: fresh ? 'row-new' : null, 'data-testid': 'event-row', 'data-event-id': ev.id, tabindex: 0,
      title: 'Show event ' + ev.id,
    },
    el('td', { class: 'mono nowrap muted' }, isNaN(t) ? '' : fmtClock(t)),
    el('td', null, el('span', { class: 'type-chip' }, String(ev.type))),
    el('td', { class: 'ellipsis' }, ev.subject ? String(ev.subject) : el('span', { class: 'muted' }, '–')),
    el('td', { class: 'mono muted nowrap' }, shortId(ev.id)));
    row.addEventListener('click', () => openDrawer(ev.id));
    row.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' || e.key === ' ') {
        e.preventDefault();
        openDrawer(ev.id);
      }
    });
    return row;
  }

  function renderRelativeTimes() {
    for (const node of document.querySelectorAll('[data-ago]')) node.textContent = fmtAgo(node.dataset.ago);
  }

  // ----------------------------------------------------------- drawer
  function openDrawer(eventId) {
    state.drawerEventId = eventId;
    const drawer = $('drawer');
    drawer.hidden = false;
    drawer.setAttribute('aria-hidden', 'false');
    $('drawer-backdrop').hidden = false;
    setText('drawer-title', eventId);
    clear($('drawer-facts'));
    clear($('drawer-deliveries'));
    $('drawer-deliveries').appendChild(el('p', { class: 'muted' }, 'Loading…'));
    setText('drawer-json', '');
    showError('drawer-error', null);
    for (const r of document.querySelectorAll('#live-body tr')) r.classList.toggle('row-selected', r.dataset.eventId === eventId);
    loadDrawer(eventId, true);
  }

  function closeDrawer() {
    state.drawerEventId = null;
    const drawer = $('drawer');
    drawer.hidden = true;
    drawer.setAttribute('aria-hidden', 'true');
    $('drawer-backdrop').hidden = true;
    for (const r of document.querySelectorAll('#live-body tr.row-selected')) r.classList.remove('row-selected');
  }

  async function loadDrawer(eventId, first) {
    const gen = state.generation;
    const still = () => gen === state.generation && state.drawerEventId === eventId;
    let ev;
    try {
      ev = await api('GET', '/v1/events/' + encodeURIComponent(eventId));
    } catch (err) {
      if (still()) showError('drawer-error', err.status === 404 ? 'This event no longer exists (retention) or belongs to another tenant.' : err);
      return;
    }
    const summaries = Array.isArray(ev.deliveries) ? ev.deliveries.slice(0, 25) : [];
    const details = await Promise.all(summaries.map((d) =>
      api('GET', '/v1/deliveries/' + encodeURIComponent(d.id)).catch(() => d)));
    if (!still()) return;
    showError('drawer-error', null);

    const facts = $('drawer-facts');
    clear(facts);
    const fact = (k, v, mono) => facts.appendChild(el('div', null, el('dt', null, k),
      el('dd', { class: mono ? 'mono' : null }, v === null || v === undefined || v === '' ? '–' : String(v))));
    fact('Type', ev.type, true);
    fact('Time', ev.time ? fmtDateTime(ev.time) : '');
    fact('Source', ev.source);
    fact('Subject', ev.subject);
    fact('Ordering key', ev.ordering_key, true);
    fact('Deliveries', String(Array.isArray(ev.deliveries) ? ev.deliveries.length : 0));

    const host = $('drawer-deliveries');
    clear(host);
    if (!details.length) host.appendChild(el('p', { class: 'muted' }, 'No subscription matched this event.'));
    for (const d of details) host.appendChild(deliveryCard(d));

    const { data, deliveries, ...meta } = ev; // eslint-disable-line no-unused-vars
    const shown = Object.assign({}, meta, { data: data });
    setText('drawer-json', JSON.stringify(shown, null, 2));
    if (first) $('drawer-close').focus();
  }

  const STATUS_BADGE = {
    succeeded: 'badge-ok', pending: 'badge-info', in_flight: 'badge-info', retrying: 'badge-warn', dead: 'badge-danger',
  };

  function deliveryCard(d) {
    const sub = state.subsById.get(d.subscription_id);
    const attempts = Array.isArray(d.attempts) ? d.attempts : [];
    const head = el('div', { class: 'dlv-head' },
      el('span', { class: 'badge ' + (STATUS_BADGE[d.status] || 'badge-muted'), 'data-testid': 'delivery-status' },
        capitalize(String(d.status).replace('_', ' '))),
      el('span', { class: 'mono url', title: (sub && sub.url) || '' }, (sub && sub.url) || d.subscription_id),
      el('span', { class: 'muted small nowrap' }, fmtNum(d.attempt_count) + (d.attempt_count === 1 ? ' attempt' : ' attempts')));
    const card = el('div', { class: 'dlv', 'data-testid': 'delivery', 'data-delivery-id': d.id, 'data-status': d.status }, head);
    if (d.status === 'dead') {
      const btn = el('button', { type: 'button', class: 'btn btn-small btn-primary', 'data-testid': 'drawer-retry' },
        state.retrying.has(d.id) ? 'Retrying…' : 'Retry');
      btn.disabled = state.retrying.has(d.id);
      btn.addEventListener('click', () => retryDelivery(d.id, btn));
      head.appendChild(btn);
      card.appendChild(retryErrorNode(d.id));
    }
    const meta = el('div', { class: 'muted small dlv-meta' }, el('span', { class: 'mono' }, d.id));
    if (d.next_attempt_at) meta.appendChild(document.createTextNode(' · next attempt ' + fmtDateTime(d.next_attempt_at)));
    card.appendChild(meta);
    if (attempts.length) {
      const tbody = el('tbody');
      attempts.forEach((a, i) => {
        const ok = typeof a.status_code === 'number' && a.status_code >= 200 && a.status_code < 300;
        tbody.appendChild(el('tr', {
          'data-testid': 'attempt', 'data-outcome': ok ? 'success' : 'failure',
          'data-status-code': a.status_code === null || a.status_code === undefined ? '' : a.status_code,
        },
        el('td', { class: 'muted' }, String(i + 1)),
        el('td', { class: 'nowrap' }, a.at ? fmtDateTime(a.at) : ''),
        el('td', null, el('span', { class: 'badge ' + (ok ? 'badge-ok' : 'badge-danger') },
          a.status_code === null || a.status_code === undefined ? 'no response' : String(a.status_code))),
        el('td', { class: 'num nowrap' }, typeof a.latency_ms === 'number' ? fmtNum(Math.round(a.latency_ms)) + ' ms' : '–'),
        el('td', { class: 'ellipsis', title: a.error || a.response_snippet || '' },
          a.error ? String(a.error) : a.response_snippet ? String(a.response_snippet) : '')));
      });
      card.appendChild(el('table', { class: 'table table-compact' },
        el('thead', null, el('tr', null, el('th', null, '#'), el('th', null, 'At'), el('th', null, 'Status'),
          el('th', { class: 'num' }, 'Latency'), el('th', null, 'Error / response'))),
        tbody));
    } else if (d.status !== 'succeeded') {
      card.appendChild(el('p', { class: 'muted small' }, 'Not attempted yet.'));
    }
    return card;
  }

  // ------------------------------------------------------------ toast
  let toastTimer = null;
  function toast(text, isError) {
    let node = $('toast');
    if (!node) {
      node = el('div', { id: 'toast', class: 'toast', role: 'status', 'data-testid': 'toast' });
      document.body.appendChild(node);
    }
    node.textContent = text;
    node.classList.toggle('toast-error', !!isError);
    node.classList.add('toast-show');
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => node.classList.remove('toast-show'), 3500);
  }

  // ------------------------------------------------------------- init
  function init() {
    $('key-form').addEventListener('submit', (e) => {
      e.preventDefault();
      connect($('key-input').value, false);
    });
    $('disconnect').addEventListener('click', () => disconnect(null));
    $('drawer-close').addEventListener('click', closeDrawer);
    $('drawer-backdrop').addEventListener('click', closeDrawer);
    $('drawer-refresh').addEventListener('click', () => state.drawerEventId && loadDrawer(state.drawerEventId, false));
    document.addEventListener('keydown', (e) => {
      if (e.key === 'Escape' && state.drawerEventId) closeDrawer();
    });
    let filterTimer = null;
    $('type-filter').addEventListener('input', () => {
      clearTimeout(filterTimer);
      filterTimer = setTimeout(() => state.key && startStream(), 600);
    });
    if (typeof ResizeObserver === 'function') {
      let last = 0;
      new ResizeObserver((entries) => {
        const w = Math.round(entries[0].contentRect.width);
        if (w !== last) {
          last = w;
          if (state.key) renderRates();
        }
      }).observe($('rates-chart'));
    }
    pollHealth();
    setInterval(pollHealth, HEALTH_MS);
    const saved = sessionStorage.getItem(KEY_STORAGE);
    if (saved) connect(saved, true);
    else $('key-input').focus();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
