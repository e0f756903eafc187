package bench

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"os"
	"testing"
	"time"

	"github.com/mamori-mqtt/mamori/internal/brokertest"
	"github.com/mamori-mqtt/mamori/internal/packet"
)

// startBroker runs an in-process broker, over TLS when serverTLS is set,
// and returns its address.
func startBroker(t *testing.T, serverTLS *tls.Config) string {
	t.Helper()
	return brokertest.InProcess(t, serverTLS)
}

// testTLS returns a server configuration with a fresh self-signed ECDSA
// certificate for 127.0.0.1 and a client configuration that trusts it.
func testTLS(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "bench test"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	server = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}}}
	client = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS13, MaxVersion: tls.VersionTLS13}
	return server, client
}

// smoke is a configuration small and short enough for a unit test: the
// point is that every scenario runs end to end, not what it measures.
func smoke(scenario, addr string) Config {
	c := Defaults(scenario)
	c.Addr = addr
	c.Duration = 300 * time.Millisecond
	c.Drain = time.Second
	c.Hold = 100 * time.Millisecond
	switch scenario {
	case FanIn:
		c.Publishers = 4
	case FanOut:
		c.Subscribers = 5
	case QoS1:
		c.Publishers = 2
	case Latency:
		c.Rate = 2000
	case Conn:
		c.Concurrency = 4
		c.Connections = 50
		c.Duration = 2 * time.Second
	case Idle:
		c.Connections = 50
		c.Concurrency = 8
		c.BrokerPID = os.Getpid() // the broker runs in this process
	}
	return c
}

func TestScenarios(t *testing.T) {
	addr := startBroker(t, nil)
	tests := []struct {
		name     string
		scenario string
		version  packet.Version
		rate     float64
	}{
		{"fanin", FanIn, packet.V311, 0},
		{"fanin MQTT 5", FanIn, packet.V5, 0},
		{"fanout", FanOut, packet.V311, 0},
		{"qos1", QoS1, packet.V311, 0},
		{"qos1 MQTT 5", QoS1, packet.V5, 0},
		{"qos1 at a fixed rate", QoS1, packet.V311, 2000},
		{"latency", Latency, packet.V311, 0},
		{"latency MQTT 5", Latency, packet.V5, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := smoke(tt.scenario, addr)
			cfg.Version = tt.version
			if tt.rate > 0 {
				cfg.Rate = tt.rate
			}
			res, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Errors) > 0 {
				t.Errorf("errors: %v", res.Errors)
			}
			d := res.Deliveries
			if res.Sent == 0 || d == nil || d.Unique == 0 {
				t.Fatalf("nothing went through: %+v %+v", res, d)
			}
			if d.Stray != 0 || d.Dups != 0 {
				t.Errorf("stray %d, duplicates %d", d.Stray, d.Dups)
			}
			if d.Unique+d.Lost != d.Expected {
				t.Errorf("received %d + lost %d != owed %d", d.Unique, d.Lost, d.Expected)
			}
			if cfg.QoS == 1 && res.Acked != res.Sent {
				t.Errorf("acknowledged %d of %d", res.Acked, res.Sent)
			}
			// A throttled QoS 1 flow stays far below every queue limit, so
			// an acknowledged message that never arrives is a real loss.
			if cfg.QoS == 1 && cfg.Rate > 0 && d.Lost != 0 {
				t.Errorf("lost %d acknowledged messages", d.Lost)
			}
			if tt.scenario == Latency && (res.Latency == nil || res.Latency.Count != d.Unique) {
				t.Errorf("latency samples %+v for %d deliveries", res.Latency, d.Unique)
			}
			if res.BrokerCPU != -1 {
				t.Errorf("broker CPU %v without a PID", res.BrokerCPU)
			}
		})
	}
}

func TestCountBoundsTheRun(t *testing.T) {
	addr := startBroker(t, nil)
	cfg := smoke(FanIn, addr)
	cfg.Duration = 0
	cfg.Count = 1000
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != 4000 {
		t.Errorf("sent %d, want 4 publishers × 1000", res.Sent)
	}
}

func TestConnAndIdle(t *testing.T) {
	serverTLS, clientTLS := testTLS(t)
	plain := startBroker(t, nil)
	secure := startBroker(t, serverTLS)
	tests := []struct {
		name     string
		scenario string
		addr     string
		tls      *tls.Config
	}{
		{"conn plain", Conn, plain, nil},
		{"conn TLS 1.3", Conn, secure, clientTLS},
		{"idle plain", Idle, plain, nil},
		{"idle TLS", Idle, secure, clientTLS},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := smoke(tt.scenario, tt.addr)
			cfg.TLS = tt.tls
			res, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if res.Failed != 0 || len(res.Errors) > 0 {
				t.Errorf("%d failed: %v", res.Failed, res.Errors)
			}
			if res.Connections != int64(cfg.Connections) {
				t.Errorf("%d connections, want %d", res.Connections, cfg.Connections)
			}
			if tt.tls != nil && res.TLS != "TLS 1.3" {
				t.Errorf("TLS %q", res.TLS)
			}
			if tt.scenario == Idle && (res.RSSAfter == 0 || res.BrokerCPU < 0) {
				t.Errorf("no broker figures from /proc: %+v", res)
			}
		})
	}
}

func TestRefusedSetupIsAnError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	cfg := smoke(FanIn, addr)
	if _, err := Run(context.Background(), cfg); err == nil {
		t.Fatal("a run against a closed port succeeded")
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
	}{
		{"unknown scenario", func(c *Config) { c.Scenario = "storm" }},
		{"payload too small for the header", func(c *Config) { c.PayloadSize = HeaderSize - 1 }},
		{"QoS 2", func(c *Config) { c.QoS = 2 }},
		{"no bound", func(c *Config) { c.Duration, c.Count = 0, 0 }},
		{"window 0 at QoS 1", func(c *Config) { c.QoS, c.Window = 1, 0 }},
		{"no subscriber", func(c *Config) { c.Subscribers = 0 }},
		{"MQTT 3.1", func(c *Config) { c.Version = packet.V31 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Defaults(FanIn)
			tt.mod(&c)
			if err := c.Validate(); err == nil {
				t.Error("accepted")
			}
		})
	}
	for _, s := range Scenarios {
		c := Defaults(s)
		if err := c.Validate(); err != nil {
			t.Errorf("defaults of %s: %v", s, err)
		}
	}
}
