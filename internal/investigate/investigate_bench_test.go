package investigate

import (
	"context"
	"testing"
)

// BenchmarkInvestigate runs a whole investigation of the connection
// exhaustion incident (about 1,400 traces and 1,000 log lines).
func BenchmarkInvestigate(b *testing.B) {
	d, start, end := exhaustionWorld(b, true)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.Investigate(context.Background(), Request{Service: "booking", Start: start, End: end}); err != nil {
			b.Fatal(err)
		}
	}
}
