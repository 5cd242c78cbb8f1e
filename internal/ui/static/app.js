// Entry point: wires the time-range picker, then loads the module of the
// page the server rendered (body[data-page]).
import { $, params, setParams, fmtTime, parseTimeParam, showError } from './core.js';
export { selectCurrent } from './core.js';

function initTimePicker() {
  const from = $('#tp-from'), refresh = $('#tp-refresh'), abs = $('#tp-abs');
  if (!from) return;
  const p = params();
  const cur = p.get('from') || 'now-1h';
  if (cur.startsWith('now-') && [...from.options].some((o) => o.value === cur)) {
    from.value = cur;
  } else if (!cur.startsWith('now')) {
    // An absolute range (from a zoom): show it, and offer the relative
    // ranges to go back.
    const now = Date.now() / 1000;
    from.append(new Option('Custom range', cur, true, true));
    abs.hidden = false;
    abs.textContent = `${fmtTime(parseTimeParam(cur, now))} → ${fmtTime(parseTimeParam(p.get('to') || 'now', now))}`;
  }
  from.addEventListener('change', () => setParams({ from: from.value, to: 'now' }));
  refresh.value = p.get('refresh') || 'off';
  refresh.addEventListener('change', () => setParams({ refresh: refresh.value === 'off' ? '' : refresh.value }));
}

initTimePicker();
const page = document.body.dataset.page;
if (page && page !== 'notfound') {
  import(`./pages/${page}.js`).then((m) => m.default()).catch((e) => { console.error(e); showError(e); });
}
