package slo

import _ "embed"

// demoSLOYAML is the demo's SLO (WALKTHROUGH.md step 1). It lives under
// testdata because the golden and promtool tests use it too.
//
//go:embed testdata/tickets-server-success-rate.yaml
var demoSLOYAML []byte

// DemoSLO returns the SLO `trenchcoat demo` installs:
// tickets-server-success-rate, 99% of tickets-server's requests succeed
// over 28d, grouped by cloud_region and span_name.
func DemoSLO() SLO {
	s, err := ParseOne(demoSLOYAML)
	if err != nil {
		panic("BUG: embedded demo SLO: " + err.Error())
	}
	return s
}
