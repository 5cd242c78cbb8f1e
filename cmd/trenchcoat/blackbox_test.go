package main

// Black-box tests: they build the binary, start it on free loopback ports
// and talk to it only over OTLP and HTTP, with the real OpenTelemetry SDK
// exporters.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "trenchcoat-bin")
	if err != nil {
		panic(err)
	}
	binPath = filepath.Join(dir, "trenchcoat")
	out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building trenchcoat: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running trenchcoat.
type proc struct {
	cmd                  *exec.Cmd
	http, grpc, otlpHTTP string
	logs                 *bytes.Buffer
	mu                   *sync.Mutex
}

var addrRe = regexp.MustCompile(`msg="(http|otlp grpc|otlp http) listening" addr=(\S+)`)

func start(t *testing.T, dataDir string, extra ...string) *proc {
	t.Helper()
	args := append([]string{"serve", "--data-dir", dataDir, "--http-addr", "127.0.0.1:0", "--otlp-grpc-addr", "127.0.0.1:0", "--otlp-http-addr", "127.0.0.1:0"}, extra...)
	cmd := exec.Command(binPath, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, logs: &bytes.Buffer{}, mu: &sync.Mutex{}}
	found := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		closed := false
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.logs.WriteString(line + "\n")
			if m := addrRe.FindStringSubmatch(line); m != nil {
				switch m[1] {
				case "http":
					p.http = m[2]
				case "otlp grpc":
					p.grpc = m[2]
				case "otlp http":
					p.otlpHTTP = m[2]
				}
			}
			if !closed && strings.Contains(line, `msg=ready`) {
				close(found)
				closed = true
			}
			p.mu.Unlock()
		}
	}()
	select {
	case <-found:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("server did not become ready:\n%s", p.logs.String())
	}
	return p
}

func (p *proc) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("server exit: %v\n%s", err, p.logs.String())
		}
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		t.Errorf("server did not stop on SIGTERM")
	}
}

func (p *proc) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.cmd.Wait()
}

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("GET %s: %v: %s", url, err, b)
		}
	}
	return resp.StatusCode
}

// stubs builds n spans of one trace with every attribute type, an event,
// a link and an error status.
func stubs(r *rand.Rand, n int) tracetest.SpanStubs {
	var tid trace.TraceID
	r.Read(tid[:])
	res := resource.NewSchemaless(attribute.String("service.name", "tickets-server"), attribute.String("cloud.availability_zone", "us-east-1a"),
		attribute.Int64("faas.max_memory", 512), attribute.StringSlice("aws.log.group.names", []string{"/aws/ecs/tickets"}))
	now := time.Now()
	var out tracetest.SpanStubs
	var parent trace.SpanID
	for i := 0; i < n; i++ {
		var sid trace.SpanID
		r.Read(sid[:])
		sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled})
		psc := trace.SpanContext{}
		if i > 0 {
			psc = trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: parent, TraceFlags: trace.FlagsSampled})
		}
		parent = sid
		st := now.Add(time.Duration(i) * time.Millisecond)
		out = append(out, tracetest.SpanStub{
			Name: fmt.Sprintf("span-%d", i), SpanContext: sc, Parent: psc, SpanKind: trace.SpanKindServer,
			StartTime: st, EndTime: st.Add(30 * time.Second),
			Attributes: []attribute.KeyValue{attribute.String("http.route", "/:endpoint"), attribute.Int64("n", int64(i)), attribute.Float64("f", 1.5),
				attribute.Bool("b", true), attribute.StringSlice("ss", []string{"a", "b"}), attribute.Int64Slice("is", []int64{1, 2})},
			Events:   []sdktrace.Event{{Name: "exception", Time: st, Attributes: []attribute.KeyValue{attribute.String("exception.message", "timeout exceeded when trying to connect")}}},
			Links:    []sdktrace.Link{{SpanContext: sc, Attributes: []attribute.KeyValue{attribute.String("l", "x")}}},
			Status:   sdktrace.Status{Code: codes.Error, Description: "timeout exceeded when trying to connect"},
			Resource: res, InstrumentationScope: instrumentation.Scope{Name: "blackbox", Version: "1"},
		})
	}
	return out
}

type otlpJSON struct {
	ResourceSpans []struct {
		Resource struct {
			Attributes []json.RawMessage `json:"attributes"`
		} `json:"resource"`
		ScopeSpans []struct {
			Scope struct {
				Name string `json:"name"`
			} `json:"scope"`
			Spans []map[string]any `json:"spans"`
		} `json:"scopeSpans"`
	} `json:"resourceSpans"`
}

