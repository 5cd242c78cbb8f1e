package servicemap

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/trenchcoat/trenchcoat/internal/spanmetrics"
	"github.com/trenchcoat/trenchcoat/internal/store"
)

// SummaryKeys are the resource attributes summarised per service in the
// inventory.
var SummaryKeys = []string{
	"cloud.region", "cloud.availability_zone", "cloud.platform", "service.version",
	"deployment.environment.name", "faas.name", "aws.ecs.task.family",
}

// cloudPrefixes select the resource attributes of the "cloud" section.
var cloudPrefixes = []string{"cloud.", "aws.", "faas.", "k8s.", "host."}

// maxValues bounds the values listed per attribute.
const maxValues = 100

// Service is one service of the inventory.
type Service struct {
	Name     string `json:"name"`
	Platform string `json:"platform"` // "ECS", "Lambda", "EKS" or ""
	Figures
	Sparkline *Sparkline `json:"sparkline,omitempty"`
	// Resource holds the distinct values of SummaryKeys seen, most
	// frequent first.
	Resource map[string][]string `json:"resource,omitempty"`
}

// Operation is one (span name, kind) of a service.
type Operation struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
	Figures
	Sparkline *Sparkline `json:"sparkline,omitempty"`
}

// Group is one value of a breakdown.
type Group struct {
	Value string `json:"value"`
	Figures
	Sparkline *Sparkline `json:"sparkline,omitempty"`
}

// AttrValue is a resource attribute value with the spans that carry it.
type AttrValue struct {
	Value string `json:"value"`
	Count int64  `json:"count"`
}

// ServiceDetail is one service's overview.
type ServiceDetail struct {
	Service
	Operations []Operation `json:"operations"`
	// Attributes holds every resource attribute key seen on the service's
	// spans with its values; Cloud is the subset about where it runs.
	Attributes map[string][]AttrValue `json:"attributes,omitempty"`
	Cloud      map[string][]AttrValue `json:"cloud,omitempty"`
	GroupBy    string                 `json:"groupBy,omitempty"`
	// Source of the breakdown: "spanmetrics" or "spans".
	GroupSource string  `json:"groupSource,omitempty"`
	Groups      []Group `json:"groups,omitempty"`
}

// Services lists every service with span metrics in the range, erroring
// services first (error ratio, then rate, descending).
func (m *Map) Services(ctx context.Context, rng Range) ([]Service, error) {
	by := []string{"service"}
	tot, err := m.totals(ctx, rng, by)
	if err != nil {
		return nil, err
	}
	spark, times, err := m.sparklines(ctx, rng, by)
	if err != nil {
		return nil, err
	}
	plat, err := m.platforms(ctx, rng)
	if err != nil {
		return nil, err
	}
	res, err := m.resourceSummary(ctx, rng)
	if err != nil {
		return nil, err
	}
	out := make([]Service, 0, len(tot))
	for k, g := range tot {
		name := g.labels[0]
		cls := g.class()
		s := Service{Name: name, Figures: g.figures(0, cls, rng.window()), Resource: res[name]}
		s.Sparkline = spark.get(k, times).sparkline(times, cls, m.sparkWindow(rng))
		s.Platform = platformName(plat[name])
		if s.Platform == "" && len(s.Resource["cloud.platform"]) > 0 {
			s.Platform = platformName(s.Resource["cloud.platform"][0])
		}
		out = append(out, s)
	}
	sortServices(out)
	return out, nil
}

func sortServices(s []Service) {
	key := func(n Num) float64 {
		if math.IsNaN(float64(n)) {
			return -1
		}
		return float64(n)
	}
	slices.SortFunc(s, func(a, b Service) int {
		return cmp.Or(cmp.Compare(key(b.ErrorRatio), key(a.ErrorRatio)),
			cmp.Compare(key(b.Rate), key(a.Rate)), strings.Compare(a.Name, b.Name))
	})
}

