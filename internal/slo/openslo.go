package slo

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// OpenSLO v1 (https://github.com/OpenSLO/OpenSLO, "v1" section): only what
// maps onto trenchcoat's model is read; anything else that would change the
// meaning (another budgeting method, several objectives, calendar windows,
// non-Prometheus sources) is refused with the field that caused it.

type openSLODoc struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name        string            `yaml:"name"`
		DisplayName string            `yaml:"displayName"`
		Labels      map[string]any    `yaml:"labels"`
		Annotations map[string]string `yaml:"annotations"`
	} `yaml:"metadata"`
	Spec struct {
		Description     string `yaml:"description"`
		Service         string `yaml:"service"`
		IndicatorRef    string `yaml:"indicatorRef"`
		BudgetingMethod string `yaml:"budgetingMethod"`
		Indicator       *struct {
			Metadata struct {
				Name string `yaml:"name"`
			} `yaml:"metadata"`
			Spec struct {
				RatioMetric     *openSLORatio `yaml:"ratioMetric"`
				ThresholdMetric *yaml.Node    `yaml:"thresholdMetric"`
			} `yaml:"spec"`
		} `yaml:"indicator"`
		TimeWindow []struct {
			Duration  string     `yaml:"duration"`
			IsRolling *bool      `yaml:"isRolling"`
			Calendar  *yaml.Node `yaml:"calendar"`
		} `yaml:"timeWindow"`
		Objectives []struct {
			DisplayName   string   `yaml:"displayName"`
			Target        *float64 `yaml:"target"`
			TargetPercent *float64 `yaml:"targetPercent"`
		} `yaml:"objectives"`
	} `yaml:"spec"`
}

type openSLORatio struct {
	Counter *bool                `yaml:"counter"`
	Good    *openSLOMetricSource `yaml:"good"`
	Bad     *openSLOMetricSource `yaml:"bad"`
	Total   *openSLOMetricSource `yaml:"total"`
	RawType string               `yaml:"rawType"`
}

type openSLOMetricSource struct {
	MetricSource struct {
		Type string         `yaml:"type"`
		Spec map[string]any `yaml:"spec"`
	} `yaml:"metricSource"`
}

func fromOpenSLO(node *yaml.Node, apiVersion, kind string) (SLO, error) {
	fail := func(field, format string, args ...any) (SLO, error) {
		return SLO{}, &ValidationError{Errors: []FieldError{{Field: field, Problem: fmt.Sprintf(format, args...)}}}
	}
	if apiVersion != "openslo/v1" {
		return fail("apiVersion", "%q is not supported; use openslo/v1", apiVersion)
	}
	if kind != "SLO" {
		return fail("kind", "%q is not supported; only kind SLO is imported", kind)
	}
	var d openSLODoc
	if err := node.Decode(&d); err != nil {
		return SLO{}, fmt.Errorf("OpenSLO document: %w", cleanYAMLError(err))
	}
	s := SLO{Name: d.Metadata.Name, Description: d.Spec.Description, Service: d.Spec.Service}
	if s.Description == "" {
		s.Description = d.Metadata.DisplayName
	}
	if d.Spec.BudgetingMethod != "" && d.Spec.BudgetingMethod != "Occurrences" {
		return fail("spec.budgetingMethod", "%q is not supported; only Occurrences", d.Spec.BudgetingMethod)
	}
	if d.Spec.IndicatorRef != "" {
		return fail("spec.indicatorRef", "references to separate SLI documents are not supported; inline the indicator")
	}
	if d.Spec.Indicator == nil || d.Spec.Indicator.Spec.RatioMetric == nil {
		if d.Spec.Indicator != nil && d.Spec.Indicator.Spec.ThresholdMetric != nil {
			return fail("spec.indicator.spec.thresholdMetric", "threshold SLIs are not supported; use ratioMetric")
		}
		return fail("spec.indicator.spec.ratioMetric", "is required")
	}
	rm := d.Spec.Indicator.Spec.RatioMetric
	if rm.Counter != nil && !*rm.Counter {
		return fail("spec.indicator.spec.ratioMetric.counter", "must be true: good, bad and total are counters")
	}
	if rm.RawType != "" {
		return fail("spec.indicator.spec.ratioMetric.rawType", "raw ratios are not supported; give counters")
	}
	query := func(field string, m *openSLOMetricSource) (string, error) {
		if m == nil {
			return "", nil
		}
		if t := strings.ToLower(m.MetricSource.Type); t != "prometheus" {
			return "", &ValidationError{Errors: []FieldError{{Field: field + ".metricSource.type", Problem: fmt.Sprintf("%q is not supported; only Prometheus", m.MetricSource.Type)}}}
		}
		q, _ := m.MetricSource.Spec["query"].(string)
		if q == "" {
			return "", &ValidationError{Errors: []FieldError{{Field: field + ".metricSource.spec.query", Problem: "is required"}}}
		}
		return q, nil
	}
	base := "spec.indicator.spec.ratioMetric."
	var r RatioSLI
	var err error
	if r.Good, err = query(base+"good", rm.Good); err != nil {
		return SLO{}, err
	}
	if r.Bad, err = query(base+"bad", rm.Bad); err != nil {
		return SLO{}, err
	}
	if r.Total, err = query(base+"total", rm.Total); err != nil {
		return SLO{}, err
	}
	s.SLI.Ratio = &r
	switch len(d.Spec.TimeWindow) {
	case 0:
	case 1:
		tw := d.Spec.TimeWindow[0]
		if tw.Calendar != nil || (tw.IsRolling != nil && !*tw.IsRolling) {
			return fail("spec.timeWindow[0]", "calendar windows are not supported; use isRolling: true")
		}
		w, err := ParseDuration(tw.Duration)
		if err != nil {
			return fail("spec.timeWindow[0].duration", "%v", err)
		}
		s.Window = w
	default:
		return fail("spec.timeWindow", "exactly one window is supported, found %d", len(d.Spec.TimeWindow))
	}
	if len(d.Spec.Objectives) != 1 {
		return fail("spec.objectives", "exactly one objective is supported, found %d", len(d.Spec.Objectives))
	}
	o := d.Spec.Objectives[0]
	switch {
	case o.Target != nil:
		s.Objective = *o.Target
	case o.TargetPercent != nil:
		s.Objective = *o.TargetPercent / 100
	default:
		return fail("spec.objectives[0].target", "is required")
	}
	return s, nil
}
