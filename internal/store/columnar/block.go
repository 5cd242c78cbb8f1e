package columnar

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// A block is an immutable file holding one part: each column (and each
// attribute column, the resource table and the trace-id filter) is a
// separately zstd-compressed section, so a query reads and decodes only the
// columns it touches. The footer is a JSON index followed by its length,
// a CRC of the index and a magic string; a file without a valid footer is
// an unfinished write and is ignored.

const blockMagic = "TCBLOCK1"

type section struct {
	Off    int64  `json:"off"`
	Len    int64  `json:"len"`
	RawLen int64  `json:"raw"`
	Codec  string `json:"codec,omitempty"` // "" zstd, "s2"
}

type blockMeta struct {
	Schema   string             `json:"schema"`
	Rows     int                `json:"rows"`
	MinT     int64              `json:"minT"`
	MaxT     int64              `json:"maxT"`
	MinDur   int64              `json:"minDur,omitempty"`
	MaxDur   int64              `json:"maxDur,omitempty"`
	WALSeg   int                `json:"walSeg"` // WAL segments <= this are covered by blocks
	Level    int                `json:"level"`  // 0 from the head, +1 per compaction
	Sections map[string]section `json:"sections"`
	Attrs    []string           `json:"attrs,omitempty"`
	Bytes    int64              `json:"bytes"`
	// Groups are the row groups: each is read on its own, with its own
	// sections, dictionaries, time range and trace-id filter.
	Groups []*blockMeta `json:"groups,omitempty"`
}

// groupRows is the number of rows per row group: small enough that one
// trace lookup or a narrow time range decodes little, large enough that
// dictionaries and zstd still pay.
const groupRows = 1 << 16

var (
	zenc, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
	zdec, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(1<<31))
)

// writeBlock encodes p (rows already in block order) to path atomically,
// in row groups of groupRows rows.
func writeBlock(path string, p *part, walSeg, level int) (*blockMeta, error) {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return nil, fmt.Errorf("columnar: create block: %w", err)
	}
	defer os.Remove(tmp) // no-op after the rename
	meta := &blockMeta{Schema: p.sch.name, Rows: p.n, MinT: p.minT, MaxT: p.maxT, WALSeg: walSeg, Level: level}
	w := &sectionWriter{f: f, off: int64(len(blockMagic))}
	if _, err := f.WriteString(blockMagic); err != nil {
		f.Close()
		return nil, err
	}
	rows := make([]uint32, 0, groupRows)
	for start := 0; start < p.n; start += groupRows {
		rows = rows[:0]
		for r := start; r < min(p.n, start+groupRows); r++ {
			rows = append(rows, uint32(r))
		}
		g := p
		if start > 0 || len(rows) < p.n {
			g = p.subset(rows)
		}
		gm, err := w.writeGroup(g)
		if err != nil {
			f.Close()
			return nil, err
		}
		meta.Groups = append(meta.Groups, gm)
	}
	meta.Bytes = w.off
	idx, err := json.Marshal(meta)
	if err != nil {
		f.Close()
		return nil, err
	}
	tail := binary.LittleEndian.AppendUint32(nil, uint32(len(idx)))
	tail = binary.LittleEndian.AppendUint32(tail, crc32.ChecksumIEEE(idx))
	tail = append(tail, blockMagic...)
	if _, err := f.Write(append(idx, tail...)); err != nil {
		f.Close()
		return nil, err
	}
	meta.Bytes += int64(len(idx) + len(tail))
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, fmt.Errorf("columnar: rename block: %w", err)
	}
	syncDir(filepath.Dir(path))
	return meta, nil
}

type sectionWriter struct {
	f         *os.File
	off       int64
	raw, comp []byte
}

func (w *sectionWriter) put(m *blockMeta, name string) error {
	codec := ""
	if m.Schema == logSchema.name && name == "col:"+logSchema.cols[lcBody] {
		// Log bodies are what line filters decode in full: S2 decodes
		// several times faster than zstd, worth its larger size there.
		codec = "s2"
		w.comp = s2.Encode(w.comp[:cap(w.comp)], w.raw)
	} else {
		w.comp = zenc.EncodeAll(w.raw, w.comp[:0])
	}
	if _, err := w.f.Write(w.comp); err != nil {
		return err
	}
	m.Sections[name] = section{Off: w.off, Len: int64(len(w.comp)), RawLen: int64(len(w.raw)), Codec: codec}
	w.off += int64(len(w.comp))
	return nil
}

