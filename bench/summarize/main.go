// Command summarize turns the results of bench/compare.sh into markdown:
// per case, the median over runs of each broker's headline figure, the
// ratios mamori/anchor, and each broker's CPU time per delivered message or
// per connection.
//
// Usage: go run ./bench/summarize DIR [CASE...]
//
// DIR holds one "mamori bench --json" output per run, named
// CASE@BROKER@RUN.json (or {"error": "..."} for a run that failed). The
// CASE arguments give the order of the rows; without them the cases are
// sorted by name.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/mamori-mqtt/mamori/internal/bench"
)

// brokerOrder is the column order; brokers not listed come after.
var brokerOrder = []string{"mosquitto", "mochi", "nats", "mamori", "go-tls"}

// anchors are the brokers mamori is compared with.
var anchors = []string{"mosquitto", "mochi", "nats"}

// run is one file: a result or the reason there is none.
type run struct {
	bench.Result
	Error string `json:"error"`
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: summarize DIR [CASE...]")
		os.Exit(2)
	}
	runs, err := load(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "summarize:", err)
		os.Exit(1)
	}
	order := os.Args[2:]
	if len(order) == 0 {
		for c := range runs {
			order = append(order, c)
		}
		slices.Sort(order)
	}
	write(os.Stdout, runs, order)
}

// load reads DIR into case → broker → runs.
func load(dir string) (map[string]map[string][]run, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*@*@*.json"))
	if err != nil {
		return nil, err
	}
	out := map[string]map[string][]run{}
	for _, f := range files {
		parts := strings.Split(strings.TrimSuffix(filepath.Base(f), ".json"), "@")
		if len(parts) != 3 {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var r run
		if err := json.Unmarshal(b, &r); err != nil {
			r.Error = fmt.Sprintf("unreadable result: %v", err)
		}
		if out[parts[0]] == nil {
			out[parts[0]] = map[string][]run{}
		}
		out[parts[0]][parts[1]] = append(out[parts[0]][parts[1]], r)
	}
	return out, nil
}

// metric is a case's headline figure.
type metric struct {
	name        string
	lowerBetter bool
	value       func(*bench.Result) float64
	format      func(float64) string
}

func metricOf(scenario string) metric {
	switch scenario {
	case bench.Latency:
		return metric{"p99 latency (lower is better)", true,
			func(r *bench.Result) float64 {
				if r.Latency == nil {
					return math.NaN()
				}
				return r.Latency.P99
			}, bench.US}
	case bench.Conn:
		return metric{"connections/s", false, func(r *bench.Result) float64 { return r.ConnRate }, bench.Rate}
	case bench.Idle:
		return metric{"broker RSS per connection (lower is better)", true,
			func(r *bench.Result) float64 { return r.RSSPerConn },
			func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) + " KiB" }}
	}
	return metric{"delivered msg/s", false, func(r *bench.Result) float64 { return r.DeliverRate }, bench.Rate}
}

// summary is the medians of one broker in one case.
type summary struct {
	ok       bool
	value    float64
	loss     float64
	cpu      float64 // µs per unit, NaN when unknown
	failed   int64   // connections that failed, summed
	err      string
	runs     int
	scenario string
	unit     string
}

func summarize(rs []run) summary {
	var s summary
	var vals, losses, cpus []float64
	for i := range rs {
		r := &rs[i]
		if r.Error != "" {
			s.err = r.Error
			continue
		}
		s.scenario, s.unit = r.Scenario, r.Unit
		vals = append(vals, metricOf(r.Scenario).value(&r.Result))
		if r.Deliveries != nil {
			losses = append(losses, r.Deliveries.LossPercent())
		}
		if r.BrokerCPU >= 0 && r.Unit != "" {
			cpus = append(cpus, r.CPUPerUnit)
		}
		s.failed += r.Failed
	}
	s.runs = len(vals)
	s.ok = len(vals) > 0
	s.value, s.loss, s.cpu = median(vals), median(losses), median(cpus)
	return s
}

// median of v, NaN for none; the mean of the middle two for an even count.
func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	v = slices.Clone(v)
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

