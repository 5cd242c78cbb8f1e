package traceql

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/trenchcoat/trenchcoat/internal/store"
)

// Limits bound the work of one query. Zero means no limit.
type Limits struct {
	MaxSeries int // series in a metrics result
	MaxRows   int // span rows read from the store
}

// MaxPoints bounds the time buckets of a metrics query, as Prometheus does.
const MaxPoints = 11000

// rowBudget counts rows read against Limits.MaxRows.
type rowBudget struct {
	max, n int
}

func (b *rowBudget) take(n int) error {
	b.n += n
	if b.max > 0 && b.n > b.max {
		return fmt.Errorf("%w: the query read more than %d spans; narrow the time range or the filter", store.ErrLimit, b.max)
	}
	return nil
}

// traceData is one whole trace, for evaluating what needs the trace: the
// trace-level intrinsics and the structural operators.
type traceData struct {
	rows       []store.SpanRow
	byID       map[pcommon.SpanID]int
	root       int // index of the root span, -1 when not received
	start, end int64
	errors     int
}

func attrMap(m pcommon.Map) map[string]string {
	out := make(map[string]string, m.Len())
	for k, v := range m.All() {
		out[k] = v.AsString()
	}
	return out
}

func newTraceData(td ptrace.Traces) *traceData {
	t := &traceData{byID: map[pcommon.SpanID]int{}, root: -1}
	for _, rs := range td.ResourceSpans().All() {
		res := attrMap(rs.Resource().Attributes())
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				start := int64(sp.StartTimestamp())
				t.rows = append(t.rows, store.SpanRow{
					TraceID: sp.TraceID(), SpanID: sp.SpanID(), ParentSpanID: sp.ParentSpanID(),
					Start: start, Duration: int64(sp.EndTimestamp()) - start,
					Service: res["service.name"], Name: sp.Name(), Kind: sp.Kind(),
					StatusCode: sp.Status().Code(), StatusMessage: sp.Status().Message(),
					Resource: res, Attributes: attrMap(sp.Attributes()),
				})
			}
		}
	}
	// Spans in start order make results and "first root" deterministic.
	sort.SliceStable(t.rows, func(i, j int) bool { return t.rows[i].Start < t.rows[j].Start })
	for i := range t.rows {
		r := &t.rows[i]
		t.byID[r.SpanID] = i
		if i == 0 || r.Start < t.start {
			t.start = r.Start
		}
		if e := r.Start + r.Duration; i == 0 || e > t.end {
			t.end = e
		}
		if r.StatusCode == ptrace.StatusCodeError {
			t.errors++
		}
	}
	for i := range t.rows {
		if t.rows[i].ParentSpanID.IsEmpty() {
			t.root = i
			break
		}
	}
	return t
}

// parent returns the index of span i's parent, or -1.
func (t *traceData) parent(i int) int {
	p := t.rows[i].ParentSpanID
	if p.IsEmpty() {
		return -1
	}
	if j, ok := t.byID[p]; ok && j != i {
		return j
	}
	return -1
}

// StatusName is the TraceQL (and store) name of a status code.
func StatusName(c ptrace.StatusCode) string {
	switch c {
	case ptrace.StatusCodeOk:
		return "ok"
	case ptrace.StatusCodeError:
		return "error"
	}
	return "unset"
}

// KindName is the TraceQL (and store) name of a span kind.
func KindName(k ptrace.SpanKind) string {
	switch k {
	case ptrace.SpanKindInternal:
		return "internal"
	case ptrace.SpanKindServer:
		return "server"
	case ptrace.SpanKindClient:
		return "client"
	case ptrace.SpanKindProducer:
		return "producer"
	case ptrace.SpanKindConsumer:
		return "consumer"
	}
	return "unspecified"
}

// lookup returns the string form of a on r (t may be nil when a is not
// trace-level) and whether it is present.
func lookup(a Attribute, r *store.SpanRow, t *traceData) (string, bool) {
	switch a.Scope {
	case AttrIntrinsic:
		switch a.Name {
		case store.IntrinsicName:
			return r.Name, true
		case store.IntrinsicStatus:
			return StatusName(r.StatusCode), true
		case store.IntrinsicStatusMessage:
			return r.StatusMessage, true
		case store.IntrinsicKind:
			return KindName(r.Kind), true
		case store.IntrinsicDuration:
			return strconv.FormatInt(r.Duration, 10), true
		case IntrinsicRootName, IntrinsicRootServiceName:
			if t == nil || t.root < 0 {
				return "", false
			}
			if a.Name == IntrinsicRootName {
				return t.rows[t.root].Name, true
			}
			return t.rows[t.root].Service, true
		case IntrinsicTraceDuration:
			if t == nil {
				return "", false
			}
			return strconv.FormatInt(t.end-t.start, 10), true
		}
		return "", false
	case AttrResource:
		v, ok := r.Resource[a.Name]
		return v, ok
	case AttrSpan:
		v, ok := r.Attributes[a.Name]
		return v, ok
	}
	if v, ok := r.Attributes[a.Name]; ok {
		return v, true
	}
	v, ok := r.Resource[a.Name]
	return v, ok
}

