// Package store holds the interfaces between receivers, queries and the
// storage engines. The embedded columnar engine (store/columnar) and the
// Prometheus TSDB wrapper (store/tsdb) implement them; a ClickHouse or
// VictoriaLogs implementation is planned, so nothing here may assume what
// only the embedded engine can do: filters, group-by and time buckets are
// expressed so that they translate to SQL or LogsQL.
package store

import (
	"context"
	"errors"
	"iter"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

var (
	// ErrNotFound: the requested object (a trace) does not exist.
	ErrNotFound = errors.New("not found")
	// ErrOverloaded: the store cannot take more right now; the client should
	// retry later (HTTP 429 / gRPC RESOURCE_EXHAUSTED).
	ErrOverloaded = errors.New("store overloaded, retry later")
	// ErrUnavailable: the store is not ready or shutting down (HTTP 503 /
	// gRPC UNAVAILABLE).
	ErrUnavailable = errors.New("store unavailable")
	// ErrUnsupported: this backend cannot run the query or filter as asked.
	// Backends refuse rather than approximate.
	ErrUnsupported = errors.New("unsupported by this store")
	// ErrLimit: the query exceeded a per-query limit (series, rows, time).
	ErrLimit = errors.New("query limit exceeded")
)

// PartialError reports that part of a write was rejected (for OTLP's
// partial-success responses). The accepted part is durable.
type PartialError struct {
	Rejected int64
	Reason   string
}

func (e *PartialError) Error() string { return e.Reason }

// TraceWriter stores spans. WriteTraces returns only after the data is in
// the write-ahead log, so an acknowledged write survives kill -9.
// The callee does not keep td after return; the caller may reuse it.
// Safe for concurrent use.
type TraceWriter interface {
	WriteTraces(ctx context.Context, td ptrace.Traces) error
}

// LogWriter stores log records, with the same durability and ownership
// rules as TraceWriter.
type LogWriter interface {
	WriteLogs(ctx context.Context, ld plog.Logs) error
}

// MetricWriter stores metric points, acknowledged after commit to the
// metric store's WAL. Same ownership rules as TraceWriter.
type MetricWriter interface {
	WriteMetrics(ctx context.Context, md pmetric.Metrics) error
}

// Scope says where an attribute lives.
type Scope uint8

const (
	ScopeAny       Scope = iota // resource or span/log attribute (span wins)
	ScopeResource               // resource attribute
	ScopeSpan                   // span attribute (or log record attribute)
	ScopeIntrinsic              // a fixed column, see the Intrinsic* names
)

// Intrinsic field names for spans (ScopeIntrinsic).
const (
	IntrinsicName          = "name"
	IntrinsicStatus        = "status"        // "unset" | "ok" | "error"
	IntrinsicStatusMessage = "statusMessage" //
	IntrinsicKind          = "kind"          // "unspecified","internal","server","client","producer","consumer"
	IntrinsicDuration      = "duration"      // int64 nanoseconds
	IntrinsicService       = "service"       // resource service.name, as a column
	IntrinsicTraceID       = "traceID"       // hex
	IntrinsicSpanID        = "spanID"        // hex
	IntrinsicParentID      = "parentID"      // hex, "" for roots
	// Logs.
	IntrinsicSeverity    = "severity" // severity text, lower case ("" when unset)
	IntrinsicSeverityNum = "severityNumber"
	IntrinsicBody        = "body"     // string form of the body
	IntrinsicLogGroup    = "logGroup" // first of resource aws.log.group.names
)

// Field names a column: an attribute by scope and key, or an intrinsic.
type Field struct {
	Scope Scope
	Name  string
}

func (f Field) String() string {
	switch f.Scope {
	case ScopeResource:
		return "resource." + f.Name
	case ScopeSpan:
		return "span." + f.Name
	case ScopeIntrinsic:
		return f.Name
	}
	return "." + f.Name
}

// Op is a comparison operator.
type Op uint8

const (
	OpEq Op = iota
	OpNeq
	OpGt
	OpGe
	OpLt
	OpLe
	OpRegex    // value is an RE2 regexp, anchored on both ends (like PromQL/TraceQL)
	OpNotRegex //
	OpExists   // the attribute is present (Value ignored)
	OpContains // substring match on the string form, case-sensitive (log line filters)
	OpNotContains
)

// Value is a typed literal: exactly one of the fields is meaningful, by Kind.
type Value struct {
	Kind  ValueKind
	Str   string
	Int   int64
	Float float64
	Bool  bool
}

type ValueKind uint8

const (
	KindString ValueKind = iota
	KindInt
	KindFloat
	KindBool
	KindDuration // Int holds nanoseconds
	KindStatus   // Str is "unset" | "ok" | "error"
	KindSpanKind // Str is a kind name as in IntrinsicKind
)

// Cond is a filter: a tree of And/Or/Not over comparisons. A nil *Cond
// matches everything.
type Cond struct {
	And   []*Cond
	Or    []*Cond
	Not   *Cond
	Field Field // for a leaf
	Op    Op
	Value Value
}

// Leaf reports whether c is a comparison rather than a combination.
func (c *Cond) Leaf() bool { return c != nil && c.And == nil && c.Or == nil && c.Not == nil }

// SpanQuery selects spans by time (span start within [Start, End)) and filter.
type SpanQuery struct {
	Start, End time.Time
	Filter     *Cond
	// Limit bounds the number of rows returned; 0 means no limit.
	Limit int
}

// SpanRow is one span as a flat row, for search results and evidence.
// Attribute maps are built for the caller and owned by it.
type SpanRow struct {
	TraceID       pcommon.TraceID
	SpanID        pcommon.SpanID
	ParentSpanID  pcommon.SpanID
	Start         int64 // unix nanoseconds
	Duration      int64 // nanoseconds
	Service       string
	Name          string
	Kind          ptrace.SpanKind
	StatusCode    ptrace.StatusCode
	StatusMessage string
	Resource      map[string]string // string forms of resource attributes
	Attributes    map[string]string // string forms of span attributes
}

// AggFunc is what an aggregation computes per group and time bucket.
type AggFunc uint8

const (
	AggCount             AggFunc = iota // number of matching rows
	AggDurationHistogram                // histogram of duration (spans) over DurationBuckets
	AggBytes                            // sum of body bytes (logs)
)

// DurationBuckets are the upper bounds (nanoseconds, inclusive) of the
// histogram buckets used by AggDurationHistogram: powers of two from 1µs
// to ~275 s. The last bucket is +Inf.
var DurationBuckets = func() []int64 {
	var b []int64
	for v := int64(1024); v <= 1<<38; v *= 2 {
		b = append(b, v)
	}
	return b
}()

// Aggregate groups rows matching Filter within [Start, End) into time
// buckets of Step (one bucket when Step is 0) and groups by the values of
// GroupBy, then computes Func.
type Aggregate struct {
	Start, End time.Time
	Step       time.Duration
	Filter     *Cond
	GroupBy    []Field
	Func       AggFunc
	// MaxSeries bounds the number of groups; exceeding it returns ErrLimit.
	MaxSeries int
}

// GroupSeries is one group's result. Labels are the string values of the
// GroupBy fields in order ("" when absent). Counts has one entry per time
// bucket (AggCount, AggBytes); Hist has one histogram per bucket
// (len(DurationBuckets)+1 counts each) for AggDurationHistogram.
type GroupSeries struct {
	Labels []string
	Counts []float64
	Hist   [][]uint64
}

// KeyCount is an attribute key or value with how often it was seen.
type KeyCount struct {
	Scope Scope
	Key   string
	Count int64
}

// TraceReader reads spans. All methods honour ctx cancellation and are
// safe for concurrent use.
type TraceReader interface {
	// GetTrace returns every span of a trace, or ErrNotFound.
	GetTrace(ctx context.Context, id pcommon.TraceID) (ptrace.Traces, error)
	// FindSpans streams spans matching q. Order is by storage unit, newest
	// data first (not strictly by time): callers that need an order sort.
	FindSpans(ctx context.Context, q SpanQuery) iter.Seq2[SpanRow, error]
	// AggregateSpans computes q over spans (start time in range).
	AggregateSpans(ctx context.Context, q Aggregate) ([]GroupSeries, error)
	// SpanAttributeKeys lists attribute keys of a scope seen in the range.
	SpanAttributeKeys(ctx context.Context, scope Scope, start, end time.Time) ([]KeyCount, error)
	// SpanAttributeValues lists the top values of a field among spans
	// matching filter, most frequent first, at most limit.
	SpanAttributeValues(ctx context.Context, f Field, filter *Cond, start, end time.Time, limit int) ([]KeyCount, error)
}

// LogQuery selects log records by time and filter.
type LogQuery struct {
	Start, End time.Time
	Filter     *Cond
	Limit      int
	Backward   bool // newest first
}

// LogRow is one log record as a flat row.
type LogRow struct {
	Time           int64 // unix nanoseconds (observed time when time is unset)
	SeverityNumber int32
	SeverityText   string
	Body           string
	TraceID        pcommon.TraceID
	SpanID         pcommon.SpanID
	Service        string
	LogGroup       string
	Resource       map[string]string
	Attributes     map[string]string
}

// LogReader reads log records. Same rules as TraceReader.
type LogReader interface {
	FindLogs(ctx context.Context, q LogQuery) iter.Seq2[LogRow, error]
	AggregateLogs(ctx context.Context, q Aggregate) ([]GroupSeries, error)
	LogAttributeKeys(ctx context.Context, scope Scope, start, end time.Time) ([]KeyCount, error)
	LogAttributeValues(ctx context.Context, f Field, filter *Cond, start, end time.Time, limit int) ([]KeyCount, error)
}
