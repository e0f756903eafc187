package broker

import (
	"strconv"
	"time"
)

// sysLoop publishes $SYS/broker/... as Mosquitto does, retained, every
// interval.
func (b *Broker) sysLoop(every time.Duration) {
	defer b.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	b.publishSys()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-t.C:
			b.publishSys()
		}
	}
}

func (b *Broker) publishSys() {
	st := &b.stats
	b.mu.Lock()
	total := len(b.sessions)
	b.mu.Unlock()
	conn := st.Connections.Load()
	u := func(v uint64) string { return strconv.FormatUint(v, 10) }
	i := func(v int64) string { return strconv.FormatInt(v, 10) }
	vals := [][2]string{
		{"$SYS/broker/version", "mamori version " + b.o().Version},
		{"$SYS/broker/uptime", strconv.FormatInt(int64(time.Since(b.started)/time.Second), 10) + " seconds"},
		{"$SYS/broker/clients/connected", i(conn)},
		{"$SYS/broker/clients/total", i(int64(total))},
		{"$SYS/broker/clients/disconnected", i(int64(total) - conn)},
		{"$SYS/broker/messages/received", u(st.MessagesReceived.Load())},
		{"$SYS/broker/messages/sent", u(st.MessagesSent.Load())},
		{"$SYS/broker/messages/dropped", u(st.MessagesDropped.Load())},
		{"$SYS/broker/publish/messages/received", u(st.PublishReceived.Load())},
		{"$SYS/broker/publish/messages/sent", u(st.PublishSent.Load())},
		{"$SYS/broker/load/bytes/received", u(st.BytesReceived.Load())},
		{"$SYS/broker/load/bytes/sent", u(st.BytesSent.Load())},
		{"$SYS/broker/retained messages/count", i(int64(b.retained.Len()))},
		{"$SYS/broker/subscriptions/count", i(int64(b.subs.Len()))},
	}
	now := time.Now()
	for _, kv := range vals {
		m := &Message{Topic: kv[0], Payload: []byte(kv[1]), Retain: true, From: "$SYS"}
		in := inbound{topic: m.Topic, payload: m.Payload, props: m.props(), retain: true, from: m.From, now: now, msg: m}
		b.retain(&in)
		b.route(nil, &in)
	}
}

// Counts reports the number of sessions (connected or not), subscriptions
// and retained messages, for $SYS and metrics.
func (b *Broker) Counts() (sessions, subscriptions, retained int) {
	b.mu.Lock()
	sessions = len(b.sessions)
	b.mu.Unlock()
	return sessions, b.subs.Len(), b.retained.Len()
}
