import { api, el, clear, $, run, href, range, params, setParams, fmtPct, fmtNum, fmtSecs, align, chart, promRange, promInstant, quote, colorAt, selectCurrent, seriesLabel } from '../core.js';
import { ENTRY } from './services.js';

const CLOUD = /^(cloud\.|aws\.|faas\.|k8s\.|host\.|deployment\.|service\.version)/;

// traceAgg runs a TraceQL metrics query over the page's range.
export async function traceAgg(q, r = range()) {
  const b = await api('/api/v1/traces/aggregate', { q, start: r.start, end: r.end, step: r.step });
  return b.data.result;
}

export default function () {
  const name = document.body.dataset.name;
  const gsel = $('#groupBy');
  gsel.addEventListener('change', () => setParams({ groupBy: gsel.value }));
  const sel = `{resource.service.name=${quote(name)} && (kind=server || kind=consumer)}`;
  $('#svc-traces').setAttribute('href', href('/traces', { q: `{resource.service.name=${quote(name)}}` }));
  let loadedKeys = false;

  run(async () => {
    const r = range();
    if (!loadedKeys) {
      loadedKeys = true;
      const attrs = (await api('/api/v1/traces/attributes', { scope: 'resource', start: r.start, end: r.end })).attributes;
      for (const a of attrs) gsel.append(new Option(a.key, a.key));
      selectCurrent(gsel);
      cloudPanel(name, attrs.map((a) => a.key).filter((k) => CLOUD.test(k)), r);
      logsLink(name, r);
    }
    const groupBy = params().get('groupBy');
    const svc = `service=${quote(name)}`;
    const w = `${Math.max(60, r.step * 2)}s`;
    if (groupBy) {
      const by = `by (resource.${groupBy})`;
      const [dur, rate, errs] = await Promise.all([
        traceAgg(`${sel} | quantile_over_time(duration, 0.95) ${by}`, r),
        traceAgg(`${sel} | rate() ${by}`, r),
        traceAgg(`{resource.service.name=${quote(name)} && (kind=server || kind=consumer) && status=error} | rate() ${by}`, r),
      ]);
      const draw = (id, res, fmt) => {
        const a = align(res, r);
        chart($(id), a.xs, res.map((s, i) => ({ label: s.metric[`resource.${groupBy}`] ?? seriesLabel(s.metric), data: a.ys[i], color: colorAt(i) })), { yFmt: fmt });
      };
      $('#dur-legend').textContent = `p95 by ${groupBy}`;
      draw('#chart-duration', dur, fmtSecs);
      draw('#chart-rate', rate);
      draw('#chart-errors', errs);
    } else {
      const [q50, q95, q99, rate, errs] = await Promise.all([
        ...[0.5, 0.95, 0.99].map((q) => promRange(`histogram_quantile(${q}, sum by (le) (rate(traces_spanmetrics_latency_bucket{${svc}, ${ENTRY}}[${w}])))`, r)),
        promRange(`sum(rate(traces_spanmetrics_calls_total{${svc}, ${ENTRY}}[${w}]))`, r),
        promRange(`sum(rate(traces_spanmetrics_calls_total{${svc}, ${ENTRY}, status_code="STATUS_CODE_ERROR"}[${w}]))`, r),
      ]);
      const d = align([...q50, ...q95, ...q99], r);
      const lab = [];
      if (q50.length) lab.push('p50'); if (q95.length) lab.push('p95'); if (q99.length) lab.push('p99');
      $('#dur-legend').textContent = 'p50 / p95 / p99';
      chart($('#chart-duration'), d.xs, lab.map((l, i) => ({ label: l, data: d.ys[i], color: colorAt(i) })), { yFmt: fmtSecs });
      const a = align([...rate, ...errs], r);
      chart($('#chart-rate'), a.xs, rate.length ? [{ label: 'rate /s', data: a.ys[0] }] : []);
      chart($('#chart-errors'), a.xs, errs.length ? [{ label: 'errors /s', data: a.ys[rate.length], color: '#f2545b' }] : []);
    }
    await operations(name, r);
  });
}

