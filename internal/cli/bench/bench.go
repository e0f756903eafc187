// Package bench implements "mamori bench", an MQTT load generator for
// measuring a broker on this machine: message throughput (fan-in, fan-out,
// QoS 1), latency at a fixed rate, connection storms and the memory held by
// idle connections. The engine is internal/bench; this package parses the
// command line and prints the result.
package bench

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	engine "github.com/mamori-mqtt/mamori/internal/bench"
	"github.com/mamori-mqtt/mamori/internal/packet"
	"github.com/mamori-mqtt/mamori/internal/tlsprobe"
)

const usageText = `mamori bench — an MQTT load generator for brokers on this machine

Usage: mamori bench SCENARIO [options]

Scenarios (defaults in brackets):
  fanin    publishers → one wildcard subscriber, QoS 0      [16 → 1]
  fanout   publishers → subscribers of one topic, QoS 0     [1 → 100]
  qos1     windowed QoS 1 publishers → a QoS 1 subscriber   [8 × window 100 → 1]
  latency  fixed rate; p50/p99/p99.9 publish to delivery    [10,000 msg/s, QoS 1]
  conn     connection storm: connect, CONNACK, disconnect   [16 at once, for 5 s]
  idle     hold idle connections; broker RSS per connection [1,000; needs --broker-pid]

Connection:
  -h, --host HOST             broker host (default 127.0.0.1; loopback only)
  -p, --port PORT             broker port (default 1883, 8883 with TLS)
  -V, --protocol-version V    mqttv311 (default) or mqttv5
      --tls                   use TLS (implied by --cafile and --cert)
      --cafile FILE           CA certificates that verify the broker
      --cert FILE, --key FILE client certificate and key (mutual TLS)
      --insecure              do not check the broker's host name
      --no-verify             do not verify the broker's certificate at all, so
                              the client spends less of the machine's CPU on
                              each handshake (the handshake is still full)
      --tls-version V         tlsv1.2 or tlsv1.3: use exactly this version
  -k, --keepalive SEC         keep alive sent in CONNECT (default 0: none)

Load:
      --pubs N                publishers
      --subs N                subscribers
  -q, --qos 0|1               QoS of publishes and subscriptions
      --window N              QoS 1 messages in flight per publisher (default 100)
  -s, --size BYTES            payload size (default 64, at least 20)
  -d, --duration D            publishing time or storm length (default 5s)
  -n, --count N               messages per publisher (default: until --duration)
  -r, --rate R                total publish rate in msg/s (default: as fast as possible)
      --batch N               messages encoded between clock and window checks (default 64)
      --drain D               longest wait for deliveries after publishing (default 3s)
      --conns N               conn: connections to make (default: until --duration);
                              idle: connections to hold
  -c, --concurrency N         conn, idle: connections opened at once
      --hold D                idle: time held before reading RSS (default 2s)

Output:
      --broker-pid PID        read the broker's CPU time (and RSS) from /proc
      --label NAME            name of the broker in the report
      --json                  print the result as JSON
      --quiet                 no progress lines on stderr
      --help                  show this help

Every payload carries its publisher, a sequence number and a timestamp, so
lost, duplicated and reordered messages are counted exactly.
`

// Run executes the command with args (without the command name) and returns
// the process exit code.
func Run(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	cfg, asJSON, err := parse(args, stderr)
	if errors.Is(err, pflag.ErrHelp) {
		fmt.Fprint(stdout, usageText)
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "Error: %v\n\nRun 'mamori bench --help' for usage.\n", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	res, err := engine.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "Error: %v\n", err)
		return 1
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			fmt.Fprintf(stderr, "Error: %v\n", err)
			return 1
		}
		return 0
	}
	if err := res.WriteTable(stdout); err != nil {
		fmt.Fprintf(stderr, "Error: %v\n", err)
		return 1
	}
	return 0
}

