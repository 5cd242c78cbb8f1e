import { api, el, clear, $, run, range, params, fmtNum, fmtSecs, fmtTime, align, chart, promRange, seriesLabel, colorAt, href } from '../core.js';
import { logLine, entriesOf, LEVEL_COLORS } from './loggroup.js';
import { traceAgg } from './service.js';

const LANGS = { promql: 'PromQL (metrics)', logql: 'LogQL (logs)', traceql: 'TraceQL (traces)' };
const PLACEHOLDER = { promql: 'e.g. aws_rds_database_connections_sum', logql: 'e.g. {log_group="..."} |= "FATAL"', traceql: 'e.g. {status=error} | rate() by (resource.service.name)' };

// Suggestion sources, cached per page load.
const cache = new Map();
function cached(key, fn) { if (!cache.has(key)) cache.set(key, fn().catch((e) => { cache.delete(key); throw e; })); return cache.get(key); }
const metricNames = () => cached('m', async () => (await api('/api/v1/label/__name__/values')).data);
const promLabels = (metric) => cached('pl' + metric, async () => (await api('/api/v1/labels', metric ? { 'match[]': metric } : {})).data.filter((l) => l !== '__name__'));
const promValues = (label, metric) => cached(`pv${label}\u0000${metric}`, async () => (await api(`/api/v1/label/${encodeURIComponent(label)}/values`, metric ? { 'match[]': metric } : {})).data);
const logLabels = () => cached('ll', async () => (await api('/api/v1/logs/labels')).data);
const logValues = (label) => cached('lv' + label, async () => (await api(`/api/v1/logs/label/${encodeURIComponent(label)}/values`)).data);
const traceAttrs = () => cached('ta', async () => (await api('/api/v1/traces/attributes')).attributes.map((a) => (a.scope === 'intrinsic' ? a.key : `${a.scope}.${a.key}`)));

