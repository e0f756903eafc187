package brokercmd

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mamori-mqtt/mamori/internal/brokertest"
	"github.com/mamori-mqtt/mamori/internal/client"
	"github.com/mamori-mqtt/mamori/internal/packet"
)

// mqttClient is mamori's MQTT client in the test process, for what the
// command-line clients cannot show: reason codes of a DISCONNECT, a
// subscription that silently stops delivering.
type mqttClient struct {
	*client.Client
	t *testing.T
}

// dial connects with MQTT 5 (unless o.Version says otherwise) and closes
// the connection at the end of the test.
func dial(t *testing.T, o client.Options) *mqttClient {
	t.Helper()
	c, err := tryDial(t, o)
	if err != nil {
		t.Fatalf("connect %s %s as %q: %v", o.Network, o.Address, o.ClientID, err)
	}
	return c
}

// tryDial is dial that returns the error.
func tryDial(t *testing.T, o client.Options) (*mqttClient, error) {
	t.Helper()
	if o.Version == 0 {
		o.Version = packet.V5
	}
	if o.Network == "" {
		o.Network = "tcp"
	}
	o.CleanStart = true
	o.ConnectTimeout = awaitTimeout
	ctx, cancel := context.WithTimeout(context.Background(), awaitTimeout)
	defer cancel()
	c, _, err := client.Dial(ctx, o)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	return &mqttClient{Client: c, t: t}, nil
}

func strp(name string) *string { return &name }

// subscribe subscribes at QoS 1 and returns the granted reason code.
func (c *mqttClient) subscribe(filter string) packet.ReasonCode {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), awaitTimeout)
	defer cancel()
	ack, err := c.Subscribe(ctx, nil, packet.Subscription{Filter: []byte(filter), QoS: 1})
	if err != nil {
		c.t.Fatalf("subscribe %s: %v", filter, err)
	}
	return ack.Codes[0]
}

// publish publishes at QoS 1 and waits for PUBACK.
func (c *mqttClient) publish(topic, payload string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), awaitTimeout)
	defer cancel()
	if err := c.Publish(ctx, &client.Message{Topic: topic, Payload: []byte(payload), QoS: 1}); err != nil {
		c.t.Fatalf("publish %s: %v", topic, err)
	}
}

// expect waits for the next message and checks its topic and payload.
func (c *mqttClient) expect(topic, payload string) {
	c.t.Helper()
	select {
	case m, ok := <-c.Messages():
		if !ok {
			c.t.Fatalf("connection ended (%v) while waiting for %s %q", c.Err(), topic, payload)
		}
		if m.Topic != topic || string(m.Payload) != payload {
			c.t.Fatalf("got %s %q, want %s %q", m.Topic, m.Payload, topic, payload)
		}
	case <-time.After(awaitTimeout):
		c.t.Fatalf("no message %s %q within %v", topic, payload, awaitTimeout)
	}
}

// disconnectedWith waits until the server ends the connection and checks
// the DISCONNECT reason code.
func (c *mqttClient) disconnectedWith(code packet.ReasonCode) {
	c.t.Helper()
	select {
	case <-c.Done():
	case <-time.After(awaitTimeout):
		c.t.Fatalf("still connected after %v; want DISCONNECT %v", awaitTimeout, code)
	}
	var de *client.DisconnectError
	if !errors.As(c.Err(), &de) {
		c.t.Fatalf("connection ended with %v; want DISCONNECT %v", c.Err(), code)
	}
	if de.Code != code {
		c.t.Fatalf("DISCONNECT %v, want %v", de.Code, code)
	}
}

// jsonEvent is a line printed by testdata/mqttjs_ws.js.
type jsonEvent struct {
	Event   string `json:"event"`
	Topic   string `json:"topic"`
	Payload string `json:"payload"`
	Error   string `json:"error"`
	Granted []int  `json:"granted"`
}

// events parses the JSON lines a helper script printed so far.
func events(p *brokertest.Proc) []jsonEvent {
	var out []jsonEvent
	for _, l := range p.Lines() {
		if !strings.HasPrefix(l, "{") {
			continue
		}
		var e jsonEvent
		if json.Unmarshal([]byte(l), &e) == nil {
			out = append(out, e)
		}
	}
	return out
}
