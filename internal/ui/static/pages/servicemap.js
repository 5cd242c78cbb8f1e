import { el, clear, $, run, href, range, fmtPct, fmtNum, fmtSecs, promInstant, quote } from '../core.js';
import { ENTRY } from './services.js';

const NS = 'http://www.w3.org/2000/svg';
function svg(tag, attrs = {}, ...children) {
  const n = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'text') n.textContent = String(v);
    else if (k.startsWith('on')) n.addEventListener(k.slice(2), v);
    else n.setAttribute(k, String(v));
  }
  n.append(...children);
  return n;
}

// layers assigns each node a column: the longest path from a node without
// callers (cycles are cut after as many rounds as there are nodes).
export function layers(nodes, edges) {
  const depth = new Map(nodes.map((n) => [n, 0]));
  for (let i = 0; i < nodes.length; i++) {
    let changed = false;
    for (const e of edges) {
      if (e.client === e.server) continue;
      const d = depth.get(e.client) + 1;
      if (d > depth.get(e.server) && d < nodes.length) { depth.set(e.server, d); changed = true; }
    }
    if (!changed) break;
  }
  return depth;
}

export default function () {
  document.addEventListener('click', (e) => { if (!e.target.closest('.node') && !e.target.closest('#node-menu')) $('#node-menu').hidden = true; });
  run(async () => {
    const r = range();
    const win = `${r.end - r.start}s`;
    const [req, failed, latSum, latCount, svcRate, svcErr] = await Promise.all([
      promInstant(`sum by (client, server, connection_type) (rate(traces_service_graph_request_total[${win}]))`, r.end),
      promInstant(`sum by (client, server) (rate(traces_service_graph_request_failed_total[${win}]))`, r.end),
      promInstant(`sum by (client, server) (rate(traces_service_graph_request_server_seconds_sum[${win}]))`, r.end),
      promInstant(`sum by (client, server) (rate(traces_service_graph_request_server_seconds_count[${win}]))`, r.end),
      promInstant(`sum by (service) (rate(traces_spanmetrics_calls_total{${ENTRY}}[${win}]))`, r.end),
      promInstant(`sum by (service) (rate(traces_spanmetrics_calls_total{${ENTRY}, status_code="STATUS_CODE_ERROR"}[${win}]))`, r.end),
    ]);
    const k = (m) => `${m.client}\u0000${m.server}`;
    const val = (s) => parseFloat(s.value[1]) || 0;
    const failM = new Map(failed.map((s) => [k(s.metric), val(s)]));
    const sumM = new Map(latSum.map((s) => [k(s.metric), val(s)]));
    const cntM = new Map(latCount.map((s) => [k(s.metric), val(s)]));
    // Edges of several connection types between the same pair merge.
    const edgeM = new Map();
    for (const s of req) {
      const key = k(s.metric);
      const e = edgeM.get(key) || { client: s.metric.client, server: s.metric.server, type: s.metric.connection_type || '', rate: 0 };
      e.rate += val(s);
      if (s.metric.connection_type) e.type = s.metric.connection_type;
      edgeM.set(key, e);
    }
    const edges = [...edgeM.values()];
    for (const e of edges) {
      e.err = e.rate ? (failM.get(k(e)) || 0) / e.rate : 0;
      const c = cntM.get(k(e));
      e.lat = c ? (sumM.get(k(e)) || 0) / c : null;
    }
    const rateM = new Map(svcRate.map((s) => [s.metric.service, val(s)]));
    const errM = new Map(svcErr.map((s) => [s.metric.service, val(s)]));
    const names = new Set([...rateM.keys()]);
    for (const e of edges) { names.add(e.client); names.add(e.server); }
    const db = new Set(edges.filter((e) => e.type === 'database').map((e) => e.server));
    const nodes = [...names].filter(Boolean).map((n) => {
      const inbound = edges.filter((e) => e.server === n);
      let rate = rateM.get(n), err;
      if (rate !== undefined) err = rate ? (errM.get(n) || 0) / rate : 0;
      else {
        rate = inbound.reduce((a, e) => a + e.rate, 0);
        err = rate ? inbound.reduce((a, e) => a + e.rate * e.err, 0) / rate : 0;
      }
      return { name: n, rate, err, db: db.has(n), virtual: !rateM.has(n) };
    });
    draw(nodes, edges);
    const tb = clear($('#edge-table tbody'));
    for (const e of edges.sort((a, b) => b.err - a.err || b.rate - a.rate)) {
      tb.append(el('tr', { class: e.err > 0.01 ? 'bad' : '' }, el('td', { class: 'mono', text: e.client }), el('td', { class: 'mono', text: e.server }),
        el('td', { text: e.type || 'request' }), el('td', { class: 'num', text: fmtNum(e.rate) }),
        el('td', { class: 'num' + (e.err > 0.01 ? ' errtext' : ''), text: fmtPct(e.err) }), el('td', { class: 'num', text: fmtSecs(e.lat) })));
    }
  });
}

function shortName(n) { return n.length > 28 ? n.slice(0, 26) + '…' : n; }

