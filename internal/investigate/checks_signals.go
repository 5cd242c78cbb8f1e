package investigate

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/trenchcoat/trenchcoat/internal/store"
)

// Metrics is what the detective needs of the metric store. The PromQL
// engine implements it in cmd's wiring; tests use a fake.
type Metrics interface {
	// FindSeries returns the label sets (with __name__) of series that
	// have a label value containing substr and samples in [start, end],
	// at most limit of them.
	FindSeries(ctx context.Context, substr string, start, end time.Time, limit int) ([]map[string]string, error)
	// QueryRange evaluates a PromQL expression over [start, end] at step.
	QueryRange(ctx context.Context, query string, start, end time.Time, step time.Duration) ([]Series, error)
}

// Series is one result series of a range query.
type Series struct {
	Labels map[string]string
	Points []Point
}

// Point is one sample.
type Point struct {
	T time.Time
	V float64
}

// identifiers are the names of what is implicated so far: dependencies
// first (they are what logs and metrics of managed services carry), then
// the service.
func (v *inv) identifiers() []string {
	var out []string
	seen := map[string]bool{}
	addID := func(s string) {
		if s != "" && !seen[s] && len(s) >= 3 {
			seen[s] = true
			out = append(out, s)
		}
	}
	for _, d := range v.deps {
		addID(d.ID)
	}
	addID(v.service)
	return out
}

// checkLogs clusters the log lines of the implicated resources' log groups
// into Drain templates, in the window and in the baseline, and reports
// templates that are new or grew several-fold.
func (v *inv) checkLogs(ctx context.Context) error {
	if v.d.cfg.Logs == nil {
		return nil
	}
	gs, err := v.d.cfg.Logs.AggregateLogs(ctx, store.Aggregate{Start: v.start, End: v.end, GroupBy: []store.Field{fLogGroup, fService}, MaxSeries: 2000})
	if err != nil {
		return err
	}
	ids := v.identifiers()
	type src struct {
		group, service string
		relevant       bool
	}
	var srcs []src
	seen := map[string]bool{}
	for _, g := range gs {
		group, svc := g.Labels[0], g.Labels[1]
		k := group
		if group == "" {
			k = "\x00" + svc
		}
		if seen[k] {
			continue
		}
		rel := false
		for _, id := range ids {
			if strings.Contains(group, id) || (group == "" && svc == id) || (svc == id && id == v.service) {
				rel = true
			}
		}
		if !rel {
			continue
		}
		seen[k] = true
		s := src{group: group, relevant: rel}
		if group == "" {
			s.service = svc
		}
		srcs = append(srcs, s)
	}
	sort.Slice(srcs, func(i, j int) bool { return srcs[i].group+srcs[i].service < srcs[j].group+srcs[j].service })
	if len(srcs) > 10 {
		srcs = srcs[:10]
	}
	for _, s := range srcs {
		if err := v.logPatterns(ctx, s.group, s.service); err != nil {
			return err
		}
	}
	return nil
}