// parse turns the command line into a configuration; the scenario's
// defaults apply to every option not given.
func parse(args []string, stderr io.Writer) (engine.Config, bool, error) {
	fs := pflag.NewFlagSet("bench", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SortFlags = false
	var (
		host      = fs.StringP("host", "h", "127.0.0.1", "")
		port      = fs.IntP("port", "p", 0, "")
		proto     = fs.StringP("protocol-version", "V", "mqttv311", "")
		useTLS    = fs.Bool("tls", false, "")
		caFile    = fs.String("cafile", "", "")
		certFile  = fs.String("cert", "", "")
		keyFile   = fs.String("key", "", "")
		insecure  = fs.Bool("insecure", false, "")
		noVerify  = fs.Bool("no-verify", false, "")
		tlsVer    = fs.String("tls-version", "", "")
		keepAlive = fs.IntP("keepalive", "k", 0, "")
		pubs      = fs.Int("pubs", 0, "")
		subs      = fs.Int("subs", 0, "")
		qos       = fs.IntP("qos", "q", 0, "")
		window    = fs.Int("window", 0, "")
		size      = fs.IntP("size", "s", 0, "")
		duration  = fs.DurationP("duration", "d", 0, "")
		count     = fs.IntP("count", "n", 0, "")
		rate      = fs.Float64P("rate", "r", 0, "")
		batch     = fs.Int("batch", 0, "")
		drain     = fs.Duration("drain", 0, "")
		conns     = fs.Int("conns", 0, "")
		conc      = fs.IntP("concurrency", "c", 0, "")
		hold      = fs.Duration("hold", 0, "")
		pid       = fs.Int("broker-pid", 0, "")
		label     = fs.String("label", "", "")
		asJSON    = fs.Bool("json", false, "")
		quiet     = fs.Bool("quiet", false, "")
		help      = fs.Bool("help", false, "")
	)
	if err := fs.Parse(args); err != nil {
		return engine.Config{}, false, err
	}
	if *help {
		return engine.Config{}, false, pflag.ErrHelp
	}
	if fs.NArg() != 1 {
		return engine.Config{}, false, fmt.Errorf("give one scenario: %s", strings.Join(engine.Scenarios, ", "))
	}
	cfg := engine.Defaults(fs.Arg(0))
	set := func(name string, apply func()) {
		if fs.Changed(name) {
			apply()
		}
	}
	set("pubs", func() { cfg.Publishers = *pubs })
	set("subs", func() { cfg.Subscribers = *subs })
	set("qos", func() { cfg.QoS = byte(*qos) })
	set("window", func() { cfg.Window = *window })
	set("size", func() { cfg.PayloadSize = *size })
	set("duration", func() { cfg.Duration = *duration })
	set("count", func() { cfg.Count = *count })
	set("rate", func() { cfg.Rate = *rate })
	set("batch", func() { cfg.Batch = *batch })
	set("drain", func() { cfg.Drain = *drain })
	set("conns", func() { cfg.Connections = *conns })
	set("concurrency", func() { cfg.Concurrency = *conc })
	set("hold", func() { cfg.Hold = *hold })
	if fs.Changed("qos") && (*qos < 0 || *qos > 1) {
		return cfg, false, fmt.Errorf("--qos %d: the benchmark publishes at QoS 0 or 1", *qos)
	}
	if *keepAlive < 0 || *keepAlive > 65535 {
		return cfg, false, fmt.Errorf("--keepalive %d: 0 to 65535", *keepAlive)
	}
	cfg.KeepAlive = uint16(*keepAlive)
	// Counting messages and no time limit: the count bounds the run.
	if fs.Changed("count") && !fs.Changed("duration") {
		cfg.Duration = 0
	}
	if fs.Changed("conns") && !fs.Changed("duration") && cfg.Scenario == engine.Conn {
		cfg.Duration = 0
	}
	switch strings.ToLower(*proto) {
	case "mqttv311", "311", "3.1.1":
		cfg.Version = packet.V311
	case "mqttv5", "5", "5.0":
		cfg.Version = packet.V5
	default:
		return cfg, false, fmt.Errorf("--protocol-version %q: use mqttv311 or mqttv5", *proto)
	}
	if *pid < 0 {
		return cfg, false, fmt.Errorf("--broker-pid %d: not a process id", *pid)
	}
	cfg.BrokerPID, cfg.Label = *pid, *label
	if cfg.Scenario == engine.Idle && cfg.BrokerPID == 0 {
		fmt.Fprintln(stderr, "Warning: without --broker-pid the idle scenario cannot report the broker's memory")
	}
	if !*quiet {
		cfg.Progress = stderr
	}

	tlsOn := *useTLS || *caFile != "" || *certFile != "" || *noVerify
	if !fs.Changed("port") {
		*port = 1883
		if tlsOn {
			*port = 8883
		}
	}
	if *port < 1 || *port > 65535 {
		return cfg, false, fmt.Errorf("--port %d: 1 to 65535", *port)
	}
	if err := checkLoopback(*host); err != nil {
		return cfg, false, err
	}
	cfg.Addr = net.JoinHostPort(*host, strconv.Itoa(*port))
	if (*certFile == "") != (*keyFile == "") {
		return cfg, false, errors.New("--cert and --key go together")
	}
	if tlsOn {
		var tc *tls.Config
		var err error
		if *noVerify {
			tc, err = unverifiedConfig(*certFile, *keyFile, *tlsVer)
		} else {
			tc, err = tlsprobe.ClientConfig(tlsprobe.ClientOptions{
				CAFile: *caFile, CertFile: *certFile, KeyFile: *keyFile, Insecure: *insecure,
				TLSVersion: *tlsVer, Port: *port,
			}, *host, stderr)
		}
		if err != nil {
			return cfg, false, err
		}
		if *tlsVer != "" {
			// tls_version is a minimum in Mosquitto; a benchmark wants
			// to know which handshake it measured.
			tc.MaxVersion = tc.MinVersion
		}
		// Every connection a full handshake: no session tickets, no
		// resumption, as a storm of distinct devices would be.
		tc.ClientSessionCache = nil
		tc.SessionTicketsDisabled = true
		cfg.TLS = tc
	} else if *insecure || *tlsVer != "" || *keyFile != "" {
		return cfg, false, errors.New("TLS options need --tls or --cafile")
	}
	return cfg, *asJSON, cfg.Validate()
}

// unverifiedConfig is a client configuration that checks nothing about the
// server. The broker and the load generator share this machine's cores, and
// verifying the server's chain costs the client about as much as the
// server's signature costs the broker; skipping it leaves more of the
// machine to the broker in a handshake benchmark.
func unverifiedConfig(certFile, keyFile, version string) (*tls.Config, error) {
	v, _, err := tlsprobe.ParseTLSVersion(version)
	if err != nil {
		return nil, err
	}
	tc := &tls.Config{InsecureSkipVerify: true, MinVersion: v}
	if certFile != "" {
		c, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("load --cert %s / --key %s: %w", certFile, keyFile, err)
		}
		tc.Certificates = []tls.Certificate{c}
	}
	return tc, nil
}

// checkLoopback refuses anything but this machine: a load generator
// pointed at a shared broker by mistake would be a denial of service.
func checkLoopback(host string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return fmt.Errorf("--host %s: %w", host, err)
	}
	for _, a := range addrs {
		if !a.IP.IsLoopback() {
			return fmt.Errorf("--host %s: %s is not a loopback address; mamori bench only loads brokers on this machine", host, a.IP)
		}
	}
	return nil
}