// context works out what is being typed at the cursor: a metric name, a
// label name inside {}, or a label value after label=".
export function completionContext(text, pos) {
  const before = text.slice(0, pos);
  const open = before.lastIndexOf('{'), close = before.lastIndexOf('}');
  const inBraces = open > close;
  const vm = /([A-Za-z_][A-Za-z0-9_.]*)\s*(=~|!~|!=|=)\s*"([^"]*)$/.exec(before);
  if (inBraces && vm) return { kind: 'value', label: vm[1], prefix: vm[3], metric: /([A-Za-z_:][A-Za-z0-9_:]*)\s*\{[^{}]*$/.exec(before)?.[1] || '' };
  const wm = /([A-Za-z_:.][A-Za-z0-9_:.]*)$/.exec(before);
  const prefix = wm ? wm[1] : '';
  if (inBraces) return { kind: 'label', prefix, metric: /([A-Za-z_:][A-Za-z0-9_:]*)\s*\{[^{}]*$/.exec(before)?.[1] || '' };
  return { kind: 'metric', prefix };
}

function pane(side, state, onChange) {
  const root = el('section', { class: 'panel pane', dataset: { pane: side } });
  const lang = el('select', { class: 'lang' }, ...Object.entries(LANGS).map(([k, v]) => new Option(v, k)));
  lang.value = state.lang;
  const ta = el('textarea', { class: 'query', spellcheck: 'false', placeholder: PLACEHOLDER[state.lang], rows: 3 });
  ta.value = state.q;
  const comp = el('div', { class: 'completions', hidden: true });
  const views = el('select', { class: 'view' }, new Option('Chart', 'chart'), new Option('Table', 'table'), new Option('Lines', 'lines'));
  views.value = state.view || 'chart';
  const runBtn = el('button', { type: 'button', class: 'primary run', text: 'Run' });
  const browserBtn = el('button', { type: 'button', class: 'browser-toggle', text: 'Metrics browser' });
  const browser = el('div', { class: 'browser', hidden: true });
  const out = el('div', { class: 'result' });
  root.append(el('div', { class: 'toolbar' }, lang, views, browserBtn, runBtn, el('span', { class: 'hint', text: 'Ctrl+Enter runs' })),
    el('div', { class: 'editor' }, ta, comp), browser, out);

  let items = [], sel = 0, ctx = null;
  const accept = (i) => {
    const it = items[i];
    if (!it || !ctx) return;
    const pos = ta.selectionStart, before = ta.value.slice(0, pos), after = ta.value.slice(pos);
    const start = before.length - ctx.prefix.length;
    let ins = it;
    if (ctx.kind === 'value') ins = it.replace(/\\/g, '\\\\').replace(/"/g, '\\"') + (after.startsWith('"') ? '' : '"');
    if (ctx.kind === 'label' && state.lang !== 'traceql') ins = it + '="';
    ta.value = before.slice(0, start) + ins + after;
    ta.selectionStart = ta.selectionEnd = start + ins.length;
    comp.hidden = true;
    ta.focus();
    if (ctx.kind === 'label') suggest();
  };
  const show = () => {
    clear(comp);
    items.slice(0, 50).forEach((it, i) => comp.append(el('div', { class: i === sel ? 'sel' : '', dataset: { value: it }, text: it, onmousedown: (e) => { e.preventDefault(); accept(i); } })));
    comp.hidden = items.length === 0;
  };
  const suggest = async () => {
    ctx = completionContext(ta.value, ta.selectionStart);
    const l = lang.value;
    let all = [];
    try {
      if (l === 'promql') {
        if (ctx.kind === 'metric') all = await metricNames();
        else if (ctx.kind === 'label') all = await promLabels(ctx.metric);
        else all = await promValues(ctx.label, ctx.metric);
      } else if (l === 'logql') {
        if (ctx.kind === 'label' || ctx.kind === 'metric') all = ctx.kind === 'label' ? await logLabels() : [];
        else all = await logValues(ctx.label);
      } else {
        if (ctx.kind === 'label') all = await traceAttrs();
      }
    } catch (e) { console.warn(e); }
    const pre = ctx.prefix.toLowerCase();
    items = (ctx.kind === 'metric' && !pre) ? [] : all.filter((x) => x.toLowerCase().startsWith(pre) && x !== ctx.prefix);
    if (ctx.kind === 'metric' && pre) items = items.concat(all.filter((x) => !x.toLowerCase().startsWith(pre) && x.toLowerCase().includes(pre)));
    sel = 0;
    show();
  };
  ta.addEventListener('input', suggest);
  ta.addEventListener('blur', () => setTimeout(() => { comp.hidden = true; }, 150));
  ta.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); go(); return; }
    if (comp.hidden) return;
    if (e.key === 'ArrowDown') { e.preventDefault(); sel = Math.min(items.length - 1, sel + 1); show(); }
    else if (e.key === 'ArrowUp') { e.preventDefault(); sel = Math.max(0, sel - 1); show(); }
    else if (e.key === 'Enter' || e.key === 'Tab') { e.preventDefault(); accept(sel); }
    else if (e.key === 'Escape') comp.hidden = true;
  });
  lang.addEventListener('change', () => { state.lang = lang.value; ta.placeholder = PLACEHOLDER[lang.value]; browserBtn.hidden = lang.value !== 'promql'; onChange(); });
  views.addEventListener('change', () => { state.view = views.value; onChange(); go(); });
  browserBtn.hidden = state.lang !== 'promql';
  browserBtn.addEventListener('click', () => { browser.hidden = !browser.hidden; if (!browser.hidden) metricsBrowser(browser, ta); });
  const go = async () => {
    state.q = ta.value.trim(); state.lang = lang.value; state.view = views.value;
    onChange();
    clear(out);
    if (!state.q) return;
    out.append(el('p', { class: 'hint', text: 'Running…' }));
    try { await execute(state, out); } catch (e) { clear(out).append(el('div', { class: 'error', text: e.message })); }
  };
  runBtn.addEventListener('click', go);
  return { root, go };
}

