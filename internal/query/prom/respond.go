package prom

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
	"unicode/utf8"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/util/annotations"
)

// errorType is Prometheus' errorType string; the HTTP status follows it.
type errorType string

const (
	errorTimeout  errorType = "timeout"
	errorCanceled errorType = "canceled"
	errorExec     errorType = "execution"
	errorBadData  errorType = "bad_data"
	errorInternal errorType = "internal"
	errorNotFound errorType = "not_found"
)

// statusClientClosedConnection is nginx's 499, which Prometheus uses for a
// query the client gave up on.
const statusClientClosedConnection = 499

type apiError struct {
	typ errorType
	err error
}

func (e *apiError) Error() string { return string(e.typ) + ": " + e.err.Error() }

func (e *apiError) status() int {
	switch e.typ {
	case errorBadData:
		return http.StatusBadRequest
	case errorExec:
		return http.StatusUnprocessableEntity
	case errorCanceled:
		return statusClientClosedConnection
	case errorTimeout:
		return http.StatusServiceUnavailable
	case errorNotFound:
		return http.StatusNotFound
	default:
		return http.StatusInternalServerError
	}
}

// queryError maps an error from the engine or the storage to an API error,
// as Prometheus' returnAPIError does.
func queryError(err error) *apiError {
	var (
		eqc promql.ErrQueryCanceled
		eqt promql.ErrQueryTimeout
		es  promql.ErrStorage
	)
	switch {
	case errors.As(err, &eqc):
		return &apiError{errorCanceled, err}
	case errors.As(err, &eqt), errors.Is(err, context.DeadlineExceeded):
		return &apiError{errorTimeout, err}
	case errors.As(err, &es):
		return &apiError{errorInternal, err}
	case errors.Is(err, context.Canceled):
		return &apiError{errorCanceled, err}
	}
	return &apiError{errorExec, err}
}

func invalidParam(err error, name string) *apiError {
	return &apiError{errorBadData, errors.New("invalid parameter \"" + name + "\": " + err.Error())}
}

func respondError(w http.ResponseWriter, e *apiError) {
	b, err := json.Marshal(struct {
		Status    string `json:"status"`
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
	}{"error", string(e.typ), e.err.Error()})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.status())
	_, _ = w.Write(b) // the client may have gone
}

// respond writes {"status":"success","data":...,"warnings":[...],"infos":[...]}.
// data is either a promql result (encoded by the fast path below) or any
// value encoding/json can write.
func respond(w http.ResponseWriter, data any, annots annotations.Annotations, query string) {
	warns, infos := annots.AsStrings(query, 10, 10)
	buf := make([]byte, 0, 4096)
	buf = append(buf, `{"status":"success","data":`...)
	var err error
	buf, err = appendData(buf, data)
	if err != nil {
		respondError(w, &apiError{errorInternal, err})
		return
	}
	if len(warns) > 0 {
		buf = append(buf, `,"warnings":`...)
		buf = appendStrings(buf, warns)
	}
	if len(infos) > 0 {
		buf = append(buf, `,"infos":`...)
		buf = appendStrings(buf, infos)
	}
	buf = append(buf, '}')
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf)
}

// queryData is the data of /api/v1/query and /api/v1/query_range.
type queryData struct {
	typ    parser.ValueType
	result parser.Value
}

func appendData(buf []byte, data any) ([]byte, error) {
	switch d := data.(type) {
	case queryData:
		buf = append(buf, `{"resultType":`...)
		buf = strconv.AppendQuote(buf, string(d.typ))
		buf = append(buf, `,"result":`...)
		buf = appendValue(buf, d.result)
		return append(buf, '}'), nil
	case []labels.Labels:
		buf = append(buf, '[')
		for i, ls := range d {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = appendLabels(buf, ls)
		}
		return append(buf, ']'), nil
	case []string:
		return appendStrings(buf, d), nil
	}
	b, err := json.Marshal(data)
	return append(buf, b...), err
}

// appendValue encodes a PromQL result the way Prometheus' JSON codec does:
// timestamps as seconds with millisecond decimals, values as strings.
func appendValue(buf []byte, v parser.Value) []byte {
	switch v := v.(type) {
	case promql.Matrix:
		buf = append(buf, '[')
		for i, s := range v {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = append(buf, `{"metric":`...)
			buf = appendLabels(buf, s.Metric)
			if len(s.Floats) > 0 {
				buf = append(buf, `,"values":[`...)
				for j, p := range s.Floats {
					if j > 0 {
						buf = append(buf, ',')
					}
					buf = appendPoint(buf, p.T, p.F)
				}
				buf = append(buf, ']')
			}
			if len(s.Histograms) > 0 {
				buf = append(buf, `,"histograms":[`...)
				for j, p := range s.Histograms {
					if j > 0 {
						buf = append(buf, ',')
					}
					buf = appendHPoint(buf, p.T, p.H)
				}
				buf = append(buf, ']')
			}
			buf = append(buf, '}')
		}
		return append(buf, ']')
	case promql.Vector:
		buf = append(buf, '[')
		for i, s := range v {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = append(buf, `{"metric":`...)
			buf = appendLabels(buf, s.Metric)
			if s.H == nil {
				buf = append(buf, `,"value":`...)
				buf = appendPoint(buf, s.T, s.F)
			} else {
				buf = append(buf, `,"histogram":`...)
				buf = appendHPoint(buf, s.T, s.H)
			}
			buf = append(buf, '}')
		}
		return append(buf, ']')
	case promql.Scalar:
		return appendPoint(buf, v.T, v.V)
	case promql.String:
		buf = append(buf, '[')
		buf = appendTimestamp(buf, v.T)
		buf = append(buf, ',')
		buf = strconv.AppendQuote(buf, v.V)
		return append(buf, ']')
	}
	return append(buf, "null"...)
}

