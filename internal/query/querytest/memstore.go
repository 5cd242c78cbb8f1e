// Package querytest holds a brute-force, in-memory implementation of
// store.TraceReader and store.LogReader. It evaluates every store.Cond and
// store.Aggregate naively over every row, which makes it the oracle the
// query packages' semantics tests compare real engines against. It is for
// tests only: nothing outside _test files should import it.
package querytest

import (
	"context"
	"fmt"
	"iter"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/trenchcoat/trenchcoat/internal/store"
)

// Store keeps every span and log record in memory.
// Safe for concurrent use.
type Store struct {
	// Unsupported, when set, makes the store refuse (store.ErrUnsupported)
	// any query whose filter holds a leaf it returns true for, so tests can
	// check that callers fall back instead of failing.
	Unsupported func(c *store.Cond) bool

	mu     sync.RWMutex
	spans  []store.SpanRow
	traces map[pcommon.TraceID]ptrace.Traces
	logs   []store.LogRow
}

var (
	_ store.TraceReader = (*Store)(nil)
	_ store.TraceWriter = (*Store)(nil)
	_ store.LogReader   = (*Store)(nil)
	_ store.LogWriter   = (*Store)(nil)
)

// New returns an empty store.
func New() *Store { return &Store{traces: map[pcommon.TraceID]ptrace.Traces{}} }

func attrMap(m pcommon.Map) map[string]string {
	out := make(map[string]string, m.Len())
	for k, v := range m.All() {
		out[k] = v.AsString()
	}
	return out
}

// WriteTraces stores a copy of td.
func (s *Store) WriteTraces(ctx context.Context, td ptrace.Traces) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rs := range td.ResourceSpans().All() {
		res := attrMap(rs.Resource().Attributes())
		svc := res["service.name"]
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				start := int64(sp.StartTimestamp())
				s.spans = append(s.spans, store.SpanRow{
					TraceID: sp.TraceID(), SpanID: sp.SpanID(), ParentSpanID: sp.ParentSpanID(),
					Start: start, Duration: int64(sp.EndTimestamp()) - start,
					Service: svc, Name: sp.Name(), Kind: sp.Kind(),
					StatusCode: sp.Status().Code(), StatusMessage: sp.Status().Message(),
					Resource: res, Attributes: attrMap(sp.Attributes()),
				})
				t, ok := s.traces[sp.TraceID()]
				if !ok {
					t = ptrace.NewTraces()
					s.traces[sp.TraceID()] = t
				}
				nrs := t.ResourceSpans().AppendEmpty()
				rs.Resource().CopyTo(nrs.Resource())
				nss := nrs.ScopeSpans().AppendEmpty()
				ss.Scope().CopyTo(nss.Scope())
				sp.CopyTo(nss.Spans().AppendEmpty())
			}
		}
	}
	return nil
}

// WriteLogs stores a copy of ld.
func (s *Store) WriteLogs(ctx context.Context, ld plog.Logs) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rl := range ld.ResourceLogs().All() {
		res := attrMap(rl.Resource().Attributes())
		group := ""
		if v, ok := rl.Resource().Attributes().Get("aws.log.group.names"); ok {
			if v.Type() == pcommon.ValueTypeSlice {
				if v.Slice().Len() > 0 {
					group = v.Slice().At(0).AsString()
				}
			} else {
				group = v.AsString()
			}
		}
		for _, sl := range rl.ScopeLogs().All() {
			for _, lr := range sl.LogRecords().All() {
				ts := int64(lr.Timestamp())
				if ts == 0 {
					ts = int64(lr.ObservedTimestamp())
				}
				s.logs = append(s.logs, store.LogRow{
					Time: ts, SeverityNumber: int32(lr.SeverityNumber()),
					SeverityText: strings.ToLower(lr.SeverityText()), Body: lr.Body().AsString(),
					TraceID: lr.TraceID(), SpanID: lr.SpanID(),
					Service: res["service.name"], LogGroup: group,
					Resource: res, Attributes: attrMap(lr.Attributes()),
				})
			}
		}
	}
	return nil
}

func (s *Store) check(c *store.Cond) error {
	if c == nil || s.Unsupported == nil {
		return nil
	}
	if c.Leaf() {
		if s.Unsupported(c) {
			return fmt.Errorf("%w: %s", store.ErrUnsupported, c.Field)
		}
		return nil
	}
	for _, x := range c.And {
		if err := s.check(x); err != nil {
			return err
		}
	}
	for _, x := range c.Or {
		if err := s.check(x); err != nil {
			return err
		}
	}
	return s.check(c.Not)
}

