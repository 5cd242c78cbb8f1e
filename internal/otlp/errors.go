package otlp

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/trenchcoat/trenchcoat/internal/store"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
)

// exportError is a refused request, with its answer on both transports.
type exportError struct {
	code    codes.Code
	http    int
	msg     string
	retry   bool   // add Retry-After / RetryInfo
	outcome string // label value for requests_total
}

func invalidArgument(msg string) *exportError {
	return &exportError{code: codes.InvalidArgument, http: http.StatusBadRequest, msg: msg, outcome: "invalid"}
}

// tooLarge: RESOURCE_EXHAUSTED without RetryInfo is what grpc-go answers
// for messages over the receive limit before our code runs, and OTLP
// clients treat it as not retryable; the HTTP body carries the same code.
func tooLarge(msg string) *exportError {
	return &exportError{code: codes.ResourceExhausted, http: http.StatusRequestEntityTooLarge, msg: msg, outcome: "too_large"}
}

func unsupportedMedia(msg string) *exportError {
	return &exportError{code: codes.InvalidArgument, http: http.StatusUnsupportedMediaType, msg: msg, outcome: "unsupported_media"}
}

func overloaded(msg string) *exportError {
	return &exportError{code: codes.ResourceExhausted, http: http.StatusTooManyRequests, msg: msg, retry: true, outcome: "overloaded"}
}

// consumerError maps a Consumer's error (other than *store.PartialError,
// handled by the caller) to the OTLP answer the Consumer contract names.
func consumerError(err error) *exportError {
	switch {
	case errors.Is(err, store.ErrOverloaded):
		return overloaded(err.Error())
	case errors.Is(err, store.ErrUnavailable):
		return &exportError{code: codes.Unavailable, http: http.StatusServiceUnavailable, msg: err.Error(), retry: true, outcome: "unavailable"}
	}
	return &exportError{code: codes.Internal, http: http.StatusInternalServerError, msg: err.Error(), outcome: "error"}
}

// grpcStatus builds the gRPC status, with RetryInfo when the client
// should retry: OTLP says RESOURCE_EXHAUSTED is retryable only with it.
func (e *exportError) grpcStatus(retryAfter time.Duration) *status.Status {
	st := status.New(e.code, safeMessage(e.msg))
	if e.retry {
		if withInfo, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(retryAfter)}); err == nil {
			st = withInfo
		}
	}
	return st
}

// writeHTTP answers with a google.rpc.Status in the request's encoding,
// as the OTLP/HTTP spec asks.
func (e *exportError) writeHTTP(w http.ResponseWriter, enc bodyEncoding, retryAfter time.Duration) {
	h := w.Header()
	if e.retry {
		secs := int64((retryAfter + time.Second - 1) / time.Second)
		h.Set("Retry-After", strconv.FormatInt(max(secs, 1), 10))
	}
	if e.http == http.StatusMethodNotAllowed {
		h.Set("Allow", http.MethodPost)
	}
	sp := e.grpcStatus(retryAfter).Proto()
	var body []byte
	var err error
	if enc == encJSON {
		body, err = protojson.Marshal(sp)
	} else {
		body, err = proto.Marshal(sp)
	}
	if err != nil {
		h.Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(e.http)
		_, _ = w.Write([]byte(safeMessage(e.msg)))
		return
	}
	h.Set("Content-Type", enc.contentType())
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(e.http)
	_, _ = w.Write(body)
}

// safeMessage makes a decoder's message fit a google.rpc.Status: decoders
// quote the bad input, which may be invalid UTF-8 (protojson refuses to
// encode that) or long.
func safeMessage(msg string) string {
	const maxLen = 1024
	if len(msg) > maxLen {
		msg = truncateString(msg, maxLen) + "..."
	}
	return strings.ToValidUTF8(msg, replacementChar)
}
