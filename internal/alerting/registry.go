package alerting

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/trenchcoat/trenchcoat/internal/slo"
	"github.com/trenchcoat/trenchcoat/internal/store"
)

// Registry errors. ErrSLONotFound wraps store.ErrNotFound so that
// api.WriteStoreError answers 404.
var (
	ErrSLONotFound = fmt.Errorf("SLO %w", store.ErrNotFound)
	ErrSLOExists   = errors.New("SLO already exists")
	// ErrSLOReadOnly is returned for changes to SLOs defined in --slo-dir
	// files, which the API does not rewrite.
	ErrSLOReadOnly = errors.New("SLO is defined in a file of the SLO directory; edit that file instead")
)

// RuleLoader is what the registry needs of the Manager.
type RuleLoader interface {
	SetSLOs(slos []slo.SLO) error
}

// RegistryConfig configures a Registry.
type RegistryConfig struct {
	// Dir holds SLOs created through the API, one <name>.yaml each
	// (typically <data-dir>/slos). Created if missing.
	Dir string
	// SourceDirs are read-only directories of SLO files (--slo-dir),
	// loaded at start. Every *.yaml / *.yml file may hold several SLOs.
	SourceDirs []string
	Logger     *slog.Logger
}

// Entry is an SLO with where it was defined.
type Entry struct {
	SLO slo.SLO
	// File is the file it was read from or persisted to.
	File string
	// ReadOnly is true for SLOs from SourceDirs.
	ReadOnly bool
}

// Registry holds the SLO definitions, persists API changes as YAML files,
// and hands every change to the rule evaluator. Safe for concurrent use.
type Registry struct {
	cfg    RegistryConfig
	loader RuleLoader
	logger *slog.Logger

	mu      sync.Mutex
	entries map[string]Entry
}

// NewRegistry loads SLOs from cfg.SourceDirs and cfg.Dir and loads their
// rules into loader (may be nil). An invalid or duplicate SLO file is an
// error naming the file: starting with a silently missing SLO would be
// worse than not starting.
func NewRegistry(cfg RegistryConfig, loader RuleLoader) (*Registry, error) {
	if cfg.Dir == "" {
		return nil, errors.New("slo registry: Dir is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("slo registry: %w", err)
	}
	r := &Registry{cfg: cfg, loader: loader, logger: cfg.Logger, entries: map[string]Entry{}}
	for _, d := range cfg.SourceDirs {
		if err := r.loadDir(d, true); err != nil {
			return nil, err
		}
	}
	if err := r.loadDir(cfg.Dir, false); err != nil {
		return nil, err
	}
	if err := r.apply(r.entries); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Registry) loadDir(dir string, readOnly bool) error {
	files, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("slo registry: reading %s: %w", dir, err)
	}
	for _, f := range files {
		name := f.Name()
		if f.IsDir() || strings.HasPrefix(name, ".") || (!strings.HasSuffix(name, ".yaml") && !strings.HasSuffix(name, ".yml")) {
			continue
		}
		path := filepath.Join(dir, name)
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("slo registry: %w", err)
		}
		slos, err := slo.Parse(b)
		if err != nil {
			return fmt.Errorf("slo registry: %s: %w", path, err)
		}
		for _, s := range slos {
			if prev, dup := r.entries[s.Name]; dup {
				return fmt.Errorf("slo registry: SLO %q is defined in both %s and %s", s.Name, prev.File, path)
			}
			r.entries[s.Name] = Entry{SLO: s, File: path, ReadOnly: readOnly}
		}
	}
	return nil
}

// apply hands the SLOs of entries to the rule loader.
func (r *Registry) apply(entries map[string]Entry) error {
	if r.loader == nil {
		return nil
	}
	slos := make([]slo.SLO, 0, len(entries))
	for _, name := range slices.Sorted(maps.Keys(entries)) {
		slos = append(slos, entries[name].SLO)
	}
	return r.loader.SetSLOs(slos)
}

// List returns all SLOs sorted by name.
func (r *Registry) List() []Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Entry, 0, len(r.entries))
	for _, name := range slices.Sorted(maps.Keys(r.entries)) {
		out = append(out, r.entries[name])
	}
	return out
}

// Get returns one SLO.
func (r *Registry) Get(name string) (Entry, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.entries[name]
	if !ok {
		return Entry{}, fmt.Errorf("%q: %w", name, ErrSLONotFound)
	}
	return e, nil
}

// Create adds a new SLO; ErrSLOExists if the name is taken.
func (r *Registry) Create(s slo.SLO) error {
	_, err := r.put(s, false)
	return err
}

// Put creates or replaces an SLO and reports whether it was created.
func (r *Registry) Put(s slo.SLO) (created bool, err error) {
	return r.put(s, true)
}

func (r *Registry) put(s slo.SLO, replace bool) (bool, error) {
	if err := s.Validate(); err != nil {
		return false, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	prev, exists := r.entries[s.Name]
	switch {
	case exists && prev.ReadOnly:
		return false, fmt.Errorf("%q (%s): %w", s.Name, prev.File, ErrSLOReadOnly)
	case exists && !replace:
		return false, fmt.Errorf("%q: %w", s.Name, ErrSLOExists)
	}
	b, err := slo.Marshal(s)
	if err != nil {
		return false, err
	}
	e := Entry{SLO: s, File: filepath.Join(r.cfg.Dir, s.Name+".yaml")}
	next := maps.Clone(r.entries)
	next[s.Name] = e
	// Load the rules before persisting: if they cannot be loaded, nothing
	// changes.
	if err := r.apply(next); err != nil {
		return false, err
	}
	if err := writeFileAtomic(e.File, b); err != nil {
		// Keep the evaluator in line with what is on disk.
		_ = r.apply(r.entries)
		return false, fmt.Errorf("persisting SLO %q: %w", s.Name, err)
	}
	r.entries = next
	return !exists, nil
}

// Delete removes an SLO created through the API.
func (r *Registry) Delete(name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.entries[name]
	if !ok {
		return fmt.Errorf("%q: %w", name, ErrSLONotFound)
	}
	if e.ReadOnly {
		return fmt.Errorf("%q (%s): %w", name, e.File, ErrSLOReadOnly)
	}
	next := maps.Clone(r.entries)
	delete(next, name)
	if err := os.Remove(e.File); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("deleting SLO %q: %w", name, err)
	}
	r.entries = next
	return r.apply(next)
}

// writeFileAtomic writes through a temporary file and a rename, so a crash
// leaves the old or the new file, never half of one.
func writeFileAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".slo-*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