func (v *inv) logPatterns(ctx context.Context, group, service string) error {
	filter := &store.Cond{Field: fLogGroup, Op: store.OpEq, Value: store.Value{Str: group}}
	name := group
	if group == "" {
		filter = condService(service)
		name = service
	}
	dr := NewDrain()
	baseN := map[*Cluster]int{}
	winN := map[*Cluster]int{}
	winEx := map[*Cluster]string{}
	winSev := map[*Cluster]map[string]int{}
	scan := func(start, end time.Time, into map[*Cluster]int, window bool) error {
		for row, err := range v.d.cfg.Logs.FindLogs(ctx, store.LogQuery{Start: start, End: end, Filter: filter, Limit: v.d.cfg.MaxRows}) {
			if err != nil {
				return err
			}
			sev := strings.ToLower(row.SeverityText)
			if sev == "" {
				sev = severityFromLine(row.Body)
			}
			c := dr.Add(row.Body, sev)
			into[c]++
			if window {
				if _, ok := winEx[c]; !ok {
					winEx[c] = row.Body
				}
				if winSev[c] == nil {
					winSev[c] = map[string]int{}
				}
				winSev[c][sev]++
			}
		}
		return nil
	}
	if err := scan(v.bstart, v.bend, baseN, false); err != nil {
		return err
	}
	if err := scan(v.start, v.end, winN, true); err != nil {
		return err
	}
	type hit struct {
		c    *Cluster
		n, b int
		sev  string
	}
	var hits []hit
	for c, n := range winN {
		b := baseN[c]
		if n < 3 || float64(n) < 3*float64(b)+3 {
			continue
		}
		sev := (&Cluster{Severity: winSev[c]}).topSeverity()
		hits = append(hits, hit{c, n, b, sev})
	}
	sort.Slice(hits, func(i, j int) bool {
		ri, rj := severityRank(hits[i].sev), severityRank(hits[j].sev)
		if ri != rj {
			return ri > rj
		}
		if hits[i].n != hits[j].n {
			return hits[i].n > hits[j].n
		}
		return hits[i].c.Template() < hits[j].c.Template()
	})
	for i, h := range hits {
		if i == 6 {
			break
		}
		status := "new"
		if h.b > 0 {
			status = fmt.Sprintf("up %.0fx", float64(h.n)/float64(h.b))
		}
		sevTxt := strings.ToUpper(h.sev)
		if sevTxt == "" {
			sevTxt = "UNKNOWN"
		}
		score := clamp01(0.2 + 0.08*float64(severityRank(h.sev)) + 0.1*math.Min(1, float64(h.n)/50))
		v.add(Finding{
			Check:   CheckLogs,
			Title:   fmt.Sprintf("%s log pattern in %s (%s, %d lines): %s", sevTxt, name, status, h.n, messagePart(h.c.Template())),
			Summary: fmt.Sprintf("%d lines of %s match %q in the window against %d in the baseline; e.g. %q.", h.n, name, h.c.Template(), h.b, winEx[h.c]),
			Score:   score,
			Evidence: []Evidence{
				{Kind: "number", Label: "lines in the window", Value: fmt.Sprint(h.n)},
				{Kind: "number", Label: "lines in the baseline", Value: fmt.Sprint(h.b)},
				{Kind: "log", Label: "example", Value: winEx[h.c]},
			},
			Link:  v.logsLink(group, ""),
			Facts: map[string]string{"group": group, "service": service, "template": h.c.Template(), "example": winEx[h.c], "severity": h.sev, "count": fmt.Sprint(h.n)},
		})
	}
	return nil
}

// severityFromLine finds a severity word in lines that carry it in the
// text (database logs shipped as plain lines): "...:FATAL:  sorry...".
func severityFromLine(s string) string {
	up := strings.ToUpper(s)
	for _, w := range []string{"PANIC", "FATAL", "ERROR", "WARNING", "WARN"} {
		i := strings.Index(up, w)
		if i < 0 {
			continue
		}
		before := i == 0 || !isLetter(up[i-1])
		after := i+len(w) == len(up) || !isLetter(up[i+len(w)])
		if before && after {
			return strings.ToLower(w)
		}
	}
	return ""
}

func isLetter(b byte) bool { return b >= 'A' && b <= 'Z' || b >= 'a' && b <= 'z' }

