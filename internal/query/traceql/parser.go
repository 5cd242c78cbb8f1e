package traceql

import (
	"strconv"
	"strings"

	"github.com/trenchcoat/trenchcoat/internal/store"
)

// maxDepth bounds nesting so that hostile input cannot exhaust the stack.
const maxDepth = 200

type parser struct {
	src   string
	toks  []token
	pos   int
	depth int
}

// Parse parses a TraceQL query. Errors are *ParseError.
func Parse(src string) (*Query, error) {
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	p := &parser{src: src, toks: toks}
	q, err := p.query()
	if err != nil {
		return nil, err
	}
	return q, nil
}

func (p *parser) peek() token { return p.toks[p.pos] }
func (p *parser) next() token {
	t := p.toks[p.pos]
	if t.kind != tEOF {
		p.pos++
	}
	return t
}

func (p *parser) isPunct(s string) bool {
	t := p.peek()
	return t.kind == tPunct && t.text == s
}

func (p *parser) errf(t token, format string, args ...any) error {
	return errorAt(p.src, t.off, format, args...)
}

func (p *parser) expect(s string) error {
	if !p.isPunct(s) {
		return p.errf(p.peek(), "expected %q", s)
	}
	p.next()
	return nil
}

func (p *parser) enter() error {
	p.depth++
	if p.depth > maxDepth {
		return p.errf(p.peek(), "expression nested too deeply")
	}
	return nil
}

func (p *parser) query() (*Query, error) {
	ss, err := p.spansetOr()
	if err != nil {
		return nil, err
	}
	q := &Query{Spansets: ss}
	if p.isPunct("|") {
		p.next()
		m, err := p.metrics()
		if err != nil {
			return nil, err
		}
		q.Metrics = m
	}
	if t := p.peek(); t.kind != tEOF {
		if q.Metrics == nil {
			return nil, p.errf(t, "expected \"&&\", \"||\", \">\", \">>\", \"|\" or end of query")
		}
		return nil, p.errf(t, "expected end of query")
	}
	return q, nil
}

// Spanset operators bind, loosest first: ||, &&, then the structural > and >>.
func (p *parser) spansetOr() (SpansetExpr, error) {
	l, err := p.spansetAnd()
	if err != nil {
		return nil, err
	}
	for p.isPunct("||") {
		p.next()
		r, err := p.spansetAnd()
		if err != nil {
			return nil, err
		}
		l = &SpansetOp{Op: SpansetOr, L: l, R: r}
	}
	return l, nil
}

func (p *parser) spansetAnd() (SpansetExpr, error) {
	l, err := p.spansetStructural()
	if err != nil {
		return nil, err
	}
	for p.isPunct("&&") {
		p.next()
		r, err := p.spansetStructural()
		if err != nil {
			return nil, err
		}
		l = &SpansetOp{Op: SpansetAnd, L: l, R: r}
	}
	return l, nil
}

func (p *parser) spansetStructural() (SpansetExpr, error) {
	l, err := p.spansetPrimary()
	if err != nil {
		return nil, err
	}
	for p.isPunct(">") || p.isPunct(">>") {
		op := SpansetChild
		if p.next().text == ">>" {
			op = SpansetDescendant
		}
		r, err := p.spansetPrimary()
		if err != nil {
			return nil, err
		}
		l = &SpansetOp{Op: op, L: l, R: r}
	}
	return l, nil
}

func (p *parser) spansetPrimary() (SpansetExpr, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	switch {
	case p.isPunct("("):
		p.next()
		e, err := p.spansetOr()
		if err != nil {
			return nil, err
		}
		if err := p.expect(")"); err != nil {
			return nil, err
		}
		return e, nil
	case p.isPunct("{"):
		p.next()
		if p.isPunct("}") {
			p.next()
			return &SpansetFilter{}, nil
		}
		e, err := p.fieldOr()
		if err != nil {
			return nil, err
		}
		if err := p.expect("}"); err != nil {
			return nil, err
		}
		return &SpansetFilter{Expr: e}, nil
	}
	return nil, p.errf(p.peek(), "expected \"{\" or \"(\"")
}

func (p *parser) fieldOr() (FieldExpr, error) {
	l, err := p.fieldAnd()
	if err != nil {
		return nil, err
	}
	for p.isPunct("||") {
		p.next()
		r, err := p.fieldAnd()
		if err != nil {
			return nil, err
		}
		l = &BoolOp{L: l, R: r}
	}
	return l, nil
}

