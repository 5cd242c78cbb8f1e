package columnar

import (
	"context"
	"encoding/binary"
	"fmt"
	"iter"
	"math/bits"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/trenchcoat/trenchcoat/internal/store"
)

// source is a part to read: a head snapshot, or a block loaded on demand.
type source struct {
	head *part
	blk  *block
}

func (s source) minT() int64 {
	if s.head != nil {
		return s.head.minT
	}
	return s.blk.meta.MinT
}

func (s source) maxT() int64 {
	if s.head != nil {
		return s.head.maxT
	}
	return s.blk.meta.MaxT
}

func (s source) load(need colSet) (*part, error) {
	if s.head != nil {
		return s.head, nil
	}
	return s.blk.view(need)
}

// sources lists what overlaps [start, end), newest first.
func (t *table) sources(start, end time.Time) []source {
	heads, blocks := t.snapshot()
	lo, hi := start.UnixNano(), end.UnixNano()
	var out []source
	for _, h := range heads {
		if h.n > 0 && h.minT < hi && h.maxT >= lo {
			out = append(out, source{head: h})
		}
	}
	for i := len(blocks) - 1; i >= 0; i-- {
		b := blocks[i]
		if b.meta.MinT >= hi || b.meta.MaxT < lo {
			continue
		}
		for _, g := range b.groups {
			if g.meta.MinT < hi && g.meta.MaxT >= lo {
				out = append(out, source{blk: g})
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].maxT() > out[j].maxT() })
	return out
}

// parallel runs fn over srcs on GOMAXPROCS workers and stops at the first
// error or when ctx is done.
func parallel(ctx context.Context, srcs []source, fn func(source) error) error {
	workers := min(runtime.GOMAXPROCS(0), len(srcs))
	ch := make(chan source)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range ch {
				if err := fn(s); err != nil {
					errs <- err
					cancel()
					return
				}
			}
		}()
	}
loop:
	for _, s := range srcs {
		select {
		case ch <- s:
		case <-ctx.Done():
			break loop
		}
	}
	close(ch)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
	}
	return ctx.Err()
}

// selectRows loads what q needs from src and returns the part and its
// rows matching the time range and filter.
func (t *table) selectRows(src source, start, end time.Time, filter *store.Cond, extra colSet) (*part, bitset, error) {
	need := extra
	// Clip: callers share extra across goroutines; appends must not write
	// into its backing array.
	need.cols = append(extra.cols[:len(extra.cols):len(extra.cols)], t.sch.time)
	need.attrs = extra.attrs[:len(extra.attrs):len(extra.attrs)]
	if err := needs(t.sch, filter, &need); err != nil {
		return nil, nil, err
	}
	p, err := src.load(need)
	if err != nil {
		return nil, nil, err
	}
	b, err := p.eval(filter)
	if err != nil {
		return nil, nil, err
	}
	lo, hi := start.UnixNano(), end.UnixNano()
	if p.minT < lo || p.maxT >= hi {
		tc := p.cols[t.sch.time].i64
		for i := range b {
			w := b[i]
			for w != 0 {
				bit := bits.TrailingZeros64(w)
				w &= w - 1
				row := i<<6 + bit
				if tc[row] < lo || tc[row] >= hi {
					b[i] &^= 1 << uint(bit)
				}
			}
		}
	}
	return p, b, nil
}

// groupCol resolves one GroupBy field to a small id per row.
type groupCol struct {
	perRes []uint32 // by resource index, for resource-level fields
	perRow []uint32 // by row otherwise
	names  []string // id -> label value; names[0] = ""
}

func (g *groupCol) at(p *part, row int) uint32 {
	if g.perRes != nil {
		return g.perRes[p.res[row]]
	}
	return g.perRow[row]
}

