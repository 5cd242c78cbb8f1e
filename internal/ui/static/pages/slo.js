import { api, el, clear, $, run, href, params, setParams, fmtPct, fmtNum, fmtDuration, fmtTime, range, rangeQuery, align, chart, promRange, promInstant, quote, colorAt, selectCurrent } from '../core.js';


// sliExprs gives PromQL for the SLI's total and bad event rates over win,
// optionally summed by a label.
export function sliExprs(def, win, by) {
  const sum = by ? `sum by (${by})` : 'sum';
  const sli = def.sli || {};
  if (sli.successRate) {
    const sel = `service=${quote(sli.successRate.service)}, span_kind="SPAN_KIND_SERVER"`;
    return {
      total: `${sum} (rate(traces_spanmetrics_calls_total{${sel}}[${win}]))`,
      bad: `${sum} (rate(traces_spanmetrics_calls_total{${sel}, status_code="STATUS_CODE_ERROR"}[${win}]))`,
    };
  }
  if (sli.ratio) {
    const total = `${sum} (rate(${sli.ratio.total}[${win}]))`;
    const bad = sli.ratio.bad ? `${sum} (rate(${sli.ratio.bad}[${win}]))` : `(${total} - ${sum} (rate(${sli.ratio.good}[${win}])))`;
    return { total, bad };
  }
  if (sli.latency) {
    const sel = `service=${quote(sli.latency.service)}, span_kind="SPAN_KIND_SERVER"`;
    const total = `${sum} (rate(traces_spanmetrics_latency_count{${sel}}[${win}]))`;
    return { total, bad: `(${total} - ${sum} (rate(traces_spanmetrics_latency_bucket{${sel}, le="${sli.latency.threshold}"}[${win}])))` };
  }
  return null;
}

function card(k, v, cls = '') { return el('div', { class: 'card ' + cls }, el('div', { class: 'v', text: v }), el('div', { class: 'k', text: k })); }

export default function () {
  const name = document.body.dataset.name;
  const bsel = $('#breakdown');
  bsel.addEventListener('change', () => setParams({ breakdown: bsel.value }));
  $('#investigate').addEventListener('click', () => investigate(name));

  run(async () => {
    const r = range();
    const st = (await api(`/api/v1/slos/${encodeURIComponent(name)}`, rangeQuery())).data;
    const def = st.definition;
    $('#slo-desc').textContent = `${def.description || ''} · service ${def.service || '–'} · objective ${fmtPct(def.objective)} over ${def.window || '28d'}` + (st.message ? ` · ${st.message}` : '');
    const alertState = worstState(st.alerts || []);
    const ab = $('#slo-alert');
    ab.className = 'badge alert-state ' + alertState;
    ab.textContent = `alert: ${alertState}`;
    const b = st.errorBudget || {};
    const cards = clear($('#slo-cards'));
    cards.append(
      card('SLI (window)', fmtPct(st.sli, 3), st.sli != null && st.sli < def.objective ? 'bad' : 'ok'),
      card('Objective', fmtPct(def.objective)),
      card('Error budget remaining', b.remainingPercent != null ? fmtNum(b.remainingPercent, 4) + '%' : '–', b.exhausted ? 'bad' : 'ok'),
      card(`Burn rate (${st.currentBurnRateWindow || '–'})`, st.currentBurnRate != null ? fmtNum(st.currentBurnRate) + 'x' : '–', st.currentBurnRate > 1 ? 'bad' : 'ok'),
      card('Budget runs out', st.timeToExhaustion === 'exhausted' ? 'exhausted' : st.timeToExhaustionSeconds != null ? 'in ' + fmtDuration(st.timeToExhaustionSeconds) : (st.timeToExhaustion || 'not at this rate'), st.timeToExhaustionSeconds != null ? 'bad' : ''),
      card(`Events /s (${st.eventRate?.window || '5m'}) total / bad`, `${fmtNum(st.eventRate?.total)} / ${fmtNum(st.eventRate?.bad)}`),
    );
    const bt = clear($('#burn-table tbody'));
    for (const br of st.burnRates || []) bt.append(el('tr', {}, el('td', { text: br.window }), el('td', { class: 'num', text: fmtPct(br.errorRatio, 3) }), el('td', { class: 'num', text: fmtNum(br.burnRate) + 'x' })));
    renderAlerts(st.alerts || []);
    alertHistory(name, r);

    // Charts from the span metrics (or the SLI's own selectors).
    const win = `${Math.max(300, r.step * 2)}s`;
    const ex = sliExprs(def, win);
    if (ex) {
      const [tot, bad] = await Promise.all([promRange(ex.total, r), promRange(ex.bad, r)]);
      const a = align([...tot, ...bad], r);
      const t = a.ys[0] || [], bd = a.ys[tot.length] || t.map(() => 0);
      const sliY = t.map((v, i) => (v ? 1 - (bd[i] || 0) / v : null));
      chart($('#chart-sli'), a.xs, [
        { label: 'SLI', data: sliY, color: '#5aa9ff' },
        { label: 'objective', data: a.xs.map(() => def.objective), color: '#f0b429', dash: [6, 4] },
      ], { yFmt: (v) => fmtPct(v, 2) });
      chart($('#chart-events'), a.xs, [
        { label: 'total /s', data: t, color: '#5aa9ff' },
        { label: 'bad /s', data: bd, color: '#f2545b', fill: 'rgba(242,84,91,.15)' },
      ]);
      await budgetChart(def, st, r);
    }
    await breakdown(st, def, r);
  });
}