// checkMetrics finds series whose labels name an implicated resource and
// reports those whose level changed at the error onset (before it against
// after it; without a known onset, baseline against window), ranked by the
// change, the correlation with the service's error rate and whether the
// series' own change point lines up with the onset; and those flat at
// their maximum (saturation). Series generated from spans (traces_*) only
// restate what the span checks saw, so they rank below the resources' own.
func (v *inv) checkMetrics(ctx context.Context) error {
	m := v.d.cfg.Metrics
	if m == nil {
		return nil
	}
	from, split := v.bstart, v.start
	if !v.onset.IsZero() {
		split = v.onset
		if s := v.onset.Add(-v.end.Sub(v.start)); s.Before(from) {
			from = s
		}
	}
	step := max(v.end.Sub(from)/120, 15*time.Second)
	errRate, err := v.errorRate(ctx, from, v.end, step)
	if err != nil {
		return err
	}
	type cand struct {
		ls      map[string]string
		sel, id string
		exact   bool
		derived bool
	}
	var cands []cand
	seen := map[string]bool{}
	for _, id := range v.identifiers() {
		lsets, err := m.FindSeries(ctx, id, from, v.end, 200)
		if err != nil {
			return err
		}
		for _, ls := range lsets {
			name := ls["__name__"]
			if _, ok := ls["le"]; ok || strings.HasSuffix(name, "_bucket") {
				continue // one histogram bucket says less than its _sum and _count
			}
			sel := selector(ls)
			if seen[sel] {
				continue
			}
			seen[sel] = true
			c := cand{ls: ls, sel: sel, id: id, derived: strings.HasPrefix(name, "traces_")}
			for k, val := range ls {
				if k != "__name__" && val == id {
					c.exact = true
				}
			}
			cands = append(cands, c)
		}
	}
	// The resource's own series first: they are what spans cannot show.
	sort.SliceStable(cands, func(i, j int) bool {
		a, b := cands[i], cands[j]
		if a.derived != b.derived {
			return !a.derived
		}
		if a.exact != b.exact {
			return a.exact
		}
		return a.sel < b.sel
	})
	if len(cands) > 60 {
		cands = cands[:60]
	}
	type hit struct {
		cand
		mb, mw, mx float64
		change     float64
		corr       float64
		aligned    bool
		saturated  bool
		score      float64
	}
	var hits []hit
	for _, c := range cands {
		res, err := m.QueryRange(ctx, c.sel, from, v.end, step)
		if err != nil {
			return err
		}
		for _, s := range res {
			var b, w, xs, es []float64
			var ts []time.Time
			for _, p := range s.Points {
				if math.IsNaN(p.V) || math.IsInf(p.V, 0) {
					continue
				}
				if p.T.Before(split) {
					b = append(b, p.V)
				} else {
					w = append(w, p.V)
				}
				if i := int(p.T.Sub(from) / step); i >= 0 && i < len(errRate) && !math.IsNaN(errRate[i]) {
					xs = append(xs, p.V)
					es = append(es, errRate[i])
				}
				ts = append(ts, p.T)
			}
			if len(b) < 3 || len(w) < 3 {
				continue
			}
			mb, mw := mean(b), mean(w)
			if math.Abs(mb) < 1e-9 && math.Abs(mw) < 1e-9 {
				continue
			}
			mx, bmx := maxf(w), maxf(b)
			change := (mw - mb) / math.Max(math.Abs(mb), 1e-9)
			atMax := 0
			for _, x := range w {
				if x >= 0.97*mx {
					atMax++
				}
			}
			sat := mx > 0 && mx > 1.5*bmx && float64(atMax) >= 0.3*float64(len(w))
			if math.Abs(change) < 0.5 && !sat {
				continue
			}
			corr := pearson(xs, es)
			aligned := false
			if !v.onset.IsZero() {
				vals := append(append([]float64(nil), b...), w...)
				if k := changePoint(vals); k > 0 && k < len(ts) {
					aligned = absDur(ts[k].Sub(v.onset)) <= max(3*step, v.end.Sub(from)/20)
				}
			}
			// A level that moves with the errors is evidence; one that
			// changed at another time, or against the errors, is not.
			if !math.IsNaN(corr) && corr*sign(change) < 0.3 && !aligned {
				continue
			}
			h := hit{cand: c, mb: mb, mw: mw, mx: mx, change: change, corr: corr, aligned: aligned, saturated: sat}
			cs := 0.0
			if !math.IsNaN(corr) {
				cs = math.Abs(corr)
			}
			h.score = 0.2 + 0.15*math.Min(1, math.Abs(change)/3) + 0.15*cs + boolScore(aligned, 0.1) + boolScore(sat, 0.1) + boolScore(c.exact, 0.05)
			if c.derived {
				h.score *= 0.6
			}
			hits = append(hits, h)
		}
	}
	sort.Slice(hits, func(i, j int) bool {
		if hits[i].score != hits[j].score {
			return hits[i].score > hits[j].score
		}
		return hits[i].sel < hits[j].sel
	})
	derived := 0
	for i, h := range hits {
		if i == 5 {
			break
		}
		// Span-generated series echo the span checks: two say enough.
		if h.derived {
			if derived++; derived > 2 {
				continue
			}
		}
		dir := "rose"
		if h.change < 0 {
			dir = "fell"
		}
		when, before, after := "the error onset", "before it", "after it"
		if v.onset.IsZero() {
			when, before, after = "", "in the baseline", "in the window"
		}
		title := fmt.Sprintf("%s %s from %s to %s", h.sel, dir, num(h.mb), num(h.mw))
		if when != "" {
			title += " at " + when
		}
		sum := fmt.Sprintf("The mean of %s %s from %s %s to %s %s (peak %s).", h.sel, dir, num(h.mb), before, num(h.mw), after, num(h.mx))
		if !math.IsNaN(h.corr) {
			sum += fmt.Sprintf(" Its correlation with %s's error rate is %.2f.", v.service, h.corr)
		}
		if h.aligned {
			sum += " Its own change point lines up with the error onset."
		}
		if h.saturated {
			title += fmt.Sprintf(", flat at its peak %s", num(h.mx))
			sum += " It stays at its peak for much of the window: a limit was reached (saturation)."
		}
		ev := []Evidence{
			{Kind: "number", Label: "mean before", Value: num(h.mb)},
			{Kind: "number", Label: "mean after", Value: num(h.mw)},
			{Kind: "number", Label: "peak", Value: num(h.mx)},
			{Kind: "query", Label: "series", Query: h.sel},
		}
		if !math.IsNaN(h.corr) {
			ev = append(ev, Evidence{Kind: "number", Label: "correlation with the error rate", Value: fmt.Sprintf("%.2f", h.corr)})
		}
		v.add(Finding{
			Check:    CheckMetrics,
			Title:    title,
			Summary:  sum,
			Score:    clamp01(h.score),
			Evidence: ev,
			Link:     "/explore?" + "q=" + urlQuery(h.sel) + "&start=" + unix(from) + "&end=" + unix(v.end),
			Facts: map[string]string{"resource": h.id, "series": h.sel, "metric": h.ls["__name__"], "saturated": fmt.Sprint(h.saturated),
				"peak": num(h.mx), "derived": fmt.Sprint(h.derived), "aligned": fmt.Sprint(h.aligned)},
		})
	}
	return nil
}

