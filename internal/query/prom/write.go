package prom

import (
	"errors"
	"log/slog"
	"net/http"

	remoteapi "github.com/prometheus/client_golang/exp/api/remote"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/storage/remote"
)

// newWriteHandler is Prometheus' own remote-write receiver (snappy
// protobuf; 1.0 and 2.0 messages) appending into a. It answers 204 on
// success, 400 for undecodable bodies and samples the store refuses as
// out of order or too old (so that senders do not retry them), 500 for
// other store errors; a whole request is committed or rolled back.
func newWriteHandler(logger *slog.Logger, reg prometheus.Registerer, a storage.Appendable) (http.Handler, error) {
	a2, ok := a.(storage.AppendableV2)
	if !ok {
		return nil, errors.New("prom: the Appendable must also implement storage.AppendableV2 for remote write")
	}
	accepted := remoteapi.MessageTypes{remoteapi.WriteV1MessageType, remoteapi.WriteV2MessageType}
	return remote.NewWriteHandler(logger.With("component", "remote-write"), reg, a2, accepted, false, false), nil
}