func (p *parser) fieldAnd() (FieldExpr, error) {
	l, err := p.fieldUnary()
	if err != nil {
		return nil, err
	}
	for p.isPunct("&&") {
		p.next()
		r, err := p.fieldUnary()
		if err != nil {
			return nil, err
		}
		l = &BoolOp{And: true, L: l, R: r}
	}
	return l, nil
}

func (p *parser) fieldUnary() (FieldExpr, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	switch {
	case p.isPunct("!"):
		p.next()
		x, err := p.fieldUnary()
		if err != nil {
			return nil, err
		}
		return &NotExpr{X: x}, nil
	case p.isPunct("("):
		p.next()
		e, err := p.fieldOr()
		if err != nil {
			return nil, err
		}
		if err := p.expect(")"); err != nil {
			return nil, err
		}
		return e, nil
	}
	return p.comparison()
}

var compOps = map[string]store.Op{
	"=": store.OpEq, "!=": store.OpNeq, ">": store.OpGt, ">=": store.OpGe,
	"<": store.OpLt, "<=": store.OpLe, "=~": store.OpRegex, "!~": store.OpNotRegex,
}

func (p *parser) attribute() (Attribute, error) {
	t := p.peek()
	if t.kind != tIdent {
		return Attribute{}, p.errf(t, "expected an attribute or intrinsic")
	}
	p.next()
	s := t.text
	var a Attribute
	switch {
	case strings.HasPrefix(s, "resource."):
		a = Attribute{Scope: AttrResource, Name: s[len("resource."):]}
	case strings.HasPrefix(s, "span."):
		a = Attribute{Scope: AttrSpan, Name: s[len("span."):]}
	case strings.HasPrefix(s, "."):
		a = Attribute{Scope: AttrAny, Name: s[1:]}
	default:
		if _, ok := intrinsics[s]; !ok {
			return Attribute{}, p.errf(t, "unknown intrinsic %q: want name, status, statusMessage, kind, duration, rootName, rootServiceName, traceDuration, or an attribute (resource.x, span.x, .x)", s)
		}
		return Attribute{Scope: AttrIntrinsic, Name: s}, nil
	}
	if a.Name == "" || strings.HasSuffix(a.Name, ".") {
		return Attribute{}, p.errf(t, "attribute name missing after %q", s)
	}
	return a, nil
}

var (
	statusNames = map[string]bool{"ok": true, "error": true, "unset": true}
	kindNames   = map[string]bool{"unspecified": true, "internal": true, "server": true, "client": true, "producer": true, "consumer": true}
)

func (p *parser) comparison() (FieldExpr, error) {
	a, err := p.attribute()
	if err != nil {
		return nil, err
	}
	opTok := p.peek()
	op, ok := compOps[opTok.text]
	if opTok.kind != tPunct || !ok {
		return nil, p.errf(opTok, "expected a comparison operator (= != > >= < <= =~ !~)")
	}
	p.next()
	valTok := p.peek()
	c := &Comparison{Attr: a, Op: op}
	if valTok.kind == tIdent && valTok.text == "nil" {
		p.next()
		if op != store.OpEq && op != store.OpNeq {
			return nil, p.errf(opTok, "nil compares only with = or !=")
		}
		c.Nil = true
		return c, nil
	}
	v, err := p.literal()
	if err != nil {
		return nil, err
	}
	if (op == store.OpRegex || op == store.OpNotRegex) && v.Kind != store.KindString {
		return nil, p.errf(valTok, "expected a string after %s", opTok.text)
	}
	if a.Scope == AttrIntrinsic {
		want := intrinsics[a.Name]
		switch {
		case want == v.Kind:
		case want == store.KindString && (op == store.OpRegex || op == store.OpNotRegex):
		case want == store.KindStatus && v.Kind == store.KindString && statusNames[v.Str],
			want == store.KindSpanKind && v.Kind == store.KindString && kindNames[v.Str]:
			v.Kind = want
		case want == store.KindDuration && v.Kind == store.KindInt && v.Int == 0:
			v.Kind = store.KindDuration
		default:
			return nil, p.errf(valTok, "expected %s to compare with %s", kindWords[want], a.Name)
		}
		if (want == store.KindStatus || want == store.KindSpanKind) && op != store.OpEq && op != store.OpNeq {
			return nil, p.errf(opTok, "%s compares only with = or !=", a.Name)
		}
	} else if v.Kind == store.KindStatus || v.Kind == store.KindSpanKind {
		return nil, p.errf(valTok, "expected a string, number, boolean or duration")
	}
	c.Value = v
	return c, nil
}

