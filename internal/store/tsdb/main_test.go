package tsdb

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// OpenCensus-era glog-style flushers are not used; the only
		// long-lived goroutines are the gRPC and HTTP ones the tests stop.
		goleak.IgnoreTopFunction("github.com/golang/glog.(*fileSink).flushDaemon"),
	)
}
