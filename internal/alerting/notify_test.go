package alerting

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"

	"github.com/trenchcoat/trenchcoat/internal/slo"
)

// startAlertmanager runs the real Alertmanager (Debian package
// prometheus-alertmanager) on a free loopback port and returns its URL.
func startAlertmanager(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus-alertmanager")
	if err != nil {
		if bin, err = exec.LookPath("alertmanager"); err != nil {
			t.Skip("Alertmanager not installed (Debian package prometheus-alertmanager); skipping")
		}
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(cfg, []byte("route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	var out bytes.Buffer
	cmd := exec.Command(bin,
		"--config.file="+cfg,
		"--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--cluster.listen-address=", // no gossip: a single instance
	)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("alertmanager output:\n%s", out.String())
		}
	})
	u := "http://" + addr
	waitFor(t, "Alertmanager ready", func() bool {
		resp, err := http.Get(u + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return u
}

// waitFor polls cond until it holds, failing after a generous deadline
// (a condition, not a timing, is what the test checks).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type amGettable struct {
	Labels map[string]string `json:"labels"`
	EndsAt time.Time         `json:"endsAt"`
	Status struct {
		State string `json:"state"`
	} `json:"status"`
}

func amAlerts(t *testing.T, u string) []amGettable {
	t.Helper()
	resp, err := http.Get(u + "/api/v2/alerts")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var as []amGettable
	if err := json.NewDecoder(resp.Body).Decode(&as); err != nil {
		t.Fatal(err)
	}
	return as
}

// writeScenario writes a request and an error counter every 5 s from an
// hour ago until two minutes ahead: half the requests fail until switchAt,
// after which requests jump by ten million a step, so that the 5m error
// ratio collapses at the first evaluation after switchAt and the alert
// resolves. Samples ahead of the evaluation time are invisible to it, so
// the scenario plays out in real time.
func writeScenario(t *testing.T, db *tsdb.DB, switchAt time.Time) {
	start := time.Now().Add(-time.Hour).Truncate(5 * time.Second)
	n := int((time.Hour+2*time.Minute)/(5*time.Second)) + 1
	var req, errs float64
	reqs := make([]float64, n)
	errv := make([]float64, n)
	for i := range n {
		if start.Add(time.Duration(i) * 5 * time.Second).Before(switchAt) {
			req += 10
		} else {
			req += 1e7
		}
		errs += 5
		reqs[i], errv[i] = req, errs
	}
	series(t, db, labels.FromStrings("__name__", "demo_requests_total", "job", "demo"), start, 5*time.Second, n, func(i int) float64 { return reqs[i] })
	series(t, db, labels.FromStrings("__name__", "demo_errors_total", "job", "demo"), start, 5*time.Second, n, func(i int) float64 { return errv[i] })
}

// TestNotifications checks that a real Alertmanager and a webhook receive
// the page alert while it fires and its resolution when it ends.
func TestNotifications(t *testing.T) {
	amURL := startAlertmanager(t)

	var mu sync.Mutex
	var hooks []WebhookMessage
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var msg WebhookMessage
		if err := json.Unmarshal(b, &msg); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		hooks = append(hooks, msg)
		mu.Unlock()
	}))
	defer hook.Close()

	db := openDB(t)
	switchAt := time.Now().Add(8 * time.Second)
	writeScenario(t, db, switchAt)
	s := mustSLO(t, fmt.Sprintf(`
name: demo-availability
service: demo
objective: 0.99
sli: {ratio: {bad: demo_errors_total, total: demo_requests_total}}
alerting:
  ticket: {disabled: true}
  webhooks: [%s/hook]
`, hook.URL))

	m, err := New(Config{
		Interval:         500 * time.Millisecond,
		AlertmanagerURLs: []string{amURL},
		// Long, so that the alert leaving Alertmanager early proves an
		// explicit resolution and not the expiry of its endsAt.
		ResendDelay: time.Minute,
		ExternalURL: "http://trenchcoat.test",
		Logger:      testLogger(t),
	}, newEngine(), db, db)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.SetSLOs([]slo.SLO{s}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer m.Shutdown(ctx)

	isPage := func(l map[string]string) bool {
		return l["alertname"] == slo.DefaultAlertName && l["slo"] == "demo-availability" && l["severity"] == "page" && l["service"] == "demo"
	}
	waitFor(t, "the page alert in Alertmanager", func() bool {
		for _, a := range amAlerts(t, amURL) {
			if isPage(a.Labels) && a.Status.State == "active" {
				if !a.EndsAt.After(time.Now()) {
					t.Errorf("firing alert ends at %v, in the past", a.EndsAt)
				}
				return true
			}
		}
		return false
	})
	if as := m.Alerts(); len(as) == 0 || as[0].State != "firing" || as[0].Severity != "page" {
		t.Errorf("manager alerts %+v", as)
	}
	waitFor(t, "the page alert to resolve in Alertmanager", func() bool {
		for _, a := range amAlerts(t, amURL) {
			if isPage(a.Labels) {
				return false
			}
		}
		return true
	})
	if time.Now().After(switchAt.Add(4 * time.Minute)) {
		t.Fatal("the alert may have expired instead of being resolved")
	}
	waitFor(t, "a resolved webhook message", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, h := range hooks {
			if h.Status == "resolved" && len(h.Alerts) == 1 && h.Alerts[0].Status == "resolved" {
				return true
			}
		}
		return false
	})
	mu.Lock()
	first := hooks[0]
	mu.Unlock()
	if first.Version != "4" || first.Status != "firing" || first.GroupLabels["slo"] != "demo-availability" ||
		len(first.Alerts) != 1 || !isPage(first.Alerts[0].Labels) || first.Alerts[0].Fingerprint == "" ||
		first.Alerts[0].StartsAt.IsZero() || !first.Alerts[0].EndsAt.IsZero() || first.CommonLabels["severity"] != "page" {
		t.Errorf("first webhook message %+v", first)
	}
	if got := first.Alerts[0].GeneratorURL; len(got) < len("http://trenchcoat.test/graph?g0.expr=") || got[:len("http://trenchcoat.test/graph")] != "http://trenchcoat.test/graph" {
		t.Errorf("generatorURL %q", got)
	}
	if len(m.Alerts()) != 0 {
		t.Errorf("alerts still active: %+v", m.Alerts())
	}
	if err := m.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}
