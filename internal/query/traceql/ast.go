// Package traceql parses and evaluates a subset of TraceQL, the trace query
// language of Grafana Tempo (as its public documentation describes it; none
// of Tempo's code is used). Filters are pushed down to a store.TraceReader as
// store.Cond; what the store cannot answer (trace-level intrinsics, spanset
// combination, structural operators) is evaluated here over the candidate
// traces' spans.
package traceql

import (
	"strconv"
	"strings"
	"time"

	"github.com/trenchcoat/trenchcoat/internal/store"
)

// Query is a parsed TraceQL query: a spanset expression and, for metrics
// queries, the function applied to the matching spans.
type Query struct {
	Spansets SpansetExpr
	Metrics  *MetricsFunc // nil for a search
}

func (q *Query) String() string {
	s := q.Spansets.String()
	if q.Metrics != nil {
		s += " | " + q.Metrics.String()
	}
	return s
}

// SpansetExpr is a spanset filter or a combination of two.
type SpansetExpr interface {
	String() string
	spanset()
}

// SpansetFilter is `{ expr }`; Expr is nil for `{}` (every span).
type SpansetFilter struct {
	Expr FieldExpr
}

// SpansetOpKind is an operator between spansets.
type SpansetOpKind uint8

const (
	SpansetAnd        SpansetOpKind = iota // {A} && {B}: traces holding both
	SpansetOr                              // {A} || {B}: traces holding either
	SpansetChild                           // {A} > {B}: B spans whose parent matches A
	SpansetDescendant                      // {A} >> {B}: B spans with an ancestor matching A
)

var spansetOpNames = [...]string{"&&", "||", ">", ">>"}

func (k SpansetOpKind) String() string { return spansetOpNames[k] }

// SpansetOp combines two spanset expressions.
type SpansetOp struct {
	Op   SpansetOpKind
	L, R SpansetExpr
}

func (*SpansetFilter) spanset() {}
func (*SpansetOp) spanset()     {}

func (f *SpansetFilter) String() string {
	if f.Expr == nil {
		return "{}"
	}
	return "{ " + f.Expr.String() + " }"
}

func (o *SpansetOp) String() string {
	return "(" + o.L.String() + " " + o.Op.String() + " " + o.R.String() + ")"
}

// FieldExpr is a boolean expression over one span's fields.
type FieldExpr interface {
	String() string
	field()
}

// BoolOp is && or || between field expressions.
type BoolOp struct {
	And  bool // false: ||
	L, R FieldExpr
}

// NotExpr is `!expr`.
type NotExpr struct{ X FieldExpr }

// Comparison is `attr op literal`.
type Comparison struct {
	Attr  Attribute
	Op    store.Op
	Value store.Value
	Nil   bool // the literal is nil: `!= nil` means present, `= nil` absent
}

func (*BoolOp) field()     {}
func (*NotExpr) field()    {}
func (*Comparison) field() {}

func (b *BoolOp) String() string {
	op := " || "
	if b.And {
		op = " && "
	}
	return "(" + b.L.String() + op + b.R.String() + ")"
}

func (n *NotExpr) String() string { return "!" + n.X.String() }

var opNames = map[store.Op]string{
	store.OpEq: "=", store.OpNeq: "!=", store.OpGt: ">", store.OpGe: ">=",
	store.OpLt: "<", store.OpLe: "<=", store.OpRegex: "=~", store.OpNotRegex: "!~",
}

func (c *Comparison) String() string {
	v := "nil"
	if !c.Nil {
		v = FormatValue(c.Value)
	}
	return c.Attr.String() + " " + opNames[c.Op] + " " + v
}

// FormatValue writes a literal back in TraceQL syntax.
func FormatValue(v store.Value) string {
	switch v.Kind {
	case store.KindInt:
		return strconv.FormatInt(v.Int, 10)
	case store.KindFloat:
		return strconv.FormatFloat(v.Float, 'g', -1, 64)
	case store.KindBool:
		return strconv.FormatBool(v.Bool)
	case store.KindDuration:
		return time.Duration(v.Int).String()
	case store.KindStatus, store.KindSpanKind:
		return v.Str
	}
	return strconv.Quote(v.Str)
}

