// The toptally dashboard, a plain browser script (no build step). Top-N frames come live from the
// WebSocket subscription at /ws; while there is no socket, the same frames are made by polling
// GET /api/stats, so one code path draws both. The ingest rate is sampled from /metrics.
//
// Page parameters: ?poll=<ms> (default 2000), how often to poll and sample; ?at=<Unix seconds or
// UTC date-time>, the windows as they were at that instant (polled, as nothing is pushed for them).

'use strict';

(() => {
  const params = new URLSearchParams(location.search);
  const POLL_MS = Math.min(Math.max(Number(params.get('poll')) || 2000, 10), 60_000);
  const AT = parseAt(params.get('at'));
  const TOP_N = 10;
  const RATE_SPAN_S = 600;
  const TOKEN_KEY = 'toptally.readToken';
  const RETRY_MAX_MS = 30_000;
  const RANKS = Array.from({ length: TOP_N }, (_, i) => i);
  const number = new Intl.NumberFormat('en');
  const compact = new Intl.NumberFormat('en', { notation: 'compact', maximumFractionDigits: 1 });

  let token = localStorage.getItem(TOKEN_KEY) ?? '';
  /** The socket being tried or in use, and whether it is subscribed (then polling stats stops). */
  let ws = null;
  let live = false;
  let retryMs = 1000;
  let retryTimer = 0;

  const connection = document.getElementById('connection');
  function setState(state, text) {
    connection.dataset.state = state;
    connection.textContent = text;
  }

  // --- data sources ------------------------------------------------------------------------------

  class HttpError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  async function get(path) {
    const headers = token ? { Authorization: `Bearer ${token}` } : {};
    // A server that stopped answering must not stall the polling loop.
    const res = await fetch(path, { headers, cache: 'no-store', signal: AbortSignal.timeout(Math.max(5 * POLL_MS, 5000)) });
    if (!res.ok) {
      const body = await res.json().catch(() => null);
      throw new HttpError(res.status, body?.error?.message ?? `${res.status} ${res.statusText}`);
    }
    return res;
  }

  const STATS_QUERIES = [
    { panel: 'minute', query: 'window=minute' },
    { panel: 'hour', query: 'window=hour' },
    { panel: 'open', query: 'window=minute&open=true' },
  ];
  const AT_QUERY = AT === null ? '' : `&at=${AT}`;

  async function pollStats() {
    try {
      const answers = await Promise.all(
        STATS_QUERIES.map(({ query }) => get(`/api/stats?${query}&limit=${TOP_N}${AT_QUERY}`).then((res) => res.json())),
      );
      answers.forEach((stats, i) => {
        const final = STATS_QUERIES[i].panel !== 'open';
        onFrame({ type: 'top', window: stats.window, from: stats.from, to: stats.to, top: stats.top, final });
      });
      if (AT !== null) setState('past', `at ${formatInstant(AT)} UTC · not live`);
      else if (!live) setState('polling', `polling every ${seconds(POLL_MS)} · no WebSocket`);
    } catch (err) {
      if (live) return;
      for (const panel of bars.values()) panel.stale(err.message);
      if (err instanceof HttpError && (err.status === 401 || err.status === 403)) setState('unauthorized', 'read token refused');
      else if (err instanceof HttpError && AT !== null) setState('offline', `at ${formatInstant(AT)}: ${err.message}`);
      else setState('offline', 'server unreachable · retrying');
    }
  }

  function connect() {
    const url = new URL('/ws', location.href);
    url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
    if (token) url.searchParams.set('token', token);
    const socket = new WebSocket(url);
    ws = socket;
    socket.onopen = () => {
      retryMs = 1000;
      live = true;
      for (const window of ['minute', 'hour']) {
        socket.send(JSON.stringify({ type: 'subscribe', window, limit: TOP_N, live: window === 'minute' }));
      }
      setState('live', 'live · WebSocket');
      pollStats(); // fill every panel now, whatever the server sends first
    };
    socket.onmessage = (event) => {
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      onFrame(frame);
    };
    socket.onclose = () => {
      if (ws !== socket) return;
      ws = null;
      // Nothing is pushed any more: the panels are stale until the next poll answers.
      if (live) for (const panel of bars.values()) panel.stale('the WebSocket closed');
      if (live) setState('polling', 'WebSocket closed · polling');
      live = false;
      retryTimer = setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
    };
  }

  function reconnect() {
    clearTimeout(retryTimer);
    if (ws) {
      const old = ws;
      ws = null;
      live = false;
      old.close();
    }
    retryMs = 1000;
    connect();
  }

  function onFrame(frame) {
    if (frame.type === 'top') {
      const panel = frame.final ? frame.window : frame.window === 'minute' ? 'open' : null;
      if (panel) bars.get(panel).show(frame);
      // A minute that closed is no longer the open one: its successor starts empty.
      if (frame.final && frame.window === 'minute') bars.get('open').moveTo(frame.to, frame.to + 60);
    } else if (frame.type === 'error') {
      setState(live ? 'live' : 'offline', `server: ${frame.error?.message ?? 'error'}`);
    }
  }

  // --- panels ------------------------------------------------------------------------------------

  const COLORS = { minute: '#2f6fdf', hour: '#7a4fd6', open: '#14a37f', rate: '#e07b00' };

  function chartWidth(section) {
    return section.querySelector('.chart').clientWidth;
  }

  /** A top-10 panel: horizontal bars, rank 1 at the top, with the table a screen reader reads. */
  function barPanel(id) {
    const section = document.getElementById(id);
    const range = section.querySelector('.range');
    const tbody = section.querySelector('tbody');
    const staleNote = section.querySelector('.stale');
    let labels = [];
    let shownTo = -Infinity;
    section.classList.add('is-empty');

    const plot = new uPlot(
      {
        width: chartWidth(section),
        height: 280,
        legend: { show: false },
        cursor: { show: false },
        scales: {
          x: { time: false, ori: 1, dir: -1, range: [-0.5, TOP_N - 0.5] },
          y: { ori: 0, dir: 1, range: (_u, _min, max) => [0, niceMax(max)] },
        },
        axes: [
          {
            scale: 'x',
            side: 3,
            size: 170,
            gap: 8,
            grid: { show: false },
            ticks: { show: false },
            splits: () => RANKS,
            values: (_u, splits) => splits.map((i) => shorten(labels[i] ?? '', 24)),
          },
          {
            scale: 'y',
            side: 2,
            size: 36,
            grid: { stroke: '#eef0f3' },
            ticks: { show: false },
            values: (_u, splits) => splits.map((v) => compact.format(v)),
          },
        ],
        series: [
          {},
          {
            fill: COLORS[id] + 'cc',
            stroke: COLORS[id],
            width: 0,
            points: { show: false },
            paths: uPlot.paths.bars({ size: [0.72, 30] }),
          },
        ],
        hooks: { draw: [drawCounts] },
      },
      [RANKS, RANKS.map(() => null)],
      section.querySelector('.chart'),
    );
    resizers.push(() => plot.setSize({ width: chartWidth(section), height: 280 }));

    return {
      show(frame) {
        if (frame.to < shownTo) return; // an older window's answer that arrived late
        shownTo = frame.to;
        const top = frame.top.slice(0, TOP_N);
        range.textContent = formatRange(frame.from, frame.to);
        labels = top.map((entry) => entry.domain);
        plot.setData([RANKS, RANKS.map((i) => top[i]?.count ?? null)]);
        section.classList.toggle('is-empty', top.length === 0);
        section.classList.remove('is-stale');
        tbody.replaceChildren(...top.map((entry) => row(entry.domain, number.format(entry.count))));
      },
      /** Marks what is shown as possibly out of date, saying since when and why. */
      stale(reason) {
        if (!section.classList.contains('is-stale')) staleNote.title = `since ${clockTime(Date.now() / 1000)} UTC: ${reason}`;
        section.classList.add('is-stale');
      },
      /** Shows the window [from, to) as empty, unless the panel already shows it or a later one. */
      moveTo(from, to) {
        if (shownTo < to) this.show({ from, to, top: [] });
      },
    };
  }

  /** Writes each bar's count just past its end. */
  function drawCounts(u) {
    const { ctx } = u;
    const counts = u.data[1];
    ctx.save();
    ctx.font = `${12 * uPlot.pxRatio}px system-ui, sans-serif`;
    ctx.fillStyle = '#1d2330';
    ctx.textBaseline = 'middle';
    ctx.textAlign = 'left';
    for (let i = 0; i < counts.length; i++) {
      if (counts[i] == null) continue;
      const x = u.valToPos(counts[i], 'y', true);
      const y = u.valToPos(i, 'x', true);
      ctx.fillText(number.format(counts[i]), x + 6 * uPlot.pxRatio, y);
    }
    ctx.restore();
  }

  function ratePanel() {
    const section = document.getElementById('rate');
    const now = section.querySelector('.now');
    const staleNote = section.querySelector('.stale');
    const times = [];
    const rates = [];
    let last = null;
    section.classList.add('is-empty');

    const plot = new uPlot(
      {
        width: chartWidth(section),
        height: 280,
        legend: { show: false },
        scales: { y: { range: (_u, _min, max) => [0, niceMax(max)] } },
        axes: [
          {
            grid: { stroke: '#eef0f3' },
            // Sub-second splits (short poll intervals) would repeat a label: keep the first of each.
            values: (_u, splits) => splits.map((t, i) => (i > 0 && clockTime(splits[i - 1]) === clockTime(t) ? '' : clockTime(t))),
          },
          { size: 44, grid: { stroke: '#eef0f3' }, values: (_u, splits) => splits.map((v) => compact.format(v)) },
        ],
        series: [{}, { stroke: COLORS.rate, fill: COLORS.rate + '22', width: 2, points: { show: false } }],
      },
      [times, rates],
      section.querySelector('.chart'),
    );
    resizers.push(() => plot.setSize({ width: chartWidth(section), height: 280 }));

    return {
      async sample() {
        let total;
        try {
          total = metricValue(await (await get('/metrics')).text(), 'toptally_ingested_counters_total');
        } catch (err) {
          if (!section.classList.contains('is-stale')) staleNote.title = `since ${clockTime(Date.now() / 1000)} UTC: ${err.message}`;
          section.classList.add('is-stale');
          return;
        }
        section.classList.remove('is-stale');
        const t = Date.now() / 1000;
        // A counter that went down means the server restarted: start over from this sample.
        if (last && total >= last.total && t > last.t) {
          const rate = (total - last.total) / (t - last.t);
          times.push(t);
          rates.push(rate);
          while (times[0] < t - RATE_SPAN_S) {
            times.shift();
            rates.shift();
          }
          plot.setData([times, rates]);
          now.textContent = `${number.format(Math.round(rate))} /s`;
          section.dataset.rate = String(rate);
          section.dataset.points = String(times.length);
          section.classList.remove('is-empty');
        }
        last = { t, total };
      },
    };
  }

  // --- helpers -----------------------------------------------------------------------------------

  const resizers = [];
  addEventListener('resize', () => resizers.forEach((resize) => resize()));

  function metricValue(text, name) {
    for (const line of text.split('\n')) {
      if (line.startsWith(name + ' ')) return Number(line.slice(name.length + 1));
    }
    throw new Error(`${name} not in /metrics`);
  }

  function niceMax(max) {
    if (!(max > 0)) return 1;
    const step = 10 ** Math.floor(Math.log10(max));
    return Math.ceil((max * 1.12) / step) * step;
  }

  function shorten(text, length) {
    return text.length > length ? text.slice(0, length - 1) + '…' : text;
  }

  function formatRange(from, to) {
    const day = (s) => new Date(s * 1000).toISOString().slice(0, 10);
    const hhmm = (s) => new Date(s * 1000).toISOString().slice(11, 16);
    return `${day(from)} ${hhmm(from)}–${hhmm(to)} UTC`;
  }

  /** ?at= as Unix seconds: digits, or a date-time read as UTC (2020-12-16T07:05); null when absent or unreadable. */
  function parseAt(raw) {
    if (!raw) return null;
    if (/^[0-9]+$/.test(raw)) return Number(raw);
    const ms = Date.parse(/[zZ]|[+-][0-9]{2}:?[0-9]{2}$/.test(raw) ? raw : `${raw}Z`);
    return Number.isFinite(ms) ? Math.floor(ms / 1000) : null;
  }

  function formatInstant(unixSeconds) {
    return new Date(unixSeconds * 1000).toISOString().slice(0, 16).replace('T', ' ');
  }

  function clockTime(unixSeconds) {
    return new Date(unixSeconds * 1000).toISOString().slice(11, 19);
  }

  function seconds(ms) {
    return ms >= 1000 ? `${ms / 1000} s` : `${ms} ms`;
  }

  function row(...cells) {
    const tr = document.createElement('tr');
    for (const text of cells) {
      const td = document.createElement('td');
      td.textContent = text;
      tr.append(td);
    }
    return tr;
  }

  // --- start -------------------------------------------------------------------------------------

  const bars = new Map(['minute', 'hour', 'open'].map((id) => [id, barPanel(id)]));
  const rate = ratePanel();

  const tokenInput = document.getElementById('token');
  tokenInput.value = token;
  document.getElementById('token-form').addEventListener('submit', (event) => {
    event.preventDefault();
    token = tokenInput.value.trim();
    if (token) localStorage.setItem(TOKEN_KEY, token);
    else localStorage.removeItem(TOKEN_KEY);
    reconnect();
    pollStats();
  });

  const atInput = document.getElementById('at');
  if (AT !== null) atInput.value = new Date(AT * 1000).toISOString().slice(0, 16);
  document.getElementById('at-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const at = parseAt(atInput.value);
    if (at === null) params.delete('at');
    else params.set('at', String(at));
    location.search = params.toString();
  });

  async function tick() {
    await Promise.all([rate.sample(), live ? null : pollStats()]);
    setTimeout(tick, POLL_MS);
  }

  // A past instant's windows are closed and nothing is pushed for them: they are polled.
  if (AT === null) connect();
  tick();
})();
