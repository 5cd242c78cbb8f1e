package logql

import (
	"regexp"
	"strconv"
	"strings"
	"time"
)

const maxDepth = 200

type parser struct {
	src   string
	toks  []token
	pos   int
	depth int
}

// Parse parses a LogQL query. Errors are *ParseError.
func Parse(src string) (*Query, error) {
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	p := &parser{src: src, toks: toks}
	var q Query
	if p.isPunct("{") {
		q.Log, err = p.logExpr()
	} else {
		q.Metric, err = p.metricExpr()
	}
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, p.errf(t, "expected end of query")
	}
	return &q, nil
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

func (p *parser) isIdent(s string) bool {
	t := p.peek()
	return t.kind == tIdent && t.text == s
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

var (
	rangeFuncs  = map[string]RangeFunc{"count_over_time": FuncCountOverTime, "rate": FuncRate, "bytes_over_time": FuncBytesOverTime, "bytes_rate": FuncBytesRate}
	vectorOps   = map[string]VectorOp{"sum": AggSum, "count": AggCount, "max": AggMax, "min": AggMin, "avg": AggAvg}
	matchOps    = map[string]MatchOp{"=": MatchEq, "!=": MatchNeq, "=~": MatchRegex, "!~": MatchNotRegex}
	lineOps     = map[string]LineFilterOp{"|=": LineContains, "!=": LineNotContains, "|~": LineRegex, "!~": LineNotRegex}
	labelCmpOps = map[string]LabelCmpOp{"=": CmpEq, "!=": CmpNeq, "=~": CmpRegex, "!~": CmpNotRegex, ">": CmpGt, ">=": CmpGe, "<": CmpLt, "<=": CmpLe, "==": CmpEqEq}
)

func (p *parser) metricExpr() (*MetricExpr, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	t := p.peek()
	if p.isPunct("(") {
		p.next()
		m, err := p.metricExpr()
		if err != nil {
			return nil, err
		}
		return m, p.expect(")")
	}
	if t.kind == tIdent {
		if fn, ok := rangeFuncs[t.text]; ok {
			p.next()
			return p.rangeAgg(fn)
		}
		if op, ok := vectorOps[t.text]; ok {
			p.next()
			m := &MetricExpr{Op: op}
			var err error
			if p.isIdent("by") {
				if m.By, err = p.by(); err != nil {
					return nil, err
				}
			}
			if err := p.expect("("); err != nil {
				return nil, err
			}
			if m.Inner, err = p.metricExpr(); err != nil {
				return nil, err
			}
			if err := p.expect(")"); err != nil {
				return nil, err
			}
			if p.isIdent("by") {
				if m.By != nil {
					return nil, p.errf(p.peek(), "by given twice")
				}
				if m.By, err = p.by(); err != nil {
					return nil, err
				}
			}
			return m, nil
		}
	}
	return nil, p.errf(t, "expected a log selector \"{\" or a metric function (count_over_time, rate, bytes_over_time, bytes_rate, sum, count, max, min, avg)")
}

func (p *parser) by() ([]string, error) {
	p.next() // by
	if err := p.expect("("); err != nil {
		return nil, err
	}
	by := []string{}
	for !p.isPunct(")") {
		t := p.next()
		if t.kind != tIdent {
			return nil, p.errf(t, "expected a label name")
		}
		by = append(by, t.text)
		if !p.isPunct(",") {
			break
		}
		p.next()
	}
	return by, p.expect(")")
}

func (p *parser) rangeAgg(fn RangeFunc) (*MetricExpr, error) {
	if err := p.expect("("); err != nil {
		return nil, err
	}
	if !p.isPunct("{") {
		return nil, p.errf(p.peek(), "expected \"{\"")
	}
	log, err := p.logExpr()
	if err != nil {
		return nil, err
	}
	if err := p.expect("["); err != nil {
		return nil, err
	}
	t := p.next()
	d, ok := parseDuration(t.text)
	if t.kind != tNumber || !ok || d <= 0 {
		return nil, p.errf(t, "expected a range duration such as 5m")
	}
	if err := p.expect("]"); err != nil {
		return nil, err
	}
	if err := p.expect(")"); err != nil {
		return nil, err
	}
	return &MetricExpr{Func: fn, Log: log, Range: d}, nil
}

// parseDuration accepts Go durations and Prometheus' d, w and y units.
func parseDuration(s string) (time.Duration, bool) {
	if d, err := time.ParseDuration(s); err == nil {
		return d, true
	}
	units := map[byte]time.Duration{'d': 24 * time.Hour, 'w': 7 * 24 * time.Hour, 'y': 365 * 24 * time.Hour}
	if len(s) < 2 {
		return 0, false
	}
	u, ok := units[s[len(s)-1]]
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(s[:len(s)-1])
	if err != nil || n <= 0 || n > 10000 {
		return 0, false
	}
	return time.Duration(n) * u, true
}

func (p *parser) checkRegexp(t token, re string) error {
	if _, err := regexp.Compile(re); err != nil {
		return p.errf(t, "invalid regexp: %v", err)
	}
	return nil
}

func (p *parser) logExpr() (*LogExpr, error) {
	if err := p.expect("{"); err != nil {
		return nil, err
	}
	e := &LogExpr{}
	for {
		nt := p.next()
		if nt.kind != tIdent {
			return nil, p.errf(nt, "expected a label name")
		}
		ot := p.next()
		op, ok := matchOps[ot.text]
		if ot.kind != tPunct || !ok {
			return nil, p.errf(ot, "expected a matcher operator (= != =~ !~)")
		}
		vt := p.next()
		if vt.kind != tString {
			return nil, p.errf(vt, "expected a string")
		}
		if op == MatchRegex || op == MatchNotRegex {
			if err := p.checkRegexp(vt, vt.text); err != nil {
				return nil, err
			}
		}
		e.Selector = append(e.Selector, Matcher{Name: nt.text, Op: op, Value: vt.text})
		if !p.isPunct(",") {
			break
		}
		p.next()
	}
	if err := p.expect("}"); err != nil {
		return nil, err
	}
	for {
		t := p.peek()
		if op, ok := lineOps[t.text]; ok && t.kind == tPunct {
			p.next()
			vt := p.next()
			if vt.kind != tString {
				return nil, p.errf(vt, "expected a string")
			}
			if op == LineRegex || op == LineNotRegex {
				if err := p.checkRegexp(vt, vt.text); err != nil {
					return nil, err
				}
			}
			e.Stages = append(e.Stages, &LineFilter{Op: op, Value: vt.text})
			continue
		}
		if !p.isPunct("|") {
			return e, nil
		}
		p.next()
		t = p.peek()
		if t.kind == tIdent && (t.text == "json" || t.text == "logfmt") {
			nx := p.toks[p.pos+1]
			if _, isCmp := labelCmpOps[nx.text]; !isCmp || nx.kind != tPunct {
				p.next()
				e.Stages = append(e.Stages, &ParserStage{Format: t.text})
				continue
			}
		}
		if t.kind != tIdent && !p.isPunct("(") {
			return nil, p.errf(t, "expected json, logfmt or a label filter")
		}
		x, err := p.labelOr()
		if err != nil {
			return nil, err
		}
		e.Stages = append(e.Stages, &LabelFilter{Expr: x})
	}
}

func (p *parser) labelOr() (LabelExpr, error) {
	l, err := p.labelAnd()
	if err != nil {
		return nil, err
	}
	for p.isIdent("or") {
		p.next()
		r, err := p.labelAnd()
		if err != nil {
			return nil, err
		}
		l = &LabelBin{L: l, R: r}
	}
	return l, nil
}

func (p *parser) labelAnd() (LabelExpr, error) {
	l, err := p.labelPrimary()
	if err != nil {
		return nil, err
	}
	for p.isIdent("and") || p.isPunct(",") {
		p.next()
		r, err := p.labelPrimary()
		if err != nil {
			return nil, err
		}
		l = &LabelBin{And: true, L: l, R: r}
	}
	return l, nil
}

func (p *parser) labelPrimary() (LabelExpr, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	if p.isPunct("(") {
		p.next()
		x, err := p.labelOr()
		if err != nil {
			return nil, err
		}
		return x, p.expect(")")
	}
	nt := p.next()
	if nt.kind != tIdent {
		return nil, p.errf(nt, "expected a label name")
	}
	ot := p.next()
	op, ok := labelCmpOps[ot.text]
	if ot.kind != tPunct || !ok {
		return nil, p.errf(ot, "expected a comparison operator (= != =~ !~ > >= < <= ==)")
	}
	c := &LabelCmp{Name: nt.text, Op: op}
	vt := p.next()
	neg := false
	if vt.kind == tPunct && vt.text == "-" && p.peek().kind == tNumber && p.peek().off == vt.off+1 {
		neg = true
		vt = p.next()
	}
	switch {
	case vt.kind == tString:
		if op != CmpEq && op != CmpNeq && op != CmpRegex && op != CmpNotRegex {
			return nil, p.errf(vt, "expected a number or duration after %s", op)
		}
		if op == CmpRegex || op == CmpNotRegex {
			if err := p.checkRegexp(vt, vt.text); err != nil {
				return nil, err
			}
		}
		c.Str = vt.text
	case vt.kind == tNumber && op != CmpRegex && op != CmpNotRegex:
		if f, err := strconv.ParseFloat(vt.text, 64); err == nil && !strings.ContainsAny(vt.text, "xXpP_") {
			c.Num, c.IsNum = f, true
			if neg {
				c.Num = -f
			}
		} else if d, err := time.ParseDuration(vt.text); err == nil {
			c.Dur, c.IsDur = d, true
			if neg {
				c.Dur = -d
			}
		} else {
			return nil, p.errf(vt, "invalid number or duration %q", vt.text)
		}
		if op == CmpEq {
			c.Op = CmpEqEq
		}
	default:
		if op == CmpRegex || op == CmpNotRegex {
			return nil, p.errf(vt, "expected a string after %s", op)
		}
		return nil, p.errf(vt, "expected a string, number or duration")
	}
	return c, nil
}
