package logql

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/trenchcoat/trenchcoat/internal/store"
)

// Limits bound the work of one query. Zero means no limit.
type Limits struct {
	MaxSeries int // series (or streams) in a result
	MaxRows   int // log rows read from the store
}

// MaxPoints bounds the points of a series, as Prometheus does.
const MaxPoints = 11000

// maxBuckets bounds the store-side buckets of a metric query (range and
// step with a small common divisor need many); above it rows are bucketed
// here instead.
const maxBuckets = 200000

type rowBudget struct{ max, n int }

func (b *rowBudget) take() error {
	b.n++
	if b.max > 0 && b.n > b.max {
		return fmt.Errorf("%w: the query read more than %d log lines; narrow the time range or the selector", store.ErrLimit, b.max)
	}
	return nil
}

func seriesLimit(max int) error {
	return fmt.Errorf("%w: more than %d series; aggregate with sum by (...) or narrow the selector", store.ErrLimit, max)
}

// resolver maps label names to store fields. Label names lose the dots of
// attribute keys, so the keys seen in the range tell which key a label
// means; an unseen label is read as its name with "_" turned into ".".
type resolver struct {
	keys map[string][]string // label -> resource keys
	all  []string            // every resource key, sorted
}

func newResolver(ctx context.Context, r store.LogReader, start, end time.Time) (*resolver, error) {
	rv := &resolver{keys: map[string][]string{}}
	kcs, err := r.LogAttributeKeys(ctx, store.ScopeResource, start, end)
	if err != nil && !errors.Is(err, store.ErrUnsupported) {
		return nil, err
	}
	for _, kc := range kcs {
		if kc.Key == logGroupAttr {
			continue
		}
		l := SanitizeLabel(kc.Key)
		rv.keys[l] = append(rv.keys[l], kc.Key)
		rv.all = append(rv.all, kc.Key)
	}
	sort.Strings(rv.all)
	for _, ks := range rv.keys {
		sort.Strings(ks)
	}
	return rv, nil
}

func (rv *resolver) fields(label string) []store.Field {
	switch label {
	case LabelLogGroup:
		return []store.Field{{Scope: store.ScopeIntrinsic, Name: store.IntrinsicLogGroup}}
	case LabelLevel:
		return []store.Field{{Scope: store.ScopeIntrinsic, Name: store.IntrinsicSeverity}}
	}
	ks := rv.keys[label]
	if len(ks) == 0 {
		ks = []string{strings.ReplaceAll(label, "_", ".")}
	}
	out := make([]store.Field, len(ks))
	for i, k := range ks {
		out[i] = store.Field{Scope: store.ScopeResource, Name: k}
	}
	return out
}

// streamFields are the fields whose values identify a stream, and the
// label each one becomes.
func (rv *resolver) streamFields() ([]store.Field, []string) {
	fs := []store.Field{
		{Scope: store.ScopeIntrinsic, Name: store.IntrinsicLogGroup},
		{Scope: store.ScopeIntrinsic, Name: store.IntrinsicSeverity},
	}
	ls := []string{LabelLogGroup, LabelLevel}
	for _, k := range rv.all {
		fs = append(fs, store.Field{Scope: store.ScopeResource, Name: k})
		ls = append(ls, SanitizeLabel(k))
	}
	return fs, ls
}

type pushable func(*store.Cond) bool

func pushAll(*store.Cond) bool { return true }

func pushPlain(c *store.Cond) bool {
	switch c.Op {
	case store.OpRegex, store.OpNotRegex, store.OpContains, store.OpNotContains:
		return false
	}
	return true
}

func pushNone(*store.Cond) bool { return false }

func allLeaves(c *store.Cond, ok pushable) bool {
	if c == nil {
		return true
	}
	if c.Leaf() {
		return ok(c)
	}
	for _, x := range c.And {
		if !allLeaves(x, ok) {
			return false
		}
	}
	for _, x := range c.Or {
		if !allLeaves(x, ok) {
			return false
		}
	}
	return allLeaves(c.Not, ok)
}

func (m Matcher) emptyMatches() bool {
	switch m.Op {
	case MatchEq, MatchNeq:
		return m.Value == ""
	}
	re := anchored(m.Value)
	return re != nil && re.MatchString("")
}

// matcherCond is the store filter of a matcher. A missing label reads as
// "", as in Loki: {a!="x"} keeps streams without a, {a=""} wants it absent.
func (rv *resolver) matcherCond(m Matcher) *store.Cond {
	op, neg := store.OpEq, false
	switch m.Op {
	case MatchNeq:
		neg = true
	case MatchRegex:
		op = store.OpRegex
	case MatchNotRegex:
		op, neg = store.OpRegex, true
	}
	pos := Matcher{Name: m.Name, Op: MatchEq, Value: m.Value}
	if op == store.OpRegex {
		pos.Op = MatchRegex
	}
	var or []*store.Cond
	for _, f := range rv.fields(m.Name) {
		leaf := &store.Cond{Field: f, Op: op, Value: store.Value{Kind: store.KindString, Str: m.Value}}
		if pos.emptyMatches() {
			or = append(or, leaf, &store.Cond{Not: &store.Cond{Field: f, Op: store.OpExists}})
		} else {
			or = append(or, leaf)
		}
	}
	var c *store.Cond
	if len(or) == 1 {
		c = or[0]
	} else {
		c = &store.Cond{Or: or}
	}
	if neg {
		return &store.Cond{Not: c}
	}
	return c
}

