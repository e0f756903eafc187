package interop

import (
	"fmt"
	"slices"
	"testing"
)

// pair is a publishing client and a subscribing client. Each scenario runs
// with both roles taken by the same client, then across clients: every
// client publishes to the next one in allClients, so each protocol version
// meets another (3.1 → 3.1.1 → 5 → Paho 3.1.1 → … → MQTT.js 5 → 3.1).
type pair struct{ pub, sub client }

func (p pair) String() string {
	if p.pub == p.sub {
		return p.pub.String()
	}
	return p.pub.String() + "_to_" + p.sub.String()
}

func pairs() []pair {
	var out []pair
	for _, c := range allClients {
		out = append(out, pair{c, c})
	}
	for i, c := range allClients {
		out = append(out, pair{c, allClients[(i+1)%len(allClients)]})
	}
	return out
}

// runPairs runs scenario as a parallel subtest for every pair. Each
// subtest has its own broker, client identifiers and processes.
func runPairs(t *testing.T, scenario func(t *testing.T, p pair)) {
	t.Parallel()
	for _, p := range pairs() {
		t.Run(p.String(), func(t *testing.T) {
			t.Parallel()
			p.pub.require(t)
			p.sub.require(t)
			scenario(t, p)
		})
	}
}

// TestPubSub publishes at QoS 0, 1 and 2 to a subscriber at each QoS and
// checks topic, payload, QoS and retain flag of what arrives.
func TestPubSub(t *testing.T) {
	t.Parallel()
	for _, subQoS := range []int{0, 1, 2} {
		t.Run(fmt.Sprintf("sub-qos%d", subQoS), func(t *testing.T) {
			runPairs(t, func(t *testing.T, p pair) { pubSub(t, p, subQoS) })
		})
	}
}

func pubSub(t *testing.T, p pair, subQoS int) {
	b := startBroker(t)
	const topic = "interop/pubsub/a b" // a space, to see topics passed byte for byte
	sub := p.sub.start(t, b, session{ID: newID("sub"), Clean: true,
		Subscribe: []subscription{{topic, subQoS}}, Count: 3})
	if ev := sub.await("subscribed"); !slices.Equal(ev.Granted, []int{subQoS}) {
		t.Errorf("SUBACK granted %v, want [%d]", ev.Granted, subQoS)
	}
	var sent []msg
	for q := range 3 {
		sent = append(sent, msg{Topic: topic, Payload: fmt.Sprintf("payload at qos %d ✓", q), QoS: q})
	}
	p.pub.publish(t, b, newID("pub"), sent...)
	got := sub.messages(3)
	sub.wait()
	for _, m := range sent {
		i := slices.IndexFunc(got, func(e event) bool { return e.Payload == m.Payload })
		if i < 0 {
			t.Errorf("payload %q not received; got %v", m.Payload, got)
			continue
		}
		e := got[i]
		// The QoS delivered is the lower of the published and the granted
		// one: [MQTT-3.8.4-6] (3.1.1), [MQTT-3.8.4-8] (5.0).
		want := min(m.QoS, subQoS)
		if e.Topic != topic || e.QoS != want {
			t.Errorf("%q arrived as %v, want topic %q at qos %d", m.Payload, e, topic, want)
		}
		// A message that matches an established subscription is not
		// flagged retained: [MQTT-3.3.1-9] (3.1.1), [MQTT-3.3.1-12] (5.0).
		if e.Retain {
			t.Errorf("%q arrived with the retain flag", m.Payload)
		}
	}
}

// TestRetained publishes a retained message, checks that a later
// subscriber gets it flagged retained, then clears it with an empty
// retained message and checks that the next subscriber gets nothing.
func TestRetained(t *testing.T) {
	runPairs(t, retained)
}

