import { api, el, clear, $, run, href, fmtSecs, fmtTime, colorFor, quote } from '../core.js';

const KINDS = ['unspecified', 'internal', 'server', 'client', 'producer', 'consumer'];

// anyValue renders an OTLP JSON AnyValue as text.
export function anyValue(v) {
  if (!v) return '';
  if ('stringValue' in v) return v.stringValue;
  if ('intValue' in v) return String(v.intValue);
  if ('doubleValue' in v) return String(v.doubleValue);
  if ('boolValue' in v) return String(v.boolValue);
  if ('bytesValue' in v) return v.bytesValue;
  if ('arrayValue' in v) return '[' + (v.arrayValue.values || []).map(anyValue).join(', ') + ']';
  if ('kvlistValue' in v) return '{' + (v.kvlistValue.values || []).map((kv) => `${kv.key}: ${anyValue(kv.value)}`).join(', ') + '}';
  return '';
}
const attrMap = (list) => Object.fromEntries((list || []).map((kv) => [kv.key, anyValue(kv.value)]));

// flatten turns OTLP JSON into span records with their resource and scope.
export function flatten(doc) {
  const spans = [];
  for (const rs of doc.resourceSpans || []) {
    const res = attrMap(rs.resource?.attributes);
    for (const ss of rs.scopeSpans || []) {
      for (const s of ss.spans || []) {
        spans.push({
          id: s.spanId, parent: s.parentSpanId || '', name: s.name, kind: KINDS[s.kind || 0] || String(s.kind),
          start: Number(BigInt(s.startTimeUnixNano || '0') / 1000n) / 1e6, end: Number(BigInt(s.endTimeUnixNano || '0') / 1000n) / 1e6,
          attrs: attrMap(s.attributes), res, scope: ss.scope || {}, service: res['service.name'] || '?',
          status: s.status || {}, error: (s.status?.code === 2 || s.status?.code === 'STATUS_CODE_ERROR'),
          events: s.events || [], links: s.links || [], children: [],
        });
      }
    }
  }
  const byId = new Map(spans.map((s) => [s.id, s]));
  const roots = [];
  for (const s of spans) { const p = byId.get(s.parent); if (p && p !== s) p.children.push(s); else roots.push(s); }
  const sortRec = (l) => { l.sort((a, b) => a.start - b.start); l.forEach((c) => sortRec(c.children)); };
  sortRec(roots);
  return { spans, roots };
}

export default function () {
  const id = document.body.dataset.name;
  const collapsed = new Set();
  let selected = null, data = null;

  const render = () => {
    const wf = clear($('#waterfall'));
    const t0 = Math.min(...data.spans.map((s) => s.start)), t1 = Math.max(...data.spans.map((s) => s.end));
    const total = Math.max(1e-9, t1 - t0);
    const walk = (s, depth) => {
      const kids = s.children.length;
      const open = !collapsed.has(s.id);
      const left = ((s.start - t0) / total) * 100, width = Math.max(0.15, ((s.end - s.start) / total) * 100);
      const row = el('div', { class: 'wf-row' + (s === selected ? ' selected' : '') + (s.error ? ' has-error' : ''), dataset: { spanId: s.id, name: s.name, service: s.service },
        onclick: () => { selected = s; render(); detail(s); } },
        el('div', { class: 'wf-name', style: { paddingLeft: `${depth * 14 + 4}px` } },
          el('span', { class: 'toggle', text: kids ? (open ? '▾' : '▸') : '', onclick: (e) => { if (!kids) return; e.stopPropagation(); if (open) collapsed.add(s.id); else collapsed.delete(s.id); render(); } }),
          el('span', { class: 'svc', style: { background: colorFor(s.service) }, title: s.service }),
          s.error ? el('span', { class: 'err error-icon', title: 'error', text: '⚠' }) : '',
          el('span', { class: 'span-name', text: s.name }), ' ', el('span', { class: 'hint', text: s.service })),
        el('div', { class: 'wf-bar' },
          el('span', { style: { left: `${left}%`, width: `${width}%`, background: s.error ? '#f2545b' : colorFor(s.service) } }),
          el('em', { class: 'dur', style: left + width > 80 ? { right: `${100 - left + 0.5}%` } : { left: `${left + width + 0.5}%` }, text: fmtSecs(s.end - s.start) })));
      wf.append(row);
      if (open) s.children.forEach((c) => walk(c, depth + 1));
    };
    data.roots.forEach((r) => walk(r, 0));
  };

  run(async () => {
    const doc = await api(`/api/v1/traces/${encodeURIComponent(id)}`);
    data = flatten(doc);
    if (!data.spans.length) throw new Error('This trace has no spans.');
    const t0 = Math.min(...data.spans.map((s) => s.start)), t1 = Math.max(...data.spans.map((s) => s.end));
    const services = new Set(data.spans.map((s) => s.service));
    const errs = data.spans.filter((s) => s.error);
    $('#trace-summary').textContent = `${data.spans.length} spans · ${services.size} services · ${errs.length} errors · ${fmtSecs(t1 - t0)} · started ${fmtTime(t0)}`;
    // A duration signature: spans ending at one exact, round duration are
    // usually a timeout firing.
    const round = new Map();
    for (const s of data.spans) {
      const d = s.end - s.start;
      if (d >= 1 && Math.abs(d - Math.round(d)) < 0.005) round.set(Math.round(d), (round.get(Math.round(d)) || 0) + 1);
    }
    for (const [d, n] of round) {
      $('#trace-summary').append(el('span', { class: 'badge warning timeout-note', text: `${n} span${n > 1 ? 's' : ''} end at exactly ${d} s: a timeout?` }));
    }
    if (!selected) {
      // Open on the deepest errored span: usually the cause.
      selected = errs.find((s) => !s.children.some((c) => c.error)) || data.roots[0];
    } else selected = data.spans.find((s) => s.id === selected.id) || data.roots[0];
    render();
    detail(selected);
  });
}

