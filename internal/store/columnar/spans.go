package columnar

import (
	"encoding/binary"
	"fmt"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

var spanSchema = &schema{
	name:  "spans",
	cols:  []string{"start", "duration", "traceID", "spanID", "parentID", "name", "kind", "status", "statusMessage", "flags", "extra"},
	kinds: []colKind{kI64, kI64, kID16, kID8, kID8, kDict, kU8, kU8, kDict, kU32, kBlob},
	time:  0,
	trace: 2,
}

// Span column indexes, in spanSchema order.
const (
	scStart = iota
	scDur
	scTrace
	scSpan
	scParent
	scName
	scKind
	scStatus
	scStatusMsg
	scFlags
	scExtra
)

// appendTraces adds every span of td to the part and returns the number of spans.
func (p *part) appendTraces(td ptrace.Traces) int {
	var buf, extra []byte
	added := 0
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			ss := sss.At(j)
			var resID uint32
			resID, buf = p.addResource(rs.Resource(), rs.SchemaUrl(), ss.Scope(), ss.SchemaUrl(), buf)
			spans := ss.Spans()
			for k := 0; k < spans.Len(); k++ {
				sp := spans.At(k)
				row := uint32(p.n)
				start := int64(sp.StartTimestamp())
				p.touchTime(start)
				c := p.cols
				c[scStart].i64 = append(c[scStart].i64, start)
				c[scDur].i64 = append(c[scDur].i64, int64(sp.EndTimestamp())-start)
				tid, sid, pid := sp.TraceID(), sp.SpanID(), sp.ParentSpanID()
				c[scTrace].ids = append(c[scTrace].ids, tid[:]...)
				c[scSpan].ids = append(c[scSpan].ids, sid[:]...)
				c[scParent].ids = append(c[scParent].ids, pid[:]...)
				c[scName].u32 = append(c[scName].u32, c[scName].dict.id(sp.Name()))
				c[scKind].u8 = append(c[scKind].u8, uint8(sp.Kind()))
				c[scStatus].u8 = append(c[scStatus].u8, uint8(sp.Status().Code()))
				var msg uint32
				if m := sp.Status().Message(); m != "" {
					msg = c[scStatusMsg].dict.id(m)
				}
				c[scStatusMsg].u32 = append(c[scStatusMsg].u32, msg)
				c[scFlags].u32 = append(c[scFlags].u32, sp.Flags())
				extra = encodeSpanExtra(extra[:0], sp)
				c[scExtra].appendBlob(extra)
				p.res = append(p.res, resID)
				buf = p.setAttrs(row, sp.Attributes(), buf)
				p.n++
				p.bytes += 80 + int64(len(extra))
				added++
			}
		}
	}
	return added
}

// encodeSpanExtra writes what queries never filter on but a trace must
// keep: trace state, dropped counts, events and links.
func encodeSpanExtra(dst []byte, sp ptrace.Span) []byte {
	dst = appendString(dst, sp.TraceState().AsRaw())
	dst = binary.AppendUvarint(dst, uint64(sp.DroppedAttributesCount()))
	dst = binary.AppendUvarint(dst, uint64(sp.DroppedEventsCount()))
	dst = binary.AppendUvarint(dst, uint64(sp.DroppedLinksCount()))
	evs := sp.Events()
	dst = binary.AppendUvarint(dst, uint64(evs.Len()))
	for i := 0; i < evs.Len(); i++ {
		e := evs.At(i)
		dst = binary.AppendUvarint(dst, uint64(e.Timestamp()))
		dst = appendString(dst, e.Name())
		dst = appendMapBody(dst, e.Attributes())
		dst = binary.AppendUvarint(dst, uint64(e.DroppedAttributesCount()))
	}
	links := sp.Links()
	dst = binary.AppendUvarint(dst, uint64(links.Len()))
	for i := 0; i < links.Len(); i++ {
		l := links.At(i)
		tid, sid := l.TraceID(), l.SpanID()
		dst = append(dst, tid[:]...)
		dst = append(dst, sid[:]...)
		dst = appendString(dst, l.TraceState().AsRaw())
		dst = binary.AppendUvarint(dst, uint64(l.Flags()))
		dst = appendMapBody(dst, l.Attributes())
		dst = binary.AppendUvarint(dst, uint64(l.DroppedAttributesCount()))
	}
	return dst
}

