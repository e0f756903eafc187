package bench

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	engine "github.com/mamori-mqtt/mamori/internal/bench"
	"github.com/mamori-mqtt/mamori/internal/brokertest"
	"github.com/mamori-mqtt/mamori/internal/packet"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		check func(t *testing.T, c engine.Config)
	}{
		{"scenario defaults", []string{"fanin"}, func(t *testing.T, c engine.Config) {
			if c.Publishers != 16 || c.Subscribers != 1 || c.QoS != 0 || c.Addr != "127.0.0.1:1883" || c.Version != packet.V311 {
				t.Errorf("%+v", c)
			}
		}},
		{"flags override defaults", []string{"fanout", "--subs", "7", "-s", "128", "-d", "1s", "-V", "mqttv5", "-p", "1999"}, func(t *testing.T, c engine.Config) {
			if c.Subscribers != 7 || c.PayloadSize != 128 || c.Duration != time.Second || c.Version != packet.V5 || c.Addr != "127.0.0.1:1999" {
				t.Errorf("%+v", c)
			}
		}},
		{"a count without a duration bounds the run by count", []string{"qos1", "-n", "500"}, func(t *testing.T, c engine.Config) {
			if c.Count != 500 || c.Duration != 0 || c.QoS != 1 || c.Window != 100 {
				t.Errorf("%+v", c)
			}
		}},
		{"latency defaults", []string{"latency", "--quiet"}, func(t *testing.T, c engine.Config) {
			if c.Rate != 10000 || c.QoS != 1 || c.Progress != nil {
				t.Errorf("%+v", c)
			}
		}},
		{"no-verify pins the TLS version and skips verification", []string{"conn", "--no-verify", "--tls-version", "tlsv1.3"}, func(t *testing.T, c engine.Config) {
			tc := c.TLS
			if tc == nil || !tc.InsecureSkipVerify || tc.MinVersion != tls.VersionTLS13 || tc.MaxVersion != tls.VersionTLS13 ||
				tc.ClientSessionCache != nil || c.Addr != "127.0.0.1:8883" {
				t.Errorf("%+v", tc)
			}
		}},
		{"localhost is loopback", []string{"conn", "-h", "localhost", "--conns", "10"}, func(t *testing.T, c engine.Config) {
			if c.Connections != 10 || c.Duration != 0 || !strings.HasPrefix(c.Addr, "localhost:") {
				t.Errorf("%+v", c)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, err := parse(tt.args, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no scenario", nil, "give one scenario"},
		{"unknown scenario", []string{"storm"}, "unknown scenario"},
		{"remote host", []string{"fanin", "-h", "192.0.2.1"}, "not a loopback address"},
		{"QoS 2", []string{"qos1", "-q", "2"}, "QoS 0 or 1"},
		{"bad version", []string{"fanin", "-V", "4"}, "--protocol-version"},
		{"cert without key", []string{"conn", "--cert", "c.pem"}, "--cert and --key"},
		{"TLS option without TLS", []string{"conn", "--tls-version", "tlsv1.3"}, "need --tls"},
		{"small payload", []string{"fanin", "-s", "8"}, "at least 20"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := parse(tt.args, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	var out, errb bytes.Buffer
	if rc := Run([]string{"--help"}, nil, &out, &errb); rc != 0 || !strings.Contains(out.String(), "Scenarios") {
		t.Errorf("rc %d, out %q, err %q", rc, out.String(), errb.String())
	}
	if rc := Run(nil, nil, &out, &errb); rc != 1 {
		t.Errorf("no scenario: rc %d", rc)
	}
}

// TestRunJSON runs the command in-process against an in-process broker and
// reads its JSON.
func TestRunJSON(t *testing.T) {
	_, port, _ := net.SplitHostPort(brokertest.InProcess(t, nil))
	var out, errb bytes.Buffer
	rc := Run([]string{"fanin", "-p", port, "--pubs", "2", "-n", "200", "--json", "--label", "in-process"}, nil, &out, &errb)
	if rc != 0 {
		t.Fatalf("rc %d: %s", rc, errb.String())
	}
	var res engine.Result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("%v in %s", err, out.String())
	}
	if res.Label != "in-process" || res.Sent != 400 || res.Deliveries == nil || res.Deliveries.Expected != 400 {
		t.Errorf("%+v", res)
	}
}
