package columnar

import (
	"container/list"
	"encoding/binary"
	"sync"
)

// colSet names the fixed columns and attribute keys a query needs.
type colSet struct {
	cols  []int    // fixed column indexes
	attrs []string // attribute keys; nil with allAttrs set means every key
	all   bool     // everything (trace reconstruction)
	// scratch, when set, receives a block's log bodies instead of the
	// cache: a filter over 10M lines decodes about 1 GB of them, more than
	// the cache keeps, so caching would only churn it. The part returned
	// is valid until the caller reuses *scratch.
	scratch *[]byte
}

// view returns a part whose needed columns are loaded. Columns not asked
// for are left empty; callers must not touch them.
func (b *block) view(need colSet) (*part, error) {
	p := &part{sch: b.sch, n: b.meta.Rows, cols: make([]column, len(b.sch.cols)), minT: b.meta.MinT, maxT: b.meta.MaxT, attrs: map[string]*sparse{}}
	res, err := b.load("res", func(raw []byte) (any, int64, error) { return decodeResources(raw, b.meta.Rows) })
	if err != nil {
		return nil, err
	}
	rt := res.(*resTable)
	p.resources, p.res = rt.resources, rt.rows
	cols := need.cols
	if need.all {
		cols = cols[:0:0]
		for i := range b.sch.cols {
			cols = append(cols, i)
		}
	}
	for _, ci := range cols {
		if ci == scParent && b.sch == spanSchema {
			// Parent ids are back-references to span ids: load those first.
			sc, err := b.loadCol(scSpan)
			if err != nil {
				return nil, err
			}
			p.cols[scSpan] = *sc
		}
		if need.scratch != nil && b.sch == logSchema && ci == lcBody {
			raw, err := b.readSectionTo("col:"+b.sch.cols[ci], (*need.scratch)[:0])
			if err != nil {
				return nil, err
			}
			*need.scratch = raw
			c, _, err := decodeColumn(raw, kBlob, b.meta.Rows, nil)
			if err != nil {
				return nil, err
			}
			p.cols[ci] = *c.(*column)
			continue
		}
		c, err := b.loadCol(ci)
		if err != nil {
			return nil, err
		}
		p.cols[ci] = *c
	}
	keys := need.attrs
	if need.all {
		keys = b.meta.Attrs
	}
	for _, k := range keys {
		if _, ok := b.meta.Sections["attr:"+k]; !ok {
			continue
		}
		v, err := b.load("attr:"+k, func(raw []byte) (any, int64, error) { return decodeSparse(raw, b.meta.Rows) })
		if err != nil {
			return nil, err
		}
		p.attrs[k] = v.(*sparse)
	}
	return p, nil
}

func (b *block) hasAttr(k string) bool {
	_, ok := b.meta.Sections["attr:"+k]
	return ok
}

func (b *block) loadCol(ci int) (*column, error) {
	name := "col:" + b.sch.cols[ci]
	var spanIDs []byte
	if b.sch == spanSchema && ci == scParent {
		sc, err := b.loadCol(scSpan)
		if err != nil {
			return nil, err
		}
		spanIDs = sc.ids
	}
	v, err := b.load(name, func(raw []byte) (any, int64, error) {
		return decodeColumn(raw, b.sch.kinds[ci], b.meta.Rows, spanIDs)
	})
	if err != nil {
		return nil, err
	}
	return v.(*column), nil
}

func (b *block) load(name string, decode func([]byte) (any, int64, error)) (any, error) {
	key := b.id + "/" + name
	if v, ok := b.cache.get(key); ok {
		return v, nil
	}
	raw, err := b.readSection(name)
	if err != nil {
		return nil, err
	}
	v, size, err := decode(raw)
	if err != nil {
		return nil, err
	}
	b.cache.put(b.id, key, v, size)
	return v, nil
}

type resTable struct {
	resources []*resource
	rows      []uint32
}

func decodeResources(raw []byte, n int) (any, int64, error) {
	p := string(raw)
	cnt, p, err := readUvarint(p)
	if err != nil || cnt > uint64(len(p)) {
		return nil, 0, errCorrupt
	}
	rt := &resTable{}
	size := int64(0)
	for i := uint64(0); i < cnt; i++ {
		var s string
		if s, p, err = readString(p); err != nil {
			return nil, 0, err
		}
		r := &resource{raw: s, attrs: map[string]string{}}
		if err := fillResourceAttrs(r); err != nil {
			return nil, 0, err
		}
		rt.resources = append(rt.resources, r)
		size += int64(len(s) * 3)
	}
	rt.rows, err = readUvarints([]byte(p), n)
	if err != nil {
		return nil, 0, err
	}
	for _, r := range rt.rows {
		if int(r) >= len(rt.resources) {
			return nil, 0, errCorrupt
		}
	}
	return rt, size + int64(4*n), nil
}