func retained(t *testing.T, p pair) {
	b := startBroker(t)
	const topic = "interop/retained/t"
	kept := msg{Topic: topic, Payload: "kept for later", QoS: 1, Retain: true}
	// The server stores a retained message for future subscribers:
	// [MQTT-3.3.1-5] (3.1.1 and 5.0).
	p.pub.publish(t, b, newID("pub"), kept)

	sub := p.sub.start(t, b, session{ID: newID("sub"), Clean: true,
		Subscribe: []subscription{{"interop/retained/#", 2}}, Count: 1})
	got := sub.messages(1)[0]
	sub.wait()
	// Sent because of a new subscription, so flagged retained:
	// [MQTT-3.3.1-8] (3.1.1); in 5.0, retain handling 0 sends it
	// [MQTT-3.3.1-9], with RETAIN set (§3.3.1.3).
	if got.Topic != topic || got.Payload != kept.Payload || got.QoS != 1 || !got.Retain {
		t.Errorf("new subscriber got %v, want %+v", got, kept)
	}

	// A retained message with an empty payload removes the retained
	// message and is not stored itself: [MQTT-3.3.1-10], [MQTT-3.3.1-11]
	// (3.1.1); [MQTT-3.3.1-6], [MQTT-3.3.1-7] (5.0).
	p.pub.publish(t, b, newID("clr"), msg{Topic: topic, QoS: 1, Retain: true})
	sub2 := p.sub.start(t, b, session{ID: newID("sub2"), Clean: true,
		Subscribe: []subscription{{"interop/retained/#", 2}}, Count: 1})
	sub2.await("subscribed")
	// Retained messages are queued while the SUBSCRIBE is handled, before
	// this marker is even published, so a retained message left behind
	// would arrive first.
	marker := msg{Topic: "interop/retained/marker", Payload: "marker", QoS: 1}
	p.pub.publish(t, b, newID("mark"), marker)
	got = sub2.messages(1)[0]
	sub2.wait()
	if got.Topic != marker.Topic || got.Payload != marker.Payload || got.Retain {
		t.Errorf("after clearing, subscriber got %v first, want the non-retained marker", got)
	}
}

// TestWill checks that a will is published when a client's connection
// ends without DISCONNECT, and not when the client disconnects properly.
// The publishing side of the pair owns the wills; the subscriber watches.
func TestWill(t *testing.T) {
	runPairs(t, will)
}

func will(t *testing.T, p pair) {
	b := startBroker(t)
	watcher := p.sub.start(t, b, session{ID: newID("watch"), Clean: true,
		Subscribe: []subscription{{"interop/will/#", 2}}, Count: 2})
	watcher.await("subscribed")

	// A will is discarded on a DISCONNECT: [MQTT-3.1.2-10] (3.1.1 and 5.0,
	// reason code 0x00 in 5.0).
	politeID := newID("polite")
	polite := p.pub.start(t, b, session{ID: politeID, Clean: true,
		Will:      &msg{Topic: "interop/will/polite", Payload: "must not be published", QoS: 1},
		Subscribe: []subscription{{"interop/idle", 0}}})
	polite.wait()
	// The broker logs this as it ends the connection, where a will would
	// be sent; the marker comes from a process started only afterwards,
	// so a will wrongly published here would reach the watcher first.
	b.p.WaitLine("Client " + politeID + " disconnected.")
	marker := msg{Topic: "interop/will/marker", Payload: "marker", QoS: 1}
	p.pub.publish(t, b, newID("mark"), marker)

	// A connection closed without DISCONNECT publishes the will:
	// [MQTT-3.1.2-8] (3.1.1 and 5.0). It asks to be retained.
	w := msg{Topic: "interop/will/crashed", Payload: "crashed ✗", QoS: 1, Retain: true}
	crash := p.pub.start(t, b, session{ID: newID("crash"), Clean: true, Will: &w,
		Subscribe: []subscription{{"interop/idle", 0}}, End: "abort"})
	crash.await("subscribed")
	p.pub.abort(crash)

	got := watcher.messages(2)
	watcher.wait()
	if got[0].Topic != marker.Topic || got[0].Payload != marker.Payload {
		t.Errorf("first message %v, want the marker (a will sent after a DISCONNECT?)", got[0])
	}
	// The watcher's subscription was there before, so the will reaches
	// it with RETAIN 0 ([MQTT-3.3.1-9] (3.1.1), [MQTT-3.3.1-12] (5.0)).
	if got[1].Topic != w.Topic || got[1].Payload != w.Payload || got[1].QoS != w.QoS || got[1].Retain {
		t.Errorf("will arrived as %v, want %+v without the retain flag", got[1], w)
	}

	// A will with Will Retain 1 is published retained: [MQTT-3.1.2-17]
	// (3.1.1), [MQTT-3.1.2-15] (5.0). A new subscriber gets it.
	late := p.sub.start(t, b, session{ID: newID("late"), Clean: true,
		Subscribe: []subscription{{w.Topic, 2}}, Count: 1})
	if got := late.messages(1)[0]; got.Payload != w.Payload || got.QoS != w.QoS || !got.Retain {
		t.Errorf("late subscriber got %v, want the retained will %+v", got, w)
	}
	late.wait()
}