// SpanField returns the string form of f on r, and whether it is present.
func SpanField(r *store.SpanRow, f store.Field) (string, bool) {
	switch f.Scope {
	case store.ScopeIntrinsic:
		switch f.Name {
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
		case store.IntrinsicService:
			return r.Service, true
		case store.IntrinsicTraceID:
			return r.TraceID.String(), true
		case store.IntrinsicSpanID:
			return r.SpanID.String(), true
		case store.IntrinsicParentID:
			if r.ParentSpanID.IsEmpty() {
				return "", true
			}
			return r.ParentSpanID.String(), true
		}
		return "", false
	case store.ScopeResource:
		v, ok := r.Resource[f.Name]
		return v, ok
	case store.ScopeSpan:
		v, ok := r.Attributes[f.Name]
		return v, ok
	}
	if v, ok := r.Attributes[f.Name]; ok {
		return v, true
	}
	v, ok := r.Resource[f.Name]
	return v, ok
}

// LogField returns the string form of f on r, and whether it is present.
func LogField(r *store.LogRow, f store.Field) (string, bool) {
	switch f.Scope {
	case store.ScopeIntrinsic:
		switch f.Name {
		case store.IntrinsicSeverity:
			return r.SeverityText, true
		case store.IntrinsicSeverityNum:
			return strconv.Itoa(int(r.SeverityNumber)), true
		case store.IntrinsicBody:
			return r.Body, true
		case store.IntrinsicLogGroup:
			return r.LogGroup, true
		case store.IntrinsicService:
			return r.Service, true
		case store.IntrinsicTraceID:
			return r.TraceID.String(), true
		case store.IntrinsicSpanID:
			return r.SpanID.String(), true
		}
		return "", false
	case store.ScopeResource:
		v, ok := r.Resource[f.Name]
		return v, ok
	case store.ScopeSpan:
		v, ok := r.Attributes[f.Name]
		return v, ok
	}
	if v, ok := r.Attributes[f.Name]; ok {
		return v, true
	}
	v, ok := r.Resource[f.Name]
	return v, ok
}

// StatusName is the store's name for a status code.
func StatusName(c ptrace.StatusCode) string {
	switch c {
	case ptrace.StatusCodeOk:
		return "ok"
	case ptrace.StatusCodeError:
		return "error"
	}
	return "unset"
}

// KindName is the store's name for a span kind.
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

var (
	reMu    sync.Mutex
	reCache = map[string]*regexp.Regexp{}
)

func compile(s string) *regexp.Regexp {
	reMu.Lock()
	defer reMu.Unlock()
	if re, ok := reCache[s]; ok {
		return re
	}
	re, err := regexp.Compile("^(?:" + s + ")$")
	if err != nil {
		re = nil
	}
	reCache[s] = re
	return re
}

