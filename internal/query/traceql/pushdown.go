package traceql

import (
	"errors"

	"github.com/trenchcoat/trenchcoat/internal/store"
)

// tri is the shape of a pushed-down filter: a Cond, or one of the constants.
type tri uint8

const (
	triCond tri = iota
	triAll      // matches every span (nil Cond)
	triNone     // matches no span
)

// pushable decides which leaves a store is asked to evaluate. The evaluator
// narrows it when a store answers ErrUnsupported.
type pushable func(*store.Cond) bool

func pushAll(*store.Cond) bool { return true }

// pushPlain refuses regexps and substring matches, the ops a backend is
// likeliest to lack.
func pushPlain(c *store.Cond) bool {
	switch c.Op {
	case store.OpRegex, store.OpNotRegex, store.OpContains, store.OpNotContains:
		return false
	}
	return true
}

func pushNone(*store.Cond) bool { return false }

// leafCond is the store filter equivalent to c, or nil when c is about the
// whole trace and no span column can answer it.
func leafCond(c *Comparison) *store.Cond {
	if c.Attr.TraceLevel() {
		return nil
	}
	f := c.Attr.Field()
	if c.Nil {
		exists := &store.Cond{Field: f, Op: store.OpExists}
		if c.Op == store.OpEq {
			return &store.Cond{Not: exists}
		}
		return exists
	}
	return &store.Cond{Field: f, Op: c.Op, Value: c.Value}
}

// pushdown translates e into a store filter. With over set the filter
// matches a superset of the spans e matches (what a store may scan with, then
// the rest is checked here); otherwise a subset (needed under a negation).
// exact reports whether the filter is e itself.
func pushdown(e FieldExpr, over bool, ok pushable) (c *store.Cond, t tri, exact bool) {
	if e == nil {
		return nil, triAll, true
	}
	switch e := e.(type) {
	case *Comparison:
		leaf := leafCond(e)
		if leaf == nil || !ok(leafOf(leaf)) {
			if over {
				return nil, triAll, false
			}
			return nil, triNone, false
		}
		return leaf, triCond, true
	case *NotExpr:
		x, xt, exact := pushdown(e.X, !over, ok)
		switch xt {
		case triAll:
			return nil, triNone, exact
		case triNone:
			return nil, triAll, exact
		}
		return &store.Cond{Not: x}, triCond, exact
	case *BoolOp:
		l, lt, le := pushdown(e.L, over, ok)
		r, rt, re := pushdown(e.R, over, ok)
		exact = le && re
		if e.And {
			switch {
			case lt == triNone || rt == triNone:
				return nil, triNone, exact
			case lt == triAll:
				return r, rt, exact
			case rt == triAll:
				return l, lt, exact
			}
			return &store.Cond{And: flatten(l, r, true)}, triCond, exact
		}
		switch {
		case lt == triAll || rt == triAll:
			return nil, triAll, exact
		case lt == triNone:
			return r, rt, exact
		case rt == triNone:
			return l, lt, exact
		}
		return &store.Cond{Or: flatten(l, r, false)}, triCond, exact
	}
	panic("BUG: unknown field expression")
}

// leafOf unwraps the Not that `= nil` produces, so pushable sees the leaf.
func leafOf(c *store.Cond) *store.Cond {
	if c.Not != nil {
		return c.Not
	}
	return c
}

// flatten merges nested Ands (or Ors) into one list.
func flatten(l, r *store.Cond, and bool) []*store.Cond {
	var out []*store.Cond
	for _, c := range []*store.Cond{l, r} {
		switch {
		case and && c.And != nil && c.Or == nil && c.Not == nil:
			out = append(out, c.And...)
		case !and && c.Or != nil && c.And == nil && c.Not == nil:
			out = append(out, c.Or...)
		default:
			out = append(out, c)
		}
	}
	return out
}

// FilterCond returns the store filter for a query that is one spanset
// filter (`{ ... }`), for the attribute-values API. none reports a filter
// that matches nothing; exact is false when parts of it (trace-level
// intrinsics) could not be expressed, and c then matches a superset.
func FilterCond(q *Query) (c *store.Cond, none, exact bool, err error) {
	f, ok := q.Spansets.(*SpansetFilter)
	if !ok || q.Metrics != nil {
		return nil, false, false, errors.New("expected a single spanset filter { ... }")
	}
	c, t, exact := pushdown(f.Expr, true, pushAll)
	return c, t == triNone, exact, nil
}
