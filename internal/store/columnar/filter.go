package columnar

import (
	"bytes"
	"fmt"
	"math/bits"
	"regexp"
	"strings"

	"github.com/trenchcoat/trenchcoat/internal/store"
)

// bitset is a row selection.
type bitset []uint64

func newBitset(n int) bitset { return make(bitset, (n+63)/64) }

func (b bitset) set(i int)      { b[i>>6] |= 1 << (uint(i) & 63) }
func (b bitset) has(i int) bool { return b[i>>6]&(1<<(uint(i)&63)) != 0 }
func (b bitset) and(o bitset) {
	for i := range b {
		b[i] &= o[i]
	}
}
func (b bitset) or(o bitset) {
	for i := range b {
		b[i] |= o[i]
	}
}
func (b bitset) andNot(o bitset) {
	for i := range b {
		b[i] &^= o[i]
	}
}

func (b bitset) not(n int) {
	for i := range b {
		b[i] = ^b[i]
	}
	if r := n & 63; r != 0 {
		b[len(b)-1] &= (1 << uint(r)) - 1
	}
}

func (b bitset) fill(n int) {
	for i := range b {
		b[i] = ^uint64(0)
	}
	if r := n & 63; r != 0 {
		b[len(b)-1] &= (1 << uint(r)) - 1
	}
}

func (b bitset) count() int {
	c := 0
	for _, w := range b {
		c += bits.OnesCount64(w)
	}
	return c
}

// each calls fn for every set bit in ascending order.
func (b bitset) each(fn func(i int) bool) {
	for wi, w := range b {
		for w != 0 {
			t := bits.TrailingZeros64(w)
			if !fn(wi<<6 + t) {
				return
			}
			w &= w - 1
		}
	}
}

// matcher is a compiled comparison.
type matcher struct {
	op    store.Op
	val   store.Value
	re    *regexp.Regexp
	num   float64
	isNum bool
}

func compileMatcher(c *store.Cond) (*matcher, error) {
	m := &matcher{op: c.Op, val: c.Value}
	switch c.Op {
	case store.OpRegex, store.OpNotRegex:
		re, err := regexp.Compile("^(?:" + c.Value.Str + ")$")
		if err != nil {
			return nil, fmt.Errorf("bad regexp %q: %w", c.Value.Str, err)
		}
		m.re = re
	}
	switch c.Value.Kind {
	case store.KindInt, store.KindDuration:
		m.num, m.isNum = float64(c.Value.Int), true
	case store.KindFloat:
		m.num, m.isNum = c.Value.Float, true
	}
	return m, nil
}

// literal is the string form of the comparison value.
func (m *matcher) literal() string {
	switch m.val.Kind {
	case store.KindInt, store.KindDuration:
		return fmt.Sprint(m.val.Int)
	case store.KindFloat:
		return fmt.Sprint(m.val.Float)
	case store.KindBool:
		return fmt.Sprint(m.val.Bool)
	}
	return m.val.Str
}

func (m *matcher) str(s string) bool {
	switch m.op {
	case store.OpExists:
		return true
	case store.OpRegex:
		return m.re.MatchString(s)
	case store.OpNotRegex:
		return !m.re.MatchString(s)
	case store.OpContains:
		return strings.Contains(s, m.val.Str)
	case store.OpNotContains:
		return !strings.Contains(s, m.val.Str)
	}
	return cmpOp(m.op, strings.Compare(s, m.literal()))
}

func (m *matcher) number(x float64) bool {
	switch {
	case x < m.num:
		return cmpOp(m.op, -1)
	case x > m.num:
		return cmpOp(m.op, 1)
	}
	return cmpOp(m.op, 0)
}

// enc matches a typed attribute value: numerically when both sides are
// numbers, otherwise on the string form.
func (m *matcher) enc(v string) bool {
	if m.isNum && m.op <= store.OpLe {
		if x, ok := valueNumber(v); ok {
			return m.number(x)
		}
		if m.op != store.OpEq && m.op != store.OpNeq {
			return false // ordering a string against a number: no match
		}
	}
	return m.str(valueString(v))
}

