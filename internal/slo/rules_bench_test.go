package slo

import (
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkGenerateRuleFile measures parsing an SLO file and generating
// its rule file, what every API change and start-up does per SLO.
func BenchmarkGenerateRuleFile(b *testing.B) {
	in, err := os.ReadFile(filepath.Join("testdata", "tickets-server-success-rate.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		s, err := ParseOne(in)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := GenerateRuleFile(s); err != nil {
			b.Fatal(err)
		}
	}
}
