import { api, el, clear, $, run, href, fmtPct, fmtNum, rangeQuery } from '../core.js';

export default function () {
  run(async () => {
    const list = (await api('/api/v1/slos')).data || [];
    const rows = await Promise.all(list.map(async (s) => {
      try { return { s, st: (await api(`/api/v1/slos/${encodeURIComponent(s.name)}`, rangeQuery())).data }; } catch (e) { return { s, err: e }; }
    }));
    // Worst first: firing alerts, then the least budget left.
    const rank = { firing: 0, pending: 1, inactive: 2, unknown: 3 };
    rows.sort((a, b) => (rank[a.s.alertState] ?? 4) - (rank[b.s.alertState] ?? 4) ||
      ((a.st?.errorBudget?.remainingPercent ?? 1e9) - (b.st?.errorBudget?.remainingPercent ?? 1e9)));
    const tb = clear($('#slo-table tbody'));
    if (!rows.length) tb.append(el('tr', {}, el('td', { colspan: 8, class: 'hint', text: 'No SLOs yet. Create one with POST /api/v1/slos or a YAML file in --slo-dir.' })));
    for (const { s, st, err } of rows) {
      const b = st?.errorBudget;
      const breached = b?.exhausted || (st?.sli != null && st.sli < s.objective);
      tb.append(el('tr', { class: 'clickable' + (breached ? ' bad' : ''), onclick: () => location.assign(href(`/slos/${encodeURIComponent(s.name)}`)) },
        el('td', {}, el('a', { href: href(`/slos/${encodeURIComponent(s.name)}`), class: 'slo-link', text: s.name }), el('div', { class: 'hint', text: s.description || '' })),
        el('td', { text: s.service || '' }),
        el('td', {}, el('span', { class: 'badge ' + (err ? 'warning' : st?.noData ? '' : breached ? 'breached' : 'ok'), text: err ? 'error' : st?.noData ? 'no data' : breached ? 'breached' : 'ok' })),
        el('td', { class: 'num', text: fmtPct(st?.sli, 3) }),
        el('td', { class: 'num', text: fmtPct(s.objective, 2) }),
        el('td', { class: 'num', text: b ? fmtNum(b.remainingPercent, 4) + '%' : '–' }),
        el('td', { class: 'num', text: st?.currentBurnRate != null ? `${fmtNum(st.currentBurnRate)}x (${st.currentBurnRateWindow})` : '–' }),
        el('td', {}, el('span', { class: 'badge alert-state ' + s.alertState, text: s.alertState })),
      ));
    }
  });
}
