package columnar

import (
	"encoding/binary"
	"fmt"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

var logSchema = &schema{
	name:  "logs",
	cols:  []string{"time", "timestamp", "observed", "severityNumber", "severityText", "traceID", "spanID", "flags", "body", "eventName", "extra"},
	kinds: []colKind{kI64, kI64, kI64, kU8, kDict, kID16, kID8, kU32, kBlob, kDict, kBlob},
	time:  0,
	trace: -1,
}

const (
	lcTime = iota
	lcTimestamp
	lcObserved
	lcSevNum
	lcSevText
	lcTrace
	lcSpan
	lcFlags
	lcBody
	lcEvent
	lcExtra
)

// appendLogs adds every log record of ld to the part.
func (p *part) appendLogs(ld plog.Logs) int {
	var buf, body []byte
	added := 0
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		sls := rl.ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			sl := sls.At(j)
			var resID uint32
			resID, buf = p.addResource(rl.Resource(), rl.SchemaUrl(), sl.Scope(), sl.SchemaUrl(), buf)
			recs := sl.LogRecords()
			for k := 0; k < recs.Len(); k++ {
				lr := recs.At(k)
				row := uint32(p.n)
				ts, obs := int64(lr.Timestamp()), int64(lr.ObservedTimestamp())
				t := ts
				if t == 0 {
					t = obs // the spec's advice: fall back to observed time
				}
				p.touchTime(t)
				c := p.cols
				c[lcTime].i64 = append(c[lcTime].i64, t)
				c[lcTimestamp].i64 = append(c[lcTimestamp].i64, ts)
				c[lcObserved].i64 = append(c[lcObserved].i64, obs)
				c[lcSevNum].u8 = append(c[lcSevNum].u8, uint8(lr.SeverityNumber()))
				var sev uint32
				if s := lr.SeverityText(); s != "" {
					sev = c[lcSevText].dict.id(s)
				}
				c[lcSevText].u32 = append(c[lcSevText].u32, sev)
				tid, sid := lr.TraceID(), lr.SpanID()
				c[lcTrace].ids = append(c[lcTrace].ids, tid[:]...)
				c[lcSpan].ids = append(c[lcSpan].ids, sid[:]...)
				c[lcFlags].u32 = append(c[lcFlags].u32, uint32(lr.Flags()))
				body = appendValue(body[:0], lr.Body())
				c[lcBody].appendBlob(body)
				var ev uint32
				if e := lr.EventName(); e != "" {
					ev = c[lcEvent].dict.id(e)
				}
				c[lcEvent].u32 = append(c[lcEvent].u32, ev)
				buf = binary.AppendUvarint(buf[:0], uint64(lr.DroppedAttributesCount()))
				c[lcExtra].appendBlob(buf)
				p.res = append(p.res, resID)
				buf = p.setAttrs(row, lr.Attributes(), buf)
				p.n++
				p.bytes += 80 + int64(len(body))
				added++
			}
		}
	}
	return added
}

// logsToPlog rebuilds OTLP data for the given rows of p.
func (p *part) logsToPlog(rows []uint32, ld plog.Logs) error {
	byRes := map[uint32]plog.LogRecordSlice{}
	for _, r := range rows {
		rid := p.res[r]
		recs, ok := byRes[rid]
		if !ok {
			rl := ld.ResourceLogs().AppendEmpty()
			sl := rl.ScopeLogs().AppendEmpty()
			resSchema, scSchema, err := decodeResource(p.resources[rid].raw, rl.Resource(), sl.Scope())
			if err != nil {
				return fmt.Errorf("columnar: resource: %w", err)
			}
			rl.SetSchemaUrl(resSchema)
			sl.SetSchemaUrl(scSchema)
			recs = sl.LogRecords()
			byRes[rid] = recs
		}
		lr := recs.AppendEmpty()
		c := p.cols
		i := int(r)
		lr.SetTimestamp(pcommon.Timestamp(c[lcTimestamp].i64[i]))
		lr.SetObservedTimestamp(pcommon.Timestamp(c[lcObserved].i64[i]))
		lr.SetSeverityNumber(plog.SeverityNumber(c[lcSevNum].u8[i]))
		lr.SetSeverityText(c[lcSevText].dict.vals[c[lcSevText].u32[i]])
		lr.SetTraceID(c[lcTrace].id16(i))
		lr.SetSpanID(c[lcSpan].id8(i))
		lr.SetFlags(plog.LogRecordFlags(c[lcFlags].u32[i]))
		if err := decodeValue(string(c[lcBody].blobAt(i)), lr.Body()); err != nil {
			return fmt.Errorf("columnar: log body: %w", err)
		}
		lr.SetEventName(c[lcEvent].dict.vals[c[lcEvent].u32[i]])
		if u, _, err := readUvarint(string(c[lcExtra].blobAt(i))); err == nil {
			lr.SetDroppedAttributesCount(uint32(u))
		}
		var derr error
		p.rowAttrs(r, func(k, enc string) {
			if err := decodeValue(enc, lr.Attributes().PutEmpty(k)); err != nil {
				derr = err
			}
		})
		if derr != nil {
			return derr
		}
	}
	return nil
}

// logBody returns the string form of a row's body.
func (p *part) logBody(row int) string {
	return valueString(string(p.cols[lcBody].blobAt(row)))
}

// severityFromNumber names a severity number as OTLP ranges them, for
// records without severity text.
func severityFromNumber(n uint8) string {
	switch {
	case n == 0:
		return ""
	case n <= 4:
		return "trace"
	case n <= 8:
		return "debug"
	case n <= 12:
		return "info"
	case n <= 16:
		return "warn"
	case n <= 20:
		return "error"
	}
	return "fatal"
}
