package ui

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestBrowserWalkthrough builds the binary, starts `trenchcoat demo --sim`
// on free ports and drives WALKTHROUGH.md steps 1-7 in Debian's Chromium
// with playwright-core (web/e2e/walkthrough.mjs), plus the check that
// markup in span names is shown as text. Screenshots of every step go to
// test-output/ui/ at the module root. It needs node, /usr/bin/chromium and
// `npm ci` in internal/ui/web (scripts/test.sh does that); without them it
// fails rather than skips, so that CI cannot pass without the browser test.
func TestBrowserWalkthrough(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the browser walkthrough runs the whole demo")
	}
	root := moduleRoot(t)
	web := filepath.Join(root, "internal", "ui", "web")
	if _, err := os.Stat(filepath.Join(web, "node_modules", "playwright-core")); err != nil {
		t.Fatalf("playwright-core is not installed: run `npm ci` in %s (scripts/test.sh does): %v", web, err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is needed for the browser test: %v", err)
	}
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("chromium is needed for the browser test (apt-get install chromium): %v", err)
	}

	tmp := t.TempDir()
	bin := filepath.Join(tmp, "trenchcoat")
	build := exec.Command("go", "build", "-o", bin, "./cmd/trenchcoat")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	demo := startDemo(t, bin, filepath.Join(tmp, "data"))
	base := "http://" + demo.httpAddr
	waitFiring(t, base)
	// The UI must answer at / (cmd/trenchcoat mounts ui.New there).
	if resp, err := http.Get(base + "/slos"); err != nil || resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		code := 0
		if resp != nil {
			code = resp.StatusCode
			resp.Body.Close()
		}
		t.Fatalf("GET /slos: %d %v: the UI is not mounted at / by cmd/trenchcoat", code, err)
	} else {
		resp.Body.Close()
	}

	shots := filepath.Join(root, "test-output", "ui")
	if err := os.RemoveAll(shots); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(web, "e2e", "walkthrough.mjs"), base, shots, "http://"+demo.otlpHTTPAddr)
	cmd.Dir = web
	cmd.Env = append(os.Environ(), "CHROMIUM="+chromium)
	out, err := cmd.CombinedOutput()
	t.Logf("walkthrough output:\n%s", out)
	if err != nil {
		t.Fatalf("walkthrough failed: %v (screenshots in %s)", err, shots)
	}
	t.Logf("screenshots in %s", shots)
}

type demoProcess struct {
	httpAddr, otlpHTTPAddr string
}

var (
	reHTTPAddr = regexp.MustCompile(`msg="http listening" addr=(\S+)`)
	reOTLPHTTP = regexp.MustCompile(`msg="otlp http listening" addr=(\S+)`)
)

// startDemo runs `demo --sim` fast (10x, incident after 30 s of a 2 h
// backfill) on free ports, and stops it when the test ends.
func startDemo(t *testing.T, bin, dataDir string) demoProcess {
	t.Helper()
	cmd := exec.Command(bin, "demo", "--sim", "--speed", "10", "--incident-after", "30s", "--backfill", "2h",
		"--data-dir", dataDir, "--http-addr", "127.0.0.1:0", "--otlp-grpc-addr", "127.0.0.1:0", "--otlp-http-addr", "127.0.0.1:0",
		"--log-level", "info")
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var (
		mu      sync.Mutex
		logTail []string
		d       demoProcess
	)
	found := make(chan struct{})
	scanDone := make(chan struct{})
	go func() {
		defer close(scanDone)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		once := false
		for sc.Scan() {
			line := sc.Text()
			mu.Lock()
			logTail = append(logTail, line)
			if len(logTail) > 40 {
				logTail = logTail[1:]
			}
			if m := reHTTPAddr.FindStringSubmatch(line); m != nil {
				d.httpAddr = m[1]
			}
			if m := reOTLPHTTP.FindStringSubmatch(line); m != nil {
				d.otlpHTTPAddr = m[1]
			}
			if !once && d.httpAddr != "" && d.otlpHTTPAddr != "" {
				once = true
				close(found)
			}
			mu.Unlock()
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait(); pw.Close() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-waited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-waited
		}
		<-scanDone
	})
	tail := func() string { mu.Lock(); defer mu.Unlock(); return strings.Join(logTail, "\n") }
	select {
	case <-found:
	case err := <-waited:
		waited <- err
		t.Fatalf("demo exited early: %v\n%s", err, tail())
	case <-time.After(90 * time.Second):
		t.Fatalf("demo did not print its addresses:\n%s", tail())
	}
	mu.Lock()
	defer mu.Unlock()
	return d
}

// waitFiring waits for readiness and for the SLO alert the backfill makes
// fire, the state the walkthrough starts from.
func waitFiring(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	var last string
	for time.Now().Before(deadline) {
		last = func() string {
			resp, err := http.Get(base + "/api/v1/alerts")
			if err != nil {
				return err.Error()
			}
			defer resp.Body.Close()
			var body struct {
				Data struct {
					Alerts []struct {
						State string `json:"state"`
					} `json:"alerts"`
				} `json:"data"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				return fmt.Sprintf("%d: %v", resp.StatusCode, err)
			}
			for _, a := range body.Data.Alerts {
				if a.State == "firing" {
					return ""
				}
			}
			return fmt.Sprintf("%d alerts, none firing", len(body.Data.Alerts))
		}()
		if last == "" {
			return
		}
		time.Sleep(time.Second)
	}
	t.Fatalf("the SLO alert did not fire: %s", last)
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal(errors.New("go.mod not found above the test's directory"))
		}
		dir = parent
	}
}