async function operations(name, r) {
  const win = `${r.end - r.start}s`;
  const svc = `service=${quote(name)}`;
  const [rate, errs, p95] = await Promise.all([
    promInstant(`sum by (span_name, span_kind) (rate(traces_spanmetrics_calls_total{${svc}}[${win}]))`, r.end),
    promInstant(`sum by (span_name, span_kind) (rate(traces_spanmetrics_calls_total{${svc}, status_code="STATUS_CODE_ERROR"}[${win}]))`, r.end),
    promInstant(`histogram_quantile(0.95, sum by (span_name, span_kind, le) (rate(traces_spanmetrics_latency_bucket{${svc}}[${win}])))`, r.end),
  ]);
  const key = (m) => `${m.span_name}\u0000${m.span_kind}`;
  const errM = new Map(errs.map((s) => [key(s.metric), parseFloat(s.value[1])]));
  const p95M = new Map(p95.map((s) => [key(s.metric), parseFloat(s.value[1])]));
  const rows = rate.map((s) => {
    const rt = parseFloat(s.value[1]);
    return { op: s.metric.span_name, kind: (s.metric.span_kind || '').replace('SPAN_KIND_', '').toLowerCase(), rt, er: rt ? (errM.get(key(s.metric)) || 0) / rt : 0, p95: p95M.get(key(s.metric)) };
  }).sort((a, b) => b.er - a.er || b.rt - a.rt);
  const tb = clear($('#ops-table tbody'));
  for (const x of rows) {
    tb.append(el('tr', { class: x.er > 0.01 ? 'bad' : '' },
      el('td', {}, el('a', { class: 'mono', href: href('/traces', { q: `{resource.service.name=${quote(name)} && name=${quote(x.op)}}` }), text: x.op })),
      el('td', { text: x.kind }), el('td', { class: 'num', text: fmtNum(x.rt) }),
      el('td', { class: 'num' + (x.er > 0.01 ? ' errtext' : ''), text: fmtPct(x.er) }), el('td', { class: 'num', text: fmtSecs(x.p95) })));
  }
}

async function cloudPanel(name, keys, r) {
  const tb = clear($('#cloud-table tbody'));
  const q = `{resource.service.name=${quote(name)}}`;
  const res = await Promise.all(keys.map((k) => api(`/api/v1/traces/attributes/${encodeURIComponent('resource.' + k)}/values`, { q, start: r.start, end: r.end, limit: 50 }).then((b) => [k, b.values]).catch(() => [k, []])));
  for (const [k, vals] of res) {
    if (!vals.length) continue;
    tb.append(el('tr', { dataset: { key: k } }, el('td', { class: 'mono', text: k }),
      el('td', { class: 'mono' }, ...valueList(vals))));
  }
  if (!tb.children.length) tb.append(el('tr', {}, el('td', { colspan: 2, class: 'hint', text: 'No cloud resource attributes on this service.' })));
}

function valueList(vals) {
  const item = (v) => el('div', { title: `${v.count} spans`, text: v.value });
  if (vals.length <= 4) return vals.map(item);
  return [...vals.slice(0, 3).map(item), el('details', {}, el('summary', { class: 'hint', text: `${vals.length - 3} more` }), ...vals.slice(3).map(item))];
}

// firstGroup reads aws.log.group.names, which OTel SDKs send as a string
// array (here flattened to its JSON text).
export function firstGroup(v) {
  if (v.startsWith('[')) { try { const a = JSON.parse(v); return Array.isArray(a) && a.length ? String(a[0]) : v; } catch { return v; } }
  return v;
}

// logsLink points at the service's log group when its spans name one
// (aws.log.group.names), else at the log groups list.
async function logsLink(name, r) {
  const a = $('#svc-logs');
  a.setAttribute('href', href('/logs'));
  try {
    const b = await api('/api/v1/traces/attributes/resource.aws.log.group.names/values', { q: `{resource.service.name=${quote(name)}}`, start: r.start, end: r.end, limit: 1 });
    if (b.values.length) a.setAttribute('href', href('/logs/group', { name: firstGroup(b.values[0].value) }));
  } catch { /* keep the list */ }
}