// Compare applies op with v to the string form of a present field.
// A missing field matches nothing (Not handles negation).
func Compare(got string, present bool, op store.Op, v store.Value) bool {
	if !present {
		return false
	}
	switch op {
	case store.OpExists:
		return true
	case store.OpContains:
		return strings.Contains(got, v.Str)
	case store.OpNotContains:
		return !strings.Contains(got, v.Str)
	case store.OpRegex, store.OpNotRegex:
		re := compile(v.Str)
		if re == nil {
			return false
		}
		return re.MatchString(got) == (op == store.OpRegex)
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

// Match evaluates c with get as the field accessor.
func Match(c *store.Cond, get func(store.Field) (string, bool)) bool {
	if c == nil {
		return true
	}
	if c.Leaf() {
		v, ok := get(c.Field)
		return Compare(v, ok, c.Op, c.Value)
	}
	for _, x := range c.And {
		if !Match(x, get) {
			return false
		}
	}
	if c.Or != nil {
		any := false
		for _, x := range c.Or {
			if Match(x, get) {
				any = true
				break
			}
		}
		if !any {
			return false
		}
	}
	if c.Not != nil && Match(c.Not, get) {
		return false
	}
	return true
}

func inRange(t int64, start, end time.Time) bool {
	return t >= start.UnixNano() && t < end.UnixNano()
}

// GetTrace implements store.TraceReader.
func (s *Store) GetTrace(ctx context.Context, id pcommon.TraceID) (ptrace.Traces, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	t, ok := s.traces[id]
	if !ok {
		return ptrace.Traces{}, store.ErrNotFound
	}
	out := ptrace.NewTraces()
	t.CopyTo(out)
	return out, nil
}

// FindSpans implements store.TraceReader.
func (s *Store) FindSpans(ctx context.Context, q store.SpanQuery) iter.Seq2[store.SpanRow, error] {
	return func(yield func(store.SpanRow, error) bool) {
		if err := s.check(q.Filter); err != nil {
			yield(store.SpanRow{}, err)
			return
		}
		s.mu.RLock()
		rows := s.spans
		s.mu.RUnlock()
		n := 0
		for i := range rows {
			if err := ctx.Err(); err != nil {
				yield(store.SpanRow{}, err)
				return
			}
			r := &rows[i]
			if !inRange(r.Start, q.Start, q.End) || !Match(q.Filter, func(f store.Field) (string, bool) { return SpanField(r, f) }) {
				continue
			}
			if !yield(*r, nil) {
				return
			}
			n++
			if q.Limit > 0 && n >= q.Limit {
				return
			}
		}
	}
}

type aggRow struct {
	t, dur, bytes int64
	get           func(store.Field) (string, bool)
}

func aggregate(ctx context.Context, q store.Aggregate, rows iter.Seq[aggRow]) ([]store.GroupSeries, error) {
	nb := 1
	if q.Step > 0 {
		nb = int((q.End.Sub(q.Start) + q.Step - 1) / q.Step)
		if nb < 1 {
			nb = 1
		}
	}
	groups := map[string]*store.GroupSeries{}
	var order []string
	for r := range rows {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if !inRange(r.t, q.Start, q.End) || !Match(q.Filter, r.get) {
			continue
		}
		labels := make([]string, len(q.GroupBy))
		for i, f := range q.GroupBy {
			labels[i], _ = r.get(f)
		}
		key := strings.Join(labels, "\x00")
		g, ok := groups[key]
		if !ok {
			if q.MaxSeries > 0 && len(groups) >= q.MaxSeries {
				return nil, fmt.Errorf("%w: more than %d series", store.ErrLimit, q.MaxSeries)
			}
			g = &store.GroupSeries{Labels: labels}
			if q.Func == store.AggDurationHistogram {
				g.Hist = make([][]uint64, nb)
				for i := range g.Hist {
					g.Hist[i] = make([]uint64, len(store.DurationBuckets)+1)
				}
			} else {
				g.Counts = make([]float64, nb)
			}
			groups[key] = g
			order = append(order, key)
		}
		b := 0
		if q.Step > 0 {
			b = int((r.t - q.Start.UnixNano()) / int64(q.Step))
		}
		switch q.Func {
		case store.AggCount:
			g.Counts[b]++
		case store.AggBytes:
			g.Counts[b] += float64(r.bytes)
		case store.AggDurationHistogram:
			g.Hist[b][HistBucket(r.dur)]++
		}
	}
	sort.Strings(order)
	out := make([]store.GroupSeries, 0, len(order))
	for _, k := range order {
		out = append(out, *groups[k])
	}
	return out, nil
}

// HistBucket is the index of the DurationBuckets bucket holding d.
func HistBucket(d int64) int {
	return sort.Search(len(store.DurationBuckets), func(i int) bool { return d <= store.DurationBuckets[i] })
}

// AggregateSpans implements store.TraceReader.
func (s *Store) AggregateSpans(ctx context.Context, q store.Aggregate) ([]store.GroupSeries, error) {
	if err := s.check(q.Filter); err != nil {
		return nil, err
	}
	s.mu.RLock()
	rows := s.spans
	s.mu.RUnlock()
	return aggregate(ctx, q, func(yield func(aggRow) bool) {
		for i := range rows {
			r := &rows[i]
			if !yield(aggRow{t: r.Start, dur: r.Duration, get: func(f store.Field) (string, bool) { return SpanField(r, f) }}) {
				return
			}
		}
	})
}

func keyCounts(counts map[string]int64, scope store.Scope, limit int) []store.KeyCount {
	out := make([]store.KeyCount, 0, len(counts))
	for k, n := range counts {
		out = append(out, store.KeyCount{Scope: scope, Key: k, Count: n})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Key < out[j].Key
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}

// SpanAttributeKeys implements store.TraceReader.
func (s *Store) SpanAttributeKeys(ctx context.Context, scope store.Scope, start, end time.Time) ([]store.KeyCount, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	counts := map[string]int64{}
	for i := range s.spans {
		r := &s.spans[i]
		if !inRange(r.Start, start, end) {
			continue
		}
		switch scope {
		case store.ScopeResource:
			for k := range r.Resource {
				counts[k]++
			}
		case store.ScopeSpan:
			for k := range r.Attributes {
				counts[k]++
			}
		case store.ScopeIntrinsic:
			for _, k := range []string{store.IntrinsicName, store.IntrinsicStatus, store.IntrinsicStatusMessage, store.IntrinsicKind, store.IntrinsicDuration, store.IntrinsicService} {
				counts[k]++
			}
		default:
			return nil, fmt.Errorf("%w: keys of scope %d", store.ErrUnsupported, scope)
		}
	}
	return keyCounts(counts, scope, 0), nil
}

// SpanAttributeValues implements store.TraceReader.
func (s *Store) SpanAttributeValues(ctx context.Context, f store.Field, filter *store.Cond, start, end time.Time, limit int) ([]store.KeyCount, error) {
	if err := s.check(filter); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	counts := map[string]int64{}
	for i := range s.spans {
		r := &s.spans[i]
		get := func(f store.Field) (string, bool) { return SpanField(r, f) }
		if !inRange(r.Start, start, end) || !Match(filter, get) {
			continue
		}
		if v, ok := get(f); ok {
			counts[v]++
		}
	}
	return keyCounts(counts, f.Scope, limit), nil
}

// FindLogs implements store.LogReader.
func (s *Store) FindLogs(ctx context.Context, q store.LogQuery) iter.Seq2[store.LogRow, error] {
	return func(yield func(store.LogRow, error) bool) {
		if err := s.check(q.Filter); err != nil {
			yield(store.LogRow{}, err)
			return
		}
		s.mu.RLock()
		var rows []store.LogRow
		for i := range s.logs {
			r := &s.logs[i]
			if inRange(r.Time, q.Start, q.End) && Match(q.Filter, func(f store.Field) (string, bool) { return LogField(r, f) }) {
				rows = append(rows, *r)
			}
		}
		s.mu.RUnlock()
		sort.SliceStable(rows, func(i, j int) bool {
			if q.Backward {
				return rows[i].Time > rows[j].Time
			}
			return rows[i].Time < rows[j].Time
		})
		for i, r := range rows {
			if err := ctx.Err(); err != nil {
				yield(store.LogRow{}, err)
				return
			}
			if q.Limit > 0 && i >= q.Limit {
				return
			}
			if !yield(r, nil) {
				return
			}
		}
	}
}

// AggregateLogs implements store.LogReader.
func (s *Store) AggregateLogs(ctx context.Context, q store.Aggregate) ([]store.GroupSeries, error) {
	if err := s.check(q.Filter); err != nil {
		return nil, err
	}
	if q.Func == store.AggDurationHistogram {
		return nil, fmt.Errorf("%w: duration histogram of logs", store.ErrUnsupported)
	}
	s.mu.RLock()
	rows := s.logs
	s.mu.RUnlock()
	return aggregate(ctx, q, func(yield func(aggRow) bool) {
		for i := range rows {
			r := &rows[i]
			if !yield(aggRow{t: r.Time, bytes: int64(len(r.Body)), get: func(f store.Field) (string, bool) { return LogField(r, f) }}) {
				return
			}
		}
	})
}

// LogAttributeKeys implements store.LogReader.
func (s *Store) LogAttributeKeys(ctx context.Context, scope store.Scope, start, end time.Time) ([]store.KeyCount, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	counts := map[string]int64{}
	for i := range s.logs {
		r := &s.logs[i]
		if !inRange(r.Time, start, end) {
			continue
		}
		switch scope {
		case store.ScopeResource:
			for k := range r.Resource {
				counts[k]++
			}
		case store.ScopeSpan:
			for k := range r.Attributes {
				counts[k]++
			}
		default:
			return nil, fmt.Errorf("%w: keys of scope %d", store.ErrUnsupported, scope)
		}
	}
	return keyCounts(counts, scope, 0), nil
}

// LogAttributeValues implements store.LogReader.
func (s *Store) LogAttributeValues(ctx context.Context, f store.Field, filter *store.Cond, start, end time.Time, limit int) ([]store.KeyCount, error) {
	if err := s.check(filter); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	counts := map[string]int64{}
	for i := range s.logs {
		r := &s.logs[i]
		get := func(f store.Field) (string, bool) { return LogField(r, f) }
		if !inRange(r.Time, start, end) || !Match(filter, get) {
			continue
		}
		if v, ok := get(f); ok {
			counts[v]++
		}
	}
	return keyCounts(counts, f.Scope, limit), nil
}