// AttrScope says where an attribute reference looks.
type AttrScope uint8

const (
	AttrAny       AttrScope = iota // .key
	AttrResource                   // resource.key
	AttrSpan                       // span.key
	AttrIntrinsic                  // name, status, duration, ...
)

// Trace-level intrinsics: not columns of a span, computed from the trace.
const (
	IntrinsicRootName        = "rootName"
	IntrinsicRootServiceName = "rootServiceName"
	IntrinsicTraceDuration   = "traceDuration"
)

// intrinsics maps TraceQL intrinsic names to the value kind they compare with.
var intrinsics = map[string]store.ValueKind{
	store.IntrinsicName:          store.KindString,
	store.IntrinsicStatus:        store.KindStatus,
	store.IntrinsicStatusMessage: store.KindString,
	store.IntrinsicKind:          store.KindSpanKind,
	store.IntrinsicDuration:      store.KindDuration,
	IntrinsicRootName:            store.KindString,
	IntrinsicRootServiceName:     store.KindString,
	IntrinsicTraceDuration:       store.KindDuration,
}

// Attribute is a reference to a span field.
type Attribute struct {
	Scope AttrScope
	Name  string
}

func (a Attribute) String() string {
	name := a.Name
	for i := 0; i < len(name); i++ {
		if !isIdentChar(name[i]) {
			name = strconv.Quote(name)
			break
		}
	}
	switch a.Scope {
	case AttrResource:
		return "resource." + name
	case AttrSpan:
		return "span." + name
	case AttrIntrinsic:
		return a.Name
	}
	return "." + name
}

// TraceLevel reports whether a is computed from the whole trace, so that a
// span store cannot filter on it.
func (a Attribute) TraceLevel() bool {
	return a.Scope == AttrIntrinsic && (a.Name == IntrinsicRootName || a.Name == IntrinsicRootServiceName || a.Name == IntrinsicTraceDuration)
}

// Field is the store field of a span-level attribute.
func (a Attribute) Field() store.Field {
	switch a.Scope {
	case AttrResource:
		return store.Field{Scope: store.ScopeResource, Name: a.Name}
	case AttrSpan:
		return store.Field{Scope: store.ScopeSpan, Name: a.Name}
	case AttrIntrinsic:
		return store.Field{Scope: store.ScopeIntrinsic, Name: a.Name}
	}
	return store.Field{Scope: store.ScopeAny, Name: a.Name}
}

// MetricsFuncKind names a metrics function.
type MetricsFuncKind uint8

const (
	FuncRate MetricsFuncKind = iota
	FuncCountOverTime
	FuncQuantileOverTime
	FuncHistogramOverTime
)

var funcNames = [...]string{"rate", "count_over_time", "quantile_over_time", "histogram_over_time"}

func (k MetricsFuncKind) String() string { return funcNames[k] }

// MetricsFunc is `| fn(args) by (attrs)`.
type MetricsFunc struct {
	Func      MetricsFuncKind
	Attr      Attribute // the measured attribute (duration) for quantile/histogram
	Quantiles []float64
	By        []Attribute
}

func (m *MetricsFunc) String() string {
	var args []string
	if m.Func == FuncQuantileOverTime || m.Func == FuncHistogramOverTime {
		args = append(args, m.Attr.String())
	}
	for _, q := range m.Quantiles {
		args = append(args, strconv.FormatFloat(q, 'g', -1, 64))
	}
	s := m.Func.String() + "(" + strings.Join(args, ", ") + ")"
	if len(m.By) > 0 {
		by := make([]string, len(m.By))
		for i, a := range m.By {
			by[i] = a.String()
		}
		s += " by (" + strings.Join(by, ", ") + ")"
	}
	return s
}