func TestRoundTripSDKExporters(t *testing.T) {
	p := start(t, t.TempDir())
	defer p.stop(t)
	ctx := context.Background()
	grpcExp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(p.grpc), otlptracegrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	defer grpcExp.Shutdown(ctx)
	httpExp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(p.otlpHTTP), otlptracehttp.WithInsecure(), otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
	if err != nil {
		t.Fatal(err)
	}
	defer httpExp.Shutdown(ctx)
	r := rand.New(rand.NewSource(1))
	for _, exp := range []sdktrace.SpanExporter{grpcExp, httpExp} {
		ss := stubs(r, 3)
		if err := exp.ExportSpans(ctx, ss.Snapshots()); err != nil {
			t.Fatal(err)
		}
		var got otlpJSON
		if code := getJSON(t, "http://"+p.http+"/api/v1/traces/"+ss[0].SpanContext.TraceID().String(), &got); code != 200 {
			t.Fatalf("status %d", code)
		}
		if len(got.ResourceSpans) != 1 || len(got.ResourceSpans[0].ScopeSpans[0].Spans) != 3 {
			t.Fatalf("got %+v", got)
		}
		rs := got.ResourceSpans[0]
		if rs.ScopeSpans[0].Scope.Name != "blackbox" || len(rs.Resource.Attributes) != 4 {
			t.Fatalf("resource/scope lost: %+v", rs)
		}
		for _, sp := range rs.ScopeSpans[0].Spans {
			b, _ := json.Marshal(sp)
			s := string(b)
			for _, want := range []string{`"status":{"code":2,"message":"timeout exceeded when trying to connect"}`, `"name":"exception"`,
				`"links":[{`, `{"key":"f","value":{"doubleValue":1.5}}`, `{"key":"b","value":{"boolValue":true}}`,
				`{"key":"ss","value":{"arrayValue":{"values":[{"stringValue":"a"},{"stringValue":"b"}]}}}`, `"kind":2`, `"flags":257`} {
				if !strings.Contains(s, want) {
					t.Errorf("span lacks %s: %s", want, s)
				}
			}
		}
	}
	var e map[string]string
	if code := getJSON(t, "http://"+p.http+"/api/v1/traces/0123456789abcdef0123456789abcdef", &e); code != 404 || e["status"] != "error" {
		t.Fatalf("missing trace: %d %v", code, e)
	}
	if code := getJSON(t, "http://"+p.http+"/api/v1/traces/nothex", &e); code != 400 {
		t.Fatalf("bad id: %d %v", code, e)
	}
	resp, err := http.Post("http://"+p.otlpHTTP+"/v1/traces", "application/x-protobuf", strings.NewReader("\x0a\xff\xff"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("truncated protobuf: %d", resp.StatusCode)
	}
	var m string
	resp, err = http.Get("http://" + p.http + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m = string(b)
	for _, want := range []string{"trenchcoat_store_wal_bytes", "trenchcoat_pipeline_queue_depth", "trenchcoat_store_head_rows"} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestKill9LosesNothingAcknowledged exports continuously with the SDK's
// gRPC exporter, kills the server with SIGKILL at random moments, restarts
// it, and checks that every trace whose export was acknowledged is there.
func TestKill9LosesNothingAcknowledged(t *testing.T) {
	dir := t.TempDir()
	r := rand.New(rand.NewSource(time.Now().UnixNano()))
	var acked []trace.TraceID
	ctx := context.Background()
	for round := 0; round < 5; round++ {
		p := start(t, dir)
		exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(p.grpc), otlptracegrpc.WithInsecure(), otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: false}))
		if err != nil {
			t.Fatal(err)
		}
		stop := make(chan struct{})
		done := make(chan struct{})
		var mu sync.Mutex
		go func() {
			defer close(done)
			for {
				select {
				case <-stop:
					return
				default:
				}
				ss := stubs(r, 5)
				if err := exp.ExportSpans(ctx, ss.Snapshots()); err == nil {
					mu.Lock()
					acked = append(acked, ss[0].SpanContext.TraceID())
					mu.Unlock()
				}
			}
		}()
		time.Sleep(time.Duration(200+r.Intn(800)) * time.Millisecond)
		p.kill()
		close(stop)
		<-done
		exp.Shutdown(ctx)
	}
	p := start(t, dir)
	defer p.stop(t)
	if len(acked) < 50 {
		t.Fatalf("only %d exports acknowledged; the test did not exercise much", len(acked))
	}
	for _, id := range acked {
		var got otlpJSON
		if code := getJSON(t, "http://"+p.http+"/api/v1/traces/"+id.String(), &got); code != 200 {
			t.Fatalf("acknowledged trace %s lost after kill -9 (status %d); %d acknowledged in all", id, code, len(acked))
		}
		n := 0
		for _, rs := range got.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				n += len(ss.Spans)
			}
		}
		if n != 5 {
			t.Fatalf("trace %s has %d spans, want 5", id, n)
		}
	}
	t.Logf("%d acknowledged traces all survived 5 kills", len(acked))
}
