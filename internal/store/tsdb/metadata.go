package tsdb

import (
	"slices"
	"strings"
	"sync"

	"github.com/prometheus/prometheus/model/metadata"
)

// maxMetadataFamilies bounds the metadata index; past it new families are
// not recorded (their samples are still stored). Metric families, unlike
// series, are few: this is a guard against a broken sender, not a limit
// anyone should meet.
const maxMetadataFamilies = 50_000

// metadataIndex keeps the latest type, unit and help per metric family as
// appenders see them (OTLP carries them with every batch). It lives in
// memory only: after a restart it refills as data arrives, which is what
// Prometheus' own /api/v1/metadata does with scrape targets too.
type metadataIndex struct {
	mu sync.RWMutex
	m  map[string]metadata.Metadata
}

func newMetadataIndex() *metadataIndex {
	return &metadataIndex{m: make(map[string]metadata.Metadata)}
}

// set records md for family and returns the family name as stored (a copy:
// the caller's string may alias a reused buffer).
func (x *metadataIndex) set(family string, md metadata.Metadata) string {
	x.mu.RLock()
	old, ok := x.m[family]
	x.mu.RUnlock()
	if ok && old == md {
		return family
	}
	family = strings.Clone(family)
	md.Help = strings.Clone(md.Help)
	md.Unit = strings.Clone(md.Unit)
	x.mu.Lock()
	if ok || len(x.m) < maxMetadataFamilies {
		x.m[family] = md
	}
	x.mu.Unlock()
	return family
}

// Metadata returns metric family metadata in the shape of Prometheus'
// /api/v1/metadata: family name -> distinct metadata entries. metric ""
// means all families; limit <= 0 means no limit on the number of families.
// The result is the caller's.
func (s *Store) Metadata(metric string, limit int) map[string][]metadata.Metadata {
	x := s.meta
	x.mu.RLock()
	defer x.mu.RUnlock()
	out := make(map[string][]metadata.Metadata)
	if metric != "" {
		if md, ok := x.m[metric]; ok {
			out[metric] = []metadata.Metadata{md}
		}
		return out
	}
	names := make([]string, 0, len(x.m))
	for name := range x.m {
		names = append(names, name)
	}
	// Sorted so that a limit returns the same families each time.
	slices.Sort(names)
	for _, name := range names {
		if limit > 0 && len(out) >= limit {
			break
		}
		out[name] = []metadata.Metadata{x.m[name]}
	}
	return out
}