// metricsBrowser: pick a metric (filtered as one types), a label and a
// value; it builds the selector into the editor.
async function metricsBrowser(box, ta) {
  clear(box);
  const filter = el('input', { type: 'text', class: 'mb-filter', placeholder: 'filter metrics, e.g. aws_rds_' });
  const ms = el('select', { class: 'mb-metrics', size: 8 }), ls = el('select', { class: 'mb-labels', size: 8 }), vs = el('select', { class: 'mb-values', size: 8 });
  const use = el('button', { type: 'button', class: 'mb-use', text: 'Use query' });
  const preview = el('code', { class: 'mb-preview' });
  box.append(el('div', {}, filter, ms), el('div', {}, el('div', { class: 'hint', text: 'labels' }), ls), el('div', {}, el('div', { class: 'hint', text: 'values' }), vs),
    el('div', { style: { gridColumn: '1 / -1' } }, preview, ' ', use));
  const names = await metricNames();
  const fill = () => { clear(ms); for (const n of names.filter((n) => n.includes(filter.value.trim()))) ms.append(new Option(n, n)); };
  fill();
  const build = () => {
    if (!ms.value) return '';
    const lab = ls.value, val = vs.value;
    return lab && val ? `${ms.value}{${lab}="${val.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"}` : ms.value;
  };
  filter.addEventListener('input', fill);
  ms.addEventListener('change', async () => { clear(ls); clear(vs); for (const l of await promLabels(ms.value)) ls.append(new Option(l, l)); preview.textContent = build(); });
  ls.addEventListener('change', async () => { clear(vs); for (const v of await promValues(ls.value, ms.value)) vs.append(new Option(v, v)); preview.textContent = build(); });
  vs.addEventListener('change', () => { preview.textContent = build(); });
  use.addEventListener('click', () => { ta.value = build(); ta.dispatchEvent(new Event('change')); box.hidden = true; });
}