// writeGroup writes one row group's sections and returns its meta.
func (w *sectionWriter) writeGroup(p *part) (*blockMeta, error) {
	m := &blockMeta{Schema: p.sch.name, Rows: p.n, MinT: p.minT, MaxT: p.maxT, Sections: map[string]section{}}
	for ci, k := range p.sch.kinds {
		w.raw = encodeColumn(w.raw[:0], p, ci, k)
		if err := w.put(m, "col:"+p.sch.cols[ci]); err != nil {
			return nil, err
		}
	}
	if p.sch == spanSchema && p.n > 0 {
		d := p.cols[scDur].i64
		m.MinDur, m.MaxDur = d[0], d[0]
		for _, v := range d {
			m.MinDur, m.MaxDur = min(m.MinDur, v), max(m.MaxDur, v)
		}
	}
	w.raw = binary.AppendUvarint(w.raw[:0], uint64(len(p.resources)))
	for _, r := range p.resources {
		w.raw = appendString(w.raw, r.raw)
	}
	w.raw = appendUvarints(w.raw, p.res)
	if err := w.put(m, "res"); err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(p.attrs))
	for k := range p.attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		sp := p.attrs[k]
		w.raw = encodeDict(w.raw[:0], sp.dict.vals)
		w.raw = binary.AppendUvarint(w.raw, uint64(len(sp.rows)))
		prev := uint32(0)
		for _, r := range sp.rows {
			w.raw = binary.AppendUvarint(w.raw, uint64(r-prev))
			prev = r
		}
		w.raw = appendUvarints(w.raw, sp.vals)
		if err := w.put(m, "attr:"+k); err != nil {
			return nil, err
		}
		m.Attrs = append(m.Attrs, k)
	}
	if p.sch.trace >= 0 {
		w.raw = buildBloom(w.raw[:0], p.cols[p.sch.trace].ids)
		if err := w.put(m, "bloom"); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // best effort: the rename is already visible to this process
		d.Close()
	}
}

func appendUvarints(dst []byte, v []uint32) []byte {
	for _, x := range v {
		dst = binary.AppendUvarint(dst, uint64(x))
	}
	return dst
}

func encodeDict(dst []byte, vals []string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(vals)))
	for _, v := range vals[1:] {
		dst = appendString(dst, v)
	}
	return dst
}

func zigzag(v int64) uint64 { return uint64(v<<1) ^ uint64(v>>63) }

func unzigzag(u uint64) int64 { return int64(u>>1) ^ -int64(u&1) }

func encodeColumn(dst []byte, p *part, ci int, k colKind) []byte {
	c := &p.cols[ci]
	switch k {
	case kI64:
		// Deltas: times of one trace (rows are sorted by trace) and
		// durations are close to their neighbours.
		prev := int64(0)
		for _, v := range c.i64 {
			dst = binary.AppendUvarint(dst, zigzag(v-prev))
			prev = v
		}
	case kU8:
		dst = append(dst, c.u8...)
	case kU32:
		dst = appendUvarints(dst, c.u32)
	case kDict:
		dst = encodeDict(dst, c.dict.vals)
		dst = appendUvarints(dst, c.u32)
	case kID16:
		dst = append(dst, c.ids...)
	case kID8:
		if p.sch == spanSchema && ci == scParent {
			return encodeParents(dst, p)
		}
		dst = append(dst, c.ids...)
	case kBlob:
		prev := uint32(0)
		for _, o := range c.off {
			dst = binary.AppendUvarint(dst, uint64(o-prev))
			prev = o
		}
		dst = append(dst, c.blob...)
	}
	return dst
}

// encodeParents writes each parent span id as a back-reference to the row
// holding that span within the same trace (rows are sorted by trace id),
// which costs a byte instead of eight random ones. Code 0 is "no parent",
// 1 "explicit id follows in the exception list", k>=2 "row i-(k-2)... ".
func encodeParents(dst []byte, p *part) []byte {
	tids, sids, pids := p.cols[scTrace].ids, p.cols[scSpan].ids, p.cols[scParent].ids
	var explicit []byte
	var zero [8]byte
	traceStart := 0
	pos := map[[8]byte]int{}
	for i := 0; i < p.n; i++ {
		if i == 0 || string(tids[i*16:i*16+16]) != string(tids[traceStart*16:traceStart*16+16]) {
			traceStart = i
			clear(pos)
		}
		var sid, pid [8]byte
		copy(sid[:], sids[i*8:])
		copy(pid[:], pids[i*8:])
		pos[sid] = i
		switch {
		case pid == zero:
			dst = binary.AppendUvarint(dst, 0)
		default:
			if j, ok := pos[pid]; ok && j != i {
				dst = binary.AppendUvarint(dst, zigzag(int64(i-j))+2)
				continue
			}
			// Parent later in sort order or in another block: look ahead in
			// this trace before giving up.
			found := false
			for j := i + 1; j < p.n && string(tids[j*16:j*16+16]) == string(tids[i*16:i*16+16]); j++ {
				if string(sids[j*8:j*8+8]) == string(pid[:]) {
					dst = binary.AppendUvarint(dst, zigzag(int64(i-j))+2)
					found = true
					break
				}
			}
			if !found {
				dst = binary.AppendUvarint(dst, 1)
				explicit = append(explicit, pid[:]...)
			}
		}
	}
	return append(dst, explicit...)
}

// block is an open block file, or one row group of it (the unit queries
// read). Sections are decoded on first use and kept in the shared cache,
// which may drop them again under memory pressure.
type block struct {
	path   string
	id     string // cache key prefix: path, plus #group for a row group
	meta   *blockMeta
	sch    *schema
	cache  *cache
	file   *blockFile
	groups []*block // the row groups of a file-level block
}

