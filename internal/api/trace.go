package api

import (
	"encoding/hex"
	"fmt"
	"net/http"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/trenchcoat/trenchcoat/internal/store"
)

// RegisterTraceByID serves GET /api/v1/traces/{traceID}: the trace as OTLP
// JSON, as pdata's JSON marshaler writes it.
func RegisterTraceByID(mux *http.ServeMux, r store.TraceReader) {
	mux.HandleFunc("GET /api/v1/traces/{traceID}", func(w http.ResponseWriter, req *http.Request) {
		id, err := ParseTraceID(req.PathValue("traceID"))
		if err != nil {
			WriteError(w, http.StatusBadRequest, ErrBadData, err)
			return
		}
		td, err := r.GetTrace(req.Context(), id)
		if err != nil {
			if err == store.ErrNotFound {
				err = fmt.Errorf("trace %s not found", req.PathValue("traceID"))
				WriteError(w, http.StatusNotFound, ErrNotFound, err)
				return
			}
			WriteStoreError(w, err)
			return
		}
		b, err := (&ptrace.JSONMarshaler{}).MarshalTraces(td)
		if err != nil {
			WriteError(w, http.StatusInternalServerError, ErrInternal, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	})
}

// ParseTraceID parses 32 hex digits.
func ParseTraceID(s string) (pcommon.TraceID, error) {
	var id pcommon.TraceID
	if len(s) != 32 {
		return id, fmt.Errorf("trace id %q: want 32 hex digits", s)
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("trace id %q is not hex", s)
	}
	return id, nil
}