function worstState(rules) {
  const rank = { inactive: 1, pending: 2, firing: 3 };
  let best = 'inactive';
  for (const ru of rules) if ((rank[ru.state] || 0) > (rank[best] || 0)) best = ru.state;
  return best;
}

// alertHistory draws when each severity's alert was pending or firing,
// from the ALERTS series the rule evaluator writes (1 = firing, 0.5 =
// pending).
async function alertHistory(name, r) {
  try {
    const [firing, pending] = await Promise.all([
      promRange(`max by (severity) (ALERTS{slo=${quote(name)}, alertstate="firing"})`, r),
      promRange(`max by (severity) (ALERTS{slo=${quote(name)}, alertstate="pending"}) * 0.5`, r),
    ]);
    const all = [...firing, ...pending];
    const a = align(all, r);
    chart($('#chart-alerts'), a.xs, all.map((s, i) => ({ label: `${s.metric.severity || 'alert'} ${i < firing.length ? 'firing' : 'pending'}`, data: a.ys[i],
      color: i < firing.length ? '#f2545b' : '#f0b429', width: 2 })), { height: 110, yRange: [0, 1.2], yFmt: (v) => (v >= 1 ? 'firing' : v > 0 ? 'pending' : '') });
  } catch (e) { console.warn(e); }
}

function renderAlerts(rules) {
  const tb = clear($('#alert-table tbody'));
  for (const ru of rules) {
    const a = (ru.alerts || [])[0];
    tb.append(el('tr', { class: ru.state === 'firing' ? 'bad' : '' },
      el('td', { text: ru.name }), el('td', { text: ru.severity }),
      el('td', {}, el('span', { class: 'badge ' + ru.state, text: ru.state })),
      el('td', { text: a?.activeAt ? fmtTime(Date.parse(a.activeAt) / 1000) : '–' }),
      el('td', { text: a?.annotations?.summary || a?.annotations?.description || ru.lastError || '' })));
  }
}

// budgetChart: the error budget remaining over the range (cumulative over
// the SLO window as far as data goes) with the projection to exhaustion
// at the current burn rate.
async function budgetChart(def, st, r) {
  const allowed = 1 - def.objective;
  const q = `1 - ((${sliExprs(def, def.window || '28d').bad.replace(/rate\(/g, 'increase(')}) / (${sliExprs(def, def.window || '28d').total.replace(/rate\(/g, 'increase(')})) / ${allowed}`;
  let res = [];
  try { res = await promRange(q, r); } catch (e) { console.warn(e); }
  const a = align(res, r);
  const y = a.ys[0] || a.xs.map(() => null);
  const proj = a.xs.map(() => null);
  const now = Date.now() / 1000;
  const remaining = st.errorBudget?.remainingPercent != null ? st.errorBudget.remainingPercent / 100 : null;
  let text = '';
  if (st.timeToExhaustion === 'exhausted' || (remaining != null && remaining <= 0)) {
    text = 'The error budget is exhausted.';
  } else if (st.timeToExhaustionSeconds != null && remaining != null) {
    const at = now + st.timeToExhaustionSeconds;
    text = `At the current burn rate (${fmtNum(st.currentBurnRate)}x) the budget runs out in ${fmtDuration(st.timeToExhaustionSeconds)}, at ${fmtTime(at)}.`;
    // A straight line from now's remaining budget to zero at exhaustion,
    // drawn over the part of the range after now (if any) and extended.
    const last = a.xs.length - 1;
    proj[last] = remaining;
    if (at <= a.xs[last] + st.timeToExhaustionSeconds) {
      a.xs.push(Math.round(at)); y.push(null); proj.push(0);
    }
  } else {
    text = 'At the current rate the budget does not run out.';
  }
  $('#budget-projection').textContent = text;
  chart($('#chart-budget'), a.xs, [
    { label: 'budget remaining', data: y, color: '#4cc38a' },
    { label: 'projection', data: proj, color: '#f2545b', dash: [4, 4] },
  ], { yFmt: (v) => fmtPct(v, 0) });
}

