package alerting

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trenchcoat/trenchcoat/internal/slo"
	"github.com/trenchcoat/trenchcoat/internal/store"
)

type recordingLoader struct {
	names [][]string
	fail  error
}

func (l *recordingLoader) SetSLOs(slos []slo.SLO) error {
	if l.fail != nil {
		return l.fail
	}
	var n []string
	for _, s := range slos {
		n = append(n, s.Name)
	}
	l.names = append(l.names, n)
	return nil
}

func (l *recordingLoader) last() string { return strings.Join(l.names[len(l.names)-1], ",") }

func TestRegistry(t *testing.T) {
	src := t.TempDir()
	data := filepath.Join(t.TempDir(), "slos")
	example := readFile(t, filepath.Join("..", "slo", "testdata", "tickets-server-success-rate.yaml"))
	if err := os.WriteFile(filepath.Join(src, "tickets.yaml"), example, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "README.md"), []byte("not an SLO"), 0o644); err != nil {
		t.Fatal(err)
	}
	l := &recordingLoader{}
	r, err := NewRegistry(RegistryConfig{Dir: data, SourceDirs: []string{src}}, l)
	if err != nil {
		t.Fatal(err)
	}
	if l.last() != "tickets-server-success-rate" {
		t.Fatalf("loaded %v", l.names)
	}
	e, err := r.Get("tickets-server-success-rate")
	if err != nil || !e.ReadOnly || e.SLO.Objective != 0.99 {
		t.Fatalf("%+v %v", e, err)
	}
	if _, err := r.Get("nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("missing SLO: %v", err)
	}

	a := mustSLO(t, "name: a\nobjective: 0.9\nsli: {successRate: {service: s}}\n")
	if err := r.Create(a); err != nil {
		t.Fatal(err)
	}
	if err := r.Create(a); !errors.Is(err, ErrSLOExists) {
		t.Errorf("second create: %v", err)
	}
	a.Objective = 0.95
	if created, err := r.Put(a); err != nil || created {
		t.Errorf("put: %v created=%v", err, created)
	}
	if err := r.Delete("tickets-server-success-rate"); !errors.Is(err, ErrSLOReadOnly) {
		t.Errorf("delete of a file SLO: %v", err)
	}
	ro := e.SLO
	if _, err := r.Put(ro); !errors.Is(err, ErrSLOReadOnly) {
		t.Errorf("put over a file SLO: %v", err)
	}
	bad := a
	bad.Objective = 7
	if _, err := r.Put(bad); err == nil || !strings.Contains(err.Error(), "objective") {
		t.Errorf("invalid put: %v", err)
	}
	if l.last() != "a,tickets-server-success-rate" {
		t.Errorf("loaded %v", l.last())
	}

	// A failing rule load changes nothing.
	l.fail = errors.New("boom")
	b := mustSLO(t, "name: b\nobjective: 0.9\nsli: {successRate: {service: s}}\n")
	if _, err := r.Put(b); err == nil {
		t.Error("put with failing loader succeeded")
	}
	l.fail = nil
	if _, err := r.Get("b"); err == nil {
		t.Error("b kept after a failed load")
	}

	// Persisted: a new registry over the same directories sees the change.
	r2, err := NewRegistry(RegistryConfig{Dir: data, SourceDirs: []string{src}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if e, err := r2.Get("a"); err != nil || e.SLO.Objective != 0.95 || e.ReadOnly {
		t.Errorf("reopened: %+v %v", e, err)
	}
	if err := r.Delete("a"); err != nil {
		t.Fatal(err)
	}
	if len(r.List()) != 1 {
		t.Errorf("list %+v", r.List())
	}
	if _, err := os.Stat(filepath.Join(data, "a.yaml")); !os.IsNotExist(err) {
		t.Errorf("a.yaml still there: %v", err)
	}
}

func TestRegistryRefusesBadFiles(t *testing.T) {
	f := func(files map[string]string, want string) {
		t.Helper()
		src := t.TempDir()
		for name, body := range files {
			if err := os.WriteFile(filepath.Join(src, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		_, err := NewRegistry(RegistryConfig{Dir: t.TempDir(), SourceDirs: []string{src}}, nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want %q", err, want)
		}
	}
	ok := "name: a\nobjective: 0.9\nsli: {successRate: {service: s}}\n"
	f(map[string]string{"x.yaml": "name: a\nobjective: 1.5\nsli: {successRate: {service: s}}\n"}, "x.yaml: invalid SLO \"a\": objective: 1.5")
	f(map[string]string{"x.yaml": ok, "y.yml": ok}, `SLO "a" is defined in both`)
	_, err := NewRegistry(RegistryConfig{Dir: t.TempDir(), SourceDirs: []string{filepath.Join(t.TempDir(), "missing")}}, nil)
	if err == nil {
		t.Error("missing source dir accepted")
	}
}
