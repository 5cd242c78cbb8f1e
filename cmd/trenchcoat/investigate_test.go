package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trenchcoat/trenchcoat/internal/investigate"
)

// demoRun starts `trenchcoat demo --sim` fast with the given scenario and
// returns its HTTP base URL; the demo is stopped when the test ends.
func demoRun(t *testing.T, scenario string) string {
	t.Helper()
	cmd := exec.Command(binPath, "demo", "--sim", "--speed", "20", "--incident-after", "20s", "--backfill", "2h",
		"--scenario", scenario, "--data-dir", t.TempDir(),
		"--http-addr", "127.0.0.1:0", "--otlp-grpc-addr", "127.0.0.1:0", "--otlp-http-addr", "127.0.0.1:0")
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGINT)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Error("demo did not stop on SIGINT")
		}
	})
	var base string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if u, ok := strings.CutPrefix(sc.Text(), "open "); ok {
			base = u
			break
		}
	}
	if base == "" {
		t.Fatal("demo printed no address")
	}
	go func() {
		for sc.Scan() {
		}
	}()
	return base
}

// waitAlert waits until the demo SLO's page alert fires.
func waitAlert(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(120 * time.Second)
	for {
		var r struct {
			Data struct {
				Alerts []struct {
					Labels map[string]string `json:"labels"`
					State  string            `json:"state"`
				} `json:"alerts"`
			} `json:"data"`
		}
		getJSON(t, base+"/api/v1/alerts", &r)
		for _, a := range r.Data.Alerts {
			if a.Labels["slo"] == "tickets-server-success-rate" && a.State == "firing" {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the SLO alert did not fire: %+v", r.Data.Alerts)
		}
		time.Sleep(2 * time.Second)
	}
}

// investigateBoth runs the investigation through the HTTP API and through
// the CLI and returns both reports.
func investigateBoth(t *testing.T, base string) []*investigate.Report {
	t.Helper()
	body := `{"slo":"tickets-server-success-rate","since":"1h"}`
	resp, err := http.Post(base+"/api/v1/investigations", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /api/v1/investigations: %s: %s", resp.Status, raw)
	}
	var env struct {
		Data *investigate.Report `json:"data"`
	}
	if err := json.Unmarshal(raw, &env); err != nil || env.Data == nil {
		t.Fatalf("report: %v: %s", err, raw)
	}
	var out bytes.Buffer
	cli := exec.Command(binPath, "investigate", "--server", base, "--slo", "tickets-server-success-rate", "--since", "1h", "--json")
	cli.Stdout = &out
	var stderr bytes.Buffer
	cli.Stderr = &stderr
	if err := cli.Run(); err != nil {
		t.Fatalf("trenchcoat investigate: %v: %s", err, stderr.String())
	}
	var env2 struct {
		Data *investigate.Report `json:"data"`
	}
	if err := json.Unmarshal(out.Bytes(), &env2); err != nil || env2.Data == nil {
		t.Fatalf("CLI report: %v: %s", err, out.String())
	}
	for i, r := range []*investigate.Report{env.Data, env2.Data} {
		t.Logf("report %d took %s (%+v): cause %q, resource %q\n%s", i, r.Finished.Sub(r.Started), r.Checks, r.Cause, r.Resource, r.Diagnosis)
		for _, f := range r.Findings {
			t.Logf("  [%.2f] %s: %s", f.Score, f.Check, f.Title)
		}
		if len(r.Errors) > 0 {
			t.Errorf("report %d: failed checks: %v", i, r.Errors)
		}
	}
	return []*investigate.Report{env.Data, env2.Data}
}

// TestInvestigateDemo checks issue 8's acceptance on the demo: the
// detective names the cause of both scenarios, with the evidence.
func TestInvestigateDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo")
	}
	t.Run("peak-sale", func(t *testing.T) {
		base := demoRun(t, "peak-sale")
		waitAlert(t, base)
		var groups struct {
			Groups []struct{ Name string } `json:"groups"`
		}
		getJSON(t, base+"/api/v1/logs/groups", &groups)
		idRe := regexp.MustCompile(`tickets-database-[0-9a-f]{6}`)
		db := ""
		for _, g := range groups.Groups {
			if m := idRe.FindString(g.Name); m != "" {
				db = m
			}
		}
		if db == "" {
			t.Fatalf("no database log group in %+v", groups.Groups)
		}
		for i, r := range investigateBoth(t, base) {
			if r.Cause != "connection exhaustion" || r.Resource != db {
				t.Errorf("report %d: cause %q of %q, want connection exhaustion of %s", i, r.Cause, r.Resource, db)
			}
			d := r.Diagnosis
			if !strings.Contains(d, db) || !strings.Contains(d, "connection") {
				t.Errorf("report %d: diagnosis does not name %s and connections: %s", i, db, d)
			}
			msgs := 0
			for _, m := range []string{"remaining connection slots are reserved", "sorry, too many clients already", "timeout exceeded when trying to connect"} {
				if strings.Contains(d, m) {
					msgs++
				}
			}
			if msgs < 2 {
				t.Errorf("report %d: diagnosis cites %d of the 3 error messages", i, msgs)
			}
			if !regexp.MustCompile(`\b30s\b`).MatchString(d) || !strings.Contains(d, "timeout") {
				t.Errorf("report %d: diagnosis lacks the 30 s timeout signature", i)
			}
			if !strings.Contains(d, "FATAL") {
				t.Errorf("report %d: diagnosis lacks the FATAL log pattern", i)
			}
			if !strings.Contains(d, "aws_rds_database_connections_sum") || !strings.Contains(d, "rose") {
				t.Errorf("report %d: diagnosis lacks the rise of the connection count", i)
			}
			if len(r.Findings) == 0 || !strings.Contains(r.Findings[0].Title+r.Findings[0].Summary, db) && r.Findings[0].Check != investigate.CheckMessages {
				t.Errorf("report %d: the top finding does not support the cause", i)
			}
		}
	})
	t.Run("bad-deploy", func(t *testing.T) {
		base := demoRun(t, "bad-deploy")
		waitAlert(t, base)
		for i, r := range investigateBoth(t, base) {
			if r.Cause != "bad deploy" || r.Resource != "tickets-server" {
				t.Errorf("report %d: cause %q of %q, want a bad deploy of tickets-server", i, r.Cause, r.Resource)
			}
			if !strings.Contains(r.Diagnosis, "1.5.0") || !strings.Contains(r.Diagnosis, "us-east-1b") {
				t.Errorf("report %d: diagnosis does not name version 1.5.0 in us-east-1b: %s", i, r.Diagnosis)
			}
			if strings.Contains(r.Diagnosis, "tickets-database") {
				t.Errorf("report %d: diagnosis blames the database: %s", i, r.Diagnosis)
			}
		}
	})
}