function draw(nodes, edges) {
  const depth = layers(nodes.map((n) => n.name), edges);
  const cols = new Map();
  for (const n of nodes) { const d = depth.get(n.name) || 0; if (!cols.has(d)) cols.set(d, []); cols.get(d).push(n); }
  const colW = 250, rowH = 130, padX = 90, padY = 70;
  const maxRows = Math.max(...[...cols.values()].map((c) => c.length), 1);
  const W = padX * 2 + colW * Math.max(0, cols.size - 1), H = padY * 2 + rowH * (maxRows - 1);
  const pos = new Map();
  // Columns left to right; within one, nodes sit in the order of their
  // callers' mean height, which keeps edges from crossing.
  for (const d of [...cols.keys()].sort((a, b) => a - b)) {
    const list = cols.get(d);
    const bary = (n) => {
      const ys = edges.filter((e) => e.server === n.name && pos.has(e.client)).map((e) => pos.get(e.client).y);
      return ys.length ? ys.reduce((a, b) => a + b, 0) / ys.length : 0;
    };
    list.sort((a, b) => bary(a) - bary(b) || a.name.localeCompare(b.name));
    const off = (H - rowH * (list.length - 1)) / 2;
    list.forEach((n, i) => pos.set(n.name, { x: padX + d * colW, y: off + i * rowH }));
  }
  const maxRate = Math.max(...nodes.map((n) => n.rate), 1e-9);
  const radius = (n) => 16 + 18 * Math.sqrt(n.rate / maxRate);
  const root = clear($('#service-map'));
  root.setAttribute('viewBox', `0 0 ${W} ${H}`);
  root.style.height = `${Math.max(420, H)}px`;
  root.append(svg('defs', {}, svg('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 10, refY: 5, markerUnits: 'userSpaceOnUse', markerWidth: 10, markerHeight: 10, orient: 'auto-start-reverse' }, svg('path', { d: 'M 0 0 L 10 5 L 0 10 z', fill: '#6b7686' }))));
  const byName = new Map(nodes.map((n) => [n.name, n]));
  for (const e of edges) {
    const a = pos.get(e.client), b = pos.get(e.server);
    if (!a || !b) continue;
    const ra = radius(byName.get(e.client)), rb = radius(byName.get(e.server)) + 4;
    const dx = b.x - a.x, dy = b.y - a.y, len = Math.hypot(dx, dy) || 1;
    const x1 = a.x + dx / len * ra, y1 = a.y + dy / len * ra, x2 = b.x - dx / len * rb, y2 = b.y - dy / len * rb;
    const g = svg('g', { class: 'edge-g' });
    g.append(svg('line', { x1, y1, x2, y2, class: 'edge' + (e.err > 0.01 ? ' bad' : ''), 'stroke-width': 1 + Math.min(4, e.rate), 'marker-end': 'url(#arrow)' }));
    g.append(svg('text', { x: (x1 + x2) / 2, y: (y1 + y2) / 2 - 6, 'text-anchor': 'middle', style: 'font-size:11px;fill:#8b95a5', text: `${fmtNum(e.rate)}/s · ${fmtSecs(e.lat)}` }));
    root.append(g);
  }
  for (const n of nodes) {
    const p = pos.get(n.name), rad = radius(n);
    const g = svg('g', { class: 'node' + (n.db ? ' db' : ''), transform: `translate(${p.x},${p.y})`, 'data-service': n.name, 'data-error-ratio': n.err.toFixed(4) });
    if (n.db) {
      g.append(svg('rect', { x: -rad, y: -rad * 0.8, width: rad * 2, height: rad * 1.6, rx: 6, fill: '#1f2a3a', stroke: '#5aa9ff' }));
      g.append(svg('text', { 'text-anchor': 'middle', y: 4, style: 'font-size:11px', text: 'DB' }));
    } else {
      g.append(svg('circle', { r: rad, fill: n.virtual ? '#1b1f26' : '#1f2a3a', stroke: n.virtual ? '#4b5566' : '#5aa9ff', 'stroke-dasharray': n.virtual ? '4 3' : '' }));
    }
    if (n.err > 0.001) {
      // The red ring: its arc is the error ratio, its width grows with it.
      const rr = rad + 5, c = 2 * Math.PI * rr;
      g.append(svg('circle', { class: 'error-ring', r: rr, fill: 'none', stroke: '#f2545b', 'stroke-width': 3 + 6 * Math.min(1, n.err * 2),
        'stroke-dasharray': `${Math.max(2, c * Math.min(1, n.err))} ${c}`, transform: 'rotate(-90)' }));
    }
    g.append(svg('text', { 'text-anchor': 'middle', y: rad + 20, text: shortName(n.name) }));
    g.append(svg('text', { 'text-anchor': 'middle', y: rad + 34, style: 'font-size:11px;fill:#8b95a5', text: `${fmtNum(n.rate)}/s · ${fmtPct(n.err, 1)} err` }));
    g.append(svg('title', { text: n.name }));
    g.addEventListener('click', (ev) => { ev.stopPropagation(); menu(n, ev); });
    root.append(g);
  }
}

function menu(n, ev) {
  const m = clear($('#node-menu'));
  const wrap = $('#map-wrap').getBoundingClientRect();
  m.style.left = `${ev.clientX - wrap.left + $('#map-wrap').scrollLeft}px`;
  m.style.top = `${ev.clientY - wrap.top + $('#map-wrap').scrollTop}px`;
  m.append(el('div', { class: 'title', text: n.name }));
  if (n.db) {
    m.append(el('a', { href: href('/traces', { q: `{span.server.address=${quote(n.name)}}` }), text: 'Traces calling it' }));
    m.append(el('a', { href: href('/explore', { left: 'aws_rds_database_connections_sum', leftLang: 'promql' }), text: 'Database metrics' }));
    m.append(el('a', { href: href('/logs'), text: 'Logs' }));
  } else {
    m.append(el('a', { href: href(`/services/${encodeURIComponent(n.name)}`), text: 'Overview' }));
    m.append(el('a', { href: href('/traces', { q: `{resource.service.name=${quote(n.name)}}` }), text: 'Traces' }));
    m.append(el('a', { href: href('/explore', { left: `{service_name=${quote(n.name)}}`, leftLang: 'logql' }), text: 'Logs' }));
  }
  m.hidden = false;
}