// TestPersistentSession subscribes with a persistent session, disconnects,
// has QoS 1 and 2 messages published while the client is away, and checks
// that they arrive, in order, when it comes back without subscribing again;
// then that a clean reconnect finds no session.
func TestPersistentSession(t *testing.T) {
	runPairs(t, persistentSession)
}

func persistentSession(t *testing.T, p pair) {
	// A small in-flight window, so the resumed session has more queued
	// messages than it may have unacknowledged and the rest must follow
	// as acknowledgements come in.
	b := startBroker(t, "max_inflight_messages 2")
	const topic = "interop/persist"
	id := newID("keep")
	s := session{ID: id, Clean: false, SessionExpiry: 300,
		Subscribe: []subscription{{topic, 2}}}
	first := p.sub.start(t, b, s)
	if ev := first.await("connected"); p.sub.reportsSessionPresent() && sessionPresent(ev) {
		t.Errorf("first CONNECT of %s: session present, want a new session", id)
	}
	first.await("subscribed")
	first.wait()
	// Publish only once the broker has seen the client go, so the
	// messages are queued for an offline session.
	b.p.WaitLine("Client " + id + " disconnected.")

	// Mostly QoS 1, with QoS 2 among them: both are kept for an offline
	// session.
	var sent []msg
	for i, q := range []int{1, 2, 1, 1, 2, 1} {
		sent = append(sent, msg{Topic: topic, Payload: fmt.Sprintf("queued %d", i+1), QoS: q})
	}
	p.pub.publish(t, b, newID("pub"), sent...)

	// The helper scripts reconnect without subscribing again, so the
	// messages can only come from the stored subscription;
	// mosquitto_sub always subscribes.
	s.Count = len(sent)
	if p.sub.family != mosquitto {
		s.Subscribe = nil
	}
	second := p.sub.start(t, b, s)
	// [MQTT-3.2.2-2] (3.1.1), [MQTT-3.2.2-3] (5.0): session present.
	if ev := second.await("connected"); p.sub.reportsSessionPresent() && !sessionPresent(ev) {
		t.Errorf("reconnect of %s: session present is 0, want 1", id)
	}
	// Messages for a disconnected persistent session are stored
	// [MQTT-3.1.2-5] (3.1.1), and the resumed session sends them in the
	// order published [MQTT-4.6.0-6]. The broker does put them on the
	// wire in order, but libmosquitto, Paho and MQTT.js all hand a QoS 2
	// message to the application only when its PUBREL arrives, after a
	// QoS 1 message sent just behind it; so the order is checked per QoS.
	got := second.messages(len(sent))
	second.wait()
	for q := 1; q <= 2; q++ {
		var want, have []string
		for _, m := range sent {
			if m.QoS == q {
				want = append(want, m.Payload)
			}
		}
		for _, e := range got {
			if e.QoS == q && e.Topic == topic {
				have = append(have, e.Payload)
			}
		}
		if !slices.Equal(have, want) {
			t.Errorf("after reconnect, qos %d messages %q, want %q (all: %v)", q, have, want, got)
		}
	}

	if !p.sub.reportsSessionPresent() {
		return
	}
	// A clean session / clean start discards the stored one, and the
	// CONNACK says so: [MQTT-3.1.2-6], [MQTT-3.2.2-1] (3.1.1);
	// [MQTT-3.1.2-4], [MQTT-3.2.2-2] (5.0).
	third := p.sub.start(t, b, session{ID: id, Clean: true})
	if ev := third.await("connected"); sessionPresent(ev) {
		t.Errorf("clean reconnect of %s: session present is 1, want 0", id)
	}
	third.wait()
}

