package packet

import (
	"bytes"
	"testing"
)

// TestConnectBridgeLevel: Mosquitto's bridges with try_private send the
// protocol level with its high bit set (0x83 for 3.1, 0x84 for 3.1.1);
// Decode accepts it as a bridge and Append writes it back.
func TestConnectBridgeLevel(t *testing.T) {
	for _, tc := range []struct {
		name  string
		v     Version
		level byte
	}{{"3.1", V31, 0x83}, {"3.1.1", V311, 0x84}} {
		t.Run(tc.name, func(t *testing.T) {
			c := Connect{Version: tc.v, Bridge: true, ClientID: []byte("host.bridge"), KeepAlive: 60}
			b := c.Append(nil, tc.v)
			name := "MQTT"
			if tc.v == V31 {
				name = "MQIsdp"
			}
			i := 2 + 2 + len(name) // fixed header, name length, name
			if b[i] != tc.level {
				t.Fatalf("level byte %#x, want %#x", b[i], tc.level)
			}
			var d Connect
			if err := d.Decode(b[2:]); err != nil {
				t.Fatal(err)
			}
			if !d.Bridge || d.Version != tc.v || !bytes.Equal(d.ClientID, c.ClientID) {
				t.Fatalf("decoded %+v", d)
			}
		})
	}
	// 0x85 is not a bridge level: MQTT 5 has no try_private.
	raw := []byte{0, 4, 'M', 'Q', 'T', 'T', 0x85, 0x02, 0, 60, 0, 0, 0, 1, 'x'}
	var d Connect
	if err := d.Decode(raw); CodeOf(err) != ErrUnsupportedVersion {
		t.Fatalf("level 0x85: err %v, want unsupported version", err)
	}
}
