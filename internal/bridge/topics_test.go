package bridge

import (
	"testing"

	"github.com/mamori-mqtt/mamori/internal/config"
)

// TestTopicMapping uses the topic lines of Mosquitto's remapping tests
// (06-bridge-b2br-remapping, 06-bridge-br2b-remapping) and the man page's
// "" examples.
func TestTopicMapping(t *testing.T) {
	topic := func(pattern string, d config.BridgeDirection, qos byte, l, r string) config.BridgeTopic {
		return config.BridgeTopic{Pattern: pattern, Direction: d, QoS: qos, LocalPrefix: l, RemotePrefix: r}
	}
	both := []config.BridgeTopic{
		topic("#", config.BridgeBoth, 1, "local/topic/", "remote/topic/"),
		topic("prefix/#", config.BridgeBoth, 2, "local2/topic/", "remote2/topic/"),
		topic("+/value", config.BridgeBoth, 0, "local3/topic/", "remote3/topic/"),
		topic("ic/+", config.BridgeBoth, 0, "local4/top", "remote4/tip"),
		topic("clients/total", config.BridgeIn, 0, "test/mosquitto/org", "$SYS/broker/"),
		topic("", config.BridgeOut, 1, "single/local", "single/remote"),
		topic("plain/#", config.BridgeOut, 0, "", ""),
	}
	tests := []struct {
		local, remote string
		qos           byte
		out, in       bool // mapped in that direction
	}{
		{"local/topic/something", "remote/topic/something", 1, true, true},
		{"local/topic/some/t/h/i/n/g", "remote/topic/some/t/h/i/n/g", 1, true, true},
		{"local2/topic/prefix/something", "remote2/topic/prefix/something", 2, true, true},
		{"local3/topic/something/value", "remote3/topic/something/value", 0, true, true},
		{"local4/topic/something", "remote4/tipic/something", 0, true, true},
		{"test/mosquitto/orgclients/total", "$SYS/broker/clients/total", 0, false, true},
		{"single/local", "single/remote", 1, true, false},
		{"plain/a/b", "plain/a/b", 0, true, false},
	}
	for _, tt := range tests {
		if tt.out {
			got, qos, ok := outbound(both, tt.local)
			if !ok || got != tt.remote || qos != tt.qos {
				t.Errorf("outbound(%q) = %q, %d, %v; want %q, %d", tt.local, got, qos, ok, tt.remote, tt.qos)
			}
		}
		if tt.in {
			got, _, ok := inbound(both, tt.remote)
			if !ok || got != tt.local {
				t.Errorf("inbound(%q) = %q, %v; want %q", tt.remote, got, ok, tt.local)
			}
		}
	}
	for _, name := range []string{"local2/topic/something", "local5/topic/something", "single/local/x"} {
		if got, _, ok := outbound(both[1:], name); ok {
			t.Errorf("outbound(%q) = %q, want no match", name, got)
		}
	}
	if got, _, ok := inbound(both, "single/remote"); ok {
		t.Errorf("an out-only topic maps incoming messages: %q", got)
	}
}
