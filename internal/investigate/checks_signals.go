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
// reports those whose level changed between baseline and window, and
// those flat at their maximum (saturation).
func (v *inv) checkMetrics(ctx context.Context) error {
	m := v.d.cfg.Metrics
	if m == nil {
		return nil
	}
	span := v.end.Sub(v.bstart)
	step := max(span/120, 15*time.Second)
	type hit struct {
		sel        string
		id         string
		mb, mw, mx float64
		change     float64
		saturated  bool
	}
	var hits []hit
	seen := map[string]bool{}
	for _, id := range v.identifiers() {
		lsets, err := m.FindSeries(ctx, id, v.bstart, v.end, 50)
		if err != nil {
			return err
		}
		for _, ls := range lsets {
			sel := selector(ls)
			if seen[sel] {
				continue
			}
			seen[sel] = true
			res, err := m.QueryRange(ctx, sel, v.bstart, v.end, step)
			if err != nil {
				return err
			}
			for _, s := range res {
				var b, w []float64
				for _, p := range s.Points {
					if math.IsNaN(p.V) {
						continue
					}
					if p.T.Before(v.start) {
						b = append(b, p.V)
					} else {
						w = append(w, p.V)
					}
				}
				if len(b) < 3 || len(w) < 3 {
					continue
				}
				mb, mw := mean(b), mean(w)
				mx, bmx := maxf(w), maxf(b)
				change := (mw - mb) / math.Max(math.Abs(mb), 1e-9)
				if math.Abs(mb) < 1e-9 && math.Abs(mw) < 1e-9 {
					continue
				}
				atMax := 0
				for _, x := range w {
					if x >= 0.97*mx {
						atMax++
					}
				}
				sat := mx > 0 && mx > 1.5*bmx && float64(atMax) >= 0.3*float64(len(w))
				if math.Abs(change) >= 0.5 || sat {
					hits = append(hits, hit{sel, id, mb, mw, mx, change, sat})
				}
			}
		}
	}
	sort.Slice(hits, func(i, j int) bool {
		if math.Abs(hits[i].change) != math.Abs(hits[j].change) {
			return math.Abs(hits[i].change) > math.Abs(hits[j].change)
		}
		return hits[i].sel < hits[j].sel
	})
	for i, h := range hits {
		if i == 5 {
			break
		}
		dir := "rose"
		if h.change < 0 {
			dir = "fell"
		}
		title := fmt.Sprintf("%s %s from %s to %s", h.sel, dir, num(h.mb), num(h.mw))
		sum := fmt.Sprintf("The mean of %s %s from %s in the baseline to %s in the window (peak %s).", h.sel, dir, num(h.mb), num(h.mw), num(h.mx))
		if h.saturated {
			title += fmt.Sprintf(", flat at its peak %s", num(h.mx))
			sum += " It stays at its peak for much of the window: a limit was reached (saturation)."
		}
		v.add(Finding{
			Check:   CheckMetrics,
			Title:   title,
			Summary: sum,
			Score:   clamp01(0.3 + 0.3*math.Min(1, math.Abs(h.change)/3) + boolScore(h.saturated, 0.1)),
			Evidence: []Evidence{
				{Kind: "number", Label: "baseline mean", Value: num(h.mb)},
				{Kind: "number", Label: "window mean", Value: num(h.mw)},
				{Kind: "number", Label: "window peak", Value: num(h.mx)},
				{Kind: "query", Label: "series", Query: h.sel},
			},
			Link:  "/explore?" + "q=" + urlQuery(h.sel) + "&start=" + unix(v.start) + "&end=" + unix(v.end),
			Facts: map[string]string{"resource": h.id, "series": h.sel, "saturated": fmt.Sprint(h.saturated), "peak": num(h.mx)},
		})
	}
	return nil
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