func (t *table) groupCol(p *part, f store.Field) (*groupCol, error) {
	g := &groupCol{}
	local := newDict()
	resLevel := func(get func(r *resource) string) {
		g.perRes = make([]uint32, len(p.resources))
		for i, r := range p.resources {
			if v := get(r); v != "" {
				g.perRes[i] = local.id(v)
			}
		}
		g.names = local.vals
	}
	switch f.Scope {
	case store.ScopeResource:
		resLevel(func(r *resource) string { return valueString(r.attrs[f.Name]) })
		return g, nil
	case store.ScopeSpan, store.ScopeAny:
		sp := p.attrs[f.Name]
		if f.Scope == store.ScopeAny && sp == nil {
			resLevel(func(r *resource) string { return valueString(r.attrs[f.Name]) })
			return g, nil
		}
		g.perRow = make([]uint32, p.n)
		if f.Scope == store.ScopeAny {
			for row, r := range p.res[:p.n] {
				if v, ok := p.resources[r].attrs[f.Name]; ok {
					g.perRow[row] = local.id(valueString(v))
				}
			}
		}
		if sp != nil {
			ids := make([]uint32, len(sp.dict.vals))
			for i, v := range sp.dict.vals[1:] {
				ids[i+1] = local.id(valueString(v))
			}
			for i, r := range sp.rows {
				g.perRow[r] = ids[sp.vals[i]]
			}
		}
		g.names = local.vals
		return g, nil
	}
	switch f.Name {
	case store.IntrinsicService:
		resLevel(func(r *resource) string { return r.service })
		return g, nil
	case store.IntrinsicLogGroup:
		resLevel(func(r *resource) string { return r.logGroup })
		return g, nil
	}
	g.perRow = make([]uint32, p.n)
	if t.sch == spanSchema {
		switch f.Name {
		case store.IntrinsicName, store.IntrinsicStatusMessage:
			c := &p.cols[scName]
			if f.Name == store.IntrinsicStatusMessage {
				c = &p.cols[scStatusMsg]
			}
			copy(g.perRow, c.u32[:p.n])
			g.names = c.dict.vals
			return g, nil
		case store.IntrinsicStatus, store.IntrinsicKind:
			col, names := p.cols[scStatus].u8, statusNames
			if f.Name == store.IntrinsicKind {
				col, names = p.cols[scKind].u8, kindNames
			}
			g.names = append([]string{""}, names...)
			for row, v := range col[:p.n] {
				if int(v) < len(names) {
					g.perRow[row] = uint32(v) + 1
				}
			}
			return g, nil
		}
	} else if f.Name == store.IntrinsicSeverity {
		// Resolve each severity text and number once, not once per row.
		text := p.cols[lcSevText]
		byText := make([]uint32, len(text.dict.vals))
		for i, v := range text.dict.vals[1:] {
			byText[i+1] = local.id(strings.ToLower(v))
		}
		var byNum [256]uint32
		for n := 1; n < 256; n++ {
			byNum[n] = local.id(severityFromNumber(uint8(n)))
		}
		nums := p.cols[lcSevNum].u8
		for row, id := range text.u32[:p.n] {
			if id != 0 {
				g.perRow[row] = byText[id]
			} else if n := nums[row]; n != 0 {
				g.perRow[row] = byNum[n]
			}
		}
		g.names = local.vals
		return g, nil
	}
	return nil, fmt.Errorf("%w: cannot group by %s", store.ErrUnsupported, f)
}

// composite combines several group columns into one whose names are the
// members' names joined with \x00.
// Only the selected rows are resolved: the others are never grouped.
func composite(p *part, gcs []*groupCol, sel bitset) *groupCol {
	c := &groupCol{perRow: make([]uint32, p.n)}
	tuples := newDict()
	names := newDict()
	key := make([]byte, 4*len(gcs))
	parts := make([]string, len(gcs))
	sel.each(func(row int) bool {
		for i, g := range gcs {
			binary.LittleEndian.PutUint32(key[4*i:], g.at(p, row))
		}
		before := tuples.len()
		id := tuples.idBytes(key)
		if tuples.len() > before {
			for i, g := range gcs {
				parts[i] = g.names[g.at(p, row)]
			}
			// Tuple ids and name ids advance together: one name per tuple.
			names.vals = append(names.vals, strings.Join(parts, "\x00"))
		}
		c.perRow[row] = id
		return true
	})
	c.names = names.vals
	return c
}

