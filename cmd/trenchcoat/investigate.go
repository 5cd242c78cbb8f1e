package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/trenchcoat/trenchcoat/internal/investigate"
)

// runInvestigate asks a running server's detective to investigate and
// prints the report.
func runInvestigate(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("investigate", flag.ContinueOnError)
	server := fs.String("server", "http://127.0.0.1:3300", "trenchcoat server URL")
	sloName := fs.String("slo", "", "SLO to investigate")
	service := fs.String("service", "", "service to investigate (instead of, or with, --slo)")
	var since time.Duration = time.Hour
	fs.Var(durationFlag{&since}, "since", "investigate the last this long")
	start := fs.String("start", "", "start of the window (RFC 3339 or Unix seconds); overrides --since")
	end := fs.String("end", "", "end of the window (default now)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *sloName == "" && *service == "" {
		return errors.New("investigate: give --slo or --service")
	}
	body := map[string]string{"slo": *sloName, "service": *service}
	if *start != "" {
		body["start"] = *start
	} else {
		body["since"] = since.String()
	}
	if *end != "" {
		body["end"] = *end
	}
	b, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(*server, "/")+"/api/v1/investigations", bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("investigate: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("investigate: server answered %s: %s", resp.Status, bytes.TrimSpace(raw))
	}
	if *asJSON {
		_, err := os.Stdout.Write(raw)
		return err
	}
	var env struct {
		Data *investigate.Report `json:"data"`
	}
	rep := &investigate.Report{}
	if err := json.Unmarshal(raw, &env); err == nil && env.Data != nil {
		rep = env.Data
	} else if err := json.Unmarshal(raw, rep); err != nil {
		return fmt.Errorf("investigate: reading the report: %w", err)
	}
	printReport(os.Stdout, rep)
	return nil
}

func printReport(w io.Writer, r *investigate.Report) {
	fmt.Fprintf(w, "Diagnosis: %s\n", r.Diagnosis)
	if len(r.Story) > 0 {
		fmt.Fprintln(w, "\nHow it happened:")
		for i, s := range r.Story {
			fmt.Fprintf(w, "  %d. %s\n", i+1, s)
		}
	}
	fmt.Fprintln(w, "\nFindings:")
	for _, f := range r.Findings {
		fmt.Fprintf(w, "  [%.2f] %s: %s\n", f.Score, f.Check, f.Title)
		for _, e := range f.Evidence {
			fmt.Fprintf(w, "         %s: %s\n", e.Label, e.Value)
		}
	}
	if len(r.NextSteps) > 0 {
		fmt.Fprintln(w, "\nNext steps:")
		for _, s := range r.NextSteps {
			fmt.Fprintf(w, "  - %s\n", s)
		}
	}
}
