// Shared helpers of the UI's page modules. Everything that came from
// telemetry reaches the DOM through el()/text nodes (textContent), never
// innerHTML, so span names and log lines are shown as text.

export const params = () => new URLSearchParams(location.search);

// el builds an element: attrs may hold class, text, title, href, dataset,
// style (object) and on<event> handlers; children are nodes or strings
// (strings become text nodes).
export function el(tag, attrs = {}, ...children) {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') n.className = v;
    else if (k === 'text') n.textContent = String(v);
    else if (k === 'dataset') Object.assign(n.dataset, v);
    else if (k === 'style') Object.assign(n.style, v);
    else if (k.startsWith('on')) n.addEventListener(k.slice(2), v);
    else if (k === 'href') n.setAttribute('href', safeHref(v));
    else n.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    n.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return n;
}

// safeHref keeps links on this origin (relative paths) so that a value
// from telemetry can never become a javascript: URL.
function safeHref(v) {
  const s = String(v);
  return s.startsWith('/') || s.startsWith('?') || s.startsWith('#') ? s : '#';
}

export function clear(n) { while (n.firstChild) n.removeChild(n.firstChild); return n; }
export const $ = (sel, root = document) => root.querySelector(sel);

export function showError(err) {
  const box = $('#page-error');
  if (!box) return;
  if (!err) { box.hidden = true; box.textContent = ''; return; }
  box.hidden = false;
  box.textContent = String(err.message || err);
}

// api fetches JSON from the API and throws its error message on failure.
export async function api(path, query, init) {
  const u = new URL(path, location.origin);
  if (query) for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== '') u.searchParams.set(k, v);
  const res = await fetch(u, init);
  let body;
  try { body = await res.json(); } catch { body = null; }
  if (!res.ok) throw new Error(`${path}: ${(body && body.error) || res.status + ' ' + res.statusText}`);
  return body;
}

// ---- time range -----------------------------------------------------------

const units = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

export function parseDur(s) {
  const m = /^(\d+(?:\.\d+)?)([smhdw])$/.exec(String(s).trim());
  return m ? parseFloat(m[1]) * units[m[2]] : NaN;
}

// parseTimeParam turns "now", "now-1h" or Unix seconds into Unix seconds.
export function parseTimeParam(s, now) {
  if (!s || s === 'now') return now;
  const m = /^now-(.+)$/.exec(s);
  if (m) { const d = parseDur(m[1]); return isNaN(d) ? now - 3600 : now - d; }
  const f = parseFloat(s);
  if (!isNaN(f)) return f > 1e11 ? f / 1000 : f;
  const t = Date.parse(s);
  return isNaN(t) ? now : t / 1000;
}

// range is the page's time range in Unix seconds with a step giving
// about 120 points.
export function range() {
  const p = params();
  const now = Date.now() / 1000;
  let end = parseTimeParam(p.get('to') || 'now', now);
  let start = parseTimeParam(p.get('from') || 'now-1h', now);
  if (start >= end) start = end - 3600;
  const step = Math.max(15, Math.ceil((end - start) / 120 / 15) * 15);
  return { start: Math.floor(start), end: Math.ceil(end), step };
}

export function rangeQuery() {
  const r = range();
  return { start: r.start, end: r.end };
}

