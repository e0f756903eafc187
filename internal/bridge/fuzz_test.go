package bridge

import (
	"testing"
	"time"

	"github.com/mamori-mqtt/mamori/internal/config"
	"github.com/mamori-mqtt/mamori/internal/packet"
)

// FuzzRemote plays a hostile remote broker: after a valid CONNACK it sends
// the fuzzed bytes, split over two writes, and hangs up. The bridge must
// survive whatever it reads (a panic on one of its goroutines fails the
// run) and connect again. One bridge serves every input, as a long-lived
// bridge would meet them one after the other.
func FuzzRemote(f *testing.F) {
	for _, p := range []packet.Packet{
		&packet.Publish{Topic: []byte("cloud/a"), Payload: []byte("x"), QoS: 2, PacketID: 9},
		&packet.Publish{Topic: []byte("cloud/#"), QoS: 1, PacketID: 1},
		&packet.Ack{Kind: packet.PUBREL, PacketID: 9},
		&packet.Ack{Kind: packet.PUBREC, PacketID: 4},
		&packet.Suback{PacketID: 1, Codes: []packet.ReasonCode{0x80}},
		packet.Pingreq{},
		&packet.Disconnect{Code: packet.ErrServerShuttingDown},
	} {
		f.Add(p.Append(nil, packet.V311), uint8(3))
	}
	f.Add([]byte{0x30, 0xff, 0xff, 0xff, 0x7f}, uint8(1))

	lb, _ := localBroker(f)
	rem := newFakeRemote(f)
	cfg := config.Bridge{Name: "edge", Addresses: []config.BridgeAddress{rem.address()},
		Topics: []config.BridgeTopic{{Pattern: "#", Direction: config.BridgeBoth, QoS: 2, LocalPrefix: "site/", RemotePrefix: "cloud/"}}}
	newBridge(f, lb, cfg, Options{})
	f.Fuzz(func(t *testing.T, data []byte, split uint8) {
		_ = rem.ln.SetDeadline(time.Now().Add(wait))
		conn, err := rem.ln.Accept()
		if err != nil {
			t.Fatalf("the bridge did not connect again: %v", err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(wait))
		rd := packet.NewReader(conn, 0)
		if h, _, err := rd.ReadPacket(); err != nil || h.Type != packet.CONNECT {
			t.Fatalf("no CONNECT: %v %v", h.Type, err)
		}
		ack := (&packet.Connack{}).Append(nil, packet.V311)
		i := min(int(split), len(data))
		_, _ = conn.Write(append(ack, data[:i]...))
		_, _ = conn.Write(data[i:])
	})
}
