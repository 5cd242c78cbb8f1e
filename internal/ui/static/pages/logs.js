import { api, el, clear, $, run, href, rangeQuery, fmtNum, fmtTime } from '../core.js';

export default function () {
  run(async () => {
    const b = await api('/api/v1/logs/groups', rangeQuery());
    const tb = clear($('#group-table tbody'));
    if (!b.groups.length) tb.append(el('tr', {}, el('td', { colspan: 3, class: 'hint', text: 'No log groups in this range.' })));
    for (const g of b.groups) {
      const link = href('/logs/group', { name: g.name });
      tb.append(el('tr', { class: 'clickable', dataset: { group: g.name }, onclick: (e) => { if (e.target.tagName !== 'A') location.assign(link); } },
        el('td', {}, el('a', { class: 'mono group-link', href: link, text: g.name })),
        el('td', { class: 'num', text: fmtNum(g.lines) }),
        el('td', { text: g.lastSeenUnixNano ? fmtTime(Number(g.lastSeenUnixNano) / 1e9) : '–' })));
    }
  });
}
