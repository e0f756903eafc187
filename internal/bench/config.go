// Package bench is the engine behind "mamori bench": an MQTT load generator
// in the spirit of emqtt-bench that drives a broker over loopback and
// reports what it delivered, how fast, at what latency, and at what cost in
// the broker's CPU time and memory.
//
// The message path avoids everything that would make the generator the
// bottleneck: a publisher encodes one PUBLISH once and then only patches its
// sequence number (and packet identifier, timestamp) in place before
// copying it into a large buffered writer, and a subscriber frames whatever
// one read returned with packet.Reader and decodes each PUBLISH without
// allocating. Counters shared between goroutines are updated once per
// batch, not per message.
//
// Every payload starts with a header (publisher, sequence number, send
// time), and each subscriber keeps a bitmap per publisher, so losses,
// duplicates and reordering are counted exactly.
package bench

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/mamori-mqtt/mamori/internal/packet"
)

// Scenario names.
const (
	FanIn   = "fanin"   // N publishers → 1 wildcard subscriber, QoS 0
	FanOut  = "fanout"  // 1 publisher → N subscribers of one topic, QoS 0
	QoS1    = "qos1"    // windowed QoS 1 publishers → a QoS 1 subscriber
	Latency = "latency" // fixed rate; publish-to-delivery percentiles
	Conn    = "conn"    // connection storm: connect, handshake, CONNACK, close
	Idle    = "idle"    // N idle connections; broker memory per connection
)

// Scenarios lists the scenario names in the order the help shows them.
var Scenarios = []string{FanIn, FanOut, QoS1, Latency, Conn, Idle}

// Config describes one benchmark run.
type Config struct {
	Scenario string
	// Addr is the broker's host:port. The command only accepts loopback
	// addresses; the engine itself does not check.
	Addr string
	// TLS, when set, wraps every connection; it should have session
	// resumption off so that each connection is a full handshake.
	TLS *tls.Config
	// Version is the MQTT protocol level (3.1.1 when zero).
	Version packet.Version

	Publishers  int
	Subscribers int
	QoS         byte // publish and subscription QoS (0 or 1)
	Window      int  // QoS 1 messages in flight per publisher
	PayloadSize int  // bytes per message, at least HeaderSize
	// Duration bounds the publishing phase (and the conn storm); Count,
	// when set, stops each publisher after that many messages first.
	Duration time.Duration
	Count    int
	// Rate is the total publish rate in messages per second across all
	// publishers; 0 publishes as fast as the broker accepts.
	Rate float64
	// Batch is how many messages a publisher encodes between checks of the
	// clock, the window and the stop flag.
	Batch int
	// Drain bounds the wait for deliveries after publishing stops.
	Drain time.Duration

	Connections int           // conn: connections to open (0: until Duration); idle: connections held
	Concurrency int           // conn, idle: connections being opened at once
	Hold        time.Duration // idle: how long connections stay idle before RSS is read

	KeepAlive uint16 // sent in CONNECT; 0 disables the broker's keep-alive check
	// BrokerPID, when non-zero, is read in /proc for the broker's CPU time
	// (utime+stime) and resident memory.
	BrokerPID int
	// Label names the broker in the report.
	Label string
	// Topic is the topic prefix; a random one is chosen when empty.
	Topic string
	// ClientID prefixes every client identifier.
	ClientID string
	// Progress receives a line a second while the run goes on; nil for none.
	Progress io.Writer
}

// Defaults returns the configuration of scenario with its usual sizes: the
// ones the side-by-side comparison uses.
func Defaults(scenario string) Config {
	c := Config{
		Scenario:    scenario,
		Addr:        "127.0.0.1:1883",
		Version:     packet.V311,
		Publishers:  1,
		Subscribers: 1,
		Window:      100,
		PayloadSize: 64,
		Duration:    5 * time.Second,
		Batch:       64,
		Drain:       3 * time.Second,
		Concurrency: 16,
		Hold:        2 * time.Second,
	}
	switch scenario {
	case FanIn:
		c.Publishers = 16
	case FanOut:
		c.Subscribers = 100
	case QoS1:
		c.Publishers, c.QoS = 8, 1
	case Latency:
		c.QoS, c.Rate = 1, 10000
	case Conn:
		c.Connections = 0
	case Idle:
		c.Connections, c.Concurrency = 1000, 32
	}
	return c
}

// Validate reports the first problem with c.
func (c *Config) Validate() error {
	known := false
	for _, s := range Scenarios {
		known = known || s == c.Scenario
	}
	switch {
	case !known:
		return fmt.Errorf("unknown scenario %q (want one of %v)", c.Scenario, Scenarios)
	case c.Addr == "":
		return errors.New("no broker address")
	case c.Version != 0 && c.Version != packet.V311 && c.Version != packet.V5:
		return fmt.Errorf("protocol version %v: use 3.1.1 or 5", c.Version)
	case c.QoS > 1:
		return errors.New("QoS must be 0 or 1")
	case c.Duration <= 0 && c.Count <= 0 && c.isFlow():
		return errors.New("need a duration or a message count")
	case c.Duration <= 0 && c.Connections <= 0 && c.Scenario == Conn:
		return errors.New("need a duration or a connection count")
	case c.Connections <= 0 && c.Scenario == Idle:
		return errors.New("need a connection count")
	case c.Rate < 0, c.Count < 0, c.Connections < 0:
		return errors.New("rates and counts cannot be negative")
	}
	if c.isFlow() {
		switch {
		case c.Publishers < 1 || c.Subscribers < 1:
			return errors.New("need at least one publisher and one subscriber")
		case c.PayloadSize < HeaderSize:
			return fmt.Errorf("payload size %d: at least %d bytes (publisher, sequence number and timestamp)", c.PayloadSize, HeaderSize)
		case c.PayloadSize > 1<<20:
			return fmt.Errorf("payload size %d: at most 1 MiB", c.PayloadSize)
		case c.QoS == 1 && (c.Window < 1 || c.Window > 65535):
			return fmt.Errorf("window %d: 1 to 65535", c.Window)
		case c.Publishers+c.Subscribers > 100000:
			return errors.New("at most 100,000 connections")
		}
	}
	if (c.Scenario == Conn || c.Scenario == Idle) && c.Concurrency < 1 {
		return errors.New("concurrency must be at least 1")
	}
	return nil
}

func (c *Config) isFlow() bool {
	switch c.Scenario {
	case FanIn, FanOut, QoS1, Latency:
		return true
	}
	return false
}

func (c *Config) version() packet.Version {
	if c.Version == 0 {
		return packet.V311
	}
	return c.Version
}
