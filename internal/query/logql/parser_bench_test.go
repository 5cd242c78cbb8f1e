package logql

import "testing"

func BenchmarkParse(b *testing.B) {
	const q = `sum by (level, service_name) (rate({log_group=~"/aws/.+", service_name!="x"} |= "FATAL" != "health" | logfmt | status >= 500 and took > 250ms [5m]))`
	b.ReportAllocs()
	b.SetBytes(int64(len(q)))
	for b.Loop() {
		if _, err := Parse(q); err != nil {
			b.Fatal(err)
		}
	}
}