type acc struct {
	labels []string
	counts []float64
	hist   [][]uint64
}

// scratchPool holds buffers for log bodies decoded by aggregations.
var scratchPool = sync.Pool{New: func() any { return new([]byte) }}

// aggregate runs q over a table.
func (t *table) aggregate(ctx context.Context, q store.Aggregate) ([]store.GroupSeries, error) {
	if !q.End.After(q.Start) {
		return nil, nil
	}
	nb := 1
	if q.Step > 0 {
		nb = int((q.End.Sub(q.Start) + q.Step - 1) / q.Step)
		if nb > 11000 {
			return nil, fmt.Errorf("%w: %d time buckets (max 11000): use a larger step", store.ErrLimit, nb)
		}
	}
	extra := colSet{}
	for _, f := range q.GroupBy {
		if err := fieldNeeds(t.sch, f, &extra); err != nil {
			return nil, err
		}
	}
	switch q.Func {
	case store.AggDurationHistogram:
		if t.sch != spanSchema {
			return nil, fmt.Errorf("%w: duration histogram of logs", store.ErrUnsupported)
		}
		extra.cols = append(extra.cols, scDur)
	case store.AggBytes:
		if t.sch != logSchema {
			return nil, fmt.Errorf("%w: bytes of spans", store.ErrUnsupported)
		}
		extra.cols = append(extra.cols, lcBody)
	}
	var mu sync.Mutex
	total := map[string]*acc{}
	lo, step := q.Start.UnixNano(), int64(q.Step)
	err := parallel(ctx, t.sources(q.Start, q.End), func(src source) error {
		buf := scratchPool.Get().(*[]byte)
		defer scratchPool.Put(buf) // nothing below outlives this call
		need := extra
		need.scratch = buf
		p, sel, err := t.selectRows(src, q.Start, q.End, q.Filter, need)
		if err != nil {
			return err
		}
		gcs := make([]*groupCol, len(q.GroupBy))
		for i, f := range q.GroupBy {
			if gcs[i], err = t.groupCol(p, f); err != nil {
				return err
			}
		}
		if len(gcs) > 4 {
			// The row loop keys on four ids; fold the fourth field onwards
			// into one composite column (a LogQL stream has many labels).
			gcs = append(gcs[:3], composite(p, gcs[3:], sel))
		}
		local := map[[4]uint32]*acc{}
		tc := p.cols[t.sch.time].i64
		var dur []int64
		if q.Func == store.AggDurationHistogram {
			dur = p.cols[scDur].i64
		}
		var body *column
		if q.Func == store.AggBytes {
			body = &p.cols[lcBody]
		}
		var key [4]uint32
		var last *acc
		var lastKey [4]uint32
		sel.each(func(row int) bool {
			for i, g := range gcs {
				key[i] = g.at(p, row)
			}
			a := last
			if a == nil || key != lastKey {
				a = local[key]
				if a == nil {
					a = &acc{counts: make([]float64, nb)}
					if dur != nil {
						a.hist = make([][]uint64, nb)
					}
					local[key] = a
				}
				last, lastKey = a, key
			}
			bk := 0
			if step > 0 {
				bk = int((tc[row] - lo) / step)
			}
			switch {
			case dur != nil:
				if a.hist[bk] == nil {
					a.hist[bk] = make([]uint64, len(store.DurationBuckets)+1)
				}
				a.hist[bk][durationBucket(dur[row])]++
				a.counts[bk]++
			case body != nil:
				v := body.blobAt(row)
				if len(v) > 0 {
					a.counts[bk] += float64(len(v) - 1)
				}
			default:
				a.counts[bk]++
			}
			return true
		})
		mu.Lock()
		defer mu.Unlock()
		for k, a := range local {
			labels := make([]string, 0, len(q.GroupBy))
			for i, g := range gcs {
				if i == 3 && len(q.GroupBy) > 4 {
					labels = append(labels, strings.Split(g.names[k[i]], "\x00")...)
				} else {
					labels = append(labels, g.names[k[i]])
				}
			}
			lk := strings.Join(labels, "\x00")
			tot := total[lk]
			if tot == nil {
				a.labels = labels
				total[lk] = a
				if q.MaxSeries > 0 && len(total) > q.MaxSeries {
					return fmt.Errorf("%w: more than %d series", store.ErrLimit, q.MaxSeries)
				}
				continue
			}
			for i, c := range a.counts {
				tot.counts[i] += c
			}
			for i, h := range a.hist {
				if h == nil {
					continue
				}
				if tot.hist[i] == nil {
					tot.hist[i] = h
					continue
				}
				for j, c := range h {
					tot.hist[i][j] += c
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]store.GroupSeries, 0, len(total))
	for _, a := range total {
		out = append(out, store.GroupSeries{Labels: a.labels, Counts: a.counts, Hist: a.hist})
	}
	sort.Slice(out, func(i, j int) bool {
		return strings.Join(out[i].Labels, "\x00") < strings.Join(out[j].Labels, "\x00")
	})
	return out, nil
}

// durationBucket is the index in store.DurationBuckets (powers of two from
// 2^10 ns) of the first bound >= d; the last index is +Inf.
func durationBucket(d int64) int {
	if d <= 1024 {
		return 0
	}
	i := bits.Len64(uint64(d-1)) - 10
	if i >= len(store.DurationBuckets) {
		return len(store.DurationBuckets)
	}
	return i
}

// AggregateSpans implements store.TraceReader.
func (s *Store) AggregateSpans(ctx context.Context, q store.Aggregate) ([]store.GroupSeries, error) {
	return s.spans.aggregate(ctx, q)
}

// AggregateLogs implements store.LogReader.
func (s *Store) AggregateLogs(ctx context.Context, q store.Aggregate) ([]store.GroupSeries, error) {
	return s.logs.aggregate(ctx, q)
}

// GetTrace implements store.TraceReader.
func (s *Store) GetTrace(ctx context.Context, id pcommon.TraceID) (ptrace.Traces, error) {
	td := ptrace.NewTraces()
	heads, blocks := s.spans.snapshot()
	found := false
	for _, h := range heads {
		var rows []uint32
		ids := h.cols[scTrace].ids
		for r := 0; r < h.n; r++ {
			if string(ids[r*16:r*16+16]) == string(id[:]) {
				rows = append(rows, uint32(r))
			}
		}
		if len(rows) > 0 {
			found = true
			if err := h.spansToTraces(rows, td); err != nil {
				return td, err
			}
		}
	}
	for _, blk := range blocks {
		for _, b := range blk.groups {
			if err := ctx.Err(); err != nil {
				return td, err
			}
			bl, err := b.bloom()
			if err != nil {
				return td, err
			}
			if !bl.mayContain(id) {
				continue
			}
			tc, err := b.loadCol(scTrace)
			if err != nil {
				return td, err
			}
			var rows []uint32
			for i := 0; i < b.meta.Rows; i++ {
				if string(tc.ids[i*16:i*16+16]) == string(id[:]) {
					rows = append(rows, uint32(i))
				}
			}
			if len(rows) == 0 {
				continue
			}
			p, err := b.view(colSet{all: true})
			if err != nil {
				return td, err
			}
			found = true
			if err := p.spansToTraces(rows, td); err != nil {
				return td, err
			}
		}
	}
	if !found {
		return td, store.ErrNotFound
	}
	return td, nil
}

// FindSpans implements store.TraceReader: newest sources first, rows
// within a source in storage order.
func (s *Store) FindSpans(ctx context.Context, q store.SpanQuery) iter.Seq2[store.SpanRow, error] {
	return func(yield func(store.SpanRow, error) bool) {
		n := 0
		t := s.spans
		for _, src := range t.sources(q.Start, q.End) {
			if err := ctx.Err(); err != nil {
				yield(store.SpanRow{}, err)
				return
			}
			p, sel, err := t.selectRows(src, q.Start, q.End, q.Filter, colSet{})
			if err != nil {
				yield(store.SpanRow{}, err)
				return
			}
			if sel.count() == 0 {
				continue
			}
			if src.blk != nil {
				if p, err = src.blk.view(colSet{all: true}); err != nil {
					yield(store.SpanRow{}, err)
					return
				}
			}
			stop := false
			sel.each(func(row int) bool {
				if !yield(spanRow(p, row), nil) {
					stop = true
					return false
				}
				n++
				return q.Limit <= 0 || n < q.Limit
			})
			if stop || (q.Limit > 0 && n >= q.Limit) {
				return
			}
		}
	}
}

func spanRow(p *part, row int) store.SpanRow {
	c := p.cols
	r := p.resources[p.res[row]]
	sr := store.SpanRow{
		TraceID:       c[scTrace].id16(row),
		SpanID:        c[scSpan].id8(row),
		ParentSpanID:  c[scParent].id8(row),
		Start:         c[scStart].i64[row],
		Duration:      c[scDur].i64[row],
		Service:       r.service,
		Name:          c[scName].dict.vals[c[scName].u32[row]],
		Kind:          ptrace.SpanKind(c[scKind].u8[row]),
		StatusCode:    ptrace.StatusCode(c[scStatus].u8[row]),
		StatusMessage: c[scStatusMsg].dict.vals[c[scStatusMsg].u32[row]],
		Resource:      make(map[string]string, len(r.attrs)),
		Attributes:    map[string]string{},
	}
	for k, v := range r.attrs {
		sr.Resource[k] = valueString(v)
	}
	for k, sp := range p.attrs {
		if id := sp.at(uint32(row)); id != 0 {
			sr.Attributes[k] = valueString(sp.dict.vals[id])
		}
	}
	return sr
}

// FindLogs implements store.LogReader. Rows are ordered by time within
// each source, and sources newest first; with Backward unset the caller
// gets each source oldest first.
func (s *Store) FindLogs(ctx context.Context, q store.LogQuery) iter.Seq2[store.LogRow, error] {
	return func(yield func(store.LogRow, error) bool) {
		n := 0
		t := s.logs
		srcs := t.sources(q.Start, q.End)
		if !q.Backward {
			for i, j := 0, len(srcs)-1; i < j; i, j = i+1, j-1 {
				srcs[i], srcs[j] = srcs[j], srcs[i]
			}
		}
		for _, src := range srcs {
			if err := ctx.Err(); err != nil {
				yield(store.LogRow{}, err)
				return
			}
			p, sel, err := t.selectRows(src, q.Start, q.End, q.Filter, colSet{})
			if err != nil {
				yield(store.LogRow{}, err)
				return
			}
			if sel.count() == 0 {
				continue
			}
			if src.blk != nil {
				if p, err = src.blk.view(colSet{all: true}); err != nil {
					yield(store.LogRow{}, err)
					return
				}
			}
			var rows []int
			sel.each(func(row int) bool { rows = append(rows, row); return true })
			tc := p.cols[lcTime].i64
			sort.SliceStable(rows, func(i, j int) bool {
				if q.Backward {
					return tc[rows[i]] > tc[rows[j]]
				}
				return tc[rows[i]] < tc[rows[j]]
			})
			for _, row := range rows {
				if !yield(logRow(p, row), nil) {
					return
				}
				n++
				if q.Limit > 0 && n >= q.Limit {
					return
				}
			}
		}
	}
}

func logRow(p *part, row int) store.LogRow {
	c := p.cols
	r := p.resources[p.res[row]]
	lr := store.LogRow{
		Time:           c[lcTime].i64[row],
		SeverityNumber: int32(c[lcSevNum].u8[row]),
		SeverityText:   c[lcSevText].dict.vals[c[lcSevText].u32[row]],
		Body:           p.logBody(row),
		TraceID:        c[lcTrace].id16(row),
		SpanID:         c[lcSpan].id8(row),
		Service:        r.service,
		LogGroup:       r.logGroup,
		Resource:       make(map[string]string, len(r.attrs)),
		Attributes:     map[string]string{},
	}
	for k, v := range r.attrs {
		lr.Resource[k] = valueString(v)
	}
	for k, sp := range p.attrs {
		if id := sp.at(uint32(row)); id != 0 {
			lr.Attributes[k] = valueString(sp.dict.vals[id])
		}
	}
	return lr
}

func (t *table) attributeKeys(ctx context.Context, scope store.Scope, start, end time.Time) ([]store.KeyCount, error) {
	counts := map[string]int64{}
	var mu sync.Mutex
	err := parallel(ctx, t.sources(start, end), func(src source) error {
		local := map[string]int64{}
		if scope == store.ScopeResource || scope == store.ScopeAny {
			p, err := src.load(colSet{})
			if err != nil {
				return err
			}
			perRes := make([]int64, len(p.resources))
			for _, r := range p.res[:p.n] {
				perRes[r]++
			}
			for i, r := range p.resources {
				for k := range r.attrs {
					local[k] += perRes[i]
				}
			}
		}
		if scope == store.ScopeSpan || scope == store.ScopeAny {
			if src.head != nil {
				for k, sp := range src.head.attrs {
					local[k] += int64(len(sp.rows))
				}
			} else {
				for _, k := range src.blk.meta.Attrs {
					local[k] += int64(src.blk.meta.Sections["attr:"+k].RawLen) // loading every column to count rows would cost more than the answer is worth; raw size ranks keys by use
				}
			}
		}
		mu.Lock()
		for k, v := range local {
			counts[k] += v
		}
		mu.Unlock()
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]store.KeyCount, 0, len(counts))
	for k, c := range counts {
		out = append(out, store.KeyCount{Scope: scope, Key: k, Count: c})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Key < out[j].Key
	})
	return out, nil
}

func (t *table) attributeValues(ctx context.Context, f store.Field, filter *store.Cond, start, end time.Time, limit int) ([]store.KeyCount, error) {
	gs, err := t.aggregate(ctx, store.Aggregate{Start: start, End: end, Filter: filter, GroupBy: []store.Field{f}, Func: store.AggCount})
	if err != nil {
		return nil, err
	}
	out := make([]store.KeyCount, 0, len(gs))
	for _, g := range gs {
		if g.Labels[0] == "" {
			continue
		}
		out = append(out, store.KeyCount{Scope: f.Scope, Key: g.Labels[0], Count: int64(g.Counts[0])})
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
	return out, nil
}

// SpanAttributeKeys implements store.TraceReader.
func (s *Store) SpanAttributeKeys(ctx context.Context, scope store.Scope, start, end time.Time) ([]store.KeyCount, error) {
	return s.spans.attributeKeys(ctx, scope, start, end)
}

// SpanAttributeValues implements store.TraceReader.
func (s *Store) SpanAttributeValues(ctx context.Context, f store.Field, filter *store.Cond, start, end time.Time, limit int) ([]store.KeyCount, error) {
	return s.spans.attributeValues(ctx, f, filter, start, end, limit)
}

// LogAttributeKeys implements store.LogReader.
func (s *Store) LogAttributeKeys(ctx context.Context, scope store.Scope, start, end time.Time) ([]store.KeyCount, error) {
	return s.logs.attributeKeys(ctx, scope, start, end)
}

// LogAttributeValues implements store.LogReader.
func (s *Store) LogAttributeValues(ctx context.Context, f store.Field, filter *store.Cond, start, end time.Time, limit int) ([]store.KeyCount, error) {
	return s.logs.attributeValues(ctx, f, filter, start, end, limit)
}
