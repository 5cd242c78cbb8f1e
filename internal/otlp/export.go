package otlp

import (
	"context"
	"errors"
	"fmt"

	"github.com/trenchcoat/trenchcoat/internal/store"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// partial is what goes into an ExportResponse's partial_success.
type partial struct {
	rejected int64
	msg      string
}

func (p *partial) add(n int64, msg string) {
	if n <= 0 && msg == "" {
		return
	}
	p.rejected += n
	if p.msg == "" {
		p.msg = msg
	} else if msg != "" {
		p.msg += "; " + msg
	}
}

func (r *Receiver) flush(s *sanitizer) {
	if s.truncated > 0 {
		r.m.truncated.Add(float64(s.truncated))
	}
	if s.dropped > 0 {
		r.m.dropped.Add(float64(s.dropped))
	}
	if s.invalidUTF8 > 0 {
		r.m.invalidUTF8.Add(float64(s.invalidUTF8))
	}
}

// finish turns the Consumer's answer into the response and counts the
// items; n is the number of items handed to the Consumer.
func (r *Receiver) finish(t transport, sig signal, n int64, err error, p *partial) *exportError {
	c := &r.m.items[t][sig]
	var pe *store.PartialError
	switch {
	case err == nil:
		c.accepted.Add(float64(n))
	case !errors.Is(err, store.ErrOverloaded) && !errors.Is(err, store.ErrUnavailable) && errors.As(err, &pe):
		rej := min(max(pe.Rejected, 0), n)
		c.accepted.Add(float64(n - rej))
		c.refused.Add(float64(rej))
		p.add(rej, pe.Reason)
	default:
		c.refused.Add(float64(n))
		e := consumerError(err)
		if e.outcome == "error" {
			r.log.Error("OTLP consumer failed", "signal", sig.String(), "transport", t.String(), "items", n, "err", err)
		}
		r.m.request(t, sig, e.outcome)
		return e
	}
	if p.rejected > 0 || p.msg != "" {
		r.m.request(t, sig, "partial")
	} else {
		r.m.request(t, sig, "ok")
	}
	return nil
}

// invalid counts a request refused after decoding.
func (r *Receiver) invalid(t transport, sig signal, n int64, msg string) *exportError {
	r.m.items[t][sig].refused.Add(float64(n))
	e := invalidArgument(msg)
	r.m.request(t, sig, e.outcome)
	return e
}

func (r *Receiver) consumeTraces(ctx context.Context, t transport, td ptrace.Traces) (partial, *exportError) {
	var p partial
	s := sanitizer{limits: r.limits}
	rejected := s.traces(td)
	r.flush(&s)
	if s.err != nil {
		return p, r.invalid(t, sigTraces, int64(td.SpanCount()+rejected), s.err.Error())
	}
	if rejected > 0 {
		r.m.rejectedIDs.Add(float64(rejected))
		r.m.items[t][sigTraces].refused.Add(float64(rejected))
		p.add(int64(rejected), fmt.Sprintf("%d spans with an empty trace_id or span_id rejected", rejected))
	}
	n := int64(td.SpanCount())
	if n == 0 {
		// An empty request is valid OTLP: answer success, consume nothing.
		return p, r.finish(t, sigTraces, 0, nil, &p)
	}
	return p, r.finish(t, sigTraces, n, r.consumer.ConsumeTraces(ctx, td), &p)
}

func (r *Receiver) consumeLogs(ctx context.Context, t transport, ld plog.Logs) (partial, *exportError) {
	var p partial
	s := sanitizer{limits: r.limits}
	s.logs(ld)
	r.flush(&s)
	n := int64(ld.LogRecordCount())
	if s.err != nil {
		return p, r.invalid(t, sigLogs, n, s.err.Error())
	}
	if n == 0 {
		return p, r.finish(t, sigLogs, 0, nil, &p)
	}
	return p, r.finish(t, sigLogs, n, r.consumer.ConsumeLogs(ctx, ld), &p)
}

func (r *Receiver) consumeMetrics(ctx context.Context, t transport, md pmetric.Metrics) (partial, *exportError) {
	var p partial
	s := sanitizer{limits: r.limits}
	s.metrics(md)
	r.flush(&s)
	n := int64(md.DataPointCount())
	if s.err != nil {
		return p, r.invalid(t, sigMetrics, n, s.err.Error())
	}
	if n == 0 {
		return p, r.finish(t, sigMetrics, 0, nil, &p)
	}
	return p, r.finish(t, sigMetrics, n, r.consumer.ConsumeMetrics(ctx, md), &p)
}
