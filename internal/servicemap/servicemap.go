// Package servicemap answers the service inventory, one service's overview
// and the service graph from the span-metrics and service-graph series
// (through the PromQL engine) and from the resource attributes kept with
// the spans (through the span store).
//
// Queries are built as PromQL syntax trees: service names come from
// telemetry and are untrusted, so label values only ever enter a query as
// labels.Matcher values, which the printer quotes.
package servicemap

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"

	"github.com/trenchcoat/trenchcoat/internal/spanmetrics"
	"github.com/trenchcoat/trenchcoat/internal/store"
)

// Config wires a Map.
type Config struct {
	Engine    *promql.Engine
	Queryable storage.Queryable
	// Traces supplies resource attributes and breakdowns by attributes
	// that are not span-metrics dimensions; nil leaves them out.
	Traces store.TraceReader
	// Dimensions are the span-metrics dimensions (attribute keys) the
	// generator was configured with; nil means spanmetrics.DefaultDimensions.
	Dimensions []string
	// Interval is the span-metrics sample interval; default 15s. Sparkline
	// windows are at least four of them so every point spans two samples.
	Interval time.Duration
	Logger   *slog.Logger
}

// Map computes service figures. Safe for concurrent use.
type Map struct {
	cfg  Config
	dims map[string]bool // label names of the span-metrics dimensions
}

// New checks cfg and returns a Map.
func New(cfg Config) (*Map, error) {
	if cfg.Engine == nil || cfg.Queryable == nil {
		return nil, errors.New("servicemap: Engine and Queryable are required")
	}
	if cfg.Dimensions == nil {
		cfg.Dimensions = spanmetrics.DefaultDimensions
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 15 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	m := &Map{cfg: cfg, dims: map[string]bool{}}
	for _, d := range cfg.Dimensions {
		m.dims[spanmetrics.SanitizeLabelName(d)] = true
	}
	return m, nil
}

// Num is a figure that may be undefined (no calls): NaN is written as
// JSON null, since encoding/json refuses NaN.
type Num float64

func (n Num) MarshalJSON() ([]byte, error) {
	f := float64(n)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, f, 'g', -1, 64), nil
}

func (n *Num) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*n = Num(math.NaN())
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	*n = Num(f)
	return nil
}

// Figures are the RED figures of a service, operation or group over a
// range. Durations are in seconds.
type Figures struct {
	Rate       Num `json:"rate"`       // requests per second
	ErrorRatio Num `json:"errorRatio"` // errors / requests, null without requests
	P50        Num `json:"p50"`
	P95        Num `json:"p95"`
	P99        Num `json:"p99"`
	Calls      Num `json:"calls"` // requests in the range
	Errors     Num `json:"errors"`
}

// Sparkline holds the figures at each step (Times are Unix milliseconds).
type Sparkline struct {
	Times      []int64 `json:"times"`
	Rate       []Num   `json:"rate"`
	ErrorRatio []Num   `json:"errorRatio"`
	P50        []Num   `json:"p50"`
	P95        []Num   `json:"p95"`
	P99        []Num   `json:"p99"`
}

// Range is the time range of a request; Step spaces sparkline points
// (0: range/30).
type Range struct {
	Start, End time.Time
	Step       time.Duration
}

func (r Range) window() time.Duration {
	d := r.End.Sub(r.Start).Truncate(time.Millisecond)
	if d < time.Second {
		d = time.Second
	}
	return d
}

func (r Range) step() time.Duration {
	if r.Step > 0 {
		return r.Step
	}
	s := (r.window() / 30).Truncate(time.Millisecond)
	if s < time.Second {
		s = time.Second
	}
	return s
}

// platformName maps cloud.platform to the name the UI shows.
func platformName(p string) string {
	switch p {
	case "aws_ecs":
		return "ECS"
	case "aws_lambda":
		return "Lambda"
	case "aws_eks":
		return "EKS"
	}
	return ""
}

// Syntax-tree helpers.

func eq(name, value string) *labels.Matcher {
	return labels.MustNewMatcher(labels.MatchEqual, name, value)
}

func selector(metric string, ms ...*labels.Matcher) *parser.VectorSelector {
	all := append([]*labels.Matcher{eq(labels.MetricName, metric)}, ms...)
	return &parser.VectorSelector{Name: metric, LabelMatchers: all}
}

// sumIncrease is sum by (by) (increase(metric{ms}[w])).
func sumIncrease(metric string, w time.Duration, by []string, ms ...*labels.Matcher) parser.Expr {
	return &parser.AggregateExpr{
		Op:       parser.SUM,
		Grouping: by,
		Expr: &parser.Call{
			Func: parser.Functions["increase"],
			Args: parser.Expressions{&parser.MatrixSelector{VectorSelector: selector(metric, ms...), Range: w}},
		},
	}
}

func (m *Map) matrix(ctx context.Context, e parser.Expr, start, end time.Time, step time.Duration) (promql.Matrix, error) {
	qs := e.String()
	q, err := m.cfg.Engine.NewRangeQuery(ctx, m.cfg.Queryable, nil, qs, start, end, step)
	if err != nil {
		return nil, fmt.Errorf("servicemap: query %s: %w", qs, err)
	}
	defer q.Close()
	res := q.Exec(ctx)
	if res.Err != nil {
		return nil, fmt.Errorf("servicemap: query %s: %w", qs, res.Err)
	}
	mat, err := res.Matrix()
	if err != nil {
		return nil, fmt.Errorf("servicemap: query %s: %w", qs, err)
	}
	return mat, nil
}

func (m *Map) vector(ctx context.Context, e parser.Expr, ts time.Time) (promql.Vector, error) {
	qs := e.String()
	q, err := m.cfg.Engine.NewInstantQuery(ctx, m.cfg.Queryable, nil, qs, ts)
	if err != nil {
		return nil, fmt.Errorf("servicemap: query %s: %w", qs, err)
	}
	defer q.Close()
	res := q.Exec(ctx)
	if res.Err != nil {
		return nil, fmt.Errorf("servicemap: query %s: %w", qs, res.Err)
	}
	v, err := res.Vector()
	if err != nil {
		return nil, fmt.Errorf("servicemap: query %s: %w", qs, err)
	}
	return v, nil
}

// quantile is histogram_quantile over cumulative buckets (upper bound ->
// count), with PromQL's own interpolation.
func quantile(q float64, b map[float64]float64) Num {
	if len(b) == 0 {
		return Num(math.NaN())
	}
	bs := make(promql.Buckets, 0, len(b))
	for ub, c := range b {
		bs = append(bs, promql.Bucket{UpperBound: ub, Count: c})
	}
	v, _, _, _, _, _ := promql.BucketQuantile(q, bs)
	return Num(v)
}

func ratio(a, b float64) Num {
	if b <= 0 {
		return Num(math.NaN())
	}
	return Num(a / b)
}