// href builds a page URL keeping the time range and refresh of this one.
export function href(path, extra = {}) {
  const p = params();
  const q = new URLSearchParams();
  for (const k of ['from', 'to', 'refresh']) if (p.get(k)) q.set(k, p.get(k));
  for (const [k, v] of Object.entries(extra)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

// setParams changes query parameters; reload=true navigates (the server
// renders the new state), otherwise the URL is replaced in place.
export function setParams(changes, reload = true) {
  const p = params();
  for (const [k, v] of Object.entries(changes)) {
    if (v === undefined || v === null || v === '') p.delete(k); else p.set(k, v);
  }
  const url = `${location.pathname}?${p.toString()}`;
  if (reload) location.assign(url); else history.replaceState(null, '', url);
}

// ---- formatting -----------------------------------------------------------

export function fmtNum(v, digits = 3) {
  if (v === null || v === undefined || isNaN(v)) return '–';
  const a = Math.abs(v);
  if (a !== 0 && a < 0.001) return v.toExponential(2);
  if (a >= 1e6) return (v / 1e6).toFixed(2) + 'M';
  if (a >= 1e4) return (v / 1e3).toFixed(1) + 'k';
  return Number(v.toPrecision(digits)).toString();
}
export function fmtPct(v, digits = 2) {
  if (v === null || v === undefined || isNaN(v)) return '–';
  return (v * 100).toFixed(digits) + '%';
}
export function fmtSecs(s) {
  if (s === null || s === undefined || isNaN(s)) return '–';
  if (s >= 60) return (s / 60).toFixed(1) + ' min';
  if (s >= 1) return s.toFixed(2) + ' s';
  if (s >= 0.001) return (s * 1000).toFixed(1) + ' ms';
  return (s * 1e6).toFixed(0) + ' µs';
}
export function fmtTime(unixSec) {
  const d = new Date(unixSec * 1000);
  return d.toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}
export function fmtDuration(secs) {
  if (secs === null || secs === undefined || isNaN(secs)) return '–';
  if (secs < 120) return `${Math.round(secs)} s`;
  if (secs < 7200) return `${Math.round(secs / 60)} min`;
  if (secs < 172800) return `${(secs / 3600).toFixed(1)} h`;
  return `${(secs / 86400).toFixed(1)} d`;
}

const palette = ['#5aa9ff', '#f2545b', '#4cc38a', '#f0b429', '#b48cff', '#36c5d6', '#ff8f40', '#e879b9', '#9ccc65', '#8d9db6'];
export function colorAt(i) { return palette[i % palette.length]; }
export function colorFor(s) {
  let h = 0;
  for (const c of String(s)) h = (h * 31 + c.codePointAt(0)) >>> 0;
  return palette[h % palette.length];
}

// ---- series ---------------------------------------------------------------

// align puts Prometheus-style matrix results (values [[t, "v"], ...]) on
// one time grid; a missing point is null (a gap), or 0 when fillZero.
export function align(result, r, fillZero = false) {
  const xs = [];
  for (let t = r.start; t <= r.end; t += r.step) xs.push(t);
  const idx = (t) => Math.round((t - r.start) / r.step);
  const ys = result.map((s) => {
    const y = new Array(xs.length).fill(fillZero ? 0 : null);
    for (const [t, v] of s.values || []) {
      const i = idx(Number(t));
      if (i >= 0 && i < xs.length) { const f = parseFloat(v); y[i] = isFinite(f) ? f : null; }
    }
    return y;
  });
  return { xs, ys };
}

export function seriesLabel(metric, drop = ['__name__']) {
  const parts = Object.entries(metric || {}).filter(([k]) => !drop.includes(k)).map(([k, v]) => `${k}="${v}"`);
  return parts.length ? `{${parts.join(', ')}}` : '{}';
}

// promRange runs a PromQL range query over the page's range.
export async function promRange(query, r = range()) {
  const b = await api('/api/v1/query_range', { query, start: r.start, end: r.end, step: r.step });
  return b.data.result;
}
export async function promInstant(query, time) {
  const b = await api('/api/v1/query', { query, time: time ?? range().end });
  return b.data.result;
}

// ---- charts ---------------------------------------------------------------

const charts = new WeakMap();

// Charts follow their container's width (split panes, window resizes).
const resizer = typeof ResizeObserver === 'function' ? new ResizeObserver((entries) => {
  for (const e of entries) {
    const u = charts.get(e.target);
    const w = Math.floor(e.contentRect.width);
    if (u && w > 50 && Math.abs(u.width - w) > 2) u.setSize({ width: w, height: u.height });
  }
}) : null;

// chart draws (or redraws) a uPlot time-series chart in container.
// series: [{label, data, color, fill, dash, width}]; opts: {height, yFmt, stacked, bars, zoom}.
export function chart(container, xs, series, opts = {}) {
  const old = charts.get(container);
  if (old) { old.destroy(); charts.delete(container); }
  clear(container);
  if (!window.uPlot) { container.append(el('p', { class: 'hint', text: 'charts library not loaded' })); return null; }
  if (!xs.length || !series.length) { container.append(el('p', { class: 'hint', text: 'no data in this range' })); return null; }
  const width = Math.max(200, container.clientWidth || container.parentElement.clientWidth || 400);
  const yFmt = opts.yFmt || ((v) => fmtNum(v));
  const axis = { stroke: '#8b95a5', grid: { stroke: '#2a2f38', width: 1 }, ticks: { stroke: '#2a2f38' } };
  const u = new window.uPlot({
    width, height: opts.height || 180,
    legend: { show: opts.legend !== false, live: true },
    cursor: { drag: { x: opts.zoom !== false, y: false } },
    scales: { x: { time: true }, y: opts.yRange ? { range: opts.yRange } : {} },
    axes: [axis, { ...axis, size: 72, values: (u, vals) => vals.map(yFmt) }],
    series: [{}, ...series.map((s, i) => ({
      label: s.label, stroke: s.color || colorAt(i), width: s.width || 1.5, dash: s.dash,
      fill: s.fill, value: (u, v) => (v === null || v === undefined ? '–' : yFmt(v)),
      spanGaps: false, paths: opts.bars && window.uPlot.paths.bars ? window.uPlot.paths.bars({ size: [0.8, 60] }) : undefined,
    }))],
    hooks: {
      setSelect: [(u) => {
        if (opts.zoom === false || u.select.width < 5) return;
        const from = Math.floor(u.posToVal(u.select.left, 'x'));
        const to = Math.ceil(u.posToVal(u.select.left + u.select.width, 'x'));
        setParams({ from, to });
      }],
    },
  }, [xs, ...series.map((s) => s.data)], container);
  charts.set(container, u);
  if (resizer) resizer.observe(container);
  return u;
}

// sparkline draws a tiny SVG line (no axes) for tables.
export function sparkline(values, color = '#5aa9ff', w = 120, h = 24) {
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('width', w); svg.setAttribute('height', h); svg.setAttribute('class', 'spark');
  const vs = values.map((v) => (v === null || isNaN(v) ? 0 : v));
  const max = Math.max(...vs, 1e-9);
  const pts = vs.map((v, i) => `${(i / Math.max(1, vs.length - 1)) * (w - 2) + 1},${h - 2 - (v / max) * (h - 4)}`).join(' ');
  const pl = document.createElementNS('http://www.w3.org/2000/svg', 'polyline');
  pl.setAttribute('points', pts); pl.setAttribute('fill', 'none'); pl.setAttribute('stroke', color); pl.setAttribute('stroke-width', '1.5');
  svg.append(pl);
  return svg;
}

// ---- page lifecycle -------------------------------------------------------

// run calls load now and again at the refresh interval; errors are shown
// in the page's error box.
export function run(load) {
  let busy = false;
  const once = async () => {
    if (busy) return;
    busy = true;
    try { await load(); showError(null); } catch (e) { console.error(e); showError(e); } finally { busy = false; }
  };
  once();
  const every = parseDur(params().get('refresh') || 'off');
  if (every > 0) setInterval(once, every * 1000);
  const btn = $('#tp-reload');
  if (btn) btn.addEventListener('click', once);
  return once;
}

// escapeLabelValue quotes a value for PromQL/LogQL/TraceQL string literals.
export function quote(v) { return '"' + String(v).replace(/\\/g, '\\\\').replace(/"/g, '\\"') + '"'; }

// selectCurrent sets a <select> rendered with data-current to that value
// once its options exist.
export function selectCurrent(sel) {
  if (sel && sel.dataset.current && [...sel.options].some((o) => o.value === sel.dataset.current)) sel.value = sel.dataset.current;
}
