package otlp

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc/codes"
)

func (r *Receiver) newHTTPMux() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/v1/traces", r.httpHandler(sigTraces))
	mux.Handle("/v1/logs", r.httpHandler(sigLogs))
	mux.Handle("/v1/metrics", r.httpHandler(sigMetrics))
	return mux
}

// httpHandler serves one OTLP/HTTP path. Checks run cheapest first, and a
// request slot is taken before the body is read, so refused requests cost
// no body memory.
func (r *Receiver) httpHandler(sig signal) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		enc, ctOK := parseContentType(req.Header.Get("Content-Type"))
		if !ctOK {
			// Unknown request encoding: answer in JSON, the readable one.
			enc = encJSON
		}
		fail := func(e *exportError) {
			e.writeHTTP(w, enc, r.cfg.RetryAfter)
		}
		if req.Method != http.MethodPost {
			r.m.request(transportHTTP, sig, "invalid")
			fail(&exportError{code: codes.Unimplemented, http: http.StatusMethodNotAllowed,
				msg: fmt.Sprintf("method %s not allowed, use POST", req.Method)})
			return
		}
		if !ctOK {
			e := unsupportedMedia(fmt.Sprintf("unsupported Content-Type %q (supported: application/x-protobuf, application/json)", req.Header.Get("Content-Type")))
			r.m.request(transportHTTP, sig, e.outcome)
			fail(e)
			return
		}
		// Content codings are case-insensitive (RFC 9110 8.4.1).
		ce := strings.ToLower(req.Header.Get("Content-Encoding"))
		switch ce {
		case "", "identity", "gzip", "zstd":
		default:
			e := unsupportedMedia(fmt.Sprintf("unsupported Content-Encoding %q (supported: gzip, zstd, identity)", ce))
			r.m.request(transportHTTP, sig, e.outcome)
			fail(e)
			return
		}
		if !r.acquire() {
			e := overloaded("too many concurrent requests, retry later")
			r.m.request(transportHTTP, sig, e.outcome)
			fail(e)
			return
		}
		defer r.release()
		buf, e := readBody(w, req, ce, r.cfg.MaxRequestBytes)
		if e != nil {
			r.m.request(transportHTTP, sig, e.outcome)
			fail(e)
			return
		}
		r.m.items[transportHTTP][sig].requestBytes.Observe(float64(buf.Len()))
		resp, e := r.exportBody(req.Context(), sig, transportHTTP, buf.Bytes(), enc, func() { putBuf(buf) })
		if e != nil {
			fail(e)
			return
		}
		h := w.Header()
		h.Set("Content-Type", enc.contentType())
		h.Set("Content-Length", strconv.Itoa(len(resp)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(resp)
	})
}

// exportBody decodes one request body, consumes it and returns the
// encoded ExportResponse. done is called as soon as body is no longer
// needed (pdata copies what it keeps), so the buffer returns to the pool
// before the Consumer's possibly long wait.
func (r *Receiver) exportBody(ctx context.Context, sig signal, t transport, body []byte, enc bodyEncoding, done func()) ([]byte, *exportError) {
	switch sig {
	case sigTraces:
		req := ptraceotlp.NewExportRequest()
		err := r.decode(req.UnmarshalProto, req.UnmarshalJSON, body, enc)
		done()
		if err != nil {
			return nil, r.decodeError(t, sig, enc, "ExportTraceServiceRequest", err)
		}
		p, e := r.consumeTraces(ctx, t, req.Traces())
		if e != nil {
			return nil, e
		}
		resp := ptraceotlp.NewExportResponse()
		if p.rejected > 0 || p.msg != "" {
			resp.PartialSuccess().SetRejectedSpans(p.rejected)
			resp.PartialSuccess().SetErrorMessage(p.msg)
		}
		return encodeResponse(resp.MarshalProto, resp.MarshalJSON, enc)
	case sigLogs:
		req := plogotlp.NewExportRequest()
		err := r.decode(req.UnmarshalProto, req.UnmarshalJSON, body, enc)
		done()
		if err != nil {
			return nil, r.decodeError(t, sig, enc, "ExportLogsServiceRequest", err)
		}
		p, e := r.consumeLogs(ctx, t, req.Logs())
		if e != nil {
			return nil, e
		}
		resp := plogotlp.NewExportResponse()
		if p.rejected > 0 || p.msg != "" {
			resp.PartialSuccess().SetRejectedLogRecords(p.rejected)
			resp.PartialSuccess().SetErrorMessage(p.msg)
		}
		return encodeResponse(resp.MarshalProto, resp.MarshalJSON, enc)
	default:
		req := pmetricotlp.NewExportRequest()
		err := r.decode(req.UnmarshalProto, req.UnmarshalJSON, body, enc)
		done()
		if err != nil {
			return nil, r.decodeError(t, sig, enc, "ExportMetricsServiceRequest", err)
		}
		p, e := r.consumeMetrics(ctx, t, req.Metrics())
		if e != nil {
			return nil, e
		}
		resp := pmetricotlp.NewExportResponse()
		if p.rejected > 0 || p.msg != "" {
			resp.PartialSuccess().SetRejectedDataPoints(p.rejected)
			resp.PartialSuccess().SetErrorMessage(p.msg)
		}
		return encodeResponse(resp.MarshalProto, resp.MarshalJSON, enc)
	}
}

func (r *Receiver) decode(fromProto, fromJSON func([]byte) error, body []byte, enc bodyEncoding) error {
	if enc == encJSON {
		// pdata's JSON decoder recurses without a depth limit (its
		// protobuf decoder stops at 100); a 16 MiB body of nested arrays
		// would cost hundreds of MiB of stack, so refuse it first.
		if limit := r.jsonDepthLimit(); jsonTooDeep(body, limit) {
			return fmt.Errorf("JSON nested deeper than %d levels (AnyValue depth limit %d)", limit, r.cfg.MaxAnyValueDepth)
		}
		return fromJSON(body)
	}
	return fromProto(body)
}

// jsonDepthLimit is the deepest JSON a valid request can need: about 12
// levels of OTLP structure down to an attribute (span event attributes
// being the deepest), then up to 4 per AnyValue level (kvlistValue:
// {"kvlistValue":{"values":[{"value":...).
func (r *Receiver) jsonDepthLimit() int { return 16 + 4*(r.cfg.MaxAnyValueDepth+1) }

// jsonTooDeep reports whether objects and arrays nest deeper than limit,
// ignoring brackets inside strings. Malformed JSON is left to the decoder.
func jsonTooDeep(b []byte, limit int) bool {
	depth := 0
	inStr, esc := false, false
	for _, c := range b {
		if inStr {
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inStr = false
			}
			continue
		}
		switch c {
		case '"':
			inStr = true
		case '{', '[':
			depth++
			if depth > limit {
				return true
			}
		case '}', ']':
			depth--
		}
	}
	return false
}

func (r *Receiver) decodeError(t transport, sig signal, enc bodyEncoding, msgName string, err error) *exportError {
	e := invalidArgument(fmt.Sprintf("decoding %s %s: %v", enc.name(), msgName, err))
	r.m.request(t, sig, e.outcome)
	return e
}

func encodeResponse(toProto, toJSON func() ([]byte, error), enc bodyEncoding) ([]byte, *exportError) {
	var b []byte
	var err error
	if enc == encJSON {
		b, err = toJSON()
	} else {
		b, err = toProto()
	}
	if err != nil {
		return nil, &exportError{code: codes.Internal, http: http.StatusInternalServerError, msg: "encoding response: " + err.Error(), outcome: "error"}
	}
	return b, nil
}
