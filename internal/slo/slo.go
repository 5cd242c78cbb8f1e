// Package slo holds the SLO model, its YAML form, validation, OpenSLO v1
// import, and the generation of Prometheus recording and alerting rules for
// multi-window multi-burn-rate alerting. It is pure: it parses and produces
// bytes and PromQL syntax trees, and never touches files, the network or
// storage; internal/alerting evaluates what it generates.
package slo

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
)

// Span-metric names and labels the shorthand SLIs build on (DESIGN.md §5).
const (
	CallsMetric         = "traces_spanmetrics_calls_total"
	LatencyBucketMetric = "traces_spanmetrics_latency_bucket"
	LatencyCountMetric  = "traces_spanmetrics_latency_count"
	LabelService        = "service"
	LabelSpanKind       = "span_kind"
	LabelStatusCode     = "status_code"
	SpanKindServer      = "SPAN_KIND_SERVER"
	StatusCodeError     = "STATUS_CODE_ERROR"
)

// DefaultWindow is the SLO window when none is given.
const DefaultWindow = 28 * 24 * time.Hour

// AllowedWindows are the SLO windows the burn-rate windows are scaled to.
var AllowedWindows = []time.Duration{7 * 24 * time.Hour, 14 * 24 * time.Hour, 28 * 24 * time.Hour, 30 * 24 * time.Hour}

// LatencyBuckets are the span-metrics histogram bounds in seconds: a latency
// SLI's threshold must be one of them, because only an existing bucket
// boundary counts "requests faster than the threshold" exactly.
var LatencyBuckets = func() []float64 {
	var b []float64
	for v := 0.002; v <= 16.384+1e-9; v *= 2 {
		b = append(b, math.Round(v*1000)/1000)
	}
	return append(b, 30, 60)
}()

// SLO is one service level objective. The zero value is not valid; build it
// with Parse or fill it and call Validate (which also applies defaults).
type SLO struct {
	Name        string `yaml:"name" json:"name"`
	Description string `yaml:"description,omitempty" json:"description,omitempty"`
	Service     string `yaml:"service,omitempty" json:"service,omitempty"`
	// Objective is the target success ratio in (0, 1), e.g. 0.99.
	Objective float64  `yaml:"objective" json:"objective"`
	Window    Duration `yaml:"window,omitempty" json:"window,omitempty"`
	SLI       SLI      `yaml:"sli" json:"sli"`
	// GroupBy lists labels of the SLI's series for breakdowns (worst values).
	GroupBy  []string `yaml:"groupBy,omitempty" json:"groupBy,omitempty"`
	Alerting Alerting `yaml:"alerting,omitempty" json:"alerting,omitempty"`
}

// SLI says how good and bad events are counted. Exactly one field is set.
type SLI struct {
	Ratio       *RatioSLI       `yaml:"ratio,omitempty" json:"ratio,omitempty"`
	SuccessRate *SuccessRateSLI `yaml:"successRate,omitempty" json:"successRate,omitempty"`
	Latency     *LatencySLI     `yaml:"latency,omitempty" json:"latency,omitempty"`
}

// RatioSLI counts events with counter selectors: Total and either Good or
// Bad. Each is a series selector such as `http_requests_total{code=~"5.."}`;
// rules wrap it in rate() and sum().
type RatioSLI struct {
	Good  string `yaml:"good,omitempty" json:"good,omitempty"`
	Bad   string `yaml:"bad,omitempty" json:"bad,omitempty"`
	Total string `yaml:"total" json:"total"`
}

// SuccessRateSLI is the share of a service's server spans that do not end
// in error, from span metrics.
type SuccessRateSLI struct {
	Service string `yaml:"service" json:"service"`
}

// LatencySLI is the share of a service's server spans faster than
// Threshold, from the span-metrics latency histogram.
type LatencySLI struct {
	Service   string   `yaml:"service" json:"service"`
	Threshold Duration `yaml:"threshold" json:"threshold"`
}