var kindWords = map[store.ValueKind]string{
	store.KindString: "a string", store.KindDuration: "a duration (e.g. 250ms)",
	store.KindStatus: "a status (ok, error, unset)", store.KindSpanKind: "a span kind (server, client, producer, consumer, internal, unspecified)",
}

func (p *parser) literal() (store.Value, error) {
	t := p.next()
	switch t.kind {
	case tString:
		return store.Value{Kind: store.KindString, Str: t.text}, nil
	case tIdent:
		switch {
		case t.text == "true" || t.text == "false":
			return store.Value{Kind: store.KindBool, Bool: t.text == "true"}, nil
		case statusNames[t.text]:
			return store.Value{Kind: store.KindStatus, Str: t.text}, nil
		case kindNames[t.text]:
			return store.Value{Kind: store.KindSpanKind, Str: t.text}, nil
		}
	case tNumber:
		return p.number(t, false)
	case tPunct:
		if t.text == "-" && p.peek().kind == tNumber && p.peek().off == t.off+1 {
			return p.number(p.next(), true)
		}
	}
	return store.Value{}, p.errf(t, "expected a value (string, number, duration, boolean, status or kind)")
}

func (p *parser) number(t token, neg bool) (store.Value, error) {
	i, f, d, kind, ok := parseNumber(t.text)
	if !ok {
		return store.Value{}, p.errf(t, "invalid number or duration %q", t.text)
	}
	sign := int64(1)
	if neg {
		sign = -1
	}
	switch kind {
	case 'i':
		return store.Value{Kind: store.KindInt, Int: sign * i}, nil
	case 'f':
		return store.Value{Kind: store.KindFloat, Float: float64(sign) * f}, nil
	}
	return store.Value{Kind: store.KindDuration, Int: sign * int64(d)}, nil
}

var metricsFuncs = map[string]MetricsFuncKind{
	"rate": FuncRate, "count_over_time": FuncCountOverTime,
	"quantile_over_time": FuncQuantileOverTime, "histogram_over_time": FuncHistogramOverTime,
}

func (p *parser) metrics() (*MetricsFunc, error) {
	t := p.next()
	fn, ok := metricsFuncs[t.text]
	if t.kind != tIdent || !ok {
		return nil, p.errf(t, "expected a metrics function (rate, count_over_time, quantile_over_time, histogram_over_time)")
	}
	m := &MetricsFunc{Func: fn}
	if err := p.expect("("); err != nil {
		return nil, err
	}
	switch fn {
	case FuncQuantileOverTime, FuncHistogramOverTime:
		at := p.peek()
		a, err := p.attribute()
		if err != nil {
			return nil, err
		}
		if a.Scope != AttrIntrinsic || (a.Name != store.IntrinsicDuration) {
			return nil, p.errf(at, "expected duration: %s measures span duration only", fn)
		}
		m.Attr = a
		for fn == FuncQuantileOverTime && p.isPunct(",") {
			p.next()
			qt := p.next()
			var q float64
			var err error
			if qt.kind == tNumber {
				q, err = strconv.ParseFloat(qt.text, 64)
			}
			if qt.kind != tNumber || err != nil || q < 0 || q > 1 {
				return nil, p.errf(qt, "expected a quantile between 0 and 1")
			}
			m.Quantiles = append(m.Quantiles, q)
		}
		if fn == FuncQuantileOverTime && len(m.Quantiles) == 0 {
			return nil, p.errf(p.peek(), "expected \",\" and at least one quantile")
		}
	}
	if err := p.expect(")"); err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind == tIdent && t.text == "by" {
		p.next()
		if err := p.expect("("); err != nil {
			return nil, err
		}
		for {
			a, err := p.attribute()
			if err != nil {
				return nil, err
			}
			m.By = append(m.By, a)
			if !p.isPunct(",") {
				break
			}
			p.next()
		}
		if err := p.expect(")"); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// ParseAttribute parses an attribute reference as written in a query
// (resource.x, span.x, .x, or an intrinsic name).
func ParseAttribute(src string) (Attribute, error) {
	toks, err := lex(src)
	if err != nil {
		return Attribute{}, err
	}
	p := &parser{src: src, toks: toks}
	a, err := p.attribute()
	if err != nil {
		return Attribute{}, err
	}
	if t := p.peek(); t.kind != tEOF {
		return Attribute{}, p.errf(t, "expected end of attribute")
	}
	return a, nil
}
