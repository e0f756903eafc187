package broker

import (
	"bytes"
	"testing"
	"time"

	"github.com/mamori-mqtt/mamori/internal/packet"
)

// Reason strings are off by default, like Mosquitto: a refused client
// learns the code only (the reason is logged). ReasonStrings turns them on.
func TestReasonStringsOffByDefault(t *testing.T) {
	for _, on := range []bool{false, true} {
		_, addr := startBroker(t, func(o *Options) { o.ReasonStrings = on })
		c := dialRaw(t, addr, packet.V5)
		p := &packet.Connect{ClientID: []byte("a"), CleanStart: true}
		p.Props.Set(packet.PropAuthMethod)
		p.Props.AuthMethod = []byte("SCRAM-SHA-1")
		ack := c.connect(p)
		if ack.Code != packet.ErrBadAuthMethod {
			t.Fatalf("code %v", ack.Code)
		}
		if got := ack.Props.Present(packet.PropReasonString); got != on {
			t.Fatalf("ReasonStrings %v: reason string present %v (%q)", on, got, ack.Props.ReasonString)
		}
	}
}

// CONNACK properties come in Mosquitto's order (topic alias maximum first,
// receive maximum after the broker's limits), byte for byte.
func TestConnackPropertyOrder(t *testing.T) {
	_, addr := startBroker(t, nil)
	c := dialRaw(t, addr, packet.V5)
	c.sendRaw((&packet.Connect{Version: packet.V5, ClientID: []byte("o"), CleanStart: true, KeepAlive: 10}).Append(nil, packet.V5))
	want := []byte{0x20, 9, 0, 0, 6, packet.PropTopicAliasMaximum, 0, 10, packet.PropReceiveMaximum, 0, 20}
	got := make([]byte, len(want))
	_ = c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := readFull(c, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("CONNACK % x, want % x", got, want)
	}
}

// A DISCONNECT the broker sends reaches a client that is still writing:
// the broker stops writing and drains the client's input before it closes,
// so unread input does not turn the close into a reset.
func TestDisconnectReachesWritingClient(t *testing.T) {
	_, addr := startBroker(t, nil)
	c := connectOK(t, addr, packet.V5, "w")
	c.sendRaw((&packet.Publish{Topic: []byte("a/+/b"), Payload: []byte("x")}).Append(nil, packet.V5))
	// Keep writing (up to half of what the broker drains) without reading:
	// a broker that just closed would answer with a reset, which fails
	// these writes and discards the DISCONNECT waiting to be read.
	chunk := bytes.Repeat((&packet.Pingreq{}).Append(nil, packet.V5), 8<<10)
	_ = c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	for sent := 0; sent < lingerMaxRead/2; sent += len(chunk) {
		if _, err := c.nc.Write(chunk); err != nil {
			break
		}
	}
	d := c.expectClosed()
	if d == nil || d.Code != packet.ErrProtocol {
		t.Fatalf("want DISCONNECT 0x82 before the close, got %+v", d)
	}
}

func readFull(c *rawClient, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := c.nc.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