func write(w io.Writer, runs map[string]map[string][]run, order []string) {
	var brokers []string
	seen := map[string]bool{}
	for _, byBroker := range runs {
		for b := range byBroker {
			seen[b] = true
		}
	}
	for _, b := range brokerOrder {
		if seen[b] {
			brokers = append(brokers, b)
			delete(seen, b)
		}
	}
	for b := range seen {
		brokers = append(brokers, b)
	}
	var ratioCols []string
	for _, a := range anchors {
		if slices.Contains(brokers, a) && slices.Contains(brokers, "mamori") {
			ratioCols = append(ratioCols, a)
		}
	}
	hasCeiling := slices.Contains(brokers, "go-tls") && slices.Contains(brokers, "mamori")

	head := []string{"case", "metric"}
	for _, b := range brokers {
		head = append(head, label(b))
	}
	for _, a := range ratioCols {
		head = append(head, "mamori/"+a)
	}
	if hasCeiling {
		head = append(head, "mamori/bare TLS")
	}
	fmt.Fprintln(w, "| "+strings.Join(head, " | ")+" |")
	fmt.Fprintln(w, "|"+strings.Repeat("---|", len(head)))
	cpuRows := [][]string{}
	for _, c := range order {
		byBroker := runs[c]
		if byBroker == nil {
			continue
		}
		sums := map[string]summary{}
		scenario := ""
		for b, rs := range byBroker {
			sums[b] = summarize(rs)
			if sums[b].scenario != "" {
				scenario = sums[b].scenario
			}
		}
		m := metricOf(scenario)
		row := []string{c, m.name}
		cpuRow := []string{c, ""}
		for _, b := range brokers {
			s, ok := sums[b]
			switch {
			case !ok:
				row = append(row, "–")
				cpuRow = append(cpuRow, "–")
			case !s.ok:
				row = append(row, "failed: "+shorten(s.err))
				cpuRow = append(cpuRow, "–")
			default:
				cell := m.format(s.value)
				if !math.IsNaN(s.loss) && s.loss >= 0.05 {
					cell += fmt.Sprintf(" (%.0f%% lost)", s.loss)
				}
				if s.failed > 0 {
					cell += fmt.Sprintf(" (%d failed)", s.failed)
				}
				row = append(row, cell)
				if math.IsNaN(s.cpu) {
					cpuRow = append(cpuRow, "–")
				} else {
					cpuRow = append(cpuRow, strconv.FormatFloat(s.cpu, 'f', 2, 64))
				}
				if s.unit != "" {
					cpuRow[1] = "µs per " + s.unit
				}
			}
		}
		mine := sums["mamori"]
		for _, a := range ratioCols {
			row = append(row, ratio(mine, sums[a]))
		}
		if hasCeiling {
			if g, ok := sums["go-tls"]; ok {
				row = append(row, ratio(mine, g))
			} else {
				row = append(row, "–")
			}
		}
		fmt.Fprintln(w, "| "+strings.Join(row, " | ")+" |")
		cpuRows = append(cpuRows, cpuRow)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Broker CPU time (utime+stime from /proc/PID/stat, 10 ms ticks) per delivered message or per connection, medians:")
	fmt.Fprintln(w)
	head = []string{"case", "unit"}
	for _, b := range brokers {
		head = append(head, label(b))
	}
	fmt.Fprintln(w, "| "+strings.Join(head, " | ")+" |")
	fmt.Fprintln(w, "|"+strings.Repeat("---|", len(head)))
	for _, r := range cpuRows {
		fmt.Fprintln(w, "| "+strings.Join(r, " | ")+" |")
	}
}

func label(b string) string {
	if b == "go-tls" {
		return "bare crypto/tls"
	}
	return b
}

// ratio is mamori's median over the anchor's, e.g. "1.52×".
func ratio(mine, anchor summary) string {
	if !mine.ok || !anchor.ok || anchor.value == 0 || math.IsNaN(mine.value) || math.IsNaN(anchor.value) {
		return "–"
	}
	return strconv.FormatFloat(mine.value/anchor.value, 'f', 2, 64) + "×"
}

func shorten(s string) string {
	s = strings.ReplaceAll(s, "|", "/")
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
}
