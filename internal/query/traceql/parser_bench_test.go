package traceql

import "testing"

func BenchmarkParse(b *testing.B) {
	const q = `{ resource.service.name = "tickets-server" && status = error && duration > 250ms } >> { span.db.system = "postgresql" } | quantile_over_time(duration, 0.5, 0.95, 0.99) by (resource.cloud.availability_zone)`
	b.ReportAllocs()
	b.SetBytes(int64(len(q)))
	for b.Loop() {
		if _, err := Parse(q); err != nil {
			b.Fatal(err)
		}
	}
}
