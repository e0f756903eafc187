package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mamori-mqtt/mamori/internal/bridge"
)

var (
	bridgeConnectedDesc = prometheus.NewDesc("mamori_bridge_connected",
		"1 while the bridge is connected to its remote broker.", []string{"bridge"}, nil)
	bridgeReconnectsDesc = prometheus.NewDesc("mamori_bridge_reconnects_total",
		"Connections of the bridge after its first.", []string{"bridge"}, nil)
	bridgeInDesc = prometheus.NewDesc("mamori_bridge_messages_in_total",
		"PUBLISH packets received from the remote broker.", []string{"bridge"}, nil)
	bridgeOutDesc = prometheus.NewDesc("mamori_bridge_messages_out_total",
		"PUBLISH packets sent to the remote broker (resends not counted).", []string{"bridge"}, nil)
	bridgeDroppedDesc = prometheus.NewDesc("mamori_bridge_messages_dropped_total",
		"Messages for the remote dropped: queue full, too large, QoS 0 while disconnected.", []string{"bridge"}, nil)
	bridgeQueuedDesc = prometheus.NewDesc("mamori_bridge_messages_queued",
		"Messages waiting for or in flight to the remote broker.", []string{"bridge"}, nil)
)

// AddBridge adds a bridge's state and counters, labelled with its
// connection name.
func (r *Registry) AddBridge(name string, st *bridge.Stats) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.bridges == nil {
		r.bridges = map[string]*bridge.Stats{}
		r.reg.MustRegister(&bridgeCollector{r: r})
	}
	r.bridges[name] = st
}

// bridgeCollector reads the bridges' counters at scrape time.
type bridgeCollector struct{ r *Registry }

func (c *bridgeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{bridgeConnectedDesc, bridgeReconnectsDesc, bridgeInDesc, bridgeOutDesc, bridgeDroppedDesc, bridgeQueuedDesc} {
		ch <- d
	}
}

func (c *bridgeCollector) Collect(ch chan<- prometheus.Metric) {
	c.r.mu.Lock()
	defer c.r.mu.Unlock()
	for name, st := range c.r.bridges {
		connected := 0.0
		if st.Connected.Load() {
			connected = 1
		}
		ch <- prometheus.MustNewConstMetric(bridgeConnectedDesc, prometheus.GaugeValue, connected, name)
		ch <- prometheus.MustNewConstMetric(bridgeReconnectsDesc, prometheus.CounterValue, float64(st.Reconnects()), name)
		ch <- prometheus.MustNewConstMetric(bridgeInDesc, prometheus.CounterValue, float64(st.MessagesIn.Load()), name)
		ch <- prometheus.MustNewConstMetric(bridgeOutDesc, prometheus.CounterValue, float64(st.MessagesOut.Load()), name)
		ch <- prometheus.MustNewConstMetric(bridgeDroppedDesc, prometheus.CounterValue, float64(st.Dropped.Load()), name)
		ch <- prometheus.MustNewConstMetric(bridgeQueuedDesc, prometheus.GaugeValue, float64(st.Queued.Load()), name)
	}
}