// Alerting configures the generated burn-rate alerts.
type Alerting struct {
	// Disabled turns off alert rules; recording rules are still generated.
	Disabled bool `yaml:"disabled,omitempty" json:"disabled,omitempty"`
	// Name is the alertname (default "SLOErrorBudgetBurn"); page and ticket
	// alerts share it and differ by their severity label.
	Name string `yaml:"name,omitempty" json:"name,omitempty"`
	// Labels and Annotations are added to both alerts.
	Labels      map[string]string `yaml:"labels,omitempty" json:"labels,omitempty"`
	Annotations map[string]string `yaml:"annotations,omitempty" json:"annotations,omitempty"`
	Page        AlertOptions      `yaml:"page,omitempty" json:"page,omitempty"`
	Ticket      AlertOptions      `yaml:"ticket,omitempty" json:"ticket,omitempty"`
	// Webhooks receive this SLO's alerts in Alertmanager's webhook JSON.
	Webhooks []string `yaml:"webhooks,omitempty" json:"webhooks,omitempty"`
}

// AlertOptions tunes one severity's alert.
type AlertOptions struct {
	Disabled    bool              `yaml:"disabled,omitempty" json:"disabled,omitempty"`
	Labels      map[string]string `yaml:"labels,omitempty" json:"labels,omitempty"`
	Annotations map[string]string `yaml:"annotations,omitempty" json:"annotations,omitempty"`
}

// DefaultAlertName is the alertname of the burn-rate alerts.
const DefaultAlertName = "SLOErrorBudgetBurn"

// Duration is a time.Duration written the Prometheus way ("28d", "500ms").
// As a latency threshold it also accepts a number of seconds.
type Duration time.Duration

// String formats d as Prometheus does, but keeps whole days as days ("28d",
// not "4w") because that is how SLO windows are spoken of.
func (d Duration) String() string {
	td := time.Duration(d)
	if td > 0 && td%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(td/(24*time.Hour)), 10) + "d"
	}
	return model.Duration(td).String()
}

// ParseDuration reads "28d", "1h30m", "500ms", or a number of seconds.
func ParseDuration(s string) (Duration, error) {
	s = strings.TrimSpace(s)
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if f < 0 || math.IsNaN(f) || math.IsInf(f, 0) {
			return 0, fmt.Errorf("duration %q must be a positive number of seconds", s)
		}
		return Duration(math.Round(f * float64(time.Second))), nil
	}
	d, err := model.ParseDuration(s)
	if err != nil {
		// Go's syntax allows fractions ("16.384s") where Prometheus' does not.
		if gd, gerr := time.ParseDuration(s); gerr == nil && gd >= 0 {
			return Duration(gd), nil
		}
		return 0, fmt.Errorf("cannot parse %q as a duration (want e.g. 28d, 1h, 500ms)", s)
	}
	return Duration(d), nil
}

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// UnmarshalYAML reads a duration string or a number of seconds.
func (d *Duration) UnmarshalYAML(unmarshal func(any) error) error {
	var s string
	if err := unmarshal(&s); err != nil {
		return err
	}
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(d.String())), nil }

// UnmarshalJSON reads a duration string or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// FieldError is one validation problem: a field path such as
// "sli.ratio.total" and what is wrong with it.
type FieldError struct {
	Field   string
	Problem string
}

func (e FieldError) Error() string { return e.Field + ": " + e.Problem }

// ValidationError lists every problem found in one SLO.
type ValidationError struct {
	SLO    string
	Errors []FieldError
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("invalid SLO")
	if e.SLO != "" {
		b.WriteString(" " + strconv.Quote(e.SLO))
	}
	for i, fe := range e.Errors {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(fe.Error())
	}
	return b.String()
}

var (
	nameRe  = regexp.MustCompile(`^[a-z0-9]([a-z0-9._-]{0,126}[a-z0-9])?$`)
	labelRe = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
)