// platforms maps services to their cloud_platform span-metrics label.
func (m *Map) platforms(ctx context.Context, rng Range, ms ...*labels.Matcher) (map[string]string, error) {
	v, err := m.vector(ctx, sumIncrease(spanmetrics.MetricCalls, rng.window(), []string{"service", "cloud_platform"}, ms...), rng.End)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	best := map[string]float64{}
	for _, s := range v {
		svc, p := s.Metric.Get("service"), s.Metric.Get("cloud_platform")
		if p != "" && s.F >= best[svc] {
			out[svc], best[svc] = p, s.F
		}
	}
	return out, nil
}

// resourceSummary reads the SummaryKeys of every service from the span
// store, one aggregation per key rather than one lookup per service and
// key.
func (m *Map) resourceSummary(ctx context.Context, rng Range) (map[string]map[string][]string, error) {
	out := map[string]map[string][]string{}
	if m.cfg.Traces == nil {
		return out, nil
	}
	for _, k := range SummaryKeys {
		gs, err := m.cfg.Traces.AggregateSpans(ctx, store.Aggregate{
			Start: rng.Start, End: rng.End, Func: store.AggCount, MaxSeries: 100_000,
			GroupBy: []store.Field{{Scope: store.ScopeIntrinsic, Name: store.IntrinsicService}, {Scope: store.ScopeResource, Name: k}},
		})
		if err != nil {
			return nil, fmt.Errorf("servicemap: resource %s: %w", k, err)
		}
		type vc struct {
			v string
			n float64
		}
		per := map[string][]vc{}
		for _, g := range gs {
			if len(g.Labels) < 2 || g.Labels[1] == "" {
				continue
			}
			var n float64
			for _, c := range g.Counts {
				n += c
			}
			per[g.Labels[0]] = append(per[g.Labels[0]], vc{g.Labels[1], n})
		}
		for svc, vs := range per {
			slices.SortFunc(vs, func(a, b vc) int { return cmp.Or(cmp.Compare(b.n, a.n), strings.Compare(a.v, b.v)) })
			if out[svc] == nil {
				out[svc] = map[string][]string{}
			}
			for i, x := range vs {
				if i == maxValues {
					break
				}
				out[svc][k] = append(out[svc][k], x.v)
			}
		}
	}
	return out, nil
}

// Service returns one service's overview, broken down by the attribute
// groupBy when not empty. An unknown service is store.ErrNotFound.
func (m *Map) Service(ctx context.Context, name string, rng Range, groupBy string) (*ServiceDetail, error) {
	svc := eq("service", name)
	tot, err := m.totals(ctx, rng, nil, svc)
	if err != nil {
		return nil, err
	}
	g := tot[""]
	if g == nil {
		return nil, fmt.Errorf("servicemap: service %q: %w", name, store.ErrNotFound)
	}
	cls := g.class()
	d := &ServiceDetail{Service: Service{Name: name, Figures: g.figures(0, cls, rng.window())}}
	spark, times, err := m.sparklines(ctx, rng, nil, svc)
	if err != nil {
		return nil, err
	}
	d.Sparkline = spark.get("", times).sparkline(times, cls, m.sparkWindow(rng))

	// Operations: every span of the operation counts, whatever its kind.
	opBy := []string{"span_name", "span_kind"}
	ops, err := m.totals(ctx, rng, opBy, svc)
	if err != nil {
		return nil, err
	}
	opSpark, _, err := m.sparklines(ctx, rng, opBy, svc)
	if err != nil {
		return nil, err
	}
	for k, og := range ops {
		op := Operation{Name: og.labels[0], Kind: og.labels[1], Figures: og.figures(0, clsAll, rng.window())}
		op.Sparkline = opSpark.get(k, times).sparkline(times, clsAll, m.sparkWindow(rng))
		d.Operations = append(d.Operations, op)
	}
	slices.SortFunc(d.Operations, func(a, b Operation) int {
		return cmp.Or(cmp.Compare(float64(b.Rate), float64(a.Rate)), strings.Compare(a.Name, b.Name), strings.Compare(a.Kind, b.Kind))
	})

	plat, err := m.platforms(ctx, rng, svc)
	if err != nil {
		return nil, err
	}
	d.Platform = platformName(plat[name])
	if err := m.attributes(ctx, d, rng); err != nil {
		return nil, err
	}
	if d.Platform == "" && len(d.Attributes["cloud.platform"]) > 0 {
		d.Platform = platformName(d.Attributes["cloud.platform"][0].Value)
	}
	d.Resource = map[string][]string{}
	for _, k := range SummaryKeys {
		for _, v := range d.Attributes[k] {
			d.Resource[k] = append(d.Resource[k], v.Value)
		}
	}

	if groupBy != "" {
		d.GroupBy = groupBy
		if err := m.breakdown(ctx, d, rng, groupBy, cls); err != nil {
			return nil, err
		}
	}
	return d, nil
}