async function execute(state, out) {
  const r = range();
  if (state.lang === 'promql') {
    const res = await promRange(state.q, r);
    return renderMatrix(out, res, r, state.view);
  }
  if (state.lang === 'logql') {
    const b = await api('/api/v1/logs/query', { q: state.q, start: r.start, end: r.end, step: r.step, limit: 300 });
    if (b.data.resultType === 'matrix') return renderMatrix(out, b.data.result, r, state.view);
    const es = entriesOf(b.data.result);
    clear(out);
    if (state.view === 'table') {
      const tb = el('tbody');
      out.append(el('table', { class: 'grid' }, el('thead', {}, el('tr', {}, el('th', { text: 'Time' }), el('th', { text: 'Level' }), el('th', { text: 'Line' }))), tb));
      for (const e of es) tb.append(el('tr', {}, el('td', { text: fmtTime(Number(BigInt(e.ts) / 1000000n) / 1000) }), el('td', { text: e.labels.level || '' }), el('td', { class: 'mono', text: e.line })));
    } else {
      const c = el('div', { class: 'chart volume-chart' });
      out.append(c);
      try {
        const v = await api('/api/v1/logs/volume', { q: state.q, start: r.start, end: r.end, step: r.step });
        const a = align(v.data.result, r, true);
        chart(c, a.xs, v.data.result.map((s, i) => ({ label: s.metric.level || '(none)', data: a.ys[i], color: LEVEL_COLORS[s.metric.level] || colorAt(i) })), { height: 120, bars: true });
      } catch (e) { c.remove(); }
      out.append(el('p', { class: 'hint', text: `${es.length} lines, newest first` }));
      const box = el('div', { class: 'loglines' });
      for (const e of es) box.append(logLine(e.ts, e.line, e.labels));
      out.append(box);
    }
    return;
  }
  // TraceQL: a metrics query draws, a search lists traces.
  if (/\|\s*(rate|count_over_time|quantile_over_time|histogram_over_time|min_over_time|max_over_time|avg_over_time|sum_over_time)\s*\(/.test(state.q)) {
    return renderMatrix(out, await traceAgg(state.q, r), r, state.view);
  }
  const b = await api('/api/v1/traces/search', { q: state.q, start: r.start, end: r.end, limit: 50 });
  clear(out);
  const tb = el('tbody');
  out.append(el('table', { class: 'grid' }, el('thead', {}, el('tr', {}, ...['Trace', 'Root', 'Started', 'Duration', 'Errors'].map((h) => el('th', { text: h })))), tb));
  for (const t of b.traces) {
    tb.append(el('tr', { class: t.errorCount ? 'bad' : '' }, el('td', {}, el('a', { class: 'mono', href: href(`/traces/${t.traceID}`), text: t.traceID.slice(0, 16) })),
      el('td', { text: `${t.rootServiceName || '?'}: ${t.rootSpanName || '?'}` }), el('td', { text: fmtTime(Number(t.startTimeUnixNano) / 1e9) }),
      el('td', { class: 'num', text: fmtSecs(t.durationMs / 1000) }), el('td', { class: 'num', text: t.errorCount })));
  }
}

function renderMatrix(out, res, r, view) {
  clear(out);
  if (view === 'table') {
    const tb = el('tbody');
    out.append(el('table', { class: 'grid result-table' }, el('thead', {}, el('tr', {}, el('th', { text: 'Series' }), el('th', { text: 'Last value' }), el('th', { text: 'Max' }))), tb));
    for (const s of res) {
      const vals = (s.values || []).map((v) => parseFloat(v[1])).filter((v) => isFinite(v));
      tb.append(el('tr', {}, el('td', { class: 'mono', text: seriesLabel(s.metric) }), el('td', { class: 'num', text: fmtNum(vals[vals.length - 1]) }), el('td', { class: 'num', text: fmtNum(Math.max(...vals)) })));
    }
    return;
  }
  const a = align(res.slice(0, 30), r);
  const c = el('div', { class: 'chart result-chart' });
  out.append(c, el('p', { class: 'hint', text: `${res.length} series${res.length > 30 ? ' (first 30 drawn)' : ''}` }));
  chart(c, a.xs, res.slice(0, 30).map((s, i) => ({ label: seriesLabel(s.metric), data: a.ys[i], color: colorAt(i) })), { height: 240 });
}

export default function () {
  const p = params();
  const states = {
    left: { q: p.get('left') || '', lang: LANGS[p.get('leftLang')] ? p.get('leftLang') : 'promql', view: p.get('leftView') || '' },
    right: { q: p.get('right') || '', lang: LANGS[p.get('rightLang')] ? p.get('rightLang') : 'promql', view: p.get('rightView') || '' },
  };
  for (const s of Object.values(states)) if (!s.view) s.view = s.lang === 'logql' ? 'lines' : 'chart';
  let split = p.get('split') === '1' || !!p.get('right');
  const sync = () => {
    const u = params();
    for (const side of ['left', 'right']) {
      const s = states[side];
      if (side === 'right' && !split) { u.delete('right'); u.delete('rightLang'); u.delete('rightView'); continue; }
      s.q ? u.set(side, s.q) : u.delete(side);
      u.set(side + 'Lang', s.lang);
      u.set(side + 'View', s.view);
    }
    split ? u.set('split', '1') : u.delete('split');
    history.replaceState(null, '', `${location.pathname}?${u.toString()}`);
  };
  const panes = $('#panes');
  const built = {};
  const layout = () => {
    clear(panes);
    panes.classList.toggle('split', split);
    built.left = built.left || pane('left', states.left, sync);
    panes.append(built.left.root);
    if (split) { built.right = built.right || pane('right', states.right, sync); panes.append(built.right.root); }
    $('#split-toggle').textContent = split ? 'Close split' : 'Split';
  };
  $('#split-toggle').addEventListener('click', (e) => { e.preventDefault(); split = !split; layout(); sync(); if (split && states.right.q) built.right.go(); });
  layout();
  sync();
  run(async () => { await Promise.all(Object.values(built).filter((b) => b && panes.contains(b.root)).map((b) => b.go())); });
}