var (
	reMu    sync.Mutex
	reCache = map[string]*regexp.Regexp{}
)

// anchored compiles s as a regexp matching whole values, caching a bounded
// number of them.
func anchored(s string) *regexp.Regexp {
	reMu.Lock()
	defer reMu.Unlock()
	if re, ok := reCache[s]; ok {
		return re
	}
	re, err := regexp.Compile("^(?:" + s + ")$")
	if err != nil {
		re = nil
	}
	if len(reCache) > 1000 {
		clear(reCache)
	}
	reCache[s] = re
	return re
}

// compare applies op and v to a field's string form. A missing field
// matches no comparison; `!` is what selects spans without it.
func compare(got string, present bool, op store.Op, v store.Value) bool {
	if !present {
		return false
	}
	switch op {
	case store.OpExists:
		return true
	case store.OpRegex, store.OpNotRegex:
		re := anchored(v.Str)
		return re != nil && re.MatchString(got) == (op == store.OpRegex)
	}
	var c int
	switch v.Kind {
	case store.KindInt, store.KindFloat, store.KindDuration:
		f, err := strconv.ParseFloat(got, 64)
		if err != nil {
			return false
		}
		want := v.Float
		if v.Kind != store.KindFloat {
			want = float64(v.Int)
		}
		switch {
		case f < want:
			c = -1
		case f > want:
			c = 1
		}
	case store.KindBool:
		b, err := strconv.ParseBool(got)
		if err != nil {
			return false
		}
		switch {
		case b == v.Bool:
		case !b:
			c = -1
		default:
			c = 1
		}
	default:
		c = strings.Compare(got, v.Str)
	}
	switch op {
	case store.OpEq:
		return c == 0
	case store.OpNeq:
		return c != 0
	case store.OpGt:
		return c > 0
	case store.OpGe:
		return c >= 0
	case store.OpLt:
		return c < 0
	case store.OpLe:
		return c <= 0
	}
	return false
}

// matchField evaluates a field expression on one span.
func matchField(e FieldExpr, r *store.SpanRow, t *traceData) bool {
	switch e := e.(type) {
	case nil:
		return true
	case *Comparison:
		v, ok := lookup(e.Attr, r, t)
		if e.Nil {
			return ok == (e.Op == store.OpNeq)
		}
		return compare(v, ok, e.Op, e.Value)
	case *NotExpr:
		return !matchField(e.X, r, t)
	case *BoolOp:
		if e.And {
			return matchField(e.L, r, t) && matchField(e.R, r, t)
		}
		return matchField(e.L, r, t) || matchField(e.R, r, t)
	}
	panic("BUG: unknown field expression")
}

// evalTrace returns the indexes (ascending) of t's spans that x selects;
// only spans starting in [start, end) match a filter.
func evalTrace(x SpansetExpr, t *traceData, start, end int64) []int {
	switch x := x.(type) {
	case *SpansetFilter:
		var out []int
		for i := range t.rows {
			r := &t.rows[i]
			if r.Start >= start && r.Start < end && matchField(x.Expr, r, t) {
				out = append(out, i)
			}
		}
		return out
	case *SpansetOp:
		l := evalTrace(x.L, t, start, end)
		r := evalTrace(x.R, t, start, end)
		switch x.Op {
		case SpansetAnd:
			if len(l) == 0 || len(r) == 0 {
				return nil
			}
			return union(l, r)
		case SpansetOr:
			return union(l, r)
		}
		inL := make(map[int]bool, len(l))
		for _, i := range l {
			inL[i] = true
		}
		var out []int
		for _, i := range r {
			p := t.parent(i)
			if x.Op == SpansetChild {
				if p >= 0 && inL[p] {
					out = append(out, i)
				}
				continue
			}
			// Walk up; the step bound guards against parent cycles in bad data.
			for steps := 0; p >= 0 && steps < len(t.rows); steps++ {
				if inL[p] {
					out = append(out, i)
					break
				}
				p = t.parent(p)
			}
		}
		return out
	}
	panic("BUG: unknown spanset expression")
}

