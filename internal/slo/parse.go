package slo

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"gopkg.in/yaml.v3"
)

// Parse reads one or more YAML documents, each either a trenchcoat SLO or
// an OpenSLO v1 `kind: SLO` document with a ratioMetric indicator, and
// returns the SLOs validated and with defaults applied. JSON is YAML too,
// so API bodies go through here as well.
func Parse(b []byte) ([]SLO, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var out []SLO
	for i := 0; ; i++ {
		var node yaml.Node
		err := dec.Decode(&node)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i+1, err)
		}
		if node.Kind == 0 || (len(node.Content) == 1 && node.Content[0].Kind == yaml.ScalarNode && node.Content[0].Tag == "!!null") {
			continue // empty document, e.g. after a trailing ---
		}
		s, err := parseDoc(&node)
		if err != nil {
			if len(out) > 0 || i > 0 {
				return nil, fmt.Errorf("document %d: %w", i+1, err)
			}
			return nil, err
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, errors.New("no SLO found in input")
	}
	return out, nil
}

// ParseOne reads exactly one SLO.
func ParseOne(b []byte) (SLO, error) {
	slos, err := Parse(b)
	if err != nil {
		return SLO{}, err
	}
	if len(slos) != 1 {
		return SLO{}, fmt.Errorf("want one SLO, found %d", len(slos))
	}
	return slos[0], nil
}

func parseDoc(node *yaml.Node) (SLO, error) {
	var head struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
	}
	if err := node.Decode(&head); err != nil {
		return SLO{}, fmt.Errorf("an SLO must be a YAML mapping: %w", cleanYAMLError(err))
	}
	var s SLO
	switch {
	case strings.HasPrefix(head.APIVersion, "openslo/"):
		var err error
		if s, err = fromOpenSLO(node, head.APIVersion, head.Kind); err != nil {
			return SLO{}, err
		}
	case head.APIVersion != "" || head.Kind != "":
		return SLO{}, fmt.Errorf("apiVersion %q kind %q: only trenchcoat SLOs (no apiVersion) and openslo/v1 SLO documents are understood", head.APIVersion, head.Kind)
	default:
		if err := decodeStrict(node, &s); err != nil {
			return SLO{}, err
		}
	}
	if err := s.Validate(); err != nil {
		return SLO{}, err
	}
	return s, nil
}

// decodeStrict decodes node into v, refusing unknown fields so that a typo
// like "objectve" is an error rather than a silently missing value.
func decodeStrict(node *yaml.Node, v any) error {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	if err := enc.Encode(node); err != nil {
		return err
	}
	dec := yaml.NewDecoder(&b)
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		return cleanYAMLError(err)
	}
	return nil
}

// cleanYAMLError drops yaml.v3's "yaml: unmarshal errors:" preamble and Go
// type names, which mean nothing to someone writing an SLO file.
func cleanYAMLError(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs := make([]string, len(te.Errors))
		for i, m := range te.Errors {
			m = strings.ReplaceAll(m, "in type slo.", "in ")
			m = strings.ReplaceAll(m, "into slo.", "into ")
			msgs[i] = m
		}
		return errors.New(strings.Join(msgs, "; "))
	}
	return err
}

// Marshal writes an SLO in trenchcoat's YAML form.
func Marshal(s SLO) ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(s); err != nil {
		return nil, err
	}
	return b.Bytes(), enc.Close()
}
