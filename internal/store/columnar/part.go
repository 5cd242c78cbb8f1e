package columnar

import (
	"cmp"
	"encoding/binary"
	"slices"
	"sort"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// A part is a set of rows stored column by column: the head being written,
// or the columns of a block loaded for a query. Fixed columns come from a
// schema; attributes get one sparse column per key; resources (with their
// instrumentation scope) are kept once per part in a small table that rows
// point into, so a resource attribute costs one uint32 per row.

type colKind uint8

const (
	kI64  colKind = iota // int64 values
	kU8                  // small enums
	kU32                 // flags
	kDict                // strings through a per-part dictionary
	kID16                // 16-byte ids (trace id)
	kID8                 // 8-byte ids (span ids)
	kBlob                // variable-length bytes per row
)

type schema struct {
	name  string
	cols  []string
	kinds []colKind
	time  int // index of the time column (kI64) used for ranges and partitions
	trace int // index of the trace id column (kID16), -1 if none
}

func (s *schema) col(name string) int {
	for i, c := range s.cols {
		if c == name {
			return i
		}
	}
	panic("BUG: unknown column " + name)
}

type column struct {
	i64  []int64
	u8   []uint8
	u32  []uint32 // kU32 values and kDict ids
	dict *dict
	ids  []byte   // kID16/kID8, flat
	off  []uint32 // kBlob end offsets
	blob []byte
}

// sparse is an attribute column: the rows that have the key, ascending,
// and their value ids in dict (typed encodings, see value.go).
type sparse struct {
	rows []uint32
	vals []uint32
	dict *dict
}

// resource is one distinct (resource, scope) pair of a part.
type resource struct {
	raw      string            // encoding of resource and scope, see encodeResource
	attrs    map[string]string // resource attribute key -> typed value encoding
	service  string
	logGroup string
}

type part struct {
	sch       *schema
	n         int
	cols      []column
	res       []uint32
	resources []*resource
	resIdx    map[string]uint32
	attrs     map[string]*sparse
	minT      int64
	maxT      int64
	bytes     int64 // approximate memory held, for head-size accounting
}

func newPart(sch *schema) *part {
	p := &part{sch: sch, cols: make([]column, len(sch.cols)), resIdx: map[string]uint32{}, attrs: map[string]*sparse{}}
	for i, k := range sch.kinds {
		if k == kDict {
			p.cols[i].dict = newDict()
		}
	}
	return p
}

// addResource returns the index of the (resource, scope) pair, adding it.
func (p *part) addResource(res pcommon.Resource, resSchema string, scope pcommon.InstrumentationScope, scopeSchema string, buf []byte) (uint32, []byte) {
	buf = encodeResource(buf[:0], res, resSchema, scope, scopeSchema)
	if i, ok := p.resIdx[string(buf)]; ok {
		return i, buf
	}
	r := &resource{raw: string(buf), attrs: make(map[string]string, res.Attributes().Len())}
	res.Attributes().Range(func(k string, v pcommon.Value) bool {
		r.attrs[k] = string(appendValue(nil, v))
		return true
	})
	r.fill()
	i := uint32(len(p.resources))
	p.resources = append(p.resources, r)
	p.resIdx[r.raw] = i
	p.bytes += int64(len(r.raw) * 3)
	return i, buf
}

func (r *resource) fill() {
	r.service = valueString(r.attrs["service.name"])
	if g, ok := r.attrs["aws.log.group.names"]; ok {
		v := pcommon.NewValueEmpty()
		if decodeValue(g, v) == nil {
			if v.Type() == pcommon.ValueTypeSlice && v.Slice().Len() > 0 {
				r.logGroup = v.Slice().At(0).AsString()
			} else if v.Type() == pcommon.ValueTypeStr {
				r.logGroup = v.Str()
			}
		}
	}
}

// encodeResource writes resource attributes, dropped count and schema URL,
// then the scope's name, version, attributes, dropped count and schema URL.
func encodeResource(dst []byte, res pcommon.Resource, resSchema string, sc pcommon.InstrumentationScope, scSchema string) []byte {
	dst = appendMapBody(dst, res.Attributes())
	dst = binary.AppendUvarint(dst, uint64(res.DroppedAttributesCount()))
	dst = appendString(dst, resSchema)
	dst = appendString(dst, sc.Name())
	dst = appendString(dst, sc.Version())
	dst = appendMapBody(dst, sc.Attributes())
	dst = binary.AppendUvarint(dst, uint64(sc.DroppedAttributesCount()))
	return appendString(dst, scSchema)
}

// decodeResource is the inverse of encodeResource.
func decodeResource(raw string, res pcommon.Resource, sc pcommon.InstrumentationScope) (resSchema, scSchema string, err error) {
	p, err := decodeMapBody(raw, res.Attributes())
	if err != nil {
		return "", "", err
	}
	var u uint64
	if u, p, err = readUvarint(p); err != nil {
		return "", "", err
	}
	res.SetDroppedAttributesCount(uint32(u))
	if resSchema, p, err = readString(p); err != nil {
		return "", "", err
	}
	var s string
	if s, p, err = readString(p); err != nil {
		return "", "", err
	}
	sc.SetName(s)
	if s, p, err = readString(p); err != nil {
		return "", "", err
	}
	sc.SetVersion(s)
	if p, err = decodeMapBody(p, sc.Attributes()); err != nil {
		return "", "", err
	}
	if u, p, err = readUvarint(p); err != nil {
		return "", "", err
	}
	sc.SetDroppedAttributesCount(uint32(u))
	scSchema, _, err = readString(p)
	return resSchema, scSchema, err
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func readUvarint(p string) (uint64, string, error) {
	var n uint64
	var shift uint
	for i := 0; i < len(p) && i < 10; i++ {
		b := p[i]
		n |= uint64(b&0x7f) << shift
		if b < 0x80 {
			return n, p[i+1:], nil
		}
		shift += 7
	}
	return 0, "", errCorrupt
}

func readString(p string) (string, string, error) {
	n, p, err := readUvarint(p)
	if err != nil || n > uint64(len(p)) {
		return "", "", errCorrupt
	}
	return p[:n], p[n:], nil
}

// setAttrs adds the attributes of row to the sparse columns.
func (p *part) setAttrs(row uint32, m pcommon.Map, buf []byte) []byte {
	m.Range(func(k string, v pcommon.Value) bool {
		sp := p.attrs[k]
		if sp == nil {
			sp = &sparse{dict: newDict()}
			p.attrs[k] = sp
			p.bytes += int64(len(k)) + 64
		}
		buf = appendValue(buf[:0], v)
		before := sp.dict.len()
		id := sp.dict.idBytes(buf)
		if sp.dict.len() > before {
			p.bytes += int64(len(buf)) + 24
		}
		sp.rows = append(sp.rows, row)
		sp.vals = append(sp.vals, id)
		p.bytes += 8
		return true
	})
	return buf
}

// rowAttrs calls fn for each attribute of a row. The sparse columns keep
// rows ascending, so this is a binary search per key.
func (p *part) rowAttrs(row uint32, fn func(k, enc string)) {
	keys := make([]string, 0, len(p.attrs))
	for k := range p.attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if id := p.attrs[k].at(row); id != 0 {
			fn(k, p.attrs[k].dict.vals[id])
		}
	}
}

// at returns the value id of row, 0 when absent.
func (s *sparse) at(row uint32) uint32 {
	i := sort.Search(len(s.rows), func(i int) bool { return s.rows[i] >= row })
	if i < len(s.rows) && s.rows[i] == row {
		return s.vals[i]
	}
	return 0
}

// dense expands the column to one value id per row (0 when absent).
func (s *sparse) dense(n int) []uint32 {
	d := make([]uint32, n)
	for i, r := range s.rows {
		d[r] = s.vals[i]
	}
	return d
}

func (p *part) touchTime(t int64) {
	if p.n == 0 || t < p.minT {
		p.minT = t
	}
	if p.n == 0 || t > p.maxT {
		p.maxT = t
	}
}

// id16 returns the 16-byte id of a row.
func (c *column) id16(row int) (id [16]byte) {
	copy(id[:], c.ids[row*16:row*16+16])
	return id
}

func (c *column) id8(row int) (id [8]byte) {
	copy(id[:], c.ids[row*8:row*8+8])
	return id
}

func (c *column) blobAt(row int) []byte {
	start := uint32(0)
	if row > 0 {
		start = c.off[row-1]
	}
	return c.blob[start:c.off[row]]
}

func (c *column) appendBlob(b []byte) {
	c.blob = append(c.blob, b...)
	c.off = append(c.off, uint32(len(c.blob)))
}

// subset copies the given rows (in that order) of p into a new part with
// fresh dictionaries holding only values still used.
func (p *part) subset(rows []uint32) *part {
	q := newPart(p.sch)
	q.appendRows(p, rows)
	return q
}

// concatParts appends all rows of several parts into one.
func concatParts(sch *schema, parts []*part) *part {
	q := newPart(sch)
	for _, p := range parts {
		rows := make([]uint32, p.n)
		for i := range rows {
			rows[i] = uint32(i)
		}
		q.appendRows(p, rows)
	}
	return q
}

// appendRows appends the given rows of src, in that order, re-encoding
// dictionary ids and resource indexes into q's own.
func (q *part) appendRows(src *part, rows []uint32) {
	base := uint32(q.n)
	for ci, k := range q.sch.kinds {
		from, to := &src.cols[ci], &q.cols[ci]
		switch k {
		case kI64:
			to.i64 = slices.Grow(to.i64, len(rows))
			for _, r := range rows {
				to.i64 = append(to.i64, from.i64[r])
			}
		case kU8:
			for _, r := range rows {
				to.u8 = append(to.u8, from.u8[r])
			}
		case kU32:
			for _, r := range rows {
				to.u32 = append(to.u32, from.u32[r])
			}
		case kDict:
			ids := make([]uint32, len(from.dict.vals)) // old id -> new id, 0 until used
			for _, r := range rows {
				id := from.u32[r]
				if id != 0 && ids[id] == 0 {
					ids[id] = to.dict.id(from.dict.vals[id])
				}
				to.u32 = append(to.u32, ids[id])
			}
		case kID16, kID8:
			w := 16
			if k == kID8 {
				w = 8
			}
			to.ids = slices.Grow(to.ids, len(rows)*w)
			for _, r := range rows {
				to.ids = append(to.ids, from.ids[int(r)*w:int(r)*w+w]...)
			}
		case kBlob:
			total := 0
			for _, r := range rows {
				total += len(from.blobAt(int(r)))
			}
			to.blob = slices.Grow(to.blob, total)
			to.off = slices.Grow(to.off, len(rows))
			for _, r := range rows {
				to.appendBlob(from.blobAt(int(r)))
			}
		}
	}
	resIDs := make([]int64, len(src.resources)) // old index -> new index + 1
	for _, r := range rows {
		old := src.res[r]
		if resIDs[old] == 0 {
			orig := src.resources[old]
			j, ok := q.resIdx[orig.raw]
			if !ok {
				j = uint32(len(q.resources))
				q.resources = append(q.resources, orig)
				q.resIdx[orig.raw] = j
			}
			resIDs[old] = int64(j) + 1
		}
		q.res = append(q.res, uint32(resIDs[old]-1))
	}
	// Attributes: expand each sparse column to one value per old row,
	// then walk the rows in their new order, so the new column comes out
	// in ascending row order without sorting.
	dense := make([]uint32, src.n)
	for k, sp := range src.attrs {
		for i, r := range sp.rows {
			dense[r] = sp.vals[i]
		}
		ns := q.attrs[k]
		ids := make([]uint32, len(sp.dict.vals)) // old id -> new id, 0 until used
		for i, r := range rows {
			v := dense[r]
			if v == 0 {
				continue
			}
			if ns == nil {
				ns = &sparse{dict: newDict()}
				q.attrs[k] = ns
			}
			if ids[v] == 0 {
				ids[v] = ns.dict.id(sp.dict.vals[v])
			}
			ns.rows = append(ns.rows, base+uint32(i))
			ns.vals = append(ns.vals, ids[v])
		}
		for _, r := range sp.rows {
			dense[r] = 0
		}
	}
	tc := src.cols[q.sch.time].i64
	for _, r := range rows {
		q.touchTime(tc[r])
		q.n++
	}
}

// sortBucket: block rows are sorted by minute of start, then trace id,
// then start. Row groups then cover narrow time ranges (a query over a few
// minutes reads few groups), while the spans of a trace stay together, so
// its ids and times compress well and parent ids become back-references.
const sortBucket = int64(time.Minute)

// sortedRows returns the row order for a block (see sortBucket).
func (p *part) sortedRows() []uint32 {
	type key struct {
		bucket int64
		hi, lo uint64
		t      int64
		row    uint32
	}
	tc := p.cols[p.sch.time].i64
	keys := make([]key, p.n)
	for i := range keys {
		keys[i] = key{t: tc[i], row: uint32(i), bucket: floorDiv(tc[i], sortBucket)}
		if p.sch.trace >= 0 {
			id := p.cols[p.sch.trace].ids[i*16:]
			keys[i].hi, keys[i].lo = binary.BigEndian.Uint64(id), binary.BigEndian.Uint64(id[8:])
		}
	}
	slices.SortFunc(keys, func(a, b key) int {
		if c := cmp.Compare(a.bucket, b.bucket); c != 0 {
			return c
		}
		if c := cmp.Compare(a.hi, b.hi); c != 0 {
			return c
		}
		if c := cmp.Compare(a.lo, b.lo); c != 0 {
			return c
		}
		return cmp.Compare(a.t, b.t)
	})
	rows := make([]uint32, p.n)
	for i, k := range keys {
		rows[i] = k.row
	}
	return rows
}

// fillResourceAttrs decodes r.raw into r.attrs, service and log group.
func fillResourceAttrs(r *resource) error {
	res := pcommon.NewResource()
	sc := pcommon.NewInstrumentationScope()
	if _, _, err := decodeResource(r.raw, res, sc); err != nil {
		return err
	}
	res.Attributes().Range(func(k string, v pcommon.Value) bool {
		r.attrs[k] = string(appendValue(nil, v))
		return true
	})
	r.fill()
	return nil
}

// snapshot returns a read-only view of the head's first n rows that stays
// valid while appends continue: appends only ever grow slices, and the view
// keeps its own slice headers. Dictionaries in the view have no index map,
// so readers search their values (see dict.find).
func (p *part) snapshot() *part {
	q := &part{sch: p.sch, n: p.n, cols: make([]column, len(p.cols)), minT: p.minT, maxT: p.maxT,
		res: p.res[:p.n:p.n], resources: p.resources[:len(p.resources):len(p.resources)], attrs: make(map[string]*sparse, len(p.attrs))}
	for i, c := range p.cols {
		q.cols[i] = column{i64: c.i64, u8: c.u8, u32: c.u32, ids: c.ids, off: c.off, blob: c.blob}
		if c.dict != nil {
			q.cols[i].dict = &dict{vals: c.dict.vals[:len(c.dict.vals):len(c.dict.vals)]}
		}
	}
	for k, s := range p.attrs {
		q.attrs[k] = &sparse{rows: s.rows[:len(s.rows):len(s.rows)], vals: s.vals[:len(s.vals):len(s.vals)], dict: &dict{vals: s.dict.vals[:len(s.dict.vals):len(s.dict.vals)]}}
	}
	return q
}
