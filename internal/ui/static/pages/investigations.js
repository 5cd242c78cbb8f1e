import { api, el, clear, $, run, href, fmtTime } from '../core.js';

export default function () {
  run(async () => {
    const b = await api('/api/v1/investigations');
    const tb = clear($('#inv-table tbody'));
    if (!b.data.length) tb.append(el('tr', {}, el('td', { colspan: 4, class: 'hint', text: 'No investigations yet: open an SLO and press Investigate.' })));
    for (const x of b.data) {
      tb.append(el('tr', {},
        el('td', {}, el('a', { href: href(`/investigations/${encodeURIComponent(x.id)}`), text: fmtTime(Date.parse(x.finished) / 1000) })),
        el('td', { text: x.slo || x.service || '' }),
        el('td', { text: x.diagnosis }),
        el('td', { class: 'num', text: x.findings })));
    }
  });
}
