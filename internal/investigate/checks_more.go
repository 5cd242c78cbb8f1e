package investigate

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/trenchcoat/trenchcoat/internal/store"
)

// checkDurations looks for two signatures: many error spans of one
// operation ending at one exact duration (within 1%), which is what a
// timeout looks like, and operations of the implicated service whose p90
// duration rose several-fold against the baseline.
func (v *inv) checkDurations(ctx context.Context) error {
	if err := v.timeoutSignature(ctx); err != nil {
		return err
	}
	return v.durationShift(ctx)
}

func (v *inv) timeoutSignature(ctx context.Context) error {
	type op struct {
		service, name string
		durs          []int64
	}
	type spanKey struct {
		trace pcommon.TraceID
		span  pcommon.SpanID
	}
	type spanInfo struct {
		op     string
		parent pcommon.SpanID
		dur    int64
	}
	ops := map[string]*op{}
	spans := map[spanKey]spanInfo{}
	for row, err := range v.d.cfg.Traces.FindSpans(ctx, store.SpanQuery{Start: v.start, End: v.end, Filter: condError(), Limit: v.d.cfg.MaxRows}) {
		if err != nil {
			return err
		}
		k := row.Service + "\x00" + row.Name
		if ops[k] == nil {
			ops[k] = &op{service: row.Service, name: row.Name}
		}
		ops[k].durs = append(ops[k].durs, row.Duration)
		spans[spanKey{row.TraceID, row.SpanID}] = spanInfo{op: k, parent: row.ParentSpanID, dur: row.Duration}
	}
	keys := make([]string, 0, len(ops))
	for k := range ops {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	type hit struct {
		key   string
		o     *op
		d     int64
		n     int
		share float64
	}
	var hits []*hit
	byKey := map[string]*hit{}
	for _, k := range keys {
		o := ops[k]
		if len(o.durs) < 10 {
			continue
		}
		sort.Slice(o.durs, func(i, j int) bool { return o.durs[i] < o.durs[j] })
		// Densest band [d, d*1.01]: two pointers over the sorted durations.
		bestN, bestD := 0, int64(0)
		j := 0
		for i := range o.durs {
			for j < len(o.durs) && float64(o.durs[j]) <= float64(o.durs[i])*1.01 {
				j++
			}
			if j-i > bestN {
				bestN, bestD = j-i, o.durs[i]
			}
		}
		share := float64(bestN) / float64(len(o.durs))
		// Timeouts are configured in round, human numbers: half a second
		// and up. A tight band of fast failures is an instant error instead.
		if bestN < 10 || share < 0.3 || bestD < int64(500*time.Millisecond) {
			continue
		}
		h := &hit{k, o, bestD, bestN, share}
		hits = append(hits, h)
		byKey[k] = h
	}
	inBand := func(h *hit, d int64) bool { return d >= h.d && float64(d) <= float64(h.d)*1.01 }
	// A timeout repeats at every level above the span that gave up: its
	// callers fail when it does, a few milliseconds later. Walk up from
	// each band span; an operation whose band spans are mostly ancestors
	// of another operation's band spans only passes the timeout on.
	covered := map[string]int{}
	echoOf := map[string]map[string]bool{}
	seen := map[spanKey]bool{}
	for k, si := range spans {
		h := byKey[si.op]
		if h == nil || !inBand(h, si.dur) {
			continue
		}
		p := spanKey{k.trace, si.parent}
		for depth := 0; depth < 12; depth++ {
			pi, ok := spans[p]
			if !ok {
				break
			}
			if ph := byKey[pi.op]; ph != nil && pi.op != si.op && inBand(ph, pi.dur) && !seen[p] {
				seen[p] = true
				covered[pi.op]++
				if echoOf[pi.op] == nil {
					echoOf[pi.op] = map[string]bool{}
				}
				echoOf[pi.op][si.op] = true
			}
			p = spanKey{k.trace, pi.parent}
		}
	}
	var deepest []*hit
	echoes := map[string][]string{} // deepest op -> operations that pass it on
	for _, h := range hits {
		if float64(covered[h.key]) >= 0.5*float64(h.n) {
			continue
		}
		deepest = append(deepest, h)
	}
	for _, h := range hits {
		if float64(covered[h.key]) < 0.5*float64(h.n) {
			continue
		}
		// Attribute the echo to the deepest operation it covers.
		var below []string
		for k := range echoOf[h.key] {
			below = append(below, k)
		}
		sort.Strings(below)
		for _, d := range deepest {
			if slices.Contains(below, d.key) || len(below) > 0 && isEchoChain(below, d.key, echoOf) {
				echoes[d.key] = append(echoes[d.key], h.o.service+" "+strconv.Quote(h.o.name))
				break
			}
		}
	}
	sort.SliceStable(deepest, func(i, j int) bool { return deepest[i].n > deepest[j].n })
	added := 0
	for _, h := range deepest {
		if added == 3 {
			break
		}
		// Compare with the baseline: a timeout that always fires this
		// often is not news.
		bf := and(condError(), condService(h.o.service), &store.Cond{Field: fName, Op: store.OpEq, Value: store.Value{Str: h.o.name}},
			&store.Cond{Field: fDuration, Op: store.OpGe, Value: store.Value{Kind: store.KindDuration, Int: h.d}},
			&store.Cond{Field: fDuration, Op: store.OpLe, Value: store.Value{Kind: store.KindDuration, Int: int64(float64(h.d) * 1.01)}})
		gs, err := v.d.cfg.Traces.AggregateSpans(ctx, store.Aggregate{Start: v.bstart, End: v.bend, Filter: bf})
		if err != nil {
			return err
		}
		var base float64
		for _, g := range gs {
			base += sum(g.Counts)
		}
		if float64(h.n) < 3*base+5 {
			continue
		}
		added++
		d := roundDur(time.Duration(h.d))
		q := fmt.Sprintf("{ %s && name = %q && status = error && duration >= %s }", traceQLService(h.o.service), h.o.name, time.Duration(h.d).Truncate(time.Millisecond))
		summary := fmt.Sprintf("%s of the error spans of %s %q last %s (within 1%%), against %.0f in the baseline: something gives up after %s.", pct(h.share), h.o.service, h.o.name, d, base, d)
		ev := []Evidence{
			{Kind: "number", Label: "spans at the duration", Value: fmt.Sprint(h.n)},
			{Kind: "number", Label: "duration", Value: d.String()},
			{Kind: "query", Label: "spans", Query: q},
		}
		facts := map[string]string{"kind": "timeout", "duration": d.String(), "count": fmt.Sprint(h.n), "service": h.o.service, "operation": h.o.name}
		if e := echoes[h.key]; len(e) > 0 {
			sort.Strings(e)
			summary += fmt.Sprintf(" It is the deepest span that times out; its callers %s end with it.", strings.Join(e, ", "))
			ev = append(ev, Evidence{Kind: "number", Label: "callers that pass the timeout on", Value: strings.Join(e, ", ")})
			facts["callers"] = strings.Join(e, ",")
		}
		v.add(Finding{
			Check:    CheckDurations,
			Title:    fmt.Sprintf("%d error spans of %s %q end at %s: a timeout", h.n, h.o.service, h.o.name, d),
			Summary:  summary,
			Score:    clamp01(0.4 + 0.4*h.share),
			Evidence: ev,
			Link:     v.tracesLink(q),
			Facts:    facts,
		})
	}
	return nil
}

// isEchoChain reports whether one of the operations in below passes on,
// directly or through others, the timeout of target.
func isEchoChain(below []string, target string, echoOf map[string]map[string]bool) bool {
	seen := map[string]bool{}
	stack := append([]string(nil), below...)
	for len(stack) > 0 {
		k := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if k == target {
			return true
		}
		if seen[k] {
			continue
		}
		seen[k] = true
		for b := range echoOf[k] {
			stack = append(stack, b)
		}
	}
	return false
}

// roundDur rounds to a human value: 30.004s -> 30s, 1.503s -> 1.5s.
func roundDur(d time.Duration) time.Duration {
	switch {
	case d >= 10*time.Second:
		return d.Round(time.Second)
	case d >= time.Second:
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}

func (v *inv) durationShift(ctx context.Context) error {
	if v.service == "" {
		return nil
	}
	hist := func(start, end time.Time) (map[string][]uint64, error) {
		gs, err := v.d.cfg.Traces.AggregateSpans(ctx, store.Aggregate{Start: start, End: end, Filter: condService(v.service), GroupBy: []store.Field{fName}, Func: store.AggDurationHistogram, MaxSeries: 1000})
		if err != nil {
			return nil, err
		}
		out := map[string][]uint64{}
		for _, g := range gs {
			h := make([]uint64, len(store.DurationBuckets)+1)
			for _, b := range g.Hist {
				for i := range b {
					if i < len(h) {
						h[i] += b[i]
					}
				}
			}
			out[g.Labels[0]] = h
		}
		return out, nil
	}
	win, err := hist(v.start, v.end)
	if err != nil {
		return err
	}
	base, err := hist(v.bstart, v.bend)
	if err != nil {
		return err
	}
	type shift struct {
		name   string
		p, bp  float64
		factor float64
	}
	var list []shift
	for name, h := range win {
		bh := base[name]
		if total(h) < 20 || bh == nil || total(bh) < 20 {
			continue
		}
		p, bp := quantile(h, 0.9), quantile(bh, 0.9)
		if bp <= 0 {
			continue
		}
		if f := p / bp; f >= 3 && p >= float64(50*time.Millisecond) {
			list = append(list, shift{name, p, bp, f})
		}
	}
	sort.Slice(list, func(i, j int) bool {
		return list[i].factor > list[j].factor || (list[i].factor == list[j].factor && list[i].name < list[j].name)
	})
	for i, s := range list {
		if i == 3 {
			break
		}
		q := fmt.Sprintf("{ %s && name = %q }", traceQLService(v.service), s.name)
		v.add(Finding{
			Check:   CheckDurations,
			Title:   fmt.Sprintf("%s %q p90 duration rose %.0fx to %s", v.service, s.name, s.factor, roundDur(time.Duration(s.p))),
			Summary: fmt.Sprintf("p90 duration of %s %q is %s in the window against %s in the baseline.", v.service, s.name, roundDur(time.Duration(s.p)), roundDur(time.Duration(s.bp))),
			Score:   clamp01(0.2 + 0.1*math.Min(1, math.Log10(s.factor))),
			Evidence: []Evidence{
				{Kind: "number", Label: "p90", Value: roundDur(time.Duration(s.p)).String()},
				{Kind: "number", Label: "baseline p90", Value: roundDur(time.Duration(s.bp)).String()},
				{Kind: "query", Label: "spans", Query: q},
			},
			Link:  v.tracesLink(q),
			Facts: map[string]string{"kind": "latency", "operation": s.name, "p90": roundDur(time.Duration(s.p)).String()},
		})
	}
	return nil
}

func total(h []uint64) float64 {
	var t uint64
	for _, c := range h {
		t += c
	}
	return float64(t)
}

// quantile estimates a quantile of a DurationBuckets histogram by linear
// interpolation inside the bucket, in nanoseconds.
func quantile(h []uint64, q float64) float64 {
	t := total(h)
	if t == 0 {
		return 0
	}
	rank := q * t
	var cum float64
	for i, c := range h {
		if cum+float64(c) >= rank && c > 0 {
			lo := 0.0
			if i > 0 {
				lo = float64(store.DurationBuckets[i-1])
			}
			hi := lo * 2
			if i < len(store.DurationBuckets) {
				hi = float64(store.DurationBuckets[i])
			}
			return lo + (hi-lo)*(rank-cum)/float64(c)
		}
		cum += float64(c)
	}
	return float64(store.DurationBuckets[len(store.DurationBuckets)-1])
}

// changeKeys are resource attributes whose new values mean a deploy or a
// change of capacity.
var changeKeys = []struct{ key, kind string }{
	{"service.version", "deploy"},
	{"faas.version", "deploy"},
	{"aws.ecs.task.arn", "scale-out"},
	{"faas.instance", "scale-out"},
	{"k8s.pod.name", "scale-out"},
	{"host.name", "scale-out"},
}

// checkChanges finds new deploy and instance identifiers of the implicated
// service in the window that the baseline did not have.
func (v *inv) checkChanges(ctx context.Context) error {
	if v.service == "" || v.totBase == 0 {
		return nil // without a baseline every value is "new"
	}
	// The service and the services where its errors start: a bad deploy
	// downstream shows up as errors upstream.
	svcs := []string{v.service}
	for _, d := range v.deps {
		if d.Service != "" && !slices.Contains(svcs, d.Service) {
			svcs = append(svcs, d.Service)
		}
	}
	for _, s := range svcs {
		if err := v.changesOf(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

func (v *inv) changesOf(ctx context.Context, service string) error {
	svc := condService(service)
	for _, ck := range changeKeys {
		f := store.Field{Scope: store.ScopeResource, Name: ck.key}
		win, err := v.d.cfg.Traces.AggregateSpans(ctx, store.Aggregate{Start: v.start, End: v.end, Filter: svc, GroupBy: []store.Field{f, fStatus}, MaxSeries: 2000})
		if err != nil {
			return err
		}
		base, err := v.d.cfg.Traces.AggregateSpans(ctx, store.Aggregate{Start: v.bstart, End: v.bend, Filter: svc, GroupBy: []store.Field{f}, MaxSeries: 2000})
		if err != nil {
			return err
		}
		old := map[string]bool{}
		for _, g := range base {
			if g.Labels[0] != "" {
				old[g.Labels[0]] = true
			}
		}
		tot, errs := map[string]float64{}, map[string]float64{}
		for _, g := range win {
			if g.Labels[0] == "" {
				continue
			}
			tot[g.Labels[0]] += sum(g.Counts)
			if g.Labels[1] == "error" {
				errs[g.Labels[0]] += sum(g.Counts)
			}
		}
		if len(old) == 0 || len(tot) == 0 {
			continue
		}
		var fresh []string
		var newTot, newErr float64
		for val := range tot {
			if !old[val] {
				fresh = append(fresh, val)
				newTot += tot[val]
				newErr += errs[val]
			}
		}
		sort.Strings(fresh)
		if len(fresh) == 0 {
			continue
		}
		var oldTot, oldErr float64
		for val, t := range tot {
			if old[val] {
				oldTot += t
				oldErr += errs[val]
			}
		}
		newRate, oldRate := newErr/newTot, 0.0
		if oldTot > 0 {
			oldRate = oldErr / oldTot
		}
		q := fmt.Sprintf("{ %s && resource.%s = %q }", traceQLService(service), ck.key, fresh[0])
		facts := map[string]string{"kind": ck.kind, "key": ck.key, "values": strings.Join(fresh, ","), "service": service}
		switch ck.kind {
		case "deploy":
			score := 0.3
			bad := newErr >= 5 && newRate >= 0.05 && newRate >= 3*oldRate
			if bad {
				score = clamp01(0.6 + 0.3*newErr/max(v.errWin, 1))
				facts["bad"] = "true"
			}
			sum := fmt.Sprintf("%s %s %s appeared in the window (not in the baseline); its spans fail %s of the time against %s for the previous versions.", service, ck.key, strings.Join(fresh, ", "), pct(newRate), pct(oldRate))
			v.add(Finding{
				Check: CheckChanges, Title: fmt.Sprintf("New %s of %s: %s", ck.key, service, strings.Join(fresh, ", ")),
				Summary: sum, Score: score,
				Evidence: []Evidence{
					{Kind: "number", Label: "error rate of the new version", Value: pct(newRate)},
					{Kind: "number", Label: "error rate of the previous versions", Value: pct(oldRate)},
					{Kind: "query", Label: "spans of the new version", Query: q},
				},
				Link: v.tracesLink(q), Facts: facts,
			})
		case "scale-out":
			// Short-lived instances churn all the time; only a clear growth
			// counts.
			if len(fresh) < 2 || len(tot) < len(old)+len(old)/2+1 {
				continue
			}
			facts["from"], facts["to"] = fmt.Sprint(len(old)), fmt.Sprint(len(tot))
			v.add(Finding{
				Check: CheckChanges, Title: fmt.Sprintf("%s scaled out: %d instances (%s) against %d before", service, len(tot), ck.key, len(old)),
				Summary: fmt.Sprintf("%d new %s values of %s appeared in the window; instances went from %d to %d. More instances mean more connections and load on shared dependencies.", len(fresh), ck.key, service, len(old), len(tot)),
				Score:   0.35,
				Evidence: []Evidence{
					{Kind: "number", Label: "instances before", Value: fmt.Sprint(len(old))},
					{Kind: "number", Label: "instances in the window", Value: fmt.Sprint(len(tot))},
					{Kind: "query", Label: "spans of a new instance", Query: q},
				},
				Link: v.tracesLink(q), Facts: facts,
			})
		}
	}
	return nil
}
