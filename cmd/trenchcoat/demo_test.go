package main

import (
	"bufio"
	"encoding/json"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDemoSim runs `trenchcoat demo --sim` fast and checks, through the
// HTTP API only, every signal of the walkthrough's incident.
func TestDemoSim(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(binPath, "demo", "--sim", "--speed", "20", "--incident-after", "20s", "--backfill", "2h", "--data-dir", dir,
		"--http-addr", "127.0.0.1:0", "--otlp-grpc-addr", "127.0.0.1:0", "--otlp-http-addr", "127.0.0.1:0")
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = nil
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGINT)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Error("demo did not stop on SIGINT")
		}
	}()
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
	end := time.Now().Add(time.Hour).Unix()
	start := time.Now().Add(-3 * time.Hour).Unix()
	rng := "&start=" + strconv.FormatInt(start, 10) + "&end=" + strconv.FormatInt(end, 10)
	type check struct {
		name string
		ok   func() (bool, string)
	}
	search := func(q string) func() (bool, string) {
		return func() (bool, string) {
			var r struct {
				Traces []json.RawMessage `json:"traces"`
			}
			getJSON(t, base+"/api/v1/traces/search?limit=5&q="+url.QueryEscape(q)+rng, &r)
			return len(r.Traces) > 0, q
		}
	}
	promMax := func(q string, min float64) func() (bool, string) {
		return func() (bool, string) {
			var r struct {
				Data struct {
					Result []struct {
						Metric map[string]string `json:"metric"`
						Value  [2]any            `json:"value"`
					} `json:"result"`
				} `json:"data"`
			}
			getJSON(t, base+"/api/v1/query?query="+url.QueryEscape(q), &r)
			best := 0.0
			for _, s := range r.Data.Result {
				if v, err := strconv.ParseFloat(s.Value[1].(string), 64); err == nil && v > best {
					best = v
				}
			}
			return best >= min, q + " = " + strconv.FormatFloat(best, 'g', 4, 64)
		}
	}
	checks := []check{
		{"reserved-slots errors", search(`{ statusMessage = "remaining connection slots are reserved for non-replication superuser and rds_reserved connections" }`)},
		{"too-many-clients errors", search(`{ statusMessage = "sorry, too many clients already" }`)},
		{"pool timeouts", search(`{ statusMessage = "timeout exceeded when trying to connect" }`)},
		{"30 s pool spans", search(`{ name = "pg-pool.connect" && duration >= 30s }`)},
		{"FATAL log lines", func() (bool, string) {
			var r struct {
				Data struct {
					Result []struct {
						Values [][2]string `json:"values"`
					} `json:"result"`
				} `json:"data"`
			}
			q := `{log_group=~"/aws/rds/instance/tickets-database-.+/postgresql"} |= "FATAL"`
			getJSON(t, base+"/api/v1/logs/query?limit=50&q="+url.QueryEscape(q)+rng, &r)
			for _, s := range r.Data.Result {
				for _, v := range s.Values {
					if strings.Contains(v[1], "sorry, too many clients already") || strings.Contains(v[1], "remaining connection slots are reserved") {
						return true, q
					}
				}
			}
			return false, q
		}},
		{"connections at the limit", promMax(`max_over_time(aws_rds_database_connections_sum[3h])`, 37)},
		{"edge lambda -> tickets-server", promMax(`sum(traces_service_graph_request_total{client="tickets-api",server="tickets-server"})`, 1)},
		{"edge tickets-server -> database", promMax(`sum by (server) (traces_service_graph_request_total{client="tickets-server",connection_type="database"})`, 1)},
		{"error ratio above 5%", promMax(`sum(rate(traces_spanmetrics_calls_total{service="tickets-server",span_kind="SPAN_KIND_SERVER",status_code="STATUS_CODE_ERROR"}[5m])) / sum(rate(traces_spanmetrics_calls_total{service="tickets-server",span_kind="SPAN_KIND_SERVER"}[5m]))`, 0.05)},
		{"SLO page alert firing", func() (bool, string) {
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
				if a.Labels["slo"] == "tickets-server-success-rate" && a.Labels["severity"] == "page" && a.State == "firing" {
					return true, "firing"
				}
			}
			return false, "no firing page alert"
		}},
	}
	deadline := time.Now().Add(90 * time.Second)
	for _, c := range checks {
		for {
			ok, what := c.ok()
			if ok {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("%s: not seen: %s", c.name, what)
				break
			}
			time.Sleep(2 * time.Second)
		}
	}
}
