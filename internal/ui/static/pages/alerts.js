import { api, el, clear, $, run, href, fmtTime, fmtNum } from '../core.js';

export default function () {
  run(async () => {
    const b = await api('/api/v1/alerts');
    const rank = { firing: 0, pending: 1 };
    const as = (b.data.alerts || []).sort((x, y) => (rank[x.state] ?? 2) - (rank[y.state] ?? 2));
    const tb = clear($('#alerts-table tbody'));
    if (!as.length) tb.append(el('tr', {}, el('td', { colspan: 8, class: 'hint', text: 'No alerts are pending or firing.' })));
    for (const a of as) {
      const slo = a.labels.slo;
      tb.append(el('tr', { class: a.state === 'firing' ? 'bad' : '' },
        el('td', { text: a.labels.alertname || '' }),
        el('td', {}, slo ? el('a', { href: href(`/slos/${encodeURIComponent(slo)}`), text: slo }) : ''),
        el('td', { text: a.labels.severity || '' }),
        el('td', {}, el('span', { class: 'badge ' + a.state, text: a.state })),
        el('td', { text: a.activeAt ? fmtTime(Date.parse(a.activeAt) / 1000) : '–' }),
        el('td', { class: 'num', text: fmtNum(parseFloat(a.value)) }),
        el('td', { text: a.annotations?.summary || a.annotations?.description || '' }),
        el('td', {}, slo ? el('a', { href: href(`/slos/${encodeURIComponent(slo)}`), text: 'Investigate →' }) : '')));
    }
  });
}