// TestSessionExpiryZero checks that an MQTT 5 session with clean start 0
// but no session expiry interval ends with its connection (§3.1.2.11.2):
// nothing is queued for it and the next CONNACK has session present 0.
func TestSessionExpiryZero(t *testing.T) {
	t.Parallel()
	for _, c := range []client{{mosquitto, 5}, {paho, 5}, {mqttjs, 5}} {
		t.Run(c.String(), func(t *testing.T) {
			t.Parallel()
			c.require(t)
			b := startBroker(t)
			const topic = "interop/expiry0"
			id := newID("brief")
			s := session{ID: id, Clean: false, SessionExpiry: 0,
				Subscribe: []subscription{{topic, 1}}}
			first := c.start(t, b, s)
			first.await("subscribed")
			first.wait()
			b.p.WaitLine("Client " + id + " disconnected.")
			c.publish(t, b, newID("pub"), msg{Topic: topic, Payload: "nobody keeps this", QoS: 1})

			s.Count = 1
			second := c.start(t, b, s)
			if ev := second.await("connected"); c.reportsSessionPresent() && sessionPresent(ev) {
				t.Errorf("reconnect of %s: session present is 1, want 0", id)
			}
			second.await("subscribed")
			marker := msg{Topic: topic, Payload: "marker", QoS: 1}
			c.publish(t, b, newID("mark"), marker)
			if got := second.messages(1)[0]; got.Payload != marker.Payload {
				t.Errorf("first message after reconnect: %v, want the marker", got)
			}
			second.wait()
		})
	}
}

// TestUserProperties sends MQTT 5 user properties from each v5 publisher
// to each v5 subscriber that can show them.
func TestUserProperties(t *testing.T) {
	t.Parallel()
	pubs := []client{{mosquitto, 5}, {paho, 5}, {mqttjs, 5}}
	subs := []client{{paho, 5}, {mqttjs, 5}}
	for _, pub := range pubs {
		for _, sub := range subs {
			p := pair{pub, sub}
			t.Run(p.String(), func(t *testing.T) {
				t.Parallel()
				pub.require(t)
				sub.require(t)
				b := startBroker(t)
				const topic = "interop/props"
				s := sub.start(t, b, session{ID: newID("sub"), Clean: true,
					Subscribe: []subscription{{topic, 1}}, Count: 1})
				s.await("subscribed")
				// Keys out of alphabetical order, so a broker that sorts
				// or reorders them is caught.
				props := [][2]string{{"zone", "eu-1"}, {"app", "interop"}, {"trace", "ä b=c"}}
				if pub.family != mqttjs && sub.family != mqttjs {
					// A repeated key is allowed (§3.3.2.3.7) and keeps its
					// place; MQTT.js holds user properties in an object, so
					// it can neither send nor show one.
					props = append(props, [2]string{"zone", "eu-2"})
				}
				pub.publish(t, b, newID("pub"), msg{Topic: topic, Payload: "with properties", QoS: 1, UserProperties: props})
				got := s.messages(1)[0]
				s.wait()
				// User properties are forwarded unaltered [MQTT-3.3.2-17]
				// and in order [MQTT-3.3.2-18].
				if !slices.Equal(got.UserProperties, props) {
					t.Errorf("user properties %v, want %v", got.UserProperties, props)
				}
			})
		}
	}
}

// sessionPresent is the CONNACK flag a client reported (false if absent).
func sessionPresent(ev event) bool { return ev.SessionPresent != nil && *ev.SessionPresent }
