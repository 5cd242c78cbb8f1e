import { api, el, clear, $, run, fmtTime } from '../core.js';

// Links in findings point at pages of this UI; anything else is shown as text.
const local = (u) => typeof u === 'string' && u.startsWith('/') && !u.startsWith('//');

export default function () {
  const id = document.body.dataset.name;
  run(async () => {
    const rep = (await api(`/api/v1/investigations/${encodeURIComponent(id)}`)).data;
    const box = clear($('#inv-body'));
    box.append(el('section', { class: 'panel' },
      el('h2', { text: `${rep.request.slo || rep.request.service} · ${fmtTime(Date.parse(rep.request.start) / 1000)} → ${fmtTime(Date.parse(rep.request.end) / 1000)}` }),
      el('p', { class: 'diagnosis', id: 'diagnosis', text: rep.diagnosis }),
      rep.cause ? el('p', {}, el('span', { class: 'badge error', text: rep.cause }), ' ', el('span', { class: 'mono', text: rep.resource || '' })) : '',
      rep.story?.length ? el('ol', {}, ...rep.story.map((s) => el('li', { text: s }))) : '',
      rep.nextSteps?.length ? el('div', {}, el('h3', { text: 'Next steps' }), el('ul', {}, ...rep.nextSteps.map((s) => el('li', { text: s })))) : ''));
    for (const f of rep.findings || []) {
      box.append(el('section', { class: 'panel finding' },
        el('h2', {}, `${f.title} `, el('span', { class: 'hint', text: `${f.check} · score ${f.score.toFixed(2)}` })),
        el('p', { text: f.summary }),
        f.evidence?.length ? el('table', { class: 'grid' }, el('tbody', {}, ...f.evidence.map((e) => el('tr', {}, el('td', { text: e.kind }), el('td', { class: 'mono', text: e.label }), el('td', { class: 'mono', text: e.value }), el('td', { class: 'mono hint', text: e.query || '' }))))) : '',
        local(f.link) ? el('a', { href: f.link, text: 'Open the view that shows it →' }) : ''));
    }
    if (rep.errors?.length) box.append(el('section', { class: 'panel' }, el('h2', { text: 'Checks that failed' }), el('ul', {}, ...rep.errors.map((e) => el('li', { text: e })))));
  });
}