func serviceCond(name string) *store.Cond {
	return &store.Cond{Field: store.Field{Scope: store.ScopeIntrinsic, Name: store.IntrinsicService},
		Op: store.OpEq, Value: store.Value{Kind: store.KindString, Str: name}}
}

// attributes fills the resource attributes seen on the service's spans.
func (m *Map) attributes(ctx context.Context, d *ServiceDetail, rng Range) error {
	if m.cfg.Traces == nil {
		return nil
	}
	keys, err := m.cfg.Traces.SpanAttributeKeys(ctx, store.ScopeResource, rng.Start, rng.End)
	if err != nil {
		return fmt.Errorf("servicemap: resource keys: %w", err)
	}
	d.Attributes = map[string][]AttrValue{}
	d.Cloud = map[string][]AttrValue{}
	for _, k := range keys {
		if k.Key == "service.name" {
			continue
		}
		vs, err := m.cfg.Traces.SpanAttributeValues(ctx, store.Field{Scope: store.ScopeResource, Name: k.Key},
			serviceCond(d.Name), rng.Start, rng.End, maxValues)
		if err != nil {
			return fmt.Errorf("servicemap: values of %s: %w", k.Key, err)
		}
		var out []AttrValue
		for _, v := range vs {
			if v.Key != "" {
				out = append(out, AttrValue{Value: v.Key, Count: v.Count})
			}
		}
		if len(out) == 0 {
			continue
		}
		d.Attributes[k.Key] = out
		for _, p := range cloudPrefixes {
			if strings.HasPrefix(k.Key, p) {
				d.Cloud[k.Key] = out
				break
			}
		}
	}
	return nil
}

// ErrBadGroupBy is returned for a breakdown the stores cannot compute.
var ErrBadGroupBy = errors.New("servicemap: cannot group by this attribute")

// breakdown groups the service's figures by an attribute: from span
// metrics when it is one of their dimensions (cheap, any range), else
// from the spans themselves.
func (m *Map) breakdown(ctx context.Context, d *ServiceDetail, rng Range, attr string, cls int) error {
	label := spanmetrics.SanitizeLabelName(attr)
	svc := eq("service", d.Name)
	if m.dims[label] {
		d.GroupSource = "spanmetrics"
		by := []string{label}
		tot, err := m.totals(ctx, rng, by, svc)
		if err != nil {
			return err
		}
		spark, times, err := m.sparklines(ctx, rng, by, svc)
		if err != nil {
			return err
		}
		for k, g := range tot {
			gr := Group{Value: g.labels[0], Figures: g.figures(0, cls, rng.window())}
			gr.Sparkline = spark.get(k, times).sparkline(times, cls, m.sparkWindow(rng))
			if float64(gr.Calls) > 0 {
				d.Groups = append(d.Groups, gr)
			}
		}
	} else {
		if m.cfg.Traces == nil {
			return fmt.Errorf("%w %q: no span store", ErrBadGroupBy, attr)
		}
		d.GroupSource = "spans"
		if err := m.spanBreakdown(ctx, d, rng, attr, cls); err != nil {
			return err
		}
	}
	slices.SortFunc(d.Groups, func(a, b Group) int {
		return cmp.Or(cmp.Compare(float64(b.Calls), float64(a.Calls)), strings.Compare(a.Value, b.Value))
	})
	return nil
}