func appendLabels(buf []byte, ls labels.Labels) []byte {
	buf = append(buf, '{')
	first := true
	ls.Range(func(l labels.Label) {
		if !first {
			buf = append(buf, ',')
		}
		first = false
		buf = appendJSONString(buf, l.Name)
		buf = append(buf, ':')
		buf = appendJSONString(buf, l.Value)
	})
	return append(buf, '}')
}

func appendPoint(buf []byte, t int64, f float64) []byte {
	buf = append(buf, '[')
	buf = appendTimestamp(buf, t)
	buf = append(buf, ',')
	buf = appendFloat(buf, f)
	return append(buf, ']')
}

func appendHPoint(buf []byte, t int64, h *histogram.FloatHistogram) []byte {
	buf = append(buf, '[')
	buf = appendTimestamp(buf, t)
	buf = append(buf, `,{"count":`...)
	buf = appendFloat(buf, h.Count)
	buf = append(buf, `,"sum":`...)
	buf = appendFloat(buf, h.Sum)
	found := false
	it := h.AllBucketIterator()
	for it.Next() {
		b := it.At()
		if b.Count == 0 {
			continue // as Prometheus: empty buckets are not written
		}
		if !found {
			buf = append(buf, `,"buckets":[`...)
		} else {
			buf = append(buf, ',')
		}
		found = true
		// Boundary rule codes of Prometheus' API: 0 left-open, 1
		// right-open, 2 open, 3 closed.
		rule := 2
		switch {
		case b.LowerInclusive && b.UpperInclusive:
			rule = 3
		case b.LowerInclusive:
			rule = 1
		case b.UpperInclusive:
			rule = 0
		}
		buf = append(buf, '[')
		buf = strconv.AppendInt(buf, int64(rule), 10)
		buf = append(buf, ',')
		buf = appendFloat(buf, b.Lower)
		buf = append(buf, ',')
		buf = appendFloat(buf, b.Upper)
		buf = append(buf, ',')
		buf = appendFloat(buf, b.Count)
		buf = append(buf, ']')
	}
	if found {
		buf = append(buf, ']')
	}
	return append(buf, "}]"...)
}

// appendTimestamp writes milliseconds as seconds with up to three
// decimals, without going through a float (as Prometheus' jsonutil).
func appendTimestamp(buf []byte, t int64) []byte {
	if t < 0 {
		buf = append(buf, '-')
		t = -t
	}
	buf = strconv.AppendInt(buf, t/1000, 10)
	if frac := t % 1000; frac != 0 {
		buf = append(buf, '.')
		if frac < 100 {
			buf = append(buf, '0')
		}
		if frac < 10 {
			buf = append(buf, '0')
		}
		buf = strconv.AppendInt(buf, frac, 10)
	}
	return buf
}

// appendFloat writes a sample value as a JSON string ("NaN", "+Inf" too),
// in Prometheus' format: plain decimals unless tiny or huge.
func appendFloat(buf []byte, f float64) []byte {
	buf = append(buf, '"')
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	buf = strconv.AppendFloat(buf, f, format, -1, 64)
	return append(buf, '"')
}

func appendStrings(buf []byte, ss []string) []byte {
	buf = append(buf, '[')
	for i, s := range ss {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendJSONString(buf, s)
	}
	return append(buf, ']')
}

const hexDigits = "0123456789abcdef"

// appendJSONString quotes s for JSON. Label values are arbitrary UTF-8;
// invalid bytes become U+FFFD as encoding/json does.
func appendJSONString(buf []byte, s string) []byte {
	buf = append(buf, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < 0x80 {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			buf = append(buf, s[start:i]...)
			switch c {
			case '"', '\\':
				buf = append(buf, '\\', c)
			case '\n':
				buf = append(buf, '\\', 'n')
			case '\r':
				buf = append(buf, '\\', 'r')
			case '\t':
				buf = append(buf, '\\', 't')
			default:
				buf = append(buf, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == 0xFFFD && size == 1 {
			buf = append(buf, s[start:i]...)
			buf = append(buf, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			buf = append(buf, s[start:i]...)
			buf = append(buf, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	buf = append(buf, s[start:]...)
	return append(buf, '"')
}
