import { api, el, clear, $, run, href, range, params, fmtNum, fmtTime, align, chart, quote } from '../core.js';

export const LEVEL_COLORS = { panic: '#b48cff', fatal: '#f2545b', error: '#ff8f40', warning: '#f0b429', warn: '#f0b429', log: '#5aa9ff', info: '#5aa9ff', detail: '#8d9db6', debug: '#8d9db6' };

// logQuery builds the LogQL of the page's state.
export function logQuery(name, level, filter) {
  const m = [`log_group=${quote(name)}`];
  if (level) m.push(`level=${quote(level)}`);
  let q = `{${m.join(', ')}}`;
  if (filter) q += ` |= ${quote(filter)}`;
  return q;
}

// logLine renders one entry; a click shows its stream labels.
export function logLine(ts, line, labels) {
  const lvl = labels.level || '';
  return el('div', { class: 'logline', dataset: { level: lvl }, onclick: (e) => e.currentTarget.classList.toggle('open') },
    el('span', { class: 'ts', text: fmtTime(Number(BigInt(ts) / 1000000n) / 1000) }),
    el('span', { class: 'lvl lvl-' + lvl, text: lvl.toUpperCase() }),
    el('span', { class: 'body', text: line }),
    el('div', { class: 'labels', text: Object.entries(labels).map(([k, v]) => `${k}=${v}`).join('  ') }));
}

export function entriesOf(result) {
  const out = [];
  for (const s of result) for (const [ts, line] of s.values) out.push({ ts, line, labels: s.stream });
  out.sort((a, b) => (BigInt(b.ts) > BigInt(a.ts) ? 1 : BigInt(b.ts) < BigInt(a.ts) ? -1 : 0));
  return out;
}

export default function () {
  const p = params();
  const name = p.get('name') || '';
  const lsel = $('#lg-level');
  if (p.get('level')) lsel.value = p.get('level');
  const q = logQuery(name, p.get('level'), p.get('filter'));
  $('#lg-query').textContent = q;
  $('#page-title').textContent = `Log group ${name}`;
  const r0 = range();
  $('#open-explore').setAttribute('href', href('/explore', { left: q, leftLang: 'logql' }));
  $('#lg-tail').addEventListener('change', (e) => { const u = new URLSearchParams(location.search); if (e.target.checked) u.set('tail', '1'); else u.delete('tail'); location.search = u.toString(); });
  let newest = null;
  const seen = new Set();

  run(async () => {
    const r = range();
    const [vol, lines] = await Promise.all([
      api('/api/v1/logs/volume', { q, start: r.start, end: r.end, step: r.step }),
      api('/api/v1/logs/query', { q, start: r.start, end: r.end, limit: 500 }),
    ]);
    const res = vol.data.result.sort((a, b) => (a.metric.level || '').localeCompare(b.metric.level || ''));
    const a = align(res, r, true);
    chart($('#chart-volume'), a.xs, res.map((s, i) => ({ label: s.metric.level || '(none)', data: a.ys[i], color: LEVEL_COLORS[s.metric.level] || '#8d9db6', fill: (LEVEL_COLORS[s.metric.level] || '#8d9db6') + '55' })), { bars: true, height: 160 });
    const es = entriesOf(lines.data.result);
    const box = clear($('#log-lines'));
    seen.clear();
    for (const e of es) { box.append(logLine(e.ts, e.line, e.labels)); seen.add(e.ts + e.line); }
    newest = es.length ? es[0].ts : null;
    $('#lg-count').textContent = `${fmtNum(es.length)} newest${es.length >= 500 ? ' (limit)' : ''}`;
  });

  if (p.get('tail')) {
    // Live tail: poll for lines newer than the newest shown.
    setInterval(async () => {
      try {
        const start = newest ? (Number(BigInt(newest) / 1000n) / 1e6).toFixed(6) : String(r0.end);
        const b = await api('/api/v1/logs/query', { q, start, end: String(Date.now() / 1000 + 1), limit: 200 });
        const es = entriesOf(b.data.result).filter((e) => !seen.has(e.ts + e.line));
        const box = $('#log-lines');
        for (const e of es.reverse()) { box.prepend(logLine(e.ts, e.line, e.labels)); seen.add(e.ts + e.line); }
        if (es.length) newest = es[es.length - 1].ts;
      } catch (e) { console.warn(e); }
    }, 2000);
  }
}