// blockFile is the descriptor shared by a block and its row groups.
type blockFile struct {
	mu     sync.Mutex
	f      *os.File
	closed bool
}

func openBlock(path string, c *cache) (*block, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	meta, err := readFooter(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("columnar: block %s: %w", filepath.Base(path), err)
	}
	var sch *schema
	switch meta.Schema {
	case spanSchema.name:
		sch = spanSchema
	case logSchema.name:
		sch = logSchema
	default:
		f.Close()
		return nil, fmt.Errorf("columnar: block %s: unknown schema %q", path, meta.Schema)
	}
	bf := &blockFile{f: f}
	// A block retired by compaction or retention may still be read by
	// queries that took it before: its file is unlinked at once, and the
	// descriptor (which keeps the data readable) closes when the last
	// query lets go of it.
	runtime.AddCleanup(bf, func(f *os.File) { f.Close() }, f)
	// The cache is shared by the span and log tables, whose block files
	// have the same names: key by full path.
	b := &block{path: path, id: path, meta: meta, sch: sch, cache: c, file: bf}
	for i, gm := range meta.Groups {
		b.groups = append(b.groups, &block{path: path, id: fmt.Sprintf("%s#%d", path, i), meta: gm, sch: sch, cache: c, file: bf})
	}
	return b, nil
}

// viewAll loads every row of every group as one part (for compaction).
func (b *block) viewAll() (*part, error) {
	parts := make([]*part, 0, len(b.groups))
	for _, g := range b.groups {
		p, err := g.view(colSet{all: true})
		if err != nil {
			return nil, err
		}
		parts = append(parts, p)
	}
	return concatParts(b.sch, parts), nil
}

func readFooter(f *os.File) (*blockMeta, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := fi.Size()
	tl := int64(8 + len(blockMagic))
	if size < int64(len(blockMagic))+tl {
		return nil, errors.New("truncated")
	}
	tail := make([]byte, tl)
	if _, err := f.ReadAt(tail, size-tl); err != nil {
		return nil, err
	}
	if string(tail[8:]) != blockMagic {
		return nil, errors.New("bad magic")
	}
	n := int64(binary.LittleEndian.Uint32(tail))
	if n > size-tl {
		return nil, errors.New("bad index length")
	}
	idx := make([]byte, n)
	if _, err := f.ReadAt(idx, size-tl-n); err != nil {
		return nil, err
	}
	if crc32.ChecksumIEEE(idx) != binary.LittleEndian.Uint32(tail[4:]) {
		return nil, errors.New("index checksum mismatch")
	}
	var m blockMeta
	if err := json.Unmarshal(idx, &m); err != nil {
		return nil, err
	}
	for i, g := range m.Groups {
		if g == nil {
			return nil, fmt.Errorf("row group %d missing", i)
		}
		for name, s := range g.Sections {
			if s.Off < 0 || s.Len < 0 || s.Off+s.Len > size || s.RawLen < 0 || s.RawLen > 1<<34 {
				return nil, fmt.Errorf("section %s out of bounds", name)
			}
		}
	}
	return &m, nil
}

func (b *block) readSection(name string) ([]byte, error) {
	return b.readSectionTo(name, nil)
}

// readSectionTo decodes a section into dst's storage when it is large
// enough.
func (b *block) readSectionTo(name string, dst []byte) ([]byte, error) {
	s, ok := b.meta.Sections[name]
	if !ok {
		return nil, fmt.Errorf("columnar: block %s has no section %s", b.id, name)
	}
	comp := make([]byte, s.Len)
	b.file.mu.Lock()
	f := b.file.f
	closed := b.file.closed
	b.file.mu.Unlock()
	if closed {
		return nil, errBlockGone
	}
	if _, err := f.ReadAt(comp, s.Off); err != nil && err != io.EOF {
		return nil, err
	}
	if int64(cap(dst)) < s.RawLen {
		dst = make([]byte, 0, s.RawLen)
	}
	var raw []byte
	var err error
	switch s.Codec {
	case "":
		raw, err = zdec.DecodeAll(comp, dst[:0])
	case "s2":
		if n, lerr := s2.DecodedLen(comp); lerr != nil || int64(n) != s.RawLen {
			return nil, fmt.Errorf("columnar: block %s section %s: bad s2 length", b.id, name)
		}
		raw, err = s2.Decode(dst[:s.RawLen], comp)
	default:
		err = fmt.Errorf("unknown codec %q", s.Codec)
	}
	if err != nil {
		return nil, fmt.Errorf("columnar: block %s section %s: %w", b.id, name, err)
	}
	return raw, nil
}

var errBlockGone = errors.New("columnar: block was removed")

// retire forgets the block's cached sections; queries still holding it
// keep reading through its open descriptor.
func (b *block) retire() {
	for _, g := range b.groups {
		b.cache.dropBlock(g.id)
	}
}

// close closes the file now (store shutdown).
func (b *block) close() {
	b.file.mu.Lock()
	if !b.file.closed {
		b.file.closed = true
		b.file.f.Close()
	}
	b.file.mu.Unlock()
	b.retire()
}
