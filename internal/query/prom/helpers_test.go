package prom

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"

	"github.com/trenchcoat/trenchcoat/internal/store/tsdb"
)

// server is our API over a fresh store, on a real loopback HTTP server.
type server struct {
	store *tsdb.Store
	api   *API
	srv   *httptest.Server
}

func newServer(t testing.TB, cfg Config) *server {
	t.Helper()
	st, err := tsdb.Open(tsdb.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Metadata = st
	api, err := New(cfg, st.Queryable(), st.Appendable())
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	api.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		srv.Close()
		_ = api.Close()
		_ = st.Close()
	})
	return &server{store: st, api: api, srv: srv}
}

// apiResponse is the Prometheus API envelope.
type apiResponse struct {
	Status    string          `json:"status"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Data      json.RawMessage `json:"data"`
	Warnings  []string        `json:"warnings"`
}

func get(t testing.TB, base, path string, params url.Values) (int, apiResponse) {
	t.Helper()
	u := base + path
	if len(params) > 0 {
		u += "?" + params.Encode()
	}
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	return decode(t, resp)
}

func postForm(t testing.TB, base, path string, params url.Values) (int, apiResponse) {
	t.Helper()
	resp, err := http.Post(base+path, "application/x-www-form-urlencoded", strings.NewReader(params.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	return decode(t, resp)
}

func decode(t testing.TB, resp *http.Response) (int, apiResponse) {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var r apiResponse
	if len(b) > 0 && json.Unmarshal(b, &r) != nil {
		r.Error = string(b) // not JSON: keep the body for the message
	}
	return resp.StatusCode, r
}

// remoteWrite pushes req as Prometheus remote-write 1.0 and returns the
// status code.
func remoteWrite(t testing.TB, client *http.Client, u string, req *prompb.WriteRequest) int {
	t.Helper()
	pb, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	hr, err := http.NewRequest(http.MethodPost, u, bytes.NewReader(snappy.Encode(nil, pb)))
	if err != nil {
		t.Fatal(err)
	}
	hr.Header.Set("Content-Encoding", "snappy")
	hr.Header.Set("Content-Type", "application/x-protobuf")
	hr.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	resp, err := client.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Logf("remote write to %s: %d %s", u, resp.StatusCode, body)
	}
	return resp.StatusCode
}
