import { api, el, clear, $, run, href, range, params, setParams, fmtPct, fmtNum, fmtSecs, fmtTime, align, chart, quote, colorAt, selectCurrent } from '../core.js';
import { traceAgg } from './service.js';

// andFilter adds a condition to a TraceQL spanset filter: {} becomes
// {cond}, {X} becomes {X && cond}; anything else is combined at the trace
// level.
export function andFilter(q, cond) {
  q = (q || '').trim();
  if (q === '' || /^\{\s*\}$/.test(q)) return `{${cond}}`;
  const m = /^\{(.*)\}$/s.exec(q);
  if (m && !/\}\s*(&&|\|\||>>|>|~)\s*\{/.test(q)) return `{${m[1].trim()} && ${cond}}`;
  return `${q} && {${cond}}`;
}

const metricFns = {
  rate: (q, by) => `${q} | rate() by (${by})`,
  errors: (q, by) => `${andFilter(q, 'status=error')} | rate() by (${by})`,
  duration: (q, by) => `${q} | quantile_over_time(duration, 0.95) by (${by})`,
};

// attrName turns an attributes-list entry into its TraceQL name.
const attrName = (a) => (a.scope === 'intrinsic' ? a.key : `${a.scope}.${a.key}`);

export default function () {
  const p = params();
  const q = p.get('q') || '{}';
  const metric = metricFns[p.get('metric')] ? p.get('metric') : 'rate';
  const tab = ['errors', 'slowest', 'compare'].includes(p.get('tab')) ? p.get('tab') : 'errors';
  $('#metric').value = metric;
  $('#tab').value = tab;
  for (const b of document.querySelectorAll('#metric-switch button')) {
    b.classList.toggle('active', b.dataset.metric === metric);
    b.addEventListener('click', () => setParams({ metric: b.dataset.metric }));
  }
  for (const a of document.querySelectorAll('#tabs a')) {
    a.classList.toggle('active', a.dataset.tab === tab);
    a.setAttribute('href', '?' + new URLSearchParams({ ...Object.fromEntries(params()), tab: a.dataset.tab }).toString());
  }
  const gsel = $('#tgroupBy');
  gsel.addEventListener('change', () => setParams({ groupBy: gsel.value }));
  let attrs = null;

  run(async () => {
    const r = range();
    if (!attrs) {
      attrs = (await api('/api/v1/traces/attributes', { start: r.start, end: r.end })).attributes;
      clear(gsel);
      for (const a of attrs) if (a.scope !== 'intrinsic' || ['name', 'status', 'kind', 'rootServiceName', 'rootName', 'statusMessage'].includes(a.key)) gsel.append(new Option(attrName(a), attrName(a)));
    }
    const groupBy = p.get('groupBy') || 'resource.service.name';
    if (![...gsel.options].some((o) => o.value === groupBy)) gsel.append(new Option(groupBy, groupBy));
    gsel.value = groupBy;
    const aq = metricFns[metric](q, groupBy);
    $('#agg-query').textContent = aq;
    const res = await traceAgg(aq, r);
    const a = align(res, r, metric !== 'duration');
    const groups = res.map((s, i) => ({ value: s.metric[groupBy] ?? '', ys: a.ys[i], total: a.ys[i].reduce((x, y) => x + (y || 0), 0) }))
      .sort((x, y) => y.total - x.total).slice(0, 24);
    const box = clear($('#groups'));
    if (!groups.length) box.append(el('p', { class: 'hint', text: 'No spans match in this range.' }));
    groups.forEach((g, i) => {
      const c = el('div', { class: 'chart' });
      const add = el('button', { type: 'button', class: 'add-filter', title: 'Add to the filter', text: '+ filter',
        onclick: () => setParams({ q: andFilter(q, `${groupBy}=${quote(g.value)}`) }) });
      const panel = el('div', { class: 'panel group', dataset: { group: g.value } }, el('div', { class: 'group-head' }, el('span', { class: 'gname', title: g.value, text: g.value === '' ? '(none)' : g.value }), add), c);
      box.append(panel);
      chart(c, a.xs, [{ label: metric === 'duration' ? 'p95' : metric === 'errors' ? 'errors /s' : 'spans /s', data: g.ys, color: metric === 'errors' ? '#f2545b' : colorAt(i) }],
        { height: 120, legend: false, yFmt: metric === 'duration' ? fmtSecs : undefined });
    });
    const body = clear($('#tab-body'));
    if (tab === 'errors') await traceList(body, andFilter(q, 'status=error'), r, false);
    else if (tab === 'slowest') await traceList(body, q, r, true);
    else await compare(body, q, r, attrs);
  });
}