func lineCond(f *LineFilter) *store.Cond {
	body := store.Field{Scope: store.ScopeIntrinsic, Name: store.IntrinsicBody}
	v := store.Value{Kind: store.KindString, Str: f.Value}
	switch f.Op {
	case LineContains:
		return &store.Cond{Field: body, Op: store.OpContains, Value: v}
	case LineNotContains:
		return &store.Cond{Field: body, Op: store.OpNotContains, Value: v}
	}
	// Store regexps are anchored; line filters search anywhere in the line.
	v.Str = "(?s).*(?:" + f.Value + ").*"
	op := store.OpRegex
	if f.Op == LineNotRegex {
		op = store.OpNotRegex
	}
	return &store.Cond{Field: body, Op: op, Value: v}
}

// filter is the store filter for e's selector and line filters, keeping
// the conjuncts whose leaves ok accepts. exact reports that none was left
// out, so the store's answer needs no checking here.
func (rv *resolver) filter(e *LogExpr, ok pushable) (c *store.Cond, exact bool) {
	var and []*store.Cond
	exact = true
	add := func(x *store.Cond) {
		if allLeaves(x, ok) {
			and = append(and, x)
		} else {
			exact = false
		}
	}
	for _, m := range e.Selector {
		add(rv.matcherCond(m))
	}
	for _, st := range e.Stages {
		if lf, isLine := st.(*LineFilter); isLine {
			add(lineCond(lf))
		}
	}
	switch len(and) {
	case 0:
		return nil, exact
	case 1:
		return and[0], exact
	}
	return &store.Cond{And: and}, exact
}

// findLogs streams the rows e keeps, with their labels, falling back to
// coarser store filters when the store answers ErrUnsupported.
func (rv *resolver) findLogs(ctx context.Context, r store.LogReader, e *LogExpr, q store.LogQuery, budget *rowBudget, fn func(row *store.LogRow, ls map[string]string) (bool, error)) error {
	var err error
	for _, ok := range []pushable{pushAll, pushPlain, pushNone} {
		c, exact := rv.filter(e, ok)
		q := q
		q.Filter = c
		if !exact || e.codeStages() {
			q.Limit = 0 // the limit applies after filtering here
		}
		yielded := false
		err = nil
		for row, ferr := range r.FindLogs(ctx, q) {
			if ferr != nil {
				err = ferr
				break
			}
			yielded = true
			if err := budget.take(); err != nil {
				return err
			}
			ls, keep := e.process(&row, exact)
			if !keep {
				continue
			}
			more, err := fn(&row, ls)
			if err != nil || !more {
				return err
			}
		}
		if err == nil || !errors.Is(err, store.ErrUnsupported) || yielded {
			return err
		}
	}
	return err
}

// LogRequest is a log query's range, size and order.
type LogRequest struct {
	Start, End time.Time
	Limit      int // lines; 0 means 100
	Backward   bool
}

// Entry is one log line.
type Entry struct {
	T    int64 // unix nanoseconds
	Line string
}

// Stream is the lines of one label set.
type Stream struct {
	Labels  map[string]string
	Entries []Entry
}

// QueryLogs runs a log query: the first Limit lines in the request's order,
// grouped into streams.
func QueryLogs(ctx context.Context, r store.LogReader, e *LogExpr, req LogRequest, lim Limits) ([]Stream, error) {
	if req.Limit <= 0 {
		req.Limit = 100
	}
	rv, err := newResolver(ctx, r, req.Start, req.End)
	if err != nil {
		return nil, err
	}
	budget := rowBudget{max: lim.MaxRows}
	streams := map[string]*Stream{}
	n := 0
	err = rv.findLogs(ctx, r, e, store.LogQuery{Start: req.Start, End: req.End, Limit: req.Limit, Backward: req.Backward}, &budget,
		func(row *store.LogRow, ls map[string]string) (bool, error) {
			k := labelsKey(ls)
			s, ok := streams[k]
			if !ok {
				if lim.MaxSeries > 0 && len(streams) >= lim.MaxSeries {
					return false, seriesLimit(lim.MaxSeries)
				}
				s = &Stream{Labels: ls}
				streams[k] = s
			}
			s.Entries = append(s.Entries, Entry{T: row.Time, Line: row.Body})
			n++
			return n < req.Limit, nil
		})
	if err != nil {
		return nil, err
	}
	out := make([]Stream, 0, len(streams))
	for _, k := range sortedKeys(streams) {
		s := streams[k]
		sort.SliceStable(s.Entries, func(i, j int) bool {
			if req.Backward {
				return s.Entries[i].T > s.Entries[j].T
			}
			return s.Entries[i].T < s.Entries[j].T
		})
		out = append(out, *s)
	}
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func labelsKey(ls map[string]string) string {
	names := make([]string, 0, len(ls))
	for k := range ls {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, k := range names {
		b.WriteString(k)
		b.WriteByte(0)
		b.WriteString(ls[k])
		b.WriteByte(0)
	}
	return b.String()
}