// Validate checks s, fills defaults (window, alert name), and returns a
// *ValidationError naming every bad field, or nil.
func (s *SLO) Validate() error {
	var errs []FieldError
	add := func(field, format string, args ...any) {
		errs = append(errs, FieldError{Field: field, Problem: fmt.Sprintf(format, args...)})
	}
	switch {
	case s.Name == "":
		add("name", "is required")
	case !nameRe.MatchString(s.Name):
		add("name", "%q must be 1-128 lowercase letters, digits, '.', '_' or '-', starting and ending with a letter or digit", s.Name)
	}
	switch {
	case math.IsNaN(s.Objective) || s.Objective <= 0 || s.Objective >= 1:
		if s.Objective >= 1 && s.Objective < 100 {
			add("objective", "%v must be a ratio in (0, 1), e.g. 0.99 for 99%%", s.Objective)
		} else {
			add("objective", "%v must be a ratio in (0, 1), e.g. 0.99", s.Objective)
		}
	}
	if s.Window == 0 {
		s.Window = Duration(DefaultWindow)
	}
	if !slices.Contains(AllowedWindows, time.Duration(s.Window)) {
		add("window", "%s is not supported: use 7d, 14d, 28d or 30d", s.Window)
	}
	n := 0
	if s.SLI.Ratio != nil {
		n++
		r := s.SLI.Ratio
		if (r.Good == "") == (r.Bad == "") {
			add("sli.ratio", "set exactly one of good and bad")
		}
		if r.Good != "" {
			if _, err := ParseSelector(r.Good); err != nil {
				add("sli.ratio.good", "%v", err)
			}
		}
		if r.Bad != "" {
			if _, err := ParseSelector(r.Bad); err != nil {
				add("sli.ratio.bad", "%v", err)
			}
		}
		if r.Total == "" {
			add("sli.ratio.total", "is required")
		} else if _, err := ParseSelector(r.Total); err != nil {
			add("sli.ratio.total", "%v", err)
		}
	}
	if s.SLI.SuccessRate != nil {
		n++
		if s.SLI.SuccessRate.Service == "" {
			if s.Service == "" {
				add("sli.successRate.service", "is required")
			}
			s.SLI.SuccessRate.Service = s.Service
		}
	}
	if s.SLI.Latency != nil {
		n++
		l := s.SLI.Latency
		if l.Service == "" {
			if s.Service == "" {
				add("sli.latency.service", "is required")
			}
			l.Service = s.Service
		}
		if _, ok := latencyBucket(l.Threshold); !ok {
			add("sli.latency.threshold", "%s is not a span-metrics bucket boundary; use one of %s", l.Threshold, bucketList())
		}
	}
	if n != 1 {
		add("sli", "set exactly one of ratio, successRate and latency (found %d)", n)
	}
	if s.Service == "" {
		switch {
		case s.SLI.SuccessRate != nil:
			s.Service = s.SLI.SuccessRate.Service
		case s.SLI.Latency != nil:
			s.Service = s.SLI.Latency.Service
		}
	}
	seen := map[string]bool{}
	for i, l := range s.GroupBy {
		f := fmt.Sprintf("groupBy[%d]", i)
		switch {
		case !labelRe.MatchString(l):
			add(f, "%q is not a Prometheus label name (span-metric labels use '_' for '.', e.g. cloud_region)", l)
		case seen[l]:
			add(f, "%q is listed twice", l)
		case l == "__name__" || l == "le":
			add(f, "%q cannot be grouped by", l)
		}
		seen[l] = true
	}
	if s.Alerting.Name == "" {
		s.Alerting.Name = DefaultAlertName
	} else if !labelRe.MatchString(s.Alerting.Name) {
		add("alerting.name", "%q must be a valid metric name", s.Alerting.Name)
	}
	checkLabels := func(field string, m map[string]string) {
		for k := range m {
			if !labelRe.MatchString(k) || strings.HasPrefix(k, "__") {
				add(field, "%q is not a valid label name", k)
			}
			if k == "slo" || (k == "severity" && field == "alerting.labels") {
				add(field, "%q is set by trenchcoat", k)
			}
		}
	}
	checkLabels("alerting.labels", s.Alerting.Labels)
	checkLabels("alerting.page.labels", s.Alerting.Page.Labels)
	checkLabels("alerting.ticket.labels", s.Alerting.Ticket.Labels)
	for i, u := range s.Alerting.Webhooks {
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			add(fmt.Sprintf("alerting.webhooks[%d]", i), "%q must be an http:// or https:// URL", u)
		}
	}
	if len(errs) > 0 {
		return &ValidationError{SLO: s.Name, Errors: errs}
	}
	return nil
}

func latencyBucket(d Duration) (float64, bool) {
	sec := time.Duration(d).Seconds()
	for _, b := range LatencyBuckets {
		if math.Abs(b-sec) < 1e-9 {
			return b, true
		}
	}
	return 0, false
}

func bucketList() string {
	parts := make([]string, len(LatencyBuckets))
	for i, b := range LatencyBuckets {
		parts[i] = strconv.FormatFloat(b, 'f', -1, 64) + "s"
	}
	return strings.Join(parts, ", ")
}

// ErrorBudget is the allowed share of bad events, 1 - objective.
func (s *SLO) ErrorBudget() float64 { return 1 - s.Objective }