func readUvarints(b []byte, n int) ([]uint32, error) {
	out := make([]uint32, n)
	for i := range out {
		v, k := binary.Uvarint(b)
		if k <= 0 {
			return nil, errCorrupt
		}
		out[i] = uint32(v)
		b = b[k:]
	}
	return out, nil
}

func readDict(b []byte) (*dict, []byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n == 0 || n > uint64(len(b)) {
		return nil, nil, errCorrupt
	}
	b = b[k:]
	vals := make([]string, 1, n)
	for i := uint64(1); i < n; i++ {
		l, k := binary.Uvarint(b)
		if k <= 0 || l > uint64(len(b)-k) {
			return nil, nil, errCorrupt
		}
		vals = append(vals, string(b[k:k+int(l)]))
		b = b[k+int(l):]
	}
	return dictFrom(vals), b, nil
}

func decodeSparse(raw []byte, rows int) (any, int64, error) {
	d, b, err := readDict(raw)
	if err != nil {
		return nil, 0, err
	}
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(rows) {
		return nil, 0, errCorrupt
	}
	b = b[k:]
	sp := &sparse{dict: d, rows: make([]uint32, n)}
	prev := uint64(0)
	for i := range sp.rows {
		v, k := binary.Uvarint(b)
		if k <= 0 {
			return nil, 0, errCorrupt
		}
		prev += v
		if prev >= uint64(rows) {
			return nil, 0, errCorrupt
		}
		sp.rows[i] = uint32(prev)
		b = b[k:]
	}
	if sp.vals, err = readUvarints(b, int(n)); err != nil {
		return nil, 0, err
	}
	for _, v := range sp.vals {
		if int(v) >= d.len() {
			return nil, 0, errCorrupt
		}
	}
	size := int64(8*n) + int64(len(raw))
	return sp, size, nil
}

func decodeColumn(raw []byte, k colKind, n int, spanIDs []byte) (any, int64, error) {
	c := &column{}
	switch k {
	case kI64:
		c.i64 = make([]int64, n)
		prev := int64(0)
		for i := range c.i64 {
			u, l := binary.Uvarint(raw)
			if l <= 0 {
				return nil, 0, errCorrupt
			}
			prev += unzigzag(u)
			c.i64[i] = prev
			raw = raw[l:]
		}
		return c, int64(8 * n), nil
	case kU8:
		if len(raw) != n {
			return nil, 0, errCorrupt
		}
		c.u8 = raw
		return c, int64(n), nil
	case kU32:
		var err error
		c.u32, err = readUvarints(raw, n)
		return c, int64(4 * n), err
	case kDict:
		d, rest, err := readDict(raw)
		if err != nil {
			return nil, 0, err
		}
		c.dict = d
		if c.u32, err = readUvarints(rest, n); err != nil {
			return nil, 0, err
		}
		for _, v := range c.u32 {
			if int(v) >= d.len() {
				return nil, 0, errCorrupt
			}
		}
		return c, int64(4*n + len(raw)), nil
	case kID16:
		if len(raw) != 16*n {
			return nil, 0, errCorrupt
		}
		c.ids = raw
		return c, int64(len(raw)), nil
	case kID8:
		if spanIDs != nil {
			return decodeParents(raw, n, spanIDs)
		}
		if len(raw) != 8*n {
			return nil, 0, errCorrupt
		}
		c.ids = raw
		return c, int64(len(raw)), nil
	case kBlob:
		c.off = make([]uint32, n)
		end := uint64(0)
		for i := range c.off {
			u, l := binary.Uvarint(raw)
			if l <= 0 {
				return nil, 0, errCorrupt
			}
			end += u
			c.off[i] = uint32(end)
			raw = raw[l:]
		}
		if end != uint64(len(raw)) {
			return nil, 0, errCorrupt
		}
		c.blob = raw
		return c, int64(4*n + len(raw)), nil
	}
	return nil, 0, errCorrupt
}