async function traceList(body, query, r, slowest) {
  body.append(el('p', { class: 'hint' }, 'Query: ', el('code', { text: query })));
  const b = await api('/api/v1/traces/search', { q: query, start: r.start, end: r.end, limit: slowest ? 300 : 25 });
  let traces = b.traces || [];
  if (slowest) traces = traces.sort((x, y) => y.durationMs - x.durationMs).slice(0, 30);
  const tb = el('tbody');
  body.append(el('table', { class: 'grid', id: 'trace-table' }, el('thead', {}, el('tr', {}, ...['Trace', 'Root', 'Started', 'Duration', 'Spans', 'Errors', 'Matched spans'].map((h) => el('th', { text: h })))), tb));
  if (!traces.length) tb.append(el('tr', {}, el('td', { colspan: 7, class: 'hint', text: 'No traces match.' })));
  for (const t of traces) {
    const link = href(`/traces/${t.traceID}`);
    tb.append(el('tr', { class: 'clickable' + (t.errorCount ? ' bad' : ''), dataset: { traceId: t.traceID } },
      el('td', {}, el('a', { class: 'mono trace-link', href: link, text: t.traceID.slice(0, 16) })),
      el('td', { text: `${t.rootServiceName || '?'}: ${t.rootSpanName || '?'}` }),
      el('td', { text: fmtTime(Number(t.startTimeUnixNano) / 1e9) }),
      el('td', { class: 'num', text: fmtSecs(t.durationMs / 1000) }),
      el('td', { class: 'num', text: t.spanCount }),
      el('td', { class: 'num' + (t.errorCount ? ' errtext' : ''), text: t.errorCount }),
      el('td', { class: 'mono' }, ...(t.matched || []).slice(0, 3).map((m) => el('div', { text: `${m.serviceName}: ${m.name} (${fmtSecs(m.durationMs / 1000)})` })))));
  }
}

const skipKey = /(\.id$|_id$|\.arn$|instance|invocation|query\.text|statement|connection_string|^service\.version$)/;

// compare lists attribute values over-represented among errored spans of
// the selection, against all spans of the selection.
async function compare(body, q, r, attrs) {
  const sel = andFilter(q, 'status=error');
  body.append(el('p', { class: 'hint' }, 'Selection ', el('code', { text: sel }), ' against baseline ', el('code', { text: q })));
  const pick = (scope, n) => attrs.filter((a) => a.scope === scope && !skipKey.test(a.key)).slice(0, n).map(attrName);
  const keys = [...pick('resource', 10), ...pick('span', 10), 'name', 'statusMessage'];
  const get = (k, query) => api(`/api/v1/traces/attributes/${encodeURIComponent(k)}/values`, { q: query, start: r.start, end: r.end, limit: 50 }).then((b) => b.values).catch(() => []);
  const rows = [];
  await Promise.all(keys.map(async (k) => {
    const [s, base] = await Promise.all([get(k, sel), get(k, q)]);
    const st = s.reduce((a, v) => a + v.count, 0), bt = base.reduce((a, v) => a + v.count, 0);
    if (!st || !bt) return;
    const bm = new Map(base.map((v) => [v.value, v.count]));
    for (const v of s) {
      const ss = v.count / st, bs = (bm.get(v.value) || 0) / bt;
      rows.push({ key: k, value: v.value, ss, bs, diff: ss - bs });
    }
  }));
  rows.sort((a, b) => b.diff - a.diff);
  const tb = el('tbody');
  body.append(el('table', { class: 'grid', id: 'compare-table' }, el('thead', {}, el('tr', {}, ...['Attribute', 'Value', 'In errors', 'In all spans', 'Difference', ''].map((h) => el('th', { text: h })))), tb));
  for (const x of rows.filter((x) => x.diff > 0.01).slice(0, 30)) {
    tb.append(el('tr', {}, el('td', { class: 'mono', text: x.key }), el('td', { class: 'mono', text: x.value }),
      el('td', { class: 'num', text: fmtPct(x.ss, 1) }), el('td', { class: 'num', text: fmtPct(x.bs, 1) }),
      el('td', {}, el('div', { class: 'bar' }, el('span', { style: { width: `${Math.round(Math.min(1, x.diff) * 100)}%` } }))),
      el('td', {}, el('button', { type: 'button', text: '+ filter', onclick: () => setParams({ q: andFilter(q, `${x.key}=${quote(x.value)}`) }) }))));
  }
  if (!tb.children.length) tb.append(el('tr', {}, el('td', { colspan: 6, class: 'hint', text: 'No errors in the selection, or nothing stands out.' })));
}
