package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/mamori-mqtt/mamori/internal/metrics"
)

// serveMetrics serves /metrics, /healthz and /readyz on addr
// (metrics_listener) and returns the function that stops it.
func serveMetrics(addr string, reg *metrics.Registry, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: reg.Handler(), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error(fmt.Sprintf("metrics_listener %s stopped: %v", addr, err))
		}
	}()
	log.Info(fmt.Sprintf("Serving metrics on http://%s/metrics (also /healthz, /readyz).", ln.Addr()))
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	}, nil
}
