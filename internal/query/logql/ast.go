// Package logql parses and evaluates a subset of LogQL, the log query
// language of Grafana Loki (as its public documentation describes it; none
// of Loki's code is used), over a store.LogReader.
//
// Stream labels are the resource attributes with every character outside
// [A-Za-z0-9_] turned into "_" (service_name, cloud_region, ...), plus
// log_group (the first of aws.log.group.names) and level (the severity
// text in lower case).
package logql

import (
	"strconv"
	"strings"
	"time"
)

// Query is either a log query or a metric query.
type Query struct {
	Log    *LogExpr    // a log query: lines
	Metric *MetricExpr // a metric query: series
}

func (q *Query) String() string {
	if q.Metric != nil {
		return q.Metric.String()
	}
	return q.Log.String()
}

// MatchOp is a selector matcher's operator.
type MatchOp uint8

const (
	MatchEq MatchOp = iota
	MatchNeq
	MatchRegex
	MatchNotRegex
)

var matchOpNames = [...]string{"=", "!=", "=~", "!~"}

func (o MatchOp) String() string { return matchOpNames[o] }

// Matcher is one `label op "value"` of a stream selector.
type Matcher struct {
	Name  string
	Op    MatchOp
	Value string
}

func (m Matcher) String() string { return m.Name + m.Op.String() + strconv.Quote(m.Value) }

// LogExpr is a stream selector and its pipeline.
type LogExpr struct {
	Selector []Matcher
	Stages   []Stage
}

func (e *LogExpr) String() string {
	ms := make([]string, len(e.Selector))
	for i, m := range e.Selector {
		ms[i] = m.String()
	}
	s := "{" + strings.Join(ms, ", ") + "}"
	for _, st := range e.Stages {
		s += " " + st.String()
	}
	return s
}

// Stage is one step of a pipeline.
type Stage interface {
	String() string
	stage()
}

// LineFilterOp is a line filter's operator.
type LineFilterOp uint8

const (
	LineContains    LineFilterOp = iota // |=
	LineNotContains                     // !=
	LineRegex                           // |~ (unanchored)
	LineNotRegex                        // !~
)

var lineOpNames = [...]string{"|=", "!=", "|~", "!~"}

func (o LineFilterOp) String() string { return lineOpNames[o] }

// LineFilter keeps or drops lines by their text.
type LineFilter struct {
	Op    LineFilterOp
	Value string
}

// ParserStage extracts labels from the line.
type ParserStage struct {
	Format string // "json" or "logfmt"
}

// LabelFilter keeps lines whose labels satisfy Expr.
type LabelFilter struct {
	Expr LabelExpr
}

func (*LineFilter) stage()  {}
func (*ParserStage) stage() {}
func (*LabelFilter) stage() {}

func (f *LineFilter) String() string  { return f.Op.String() + " " + strconv.Quote(f.Value) }
func (p *ParserStage) String() string { return "| " + p.Format }
func (f *LabelFilter) String() string { return "| " + f.Expr.String() }

// LabelExpr is a boolean expression over labels.
type LabelExpr interface {
	String() string
	labelExpr()
}

// LabelCmpOp is a label filter comparison.
type LabelCmpOp uint8

const (
	CmpEq LabelCmpOp = iota
	CmpNeq
	CmpRegex
	CmpNotRegex
	CmpGt
	CmpGe
	CmpLt
	CmpLe
	CmpEqEq // == with a number
)

var cmpNames = [...]string{"=", "!=", "=~", "!~", ">", ">=", "<", "<=", "=="}

func (o LabelCmpOp) String() string { return cmpNames[o] }

// LabelCmp compares a label with a string, a number or a duration.
type LabelCmp struct {
	Name string
	Op   LabelCmpOp
	// Exactly one of: Str (IsStr), Num (IsNum), Dur (IsDur).
	Str          string
	Num          float64
	Dur          time.Duration
	IsNum, IsDur bool
}

// LabelBin is `and` / `or` between label expressions (`,` and successive
// label filters mean `and`).
type LabelBin struct {
	And  bool
	L, R LabelExpr
}

func (*LabelCmp) labelExpr() {}
func (*LabelBin) labelExpr() {}

func (c *LabelCmp) String() string {
	v := strconv.Quote(c.Str)
	switch {
	case c.IsNum:
		v = strconv.FormatFloat(c.Num, 'g', -1, 64)
	case c.IsDur:
		v = c.Dur.String()
	}
	return c.Name + " " + c.Op.String() + " " + v
}

func (b *LabelBin) String() string {
	op := " or "
	if b.And {
		op = " and "
	}
	return "(" + b.L.String() + op + b.R.String() + ")"
}

// RangeFunc is a function over a range of log lines.
type RangeFunc uint8

const (
	FuncCountOverTime RangeFunc = iota
	FuncRate
	FuncBytesOverTime
	FuncBytesRate
)

var rangeFuncNames = [...]string{"count_over_time", "rate", "bytes_over_time", "bytes_rate"}

func (f RangeFunc) String() string { return rangeFuncNames[f] }

// VectorOp aggregates series.
type VectorOp uint8

const (
	AggSum VectorOp = iota
	AggCount
	AggMax
	AggMin
	AggAvg
)

var vectorOpNames = [...]string{"sum", "count", "max", "min", "avg"}

func (o VectorOp) String() string { return vectorOpNames[o] }

// MetricExpr is `fn(log [range])`, optionally wrapped in aggregations.
type MetricExpr struct {
	// A range aggregation (when Inner is nil) ...
	Func  RangeFunc
	Log   *LogExpr
	Range time.Duration
	// ... or a vector aggregation of Inner.
	Inner *MetricExpr
	Op    VectorOp
	By    []string
}

func (m *MetricExpr) String() string {
	if m.Inner == nil {
		return m.Func.String() + "(" + m.Log.String() + " [" + formatDuration(m.Range) + "])"
	}
	s := m.Op.String()
	if m.By != nil {
		s += " by (" + strings.Join(m.By, ", ") + ")"
	}
	return s + " (" + m.Inner.String() + ")"
}

// RangeExpr is the range aggregation at the bottom of m.
func (m *MetricExpr) RangeExpr() *MetricExpr {
	for m.Inner != nil {
		m = m.Inner
	}
	return m
}

// formatDuration prints Prometheus style: 1m, 1h30m, 90s.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