func cmpOp(op store.Op, c int) bool {
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

// needs adds the columns a condition reads to cs.
func needs(sch *schema, c *store.Cond, cs *colSet) error {
	if c == nil {
		return nil
	}
	for _, s := range c.And {
		if err := needs(sch, s, cs); err != nil {
			return err
		}
	}
	for _, s := range c.Or {
		if err := needs(sch, s, cs); err != nil {
			return err
		}
	}
	if c.Not != nil {
		return needs(sch, c.Not, cs)
	}
	if !c.Leaf() {
		return nil
	}
	return fieldNeeds(sch, c.Field, cs)
}

func fieldNeeds(sch *schema, f store.Field, cs *colSet) error {
	switch f.Scope {
	case store.ScopeSpan, store.ScopeAny:
		cs.attrs = append(cs.attrs, f.Name)
	case store.ScopeIntrinsic:
		cols, ok := intrinsicCols(sch, f.Name)
		if !ok {
			return fmt.Errorf("%w: unknown intrinsic %q for %s", store.ErrUnsupported, f.Name, sch.name)
		}
		cs.cols = append(cs.cols, cols...)
	}
	return nil
}

// intrinsicCols maps an intrinsic name to the columns it reads; resource
// derived intrinsics (service, logGroup) read no column.
func intrinsicCols(sch *schema, name string) ([]int, bool) {
	if sch == spanSchema {
		switch name {
		case store.IntrinsicName:
			return []int{scName}, true
		case store.IntrinsicStatus:
			return []int{scStatus}, true
		case store.IntrinsicStatusMessage:
			return []int{scStatusMsg}, true
		case store.IntrinsicKind:
			return []int{scKind}, true
		case store.IntrinsicDuration:
			return []int{scDur}, true
		case store.IntrinsicTraceID:
			return []int{scTrace}, true
		case store.IntrinsicSpanID:
			return []int{scSpan}, true
		case store.IntrinsicParentID:
			return []int{scParent}, true
		case store.IntrinsicService:
			return nil, true
		}
		return nil, false
	}
	switch name {
	case store.IntrinsicSeverity:
		return []int{lcSevText, lcSevNum}, true
	case store.IntrinsicSeverityNum:
		return []int{lcSevNum}, true
	case store.IntrinsicBody:
		return []int{lcBody}, true
	case store.IntrinsicTraceID:
		return []int{lcTrace}, true
	case store.IntrinsicSpanID:
		return []int{lcSpan}, true
	case store.IntrinsicService, store.IntrinsicLogGroup:
		return nil, true
	}
	return nil, false
}

// eval returns the rows of p matching c.
func (p *part) eval(c *store.Cond) (bitset, error) {
	b := newBitset(p.n)
	if c == nil {
		b.fill(p.n)
		return b, nil
	}
	switch {
	case c.Not != nil:
		s, err := p.eval(c.Not)
		if err != nil {
			return nil, err
		}
		copy(b, s)
		b.not(p.n)
		return b, nil
	case c.And != nil:
		b.fill(p.n)
		for _, sc := range c.And {
			s, err := p.eval(sc)
			if err != nil {
				return nil, err
			}
			b.and(s)
		}
		return b, nil
	case c.Or != nil:
		for _, sc := range c.Or {
			s, err := p.eval(sc)
			if err != nil {
				return nil, err
			}
			b.or(s)
		}
		return b, nil
	}
	m, err := compileMatcher(c)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", store.ErrUnsupported, err)
	}
	switch c.Field.Scope {
	case store.ScopeResource:
		p.evalResource(c.Field.Name, m, b)
	case store.ScopeSpan:
		p.evalAttr(c.Field.Name, m, b, nil)
	case store.ScopeAny:
		present := newBitset(p.n)
		p.evalAttr(c.Field.Name, m, b, present)
		rb := newBitset(p.n)
		p.evalResource(c.Field.Name, m, rb)
		rb.andNot(present)
		b.or(rb)
	case store.ScopeIntrinsic:
		if err := p.evalIntrinsic(c.Field.Name, m, b); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func (p *part) evalResource(key string, m *matcher, b bitset) {
	p.evalResources(func(r *resource) bool {
		v, has := r.attrs[key]
		return has && m.enc(v)
	}, b)
}

// evalResources sets the rows whose resource satisfies ok: the predicate
// runs once per distinct resource, not per row.
func (p *part) evalResources(ok func(*resource) bool, b bitset) {
	match := make([]bool, len(p.resources))
	any := false
	for i, r := range p.resources {
		match[i] = ok(r)
		any = any || match[i]
	}
	if !any {
		return
	}
	for row, r := range p.res[:p.n] {
		if match[r] {
			b.set(row)
		}
	}
}

func (p *part) evalAttr(key string, m *matcher, b, present bitset) {
	sp := p.attrs[key]
	if sp == nil {
		return
	}
	ok := make([]bool, len(sp.dict.vals))
	for i, v := range sp.dict.vals[1:] {
		ok[i+1] = m.enc(v)
	}
	for i, r := range sp.rows {
		if ok[sp.vals[i]] {
			b.set(int(r))
		}
		if present != nil {
			present.set(int(r))
		}
	}
}

func (p *part) evalDict(c *column, m *matcher, b bitset, absentMatches bool) {
	ok := make([]bool, len(c.dict.vals))
	ok[0] = absentMatches && m.str("")
	for i, v := range c.dict.vals[1:] {
		ok[i+1] = m.str(v)
	}
	for row, id := range c.u32[:p.n] {
		if ok[id] {
			b.set(row)
		}
	}
}

var statusNames = []string{"unset", "ok", "error"}

var kindNames = []string{"unspecified", "internal", "server", "client", "producer", "consumer"}

func (p *part) evalIntrinsic(name string, m *matcher, b bitset) error {
	if p.sch == spanSchema {
		switch name {
		case store.IntrinsicName:
			p.evalDict(&p.cols[scName], m, b, true)
		case store.IntrinsicStatusMessage:
			p.evalDict(&p.cols[scStatusMsg], m, b, true)
		case store.IntrinsicStatus:
			p.evalEnum(p.cols[scStatus].u8, statusNames, m, b)
		case store.IntrinsicKind:
			p.evalEnum(p.cols[scKind].u8, kindNames, m, b)
		case store.IntrinsicDuration:
			if !m.isNum {
				return fmt.Errorf("%w: duration compared with a non-number", store.ErrUnsupported)
			}
			for row, d := range p.cols[scDur].i64[:p.n] {
				if m.number(float64(d)) {
					b.set(row)
				}
			}
		case store.IntrinsicService:
			p.evalResources(func(r *resource) bool { return m.str(r.service) }, b)
		case store.IntrinsicTraceID:
			p.evalHex(p.cols[scTrace].ids, 16, m, b)
		case store.IntrinsicSpanID:
			p.evalHex(p.cols[scSpan].ids, 8, m, b)
		case store.IntrinsicParentID:
			p.evalHex(p.cols[scParent].ids, 8, m, b)
		default:
			return fmt.Errorf("%w: intrinsic %q", store.ErrUnsupported, name)
		}
		return nil
	}
	switch name {
	case store.IntrinsicSeverity:
		text, nums := p.cols[lcSevText], p.cols[lcSevNum].u8
		okText := make([]bool, len(text.dict.vals))
		for i, v := range text.dict.vals[1:] {
			okText[i+1] = m.str(strings.ToLower(v))
		}
		var okNum [256]bool
		for n := range okNum {
			okNum[n] = m.str(severityFromNumber(uint8(n)))
		}
		for row, id := range text.u32[:p.n] {
			if (id != 0 && okText[id]) || (id == 0 && okNum[nums[row]]) {
				b.set(row)
			}
		}
	case store.IntrinsicSeverityNum:
		for row, v := range p.cols[lcSevNum].u8[:p.n] {
			if m.number(float64(v)) {
				b.set(row)
			}
		}
	case store.IntrinsicBody:
		p.evalBody(m, b)
	case store.IntrinsicService:
		p.evalResources(func(r *resource) bool { return m.str(r.service) }, b)
	case store.IntrinsicLogGroup:
		p.evalResources(func(r *resource) bool { return m.str(r.logGroup) }, b)
	case store.IntrinsicTraceID:
		p.evalHex(p.cols[lcTrace].ids, 16, m, b)
	case store.IntrinsicSpanID:
		p.evalHex(p.cols[lcSpan].ids, 8, m, b)
	default:
		return fmt.Errorf("%w: intrinsic %q", store.ErrUnsupported, name)
	}
	return nil
}

func (p *part) evalEnum(col []uint8, names []string, m *matcher, b bitset) {
	var ok [256]bool
	for i, n := range names {
		ok[i] = m.str(n)
	}
	for row, v := range col[:p.n] {
		if ok[v] {
			b.set(row)
		}
	}
}

func (p *part) evalHex(ids []byte, w int, m *matcher, b bitset) {
	if m.op == store.OpEq {
		// Fast path: compare raw bytes instead of formatting every id.
		want, err := decodeHexID(m.val.Str, w)
		if err != nil {
			return
		}
		for row := 0; row < p.n; row++ {
			if string(ids[row*w:row*w+w]) == string(want) {
				b.set(row)
			}
		}
		return
	}
	const hexd = "0123456789abcdef"
	buf := make([]byte, 2*w)
	for row := 0; row < p.n; row++ {
		for i, x := range ids[row*w : row*w+w] {
			buf[2*i], buf[2*i+1] = hexd[x>>4], hexd[x&15]
		}
		if m.str(string(buf)) {
			b.set(row)
		}
	}
}

func decodeHexID(s string, w int) ([]byte, error) {
	if len(s) != 2*w {
		return nil, fmt.Errorf("id %q: want %d hex digits", s, 2*w)
	}
	out := make([]byte, w)
	for i := 0; i < w; i++ {
		hi, ok1 := unhex(s[2*i])
		lo, ok2 := unhex(s[2*i+1])
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("id %q is not hex", s)
		}
		out[i] = hi<<4 | lo
	}
	return out, nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func (p *part) evalBody(m *matcher, b bitset) {
	c := &p.cols[lcBody]
	// Fast path for string bodies and substring filters: search the raw
	// encoding (tag byte + text) without building strings.
	if m.op == store.OpContains || m.op == store.OpNotContains {
		needle := []byte(m.val.Str)
		start := uint32(0)
		for row := 0; row < p.n; row++ {
			end := c.off[row]
			v := c.blob[start:end]
			start = end
			var hit bool
			if len(v) > 0 && v[0] == tagString {
				hit = bytes.Contains(v[1:], needle)
			} else {
				hit = strings.Contains(valueString(string(v)), m.val.Str)
			}
			if hit == (m.op == store.OpContains) {
				b.set(row)
			}
		}
		return
	}
	for row := 0; row < p.n; row++ {
		if m.str(p.logBody(row)) {
			b.set(row)
		}
	}
}
