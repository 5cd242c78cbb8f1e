// Command ingest measures span ingest of a built trenchcoat: pre-encoded
// OTLP/gRPC requests of 1,000 realistic spans (about 15 resource and 12 span
// attributes, like the demo's) sent as fast as the server acknowledges them.
// It prints one figure per line: acknowledged spans/s, bytes per span on
// disk once blocks are cut, peak RSS, and, measured in the same run, the
// pdata decode ceiling (decode-only spans/s on all cores) so the ratio
// between the two is visible.
//
//	go run ./bench/ingest -duration 60s
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"

	"github.com/trenchcoat/trenchcoat/internal/spangen"
)

func main() {
	duration := flag.Duration("duration", 60*time.Second, "how long to send")
	conns := flag.Int("conns", 4, "concurrent gRPC streams")
	bin := flag.String("bin", "", "trenchcoat binary (default: go build it)")
	extra := flag.String("server-flags", "", "extra flags for trenchcoat serve")
	flag.Parse()
	if err := run(*duration, *conns, *bin, strings.Fields(*extra)); err != nil {
		fmt.Fprintln(os.Stderr, "ingest:", err)
		os.Exit(1)
	}
}

func run(duration time.Duration, conns int, bin string, extra []string) error {
	tmp, err := os.MkdirTemp("", "tc-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if bin == "" {
		bin = filepath.Join(tmp, "trenchcoat")
		if out, err := exec.Command("go", "build", "-o", bin, "./cmd/trenchcoat").CombinedOutput(); err != nil {
			return fmt.Errorf("build: %v\n%s", err, out)
		}
	}
	reqs := make([][]byte, 64)
	for i := range reqs {
		reqs[i], err = ptraceotlp.NewExportRequestFromTraces(spangen.Spans(int64(i), 1000, time.Now())).MarshalProto()
		if err != nil {
			return err
		}
	}
	ceiling := decodeCeiling(reqs, 3*time.Second)

	args := append([]string{"serve", "--data-dir", filepath.Join(tmp, "data"), "--http-addr", "127.0.0.1:0", "--otlp-grpc-addr", "127.0.0.1:0", "--otlp-http-addr", "127.0.0.1:0"}, extra...)
	cmd := exec.Command(bin, args...)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		return err
	}
	defer cmd.Process.Kill()
	httpAddr, grpcAddr, err := waitReady(stderr)
	if err != nil {
		return err
	}
	var peakRSS atomic.Int64
	stopRSS := make(chan struct{})
	go func() {
		for {
			select {
			case <-stopRSS:
				return
			case <-time.After(500 * time.Millisecond):
				if v := vmHWM(cmd.Process.Pid); v > peakRSS.Load() {
					peakRSS.Store(v)
				}
			}
		}
	}()

	cc, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodecV2(rawCodecV2{}), grpc.MaxCallSendMsgSize(64<<20)))
	if err != nil {
		return err
	}
	defer cc.Close()
	var spans, refused atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	var wg sync.WaitGroup
	begin := time.Now()
	for c := 0; c < conns; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for i := c; ctx.Err() == nil; i++ {
				var resp []byte
				err := cc.Invoke(ctx, "/opentelemetry.proto.collector.trace.v1.TraceService/Export", reqs[i%len(reqs)], &resp)
				if err == nil {
					spans.Add(1000)
				} else if ctx.Err() == nil {
					refused.Add(1000)
					time.Sleep(10 * time.Millisecond)
				}
			}
		}(c)
	}
	wg.Wait()
	elapsed := time.Since(begin)
	time.Sleep(2 * time.Second) // let a pending block cut finish
	close(stopRSS)
	m, err := scrape("http://" + httpAddr + "/metrics")
	if err != nil {
		return err
	}
	rows := m[`trenchcoat_store_rows_appended_total{table="spans"}`]
	head := m[`trenchcoat_store_head_rows{table="spans"}`]
	blockBytes := m[`trenchcoat_store_block_bytes{table="spans"}`]
	rate := float64(spans.Load()) / elapsed.Seconds()
	fmt.Printf("spans_acknowledged_per_second %.0f\n", rate)
	fmt.Printf("spans_refused_total %d\n", refused.Load())
	fmt.Printf("pdata_decode_ceiling_spans_per_second %.0f\n", ceiling)
	fmt.Printf("ingest_to_decode_ceiling_ratio %.2f\n", rate/ceiling)
	// The requests repeat (they are pre-encoded), so blocks compress
	// better than real data would: bytes per span on disk is measured on
	// unique spans by BenchmarkBlockBytesPerSpan in internal/store/columnar.
	fmt.Printf("blocks_rows %.0f head_rows %.0f block_bytes %.0f\n", rows-head, head, blockBytes)
	fmt.Printf("peak_rss_mib %.0f\n", float64(peakRSS.Load())/(1<<20))
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	return nil
}

func waitReady(r io.Reader) (httpAddr, grpcAddr string, err error) {
	re := regexp.MustCompile(`msg="(http|otlp grpc) listening" addr=(\S+)`)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if m := re.FindStringSubmatch(line); m != nil {
			if m[1] == "http" {
				httpAddr = m[2]
			} else {
				grpcAddr = m[2]
			}
		}
		if strings.Contains(line, "msg=ready") {
			go io.Copy(io.Discard, r)
			return httpAddr, grpcAddr, nil
		}
	}
	return "", "", fmt.Errorf("server exited before ready")
}

func scrape(url string) (map[string]float64, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out, sc.Err()
}

func vmHWM(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// decodeCeiling decodes the requests on all cores for d and returns spans/s.
func decodeCeiling(reqs [][]byte, d time.Duration) float64 {
	var n atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(d)
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; time.Now().Before(deadline); i++ {
				req := ptraceotlp.NewExportRequest()
				if err := req.UnmarshalProto(reqs[i%len(reqs)]); err != nil {
					panic(err)
				}
				n.Add(int64(req.Traces().SpanCount()))
			}
		}(w)
	}
	wg.Wait()
	return float64(n.Load()) / d.Seconds()
}

// rawCodecV2 sends pre-encoded protobuf bytes as they are, so the client
// spends no CPU encoding. Its name is "proto" so the server sees an
// ordinary OTLP request.
type rawCodecV2 struct{}

func (rawCodecV2) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.([]byte))}, nil
}

func (rawCodecV2) Unmarshal(data mem.BufferSlice, v any) error {
	*(v.(*[]byte)) = data.Materialize()
	return nil
}

func (rawCodecV2) Name() string { return "proto" }
