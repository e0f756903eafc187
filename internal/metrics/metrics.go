// Package metrics serves a broker's Prometheus metrics and health checks
// on metrics_listener: /metrics, /healthz and /readyz. Each broker instance
// has its own registry (no global one), and every value is read from the
// broker's own counters when Prometheus scrapes, so the message path pays
// nothing for metrics.
package metrics

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mamori-mqtt/mamori/internal/bridge"
	"github.com/mamori-mqtt/mamori/internal/broker"
	"github.com/mamori-mqtt/mamori/internal/tlsconf"
)

// Registry holds one broker's metrics.
type Registry struct {
	reg   *prometheus.Registry
	ready atomic.Bool

	mu      sync.Mutex
	tls     map[string]*tlsconf.Server // by listener name
	psk     map[string]*tlsconf.Stats  // TLS-PSK listeners' counters, by listener name
	bridges map[string]*bridge.Stats   // by connection name
}

// New registers the broker's metrics (and the Go runtime's) in a new
// registry.
func New(b *broker.Broker) *Registry {
	r := &Registry{reg: prometheus.NewRegistry(), tls: map[string]*tlsconf.Server{}, psk: map[string]*tlsconf.Stats{}}
	st := b.Stats()
	counter := func(name, help string, f func() uint64) {
		r.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "mamori", Subsystem: "broker",
			Name: name, Help: help}, func() float64 { return float64(f()) }))
	}
	gauge := func(name, help string, f func() float64) {
		r.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "mamori", Subsystem: "broker",
			Name: name, Help: help}, f))
	}
	counter("messages_received_total", "PUBLISH packets received from clients.", st.MessagesReceived.Load)
	counter("messages_sent_total", "PUBLISH packets sent to clients.", st.MessagesSent.Load)
	counter("messages_dropped_total", "Messages dropped: full queues, QoS 0 to a stalled subscriber, too large for a client, refused.", st.MessagesDropped.Load)
	counter("bytes_received_total", "Bytes of MQTT packets received.", st.BytesReceived.Load)
	counter("bytes_sent_total", "Bytes written to clients.", st.BytesSent.Load)
	counter("connections_total", "Accepted CONNECTs.", st.TotalConnects.Load)
	counter("panics_total", "Connections closed after a recovered panic.", st.Panics.Load)
	counter("protocol_errors_total", "Connections closed for a protocol violation.", st.ProtocolErrors.Load)
	counter("auth_failures_total", "Refused CONNECTs.", st.AuthFailures.Load)
	gauge("clients_connected", "Clients connected now.", func() float64 { return float64(st.Connections.Load()) })
	gauge("sessions", "Sessions, connected or not.", func() float64 { s, _, _ := b.Counts(); return float64(s) })
	gauge("subscriptions", "Subscriptions.", func() float64 { _, s, _ := b.Counts(); return float64(s) })
	gauge("retained_messages", "Retained messages.", func() float64 { _, _, n := b.Counts(); return float64(n) })
	r.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	r.reg.MustRegister(&tlsCollector{r: r})
	return r
}

// AddTLS adds a TLS listener's handshake counters and certificate expiry.
func (r *Registry) AddTLS(listener string, srv *tlsconf.Server) {
	r.mu.Lock()
	r.tls[listener] = srv
	r.mu.Unlock()
}

// AddTLSPSK adds a TLS-PSK listener's handshake counters (same series as
// AddTLS's, with the PSK failure reasons).
func (r *Registry) AddTLSPSK(listener string, st *tlsconf.Stats) {
	r.mu.Lock()
	r.psk[listener] = st
	r.mu.Unlock()
}

// SetReady marks the broker ready (listeners open) or not.
func (r *Registry) SetReady(v bool) { r.ready.Store(v) }

// Handler serves /metrics, /healthz (the process answers) and /readyz
// (the broker's listeners are open).
func (r *Registry) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{Registry: r.reg}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !r.ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	return mux
}

var (
	handshakesDesc = prometheus.NewDesc("mamori_tls_handshakes_total", "Completed TLS handshakes.", []string{"listener"}, nil)
	failuresDesc   = prometheus.NewDesc("mamori_tls_handshake_failures_total", "Failed TLS handshakes by reason.",
		[]string{"listener", "reason"}, nil)
	expiryDesc = prometheus.NewDesc("mamori_tls_certificate_expiry_seconds",
		"Seconds until a configured certificate expires (negative: expired).", []string{"listener", "source", "subject"}, nil)
)

// tlsCollector reads the TLS listeners' counters at scrape time.
type tlsCollector struct{ r *Registry }

func (c *tlsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- handshakesDesc
	ch <- failuresDesc
	ch <- expiryDesc
}

func (c *tlsCollector) Collect(ch chan<- prometheus.Metric) {
	c.r.mu.Lock()
	defer c.r.mu.Unlock()
	now := time.Now()
	for name, st := range c.r.psk {
		ch <- prometheus.MustNewConstMetric(handshakesDesc, prometheus.CounterValue, float64(st.Handshakes.Load()), name)
		for reason, n := range st.Failures {
			ch <- prometheus.MustNewConstMetric(failuresDesc, prometheus.CounterValue, float64(n.Load()), name, reason)
		}
	}
	for name, srv := range c.r.tls {
		st := srv.Stats()
		ch <- prometheus.MustNewConstMetric(handshakesDesc, prometheus.CounterValue, float64(st.Handshakes.Load()), name)
		for reason, n := range st.Failures {
			ch <- prometheus.MustNewConstMetric(failuresDesc, prometheus.CounterValue, float64(n.Load()), name, reason)
		}
		seen := map[[2]string]bool{}
		for _, e := range srv.Expiries() {
			k := [2]string{e.Source, e.Subject}
			if seen[k] {
				continue // a certificate listed twice (chain and CA) is one series
			}
			seen[k] = true
			ch <- prometheus.MustNewConstMetric(expiryDesc, prometheus.GaugeValue, e.NotAfter.Sub(now).Seconds(),
				name, e.Source, e.Subject)
		}
	}
}