async function breakdown(st, def, r) {
  const bsel = $('#breakdown');
  // Labels: the SLO's groupBy first, then every label of its span metrics.
  const labels = new Set((st.breakdown || []).map((b) => b.label));
  for (const l of def.groupBy || []) labels.add(l);
  if (def.sli?.successRate || def.sli?.latency) {
    try {
      const svc = (def.sli.successRate || def.sli.latency).service;
      const b = await api('/api/v1/labels', { 'match[]': `traces_spanmetrics_calls_total{service=${quote(svc)}}`, start: r.start, end: r.end });
      for (const l of b.data || []) if (!['__name__', 'service', 'status_code'].includes(l)) labels.add(l);
    } catch (e) { console.warn(e); }
  }
  if (bsel.options.length !== labels.size) {
    clear(bsel);
    for (const l of labels) bsel.append(new Option(l, l));
  }
  selectCurrent(bsel);
  const label = bsel.value || [...labels][0];
  if (!label) return;
  let rows;
  const known = (st.breakdown || []).find((b) => b.label === label);
  if (known) {
    rows = known.values;
  } else {
    const win = `${Math.max(60, r.end - r.start)}s`;
    const ex = sliExprs(def, win, label);
    const [tot, bad] = await Promise.all([promInstant(ex.total, r.end), promInstant(ex.bad, r.end)]);
    const badBy = new Map(bad.map((s) => [s.metric[label] ?? '', parseFloat(s.value[1])]));
    const sumBad = [...badBy.values()].reduce((x, y) => x + (isFinite(y) ? y : 0), 0);
    rows = tot.map((s) => {
      const v = s.metric[label] ?? '', t = parseFloat(s.value[1]), bd = badBy.get(v) || 0;
      return { value: v, totalRate: t, badRate: bd, errorRatio: t ? bd / t : 0, badShare: sumBad ? bd / sumBad : 0, badEvents: null };
    });
  }
  rows = [...rows].sort((x, y) => (y.badRate - x.badRate) || (y.errorRatio - x.errorRatio));
  const tb = clear($('#breakdown-table tbody'));
  for (const v of rows) {
    tb.append(el('tr', { class: v.errorRatio > 1 - def.objective ? 'bad' : '' },
      el('td', { class: 'mono', text: v.value === '' ? '(empty)' : v.value }),
      el('td', { class: 'num', text: fmtPct(v.errorRatio) }),
      el('td', {}, el('div', { class: 'bar', title: fmtPct(v.badShare) }, el('span', { style: { width: `${Math.round((v.badShare || 0) * 100)}%` } }))),
      el('td', { class: 'num', text: fmtNum(v.totalRate) }),
      el('td', { class: 'num', text: fmtNum(v.badRate) }),
      el('td', { class: 'num', text: v.badEvents != null ? fmtNum(v.badEvents) : '–' })));
  }
  // Event rate per value over time, the top 6 by bad rate.
  const ex = sliExprs(def, `${Math.max(300, r.step * 2)}s`, label);
  const [tot, bad] = await Promise.all([promRange(ex.total, r), promRange(ex.bad, r)]);
  const top = rows.slice(0, 6).map((v) => v.value);
  const pick = (res, v) => res.find((s) => (s.metric[label] ?? '') === v);
  const series = [];
  const want = [];
  top.forEach((v, i) => {
    const t = pick(tot, v), b = pick(bad, v);
    if (t) { want.push(t); series.push({ label: `${v} total`, color: colorAt(i) }); }
    if (b) { want.push(b); series.push({ label: `${v} bad`, color: colorAt(i), dash: [4, 3] }); }
  });
  const a = align(want, r);
  series.forEach((s, i) => { s.data = a.ys[i]; });
  chart($('#chart-breakdown'), a.xs, series, { height: 200 });
}

async function investigate(name) {
  const btn = $('#investigate'), stat = $('#investigate-status');
  btn.disabled = true;
  const t0 = Date.now();
  const tick = setInterval(() => { stat.textContent = `Investigating… ${Math.round((Date.now() - t0) / 1000)} s`; }, 500);
  stat.textContent = 'Investigating…';
  try {
    const r = range();
    const body = await api('/api/v1/investigations', null, {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ slo: name, start: String(r.start), end: String(r.end) }),
    });
    const rep = body.data;
    clearInterval(tick);
    clear(stat).append('Done: ', el('a', { id: 'investigation-link', href: href(`/investigations/${encodeURIComponent(rep.id)}`), text: rep.diagnosis || `report ${rep.id}` }));
  } catch (e) {
    clearInterval(tick);
    stat.textContent = `Investigation failed: ${e.message}`;
  } finally {
    btn.disabled = false;
  }
}