function kvTable(obj) {
  const dl = el('dl');
  for (const k of Object.keys(obj).sort()) dl.append(el('dt', { text: k }), el('dd', { text: obj[k] }));
  return dl;
}

function detail(s) {
  const d = clear($('#span-detail'));
  d.append(el('h2', { class: 'span-title', text: s.name }));
  d.append(kvTable({ service: s.service, kind: s.kind, duration: fmtSecs(s.end - s.start), start: fmtTime(s.start), 'span id': s.id, 'parent id': s.parent || '(root)' }));
  d.append(el('h3', { text: 'Status' }));
  const code = s.error ? 'error' : s.status.code === 1 ? 'ok' : 'unset';
  d.append(el('div', {}, el('span', { class: 'badge ' + (s.error ? 'error' : 'ok'), text: code })));
  if (s.status.message) d.append(el('p', { class: 'status-msg', id: 'status-message', text: s.status.message }));
  const links = el('div', { class: 'related' });
  const win = { from: String(Math.floor(s.start - 300)), to: String(Math.ceil(s.end + 300)) };
  const group = (s.res['aws.log.group.names'] || '').replace(/^\[|\]$/g, '').split(',')[0].trim();
  links.append(el('div', {}, el('a', { id: 'logs-link', href: group ? href('/logs/group', { name: group, ...win }) : href('/explore', { left: `{service_name=${quote(s.service)}}`, leftLang: 'logql', ...win }), text: `Logs of ${s.service} around this span` })));
  const server = s.attrs['server.address'] || s.attrs['net.peer.name'];
  if ((s.attrs['db.system'] || s.attrs['db.system.name']) && server) {
    const inst = server.split('.')[0];
    links.append(el('div', {}, el('a', { id: 'db-metrics-link', href: href('/explore', { left: `aws_rds_database_connections_sum{dimension_DBInstanceIdentifier=${quote(inst)}}`, leftLang: 'promql', ...win }), text: `Metrics of database ${inst}` })));
    links.append(el('div', {}, el('a', { href: href('/logs/group', { name: `/aws/rds/instance/${inst}/postgresql`, ...win }), text: `Logs of database ${inst}` })));
  }
  d.append(el('h3', { text: 'Related' }), links);
  d.append(el('h3', { text: 'Span attributes' }), kvTable(s.attrs));
  if (s.events.length) {
    d.append(el('h3', { text: `Events (${s.events.length})` }));
    for (const e of s.events) d.append(el('div', { class: 'mono', text: `${e.name} @ ${fmtTime(Number(BigInt(e.timeUnixNano || '0') / 1000000n) / 1000)}` }), kvTable(attrMap(e.attributes)));
  }
  if (s.links.length) {
    d.append(el('h3', { text: `Links (${s.links.length})` }));
    for (const l of s.links) d.append(el('div', {}, el('a', { class: 'mono', href: href(`/traces/${l.traceId}`), text: `${l.traceId} / ${l.spanId}` })));
  }
  d.append(el('h3', { text: `Scope ${s.scope.name || ''} ${s.scope.version || ''}` }));
  d.append(el('h3', { text: 'Resource' }), kvTable(s.res));
}