func kindCond(cls int) *store.Cond {
	var kinds []string
	switch cls {
	case clsEntry:
		kinds = []string{"server", "consumer"}
	case clsFallback:
		kinds = []string{"internal", "unspecified"}
	default:
		return nil
	}
	c := &store.Cond{}
	for _, k := range kinds {
		c.Or = append(c.Or, &store.Cond{Field: store.Field{Scope: store.ScopeIntrinsic, Name: store.IntrinsicKind},
			Op: store.OpEq, Value: store.Value{Kind: store.KindSpanKind, Str: k}})
	}
	return c
}

func and(cs ...*store.Cond) *store.Cond {
	out := &store.Cond{}
	for _, c := range cs {
		if c != nil {
			out.And = append(out.And, c)
		}
	}
	return out
}

// spanBreakdown computes a breakdown from the span store: a duration
// histogram per group and time step (its counts are the calls), and the
// error spans counted the same way.
func (m *Map) spanBreakdown(ctx context.Context, d *ServiceDetail, rng Range, attr string, cls int) error {
	field := store.Field{Scope: store.ScopeAny, Name: attr}
	step := rng.step()
	base := and(serviceCond(d.Name), kindCond(cls))
	hist, err := m.cfg.Traces.AggregateSpans(ctx, store.Aggregate{Start: rng.Start, End: rng.End, Step: step,
		Filter: base, GroupBy: []store.Field{field}, Func: store.AggDurationHistogram, MaxSeries: 1000})
	if err != nil {
		return fmt.Errorf("servicemap: group by %s: %w", attr, err)
	}
	errCond := &store.Cond{Field: store.Field{Scope: store.ScopeIntrinsic, Name: store.IntrinsicStatus},
		Op: store.OpEq, Value: store.Value{Kind: store.KindStatus, Str: "error"}}
	errs, err := m.cfg.Traces.AggregateSpans(ctx, store.Aggregate{Start: rng.Start, End: rng.End, Step: step,
		Filter: and(base, errCond), GroupBy: []store.Field{field}, Func: store.AggCount, MaxSeries: 1000})
	if err != nil {
		return fmt.Errorf("servicemap: group by %s: %w", attr, err)
	}
	errBy := map[string][]float64{}
	for _, e := range errs {
		errBy[e.Labels[0]] = e.Counts
	}
	for _, h := range hist {
		g := &group{labels: h.Labels, points: make([]point, len(h.Hist))}
		total := &group{labels: h.Labels, points: make([]point, 1)}
		total.points[0].buckets[0] = map[float64]float64{}
		for i, counts := range h.Hist {
			p := &g.points[i]
			p.buckets[0] = map[float64]float64{}
			var cum float64
			for b, c := range counts {
				cum += float64(c)
				ub := math.Inf(1)
				if b < len(store.DurationBuckets) {
					ub = float64(store.DurationBuckets[b]) / 1e9
				}
				p.buckets[0][ub] = cum
				total.points[0].buckets[0][ub] += cum
			}
			p.calls[0] = cum
			total.points[0].calls[0] += cum
			if e := errBy[h.Labels[0]]; i < len(e) {
				p.errs[0] = e[i]
				total.points[0].errs[0] += e[i]
			}
		}
		if float64(total.points[0].calls[0]) == 0 {
			continue
		}
		times := make([]int64, len(h.Hist))
		for i := range times {
			times[i] = rng.Start.Add(time.Duration(i) * step).UnixMilli()
		}
		d.Groups = append(d.Groups, Group{Value: h.Labels[0], Figures: total.figures(0, 0, rng.window()),
			Sparkline: g.sparkline(times, 0, step)})
	}
	return nil
}