func decodeParents(raw []byte, n int, spanIDs []byte) (any, int64, error) {
	if len(spanIDs) != 8*n {
		return nil, 0, errCorrupt
	}
	c := &column{ids: make([]byte, 8*n)}
	codes := make([]uint64, n)
	for i := range codes {
		u, l := binary.Uvarint(raw)
		if l <= 0 {
			return nil, 0, errCorrupt
		}
		codes[i] = u
		raw = raw[l:]
	}
	for i, code := range codes {
		switch code {
		case 0:
		case 1:
			if len(raw) < 8 {
				return nil, 0, errCorrupt
			}
			copy(c.ids[i*8:], raw[:8])
			raw = raw[8:]
		default:
			j := i - int(unzigzag(code-2))
			if j < 0 || j >= n {
				return nil, 0, errCorrupt
			}
			copy(c.ids[i*8:], spanIDs[j*8:j*8+8])
		}
	}
	return c, int64(8 * n), nil
}

// Bloom filter over trace ids: 10 bits per id, 7 probes, from the two
// halves of the (random) id, so no hashing is needed.
func buildBloom(dst []byte, ids []byte) []byte {
	n := len(ids) / 16
	// Rows are sorted by trace id, so count distinct ids cheaply.
	distinct := 0
	for i := 0; i < n; i++ {
		if i == 0 || string(ids[i*16:i*16+16]) != string(ids[(i-1)*16:i*16]) {
			distinct++
		}
	}
	bits := uint64(distinct*10 + 64)
	words := make([]uint64, (bits+63)/64)
	bits = uint64(len(words) * 64)
	for i := 0; i < n; i++ {
		h1, h2 := binary.LittleEndian.Uint64(ids[i*16:]), binary.LittleEndian.Uint64(ids[i*16+8:])|1
		for k := uint64(0); k < 7; k++ {
			bit := (h1 + k*h2) % bits
			words[bit/64] |= 1 << (bit % 64)
		}
	}
	for _, w := range words {
		dst = binary.LittleEndian.AppendUint64(dst, w)
	}
	return dst
}

type bloom []uint64

func (b bloom) mayContain(id [16]byte) bool {
	if len(b) == 0 {
		return true
	}
	bits := uint64(len(b) * 64)
	h1, h2 := binary.LittleEndian.Uint64(id[:8]), binary.LittleEndian.Uint64(id[8:])|1
	for k := uint64(0); k < 7; k++ {
		bit := (h1 + k*h2) % bits
		if b[bit/64]&(1<<(bit%64)) == 0 {
			return false
		}
	}
	return true
}

func (b *block) bloom() (bloom, error) {
	if _, ok := b.meta.Sections["bloom"]; !ok {
		return nil, nil
	}
	v, err := b.load("bloom", func(raw []byte) (any, int64, error) {
		if len(raw)%8 != 0 {
			return nil, 0, errCorrupt
		}
		w := make(bloom, len(raw)/8)
		for i := range w {
			w[i] = binary.LittleEndian.Uint64(raw[i*8:])
		}
		return w, int64(len(raw)), nil
	})
	if err != nil {
		return nil, err
	}
	return v.(bloom), nil
}

// cache holds decoded block sections up to a byte budget, evicting the
// least recently used. Evicted values stay valid for queries holding them.
type cache struct {
	mu     sync.Mutex
	budget int64
	size   int64
	ll     *list.List
	items  map[string]*list.Element
}

type cacheItem struct {
	block, key string
	val        any
	size       int64
}

func newCache(budget int64) *cache {
	return &cache{budget: budget, ll: list.New(), items: map[string]*list.Element{}}
}

func (c *cache) get(key string) (any, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[key]; ok {
		c.ll.MoveToFront(e)
		return e.Value.(*cacheItem).val, true
	}
	return nil, false
}

func (c *cache) put(block, key string, v any, size int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.items[key]; ok {
		return
	}
	c.items[key] = c.ll.PushFront(&cacheItem{block: block, key: key, val: v, size: size})
	c.size += size
	for c.size > c.budget && c.ll.Len() > 1 {
		e := c.ll.Back()
		it := e.Value.(*cacheItem)
		c.ll.Remove(e)
		delete(c.items, it.key)
		c.size -= it.size
	}
}

func (c *cache) dropBlock(block string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for e := c.ll.Front(); e != nil; {
		next := e.Next()
		if it := e.Value.(*cacheItem); it.block == block {
			c.ll.Remove(e)
			delete(c.items, it.key)
			c.size -= it.size
		}
		e = next
	}
}

func (c *cache) bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.size
}
