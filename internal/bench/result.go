package bench

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Result is what a run measured. Rates are per second of wall time; CPU
// times are in seconds. Fields that do not apply to the scenario are zero
// and left out of the JSON.
type Result struct {
	Scenario string `json:"scenario"`
	Label    string `json:"broker,omitempty"`
	Protocol string `json:"protocol"`
	TLS      string `json:"tls,omitempty"`

	Publishers  int     `json:"publishers,omitempty"`
	Subscribers int     `json:"subscribers,omitempty"`
	QoS         int     `json:"qos"`
	Window      int     `json:"window,omitempty"`
	PayloadSize int     `json:"payload_size,omitempty"`
	TargetRate  float64 `json:"target_rate,omitempty"`

	// Elapsed is the publishing phase (flows), the storm (conn) or the
	// connecting phase (idle), in seconds.
	Elapsed float64 `json:"elapsed_s"`

	// Flows: Sent messages were accepted by the socket; Acked (QoS 1) were
	// acknowledged, Refused with a failure code. Deliveries are owed for
	// Sent (QoS 0) or Acked-Refused (QoS 1) messages, once per subscriber.
	Sent        int64        `json:"sent,omitempty"`
	Acked       int64        `json:"acked,omitempty"`
	Refused     int64        `json:"refused,omitempty"`
	Deliveries  *Counts      `json:"deliveries,omitempty"`
	SendRate    float64      `json:"sent_per_s,omitempty"`
	DeliverRate float64      `json:"delivered_per_s,omitempty"`
	DrainTime   float64      `json:"drain_s,omitempty"` // from the end of publishing to the last delivery
	Latency     *Percentiles `json:"latency,omitempty"`

	// conn and idle.
	Connections int64        `json:"connections,omitempty"`
	Failed      int64        `json:"failed,omitempty"`
	ConnRate    float64      `json:"connections_per_s,omitempty"`
	ConnLatency *Percentiles `json:"connect_latency,omitempty"`
	RSSBefore   int64        `json:"broker_rss_before_kib,omitempty"`
	RSSAfter    int64        `json:"broker_rss_after_kib,omitempty"`
	RSSPerConn  float64      `json:"broker_rss_per_conn_kib,omitempty"`

	// BrokerCPU is the broker's utime+stime over the measured phase (-1
	// without --broker-pid); CPUPerUnit divides it by the deliveries or
	// connections, in microseconds.
	BrokerCPU  float64 `json:"broker_cpu_s"`
	CPUPerUnit float64 `json:"broker_cpu_us_per_unit,omitempty"`
	Unit       string  `json:"unit,omitempty"`
	BenchCPU   float64 `json:"bench_cpu_s"`

	Errors []string `json:"errors,omitempty"`
}

// WriteTable writes r as a two-column summary table.
func (r *Result) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, a ...any) { fmt.Fprintf(tw, "%s\t%s\n", k, fmt.Sprintf(format, a...)) }
	title := r.Scenario
	if r.Label != "" {
		title += " against " + r.Label
	}
	conn := "MQTT " + r.Protocol
	if r.TLS != "" {
		conn += " over " + r.TLS
	}
	row("scenario", "%s (%s)", title, conn)
	switch r.Scenario {
	case Conn, Idle:
		row("connections", "%s opened, %s failed, in %.2f s", Count(r.Connections), Count(r.Failed), r.Elapsed)
		if r.Scenario == Conn {
			row("rate", "%s connections/s", Rate(r.ConnRate))
		}
		if p := r.ConnLatency; p != nil && p.Count > 0 {
			row("connect time", "p50 %s  p99 %s  p99.9 %s  max %s", US(p.P50), US(p.P99), US(p.P999), US(p.Max))
		}
		if r.RSSAfter > 0 {
			row("broker RSS", "%s KiB before, %s KiB after: %.1f KiB per connection",
				Count(r.RSSBefore), Count(r.RSSAfter), r.RSSPerConn)
		}
	default:
		shape := fmt.Sprintf("%d publisher(s) → %d subscriber(s), QoS %d, %d-byte payload", r.Publishers, r.Subscribers, r.QoS, r.PayloadSize)
		if r.QoS > 0 {
			shape += fmt.Sprintf(", window %d", r.Window)
		}
		if r.TargetRate > 0 {
			shape += ", target " + Rate(r.TargetRate) + " msg/s"
		}
		row("shape", "%s", shape)
		row("published", "%s in %.2f s (%s msg/s)", Count(r.Sent), r.Elapsed, Rate(r.SendRate))
		if r.QoS > 0 {
			row("acknowledged", "%s (%s refused)", Count(r.Acked), Count(r.Refused))
		}
		if d := r.Deliveries; d != nil {
			row("delivered", "%s of %s owed (%s msg/s), last %.2f s after publishing stopped",
				Count(d.Unique), Count(d.Expected), Rate(r.DeliverRate), r.DrainTime)
			row("lost", "%s (%.2f%%)", Count(d.Lost), d.LossPercent())
			row("reordered", "%s, duplicates %s, stray %s", Count(d.Reordered), Count(d.Dups), Count(d.Stray))
		}
		if p := r.Latency; p != nil && p.Count > 0 {
			row("latency", "p50 %s  p90 %s  p99 %s  p99.9 %s  max %s (%s samples)",
				US(p.P50), US(p.P90), US(p.P99), US(p.P999), US(p.Max), Count(p.Count))
		}
	}
	if r.BrokerCPU >= 0 {
		s := fmt.Sprintf("%.2f s", r.BrokerCPU)
		if r.Unit != "" {
			s += fmt.Sprintf(" (%.2f µs per %s)", r.CPUPerUnit, r.Unit)
		}
		row("broker CPU", "%s", s)
	}
	row("bench CPU", "%.2f s", r.BenchCPU)
	for _, e := range r.Errors {
		row("error", "%s", e)
	}
	return tw.Flush()
}

// Count formats n with thousands separators.
func Count(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// Rate formats a per-second rate compactly: 950, 12.3k, 1.25M.
func Rate(v float64) string {
	switch {
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', 2, 64) + "M"
	case v >= 1e4:
		return strconv.FormatFloat(v/1e3, 'f', 0, 64) + "k"
	case v >= 1e3:
		return strconv.FormatFloat(v/1e3, 'f', 1, 64) + "k"
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

// US formats microseconds: 850 µs, 1.23 ms.
func US(us float64) string {
	if us >= 1000 {
		return strconv.FormatFloat(us/1000, 'f', 2, 64) + " ms"
	}
	return strconv.FormatFloat(us, 'f', 0, 64) + " µs"
}
