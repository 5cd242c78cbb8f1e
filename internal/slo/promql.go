package slo

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// PromQL is built here as syntax trees (parser.Expr) and printed with
// String(), so that user selectors are re-quoted correctly and a generated
// expression is always well-formed.

var promParser = parser.NewParser(parser.Options{})

// ParseSelector parses a counter given by a user: a series selector such as
// `http_requests_total{code=~"5.."}`. Because OpenSLO documents and
// dashboards usually carry a whole query, it also accepts the selector
// wrapped in rate() or increase() with an optional sum(), and returns the
// selector inside.
func ParseSelector(q string) (*parser.VectorSelector, error) {
	if q == "" {
		return nil, errors.New("is empty")
	}
	expr, err := promParser.ParseExpr(q)
	if err != nil {
		return nil, fmt.Errorf("%q is not valid PromQL: %w", q, err)
	}
	for {
		switch e := expr.(type) {
		case *parser.ParenExpr:
			expr = e.Expr
			continue
		case *parser.AggregateExpr:
			if e.Op != parser.SUM {
				return nil, fmt.Errorf("%q: only sum() may wrap the counter, not %s()", q, e.Op)
			}
			expr = e.Expr
			continue
		case *parser.Call:
			if e.Func.Name != "rate" && e.Func.Name != "increase" {
				return nil, fmt.Errorf("%q: want a counter selector, or rate()/increase() of one, not %s()", q, e.Func.Name)
			}
			ms, ok := e.Args[0].(*parser.MatrixSelector)
			if !ok {
				return nil, fmt.Errorf("%q: %s() must take a range selector", q, e.Func.Name)
			}
			expr = ms.VectorSelector
			continue
		case *parser.VectorSelector:
			if e.OriginalOffset != 0 || e.OriginalOffsetExpr != nil || e.Timestamp != nil || e.StartOrEnd != 0 || e.Anchored || e.Smoothed {
				return nil, fmt.Errorf("%q: offset, @ and range modifiers are not allowed in an SLI selector", q)
			}
			// Copy, so that callers own what they get and Pos fields of the
			// user's query do not leak into generated trees.
			return selector(e.Name, e.LabelMatchers...), nil
		default:
			return nil, fmt.Errorf("%q: want a counter selector like metric{label=\"value\"}, got a %s expression", q, parser.DocumentedType(expr.Type()))
		}
	}
}

// selector builds a vector selector. The __name__ matcher is derived from
// name, and others are kept in order.
func selector(name string, ms ...*labels.Matcher) *parser.VectorSelector {
	vs := &parser.VectorSelector{Name: name}
	if name != "" {
		vs.LabelMatchers = append(vs.LabelMatchers, labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, name))
	}
	for _, m := range ms {
		if m.Name == labels.MetricName && name != "" {
			continue
		}
		vs.LabelMatchers = append(vs.LabelMatchers, m)
	}
	return vs
}

func eq(name, value string) *labels.Matcher {
	return labels.MustNewMatcher(labels.MatchEqual, name, value)
}

// events are the counters of an SLI: total, and good or bad (one is nil).
type events struct {
	good, bad, total *parser.VectorSelector
}

func (s *SLO) events() events {
	switch {
	case s.SLI.Ratio != nil:
		var ev events
		ev.total, _ = ParseSelector(s.SLI.Ratio.Total)
		if s.SLI.Ratio.Good != "" {
			ev.good, _ = ParseSelector(s.SLI.Ratio.Good)
		} else {
			ev.bad, _ = ParseSelector(s.SLI.Ratio.Bad)
		}
		if ev.total == nil || (ev.good == nil && ev.bad == nil) {
			panic("BUG: events of an SLO that did not validate")
		}
		return ev
	case s.SLI.SuccessRate != nil:
		svc := s.SLI.SuccessRate.Service
		return events{
			bad:   selector(CallsMetric, eq(LabelService, svc), eq(LabelSpanKind, SpanKindServer), eq(LabelStatusCode, StatusCodeError)),
			total: selector(CallsMetric, eq(LabelService, svc), eq(LabelSpanKind, SpanKindServer)),
		}
	case s.SLI.Latency != nil:
		svc := s.SLI.Latency.Service
		le, _ := latencyBucket(s.SLI.Latency.Threshold)
		return events{
			good:  selector(LatencyBucketMetric, eq(LabelService, svc), eq(LabelSpanKind, SpanKindServer), eq("le", strconv.FormatFloat(le, 'f', -1, 64))),
			total: selector(LatencyCountMetric, eq(LabelService, svc), eq(LabelSpanKind, SpanKindServer)),
		}
	}
	panic("BUG: SLO without SLI")
}

// TotalSelector is the selector of all events, for finding how far back
// data goes.
func (s *SLO) TotalSelector() *parser.VectorSelector { return s.events().total }

func number(v float64) *parser.NumberLiteral { return &parser.NumberLiteral{Val: v} }

func paren(e parser.Expr) parser.Expr { return &parser.ParenExpr{Expr: e} }

func call(fn string, args ...parser.Expr) *parser.Call {
	f, ok := parser.Functions[fn]
	if !ok {
		panic("BUG: unknown PromQL function " + fn)
	}
	return &parser.Call{Func: f, Args: args}
}

func rangeOf(vs *parser.VectorSelector, w time.Duration) *parser.MatrixSelector {
	c := *vs
	return &parser.MatrixSelector{VectorSelector: &c, Range: w}
}

func sumBy(by []string, e parser.Expr) parser.Expr {
	return &parser.AggregateExpr{Op: parser.SUM, Expr: e, Grouping: by}
}

// binary builds a binary operation. Set operators and comparisons between
// two vectors need a VectorMatching, which the parser would also add.
func binary(op parser.ItemType, lhs, rhs parser.Expr) *parser.BinaryExpr {
	b := &parser.BinaryExpr{Op: op, LHS: lhs, RHS: rhs}
	if lhs.Type() == parser.ValueTypeVector && rhs.Type() == parser.ValueTypeVector {
		card := parser.CardOneToOne
		if op.IsSetOperator() {
			card = parser.CardManyToMany
		}
		b.VectorMatching = &parser.VectorMatching{Card: card}
	}
	return b
}

// orZero makes a per-group series of zeros where e has none: a counter of
// bad events often has no series at all while nothing failed, and the
// error ratio must then be 0, not absent.
func orZero(e, like parser.Expr) parser.Expr {
	return paren(binary(parser.LOR, e, binary(parser.MUL, number(0), like)))
}

// EventsExpr returns expressions for bad and total events over window w,
// summed by the given labels. fn is "rate" (events per second) or
// "increase" (events in the window); both handle counter resets.
func (s *SLO) EventsExpr(fn string, w time.Duration, by ...string) (bad, total parser.Expr) {
	ev := s.events()
	total = sumBy(by, call(fn, rangeOf(ev.total, w)))
	if ev.bad != nil {
		return orZero(sumBy(by, call(fn, rangeOf(ev.bad, w))), total), total
	}
	good := orZero(sumBy(by, call(fn, rangeOf(ev.good, w))), total)
	return paren(binary(parser.SUB, total, good)), total
}

// ErrorRatioExpr is the share of bad events over window w, by the given
// labels. It is absent (not NaN) where there was no traffic, because
// division by a zero total rate is filtered out.
func (s *SLO) ErrorRatioExpr(w time.Duration, by ...string) parser.Expr {
	bad, total := s.EventsExpr("rate", w, by...)
	// "total > 0" drops groups without traffic so the ratio has no NaN.
	return binary(parser.DIV, bad, paren(binary(parser.GTR, total, number(0))))
}