// errorRate is the implicated service's error rate per step over
// [from, end); NaN where it had no spans.
func (v *inv) errorRate(ctx context.Context, from, end time.Time, step time.Duration) ([]float64, error) {
	n := int((end.Sub(from) + step - 1) / step)
	out := make([]float64, n)
	for i := range out {
		out[i] = math.NaN()
	}
	if v.service == "" || n <= 0 {
		return out, nil
	}
	gs, err := v.d.cfg.Traces.AggregateSpans(ctx, store.Aggregate{Start: from, End: end, Step: step, Filter: condService(v.service), GroupBy: []store.Field{fStatus}})
	if err != nil {
		return nil, err
	}
	errs, tot := make([]float64, n), make([]float64, n)
	for _, g := range gs {
		for i, c := range g.Counts {
			if i >= n {
				break
			}
			tot[i] += c
			if g.Labels[0] == "error" {
				errs[i] += c
			}
		}
	}
	for i := range out {
		if tot[i] > 0 {
			out[i] = errs[i] / tot[i]
		}
	}
	return out, nil
}

// pearson is the correlation of xs and ys; NaN when either is constant or
// there are fewer than 5 pairs.
func pearson(xs, ys []float64) float64 {
	n := len(xs)
	if n < 5 || len(ys) != n {
		return math.NaN()
	}
	mx, my := mean(xs), mean(ys)
	var sxy, sxx, syy float64
	for i := range xs {
		dx, dy := xs[i]-mx, ys[i]-my
		sxy += dx * dy
		sxx += dx * dx
		syy += dy * dy
	}
	if sxx == 0 || syy == 0 {
		return math.NaN()
	}
	return sxy / math.Sqrt(sxx*syy)
}

// changePoint is the index k that best splits xs into two levels (the
// split that explains the most variance: largest n1*n2*(mean2-mean1)^2);
// -1 for fewer than 4 points.
func changePoint(xs []float64) int {
	n := len(xs)
	if n < 4 {
		return -1
	}
	total := sum(xs)
	best, bestK, left := -1.0, -1, 0.0
	for k := 1; k < n; k++ {
		left += xs[k-1]
		n1, n2 := float64(k), float64(n-k)
		d := (total-left)/n2 - left/n1
		if s := n1 * n2 * d * d; s > best {
			best, bestK = s, k
		}
	}
	return bestK
}

func sign(x float64) float64 {
	if x < 0 {
		return -1
	}
	return 1
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

func selector(ls map[string]string) string {
	keys := make([]string, 0, len(ls))
	for k := range ls {
		if k != "__name__" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%q", k, ls[k]))
	}
	return ls["__name__"] + "{" + strings.Join(parts, ",") + "}"
}

func mean(xs []float64) float64 { return sum(xs) / float64(len(xs)) }

func maxf(xs []float64) float64 {
	m := math.Inf(-1)
	for _, x := range xs {
		m = math.Max(m, x)
	}
	return m
}

func num(x float64) string {
	if x == math.Trunc(x) && math.Abs(x) < 1e12 {
		return fmt.Sprintf("%.0f", x)
	}
	return fmt.Sprintf("%.3g", x)
}

func boolScore(b bool, s float64) float64 {
	if b {
		return s
	}
	return 0
}
