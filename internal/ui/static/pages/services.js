import { el, clear, $, run, href, range, fmtPct, fmtNum, fmtSecs, align, sparkline, promRange, promInstant } from '../core.js';

// Entry spans only: a service's rate is what it serves or consumes, not
// its outgoing calls.
export const ENTRY = 'span_kind=~"SPAN_KIND_SERVER|SPAN_KIND_CONSUMER"';

export function platformOf(p) {
  if (!p) return '';
  if (p.includes('lambda')) return 'Lambda';
  if (p.includes('eks')) return 'EKS';
  if (p.includes('ecs')) return 'ECS';
  return p.replace(/^aws_/, '').toUpperCase();
}

export default function () {
  run(async () => {
    const r = range();
    const win = `${r.end - r.start}s`;
    const by = (res, key = 'service') => new Map(res.map((s) => [s.metric[key], parseFloat(s.value[1])]));
    const [all, plat, rate, errs, p50, p95, p99, spark] = await Promise.all([
      promInstant(`sum by (service) (rate(traces_spanmetrics_calls_total[${win}]))`, r.end),
      promInstant(`count by (service, cloud_platform) (traces_spanmetrics_calls_total)`, r.end),
      promInstant(`sum by (service) (rate(traces_spanmetrics_calls_total{${ENTRY}}[${win}]))`, r.end),
      promInstant(`sum by (service) (rate(traces_spanmetrics_calls_total{${ENTRY}, status_code="STATUS_CODE_ERROR"}[${win}]))`, r.end),
      ...[0.5, 0.95, 0.99].map((q) => promInstant(`histogram_quantile(${q}, sum by (service, le) (rate(traces_spanmetrics_latency_bucket{${ENTRY}}[${win}])))`, r.end)),
      promRange(`sum by (service) (rate(traces_spanmetrics_calls_total{${ENTRY}}[${Math.max(60, r.step * 2)}s]))`, r),
    ]);
    const rateM = by(rate), errM = by(errs), p50M = by(p50), p95M = by(p95), p99M = by(p99);
    const platM = new Map(plat.map((s) => [s.metric.service, s.metric.cloud_platform]));
    const sparkM = new Map(spark.map((s) => [s.metric.service, s]));
    const rows = all.map((s) => {
      const name = s.metric.service;
      const rt = rateM.get(name) ?? parseFloat(s.value[1]);
      const er = rt ? (errM.get(name) || 0) / rt : 0;
      return { name, rt, er, platform: platM.get(name) || '' };
    }).filter((x) => x.name);
    // Erroring services first, then by rate.
    rows.sort((a, b) => (b.er > 0.01) - (a.er > 0.01) || b.er - a.er || b.rt - a.rt);
    const tb = clear($('#svc-table tbody'));
    for (const x of rows) {
      const s = sparkM.get(x.name);
      const ys = s ? align([s], r, true).ys[0] : [];
      const plat = platformOf(x.platform);
      const link = href(`/services/${encodeURIComponent(x.name)}`);
      tb.append(el('tr', { class: 'clickable' + (x.er > 0.01 ? ' bad' : ''), dataset: { service: x.name }, onclick: (e) => { if (e.target.tagName !== 'A') location.assign(link); } },
        el('td', {}, el('a', { href: link, class: 'svc-link', text: x.name })),
        el('td', {}, plat ? el('span', { class: 'badge ' + plat.toLowerCase(), text: plat }) : ''),
        el('td', { class: 'num', text: fmtNum(x.rt) }),
        el('td', { class: 'num' + (x.er > 0.01 ? ' errtext' : ''), text: fmtPct(x.er) }),
        el('td', { class: 'num', text: fmtSecs(p50M.get(x.name)) }),
        el('td', { class: 'num', text: fmtSecs(p95M.get(x.name)) }),
        el('td', { class: 'num', text: fmtSecs(p99M.get(x.name)) }),
        el('td', {}, sparkline(ys, x.er > 0.01 ? '#f2545b' : '#5aa9ff'))));
    }
  });
}