func union(a, b []int) []int {
	out := make([]int, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || (i < len(a) && a[i] < b[j]):
			out = append(out, a[i])
			i++
		case i == len(a) || b[j] < a[i]:
			out = append(out, b[j])
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	return out
}

// evaluator runs one query against a store.
type evaluator struct {
	r          store.TraceReader
	start, end time.Time
	budget     rowBudget
}

// findSpans streams the spans a filter may match, pushing down what the store
// accepts and falling back to coarser filters when it answers ErrUnsupported.
// exact reports whether every row yielded matches e (ignoring trace-level
// parts, which are never exact).
func (ev *evaluator) findSpans(ctx context.Context, e FieldExpr, fn func(r *store.SpanRow) error) (exact bool, err error) {
	for _, ok := range []pushable{pushAll, pushPlain, pushNone} {
		c, t, ex := pushdown(e, true, ok)
		if t == triNone {
			return true, nil
		}
		exact, err = ex, nil
		yielded := false
		for r, ferr := range ev.r.FindSpans(ctx, store.SpanQuery{Start: ev.start, End: ev.end, Filter: c}) {
			if ferr != nil {
				err = ferr
				break
			}
			yielded = true
			if err = ev.budget.take(1); err != nil {
				return exact, err
			}
			if !ex && !matchField(e, &r, nil) && !needsTrace(e) {
				continue
			}
			if err = fn(&r); err != nil {
				return exact, err
			}
		}
		if err == nil || !errors.Is(err, store.ErrUnsupported) || yielded {
			return exact, err
		}
	}
	return exact, err
}

// needsTrace reports whether e refers to trace-level intrinsics.
func needsTrace(e FieldExpr) bool {
	switch e := e.(type) {
	case *Comparison:
		return e.Attr.TraceLevel()
	case *NotExpr:
		return needsTrace(e.X)
	case *BoolOp:
		return needsTrace(e.L) || needsTrace(e.R)
	}
	return false
}

// structural reports whether x uses > or >>, which need whole traces.
func structural(x SpansetExpr) bool {
	if o, ok := x.(*SpansetOp); ok {
		return o.Op == SpansetChild || o.Op == SpansetDescendant || structural(o.L) || structural(o.R)
	}
	return false
}

// candidate is a trace some spans of which matched the pushed-down filters.
type candidate struct {
	last int64           // latest matched span start: how search picks the newest traces
	n    int             // rows matched
	rows []store.SpanRow // matched rows
}

// candidates returns the traces that may satisfy x with their matched
// rows, combining per-filter results by the spanset operators. exact
// reports whether every filter was answered exactly by the store.
func (ev *evaluator) candidates(ctx context.Context, x SpansetExpr) (map[pcommon.TraceID]*candidate, bool, error) {
	switch x := x.(type) {
	case *SpansetFilter:
		out := map[pcommon.TraceID]*candidate{}
		exact, err := ev.findSpans(ctx, x.Expr, func(r *store.SpanRow) error {
			c, ok := out[r.TraceID]
			if !ok {
				c = &candidate{last: r.Start}
				out[r.TraceID] = c
			}
			c.last = max(c.last, r.Start)
			c.n++
			c.rows = append(c.rows, *r)
			return nil
		})
		return out, exact && !needsTrace(x.Expr), err
	case *SpansetOp:
		l, le, err := ev.candidates(ctx, x.L)
		if err != nil {
			return nil, false, err
		}
		r, re, err := ev.candidates(ctx, x.R)
		if err != nil {
			return nil, false, err
		}
		if x.Op == SpansetOr {
			for id, c := range r {
				if lc, ok := l[id]; ok {
					lc.last = max(lc.last, c.last)
					lc.rows = append(lc.rows, c.rows...)
				} else {
					l[id] = c
				}
			}
			return l, le && re, nil
		}
		for id, lc := range l {
			rc, ok := r[id]
			if !ok {
				delete(l, id)
				continue
			}
			lc.last = max(lc.last, rc.last)
			lc.rows = append(lc.rows, rc.rows...)
		}
		return l, le && re && x.Op == SpansetAnd, nil
	}
	panic("BUG: unknown spanset expression")
}

// dedupRows sorts rows by start and drops repeats of a span.
func dedupRows(rows []store.SpanRow) []store.SpanRow {
	sort.SliceStable(rows, func(i, j int) bool {
		if rows[i].Start != rows[j].Start {
			return rows[i].Start < rows[j].Start
		}
		return string(rows[i].SpanID[:]) < string(rows[j].SpanID[:])
	})
	out := rows[:0]
	for i, r := range rows {
		if i > 0 && r.SpanID == out[len(out)-1].SpanID {
			continue
		}
		out = append(out, r)
	}
	return out
}

// fetchTrace reads a whole trace; nil when it vanished (retention).
func (ev *evaluator) fetchTrace(ctx context.Context, id pcommon.TraceID) (*traceData, error) {
	td, err := ev.r.GetTrace(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	t := newTraceData(td)
	return t, ev.budget.take(len(t.rows))
}