func decodeSpanExtra(p string, sp ptrace.Span) error {
	var s string
	var u uint64
	var err error
	if s, p, err = readString(p); err != nil {
		return err
	}
	sp.TraceState().FromRaw(s)
	if u, p, err = readUvarint(p); err != nil {
		return err
	}
	sp.SetDroppedAttributesCount(uint32(u))
	if u, p, err = readUvarint(p); err != nil {
		return err
	}
	sp.SetDroppedEventsCount(uint32(u))
	if u, p, err = readUvarint(p); err != nil {
		return err
	}
	sp.SetDroppedLinksCount(uint32(u))
	if u, p, err = readUvarint(p); err != nil || u > uint64(len(p)) {
		return errCorrupt
	}
	evs := sp.Events()
	for n := u; n > 0; n-- {
		e := evs.AppendEmpty()
		if u, p, err = readUvarint(p); err != nil {
			return err
		}
		e.SetTimestamp(pcommon.Timestamp(u))
		if s, p, err = readString(p); err != nil {
			return err
		}
		e.SetName(s)
		if p, err = decodeMapBody(p, e.Attributes()); err != nil {
			return err
		}
		if u, p, err = readUvarint(p); err != nil {
			return err
		}
		e.SetDroppedAttributesCount(uint32(u))
	}
	if u, p, err = readUvarint(p); err != nil || u > uint64(len(p)) {
		return errCorrupt
	}
	links := sp.Links()
	for n := u; n > 0; n-- {
		l := links.AppendEmpty()
		if len(p) < 24 {
			return errCorrupt
		}
		var tid [16]byte
		var sid [8]byte
		copy(tid[:], p[:16])
		copy(sid[:], p[16:24])
		l.SetTraceID(tid)
		l.SetSpanID(sid)
		p = p[24:]
		if s, p, err = readString(p); err != nil {
			return err
		}
		l.TraceState().FromRaw(s)
		if u, p, err = readUvarint(p); err != nil {
			return err
		}
		l.SetFlags(uint32(u))
		if p, err = decodeMapBody(p, l.Attributes()); err != nil {
			return err
		}
		if u, p, err = readUvarint(p); err != nil {
			return err
		}
		l.SetDroppedAttributesCount(uint32(u))
	}
	return nil
}

// spansToTraces rebuilds OTLP data for the given rows of p, appending to
// td: one ResourceSpans/ScopeSpans per distinct (resource, scope).
func (p *part) spansToTraces(rows []uint32, td ptrace.Traces) error {
	byRes := map[uint32]ptrace.SpanSlice{}
	for _, r := range rows {
		rid := p.res[r]
		spans, ok := byRes[rid]
		if !ok {
			rs := td.ResourceSpans().AppendEmpty()
			ss := rs.ScopeSpans().AppendEmpty()
			resSchema, scSchema, err := decodeResource(p.resources[rid].raw, rs.Resource(), ss.Scope())
			if err != nil {
				return fmt.Errorf("columnar: resource: %w", err)
			}
			rs.SetSchemaUrl(resSchema)
			ss.SetSchemaUrl(scSchema)
			spans = ss.Spans()
			byRes[rid] = spans
		}
		sp := spans.AppendEmpty()
		c := p.cols
		i := int(r)
		start := c[scStart].i64[i]
		sp.SetStartTimestamp(pcommon.Timestamp(start))
		sp.SetEndTimestamp(pcommon.Timestamp(start + c[scDur].i64[i]))
		sp.SetTraceID(c[scTrace].id16(i))
		sp.SetSpanID(c[scSpan].id8(i))
		sp.SetParentSpanID(c[scParent].id8(i))
		sp.SetName(c[scName].dict.vals[c[scName].u32[i]])
		sp.SetKind(ptrace.SpanKind(c[scKind].u8[i]))
		sp.Status().SetCode(ptrace.StatusCode(c[scStatus].u8[i]))
		sp.Status().SetMessage(c[scStatusMsg].dict.vals[c[scStatusMsg].u32[i]])
		sp.SetFlags(c[scFlags].u32[i])
		if err := decodeSpanExtra(string(c[scExtra].blobAt(i)), sp); err != nil {
			return fmt.Errorf("columnar: span extra: %w", err)
		}
		var derr error
		p.rowAttrs(r, func(k, enc string) {
			if err := decodeValue(enc, sp.Attributes().PutEmpty(k)); err != nil {
				derr = err
			}
		})
		if derr != nil {
			return derr
		}
	}
	return nil
}
