package broker

import "time"

// Publish routes a message that the broker itself originates (the log lines
// of `log_dest topic`) to matching subscribers, at QoS 0 and not retained.
// No ACL is consulted for the sender, as for $SYS: the broker may write any
// topic; subscribers were checked when they subscribed.
//
// It must not be called while holding any broker lock, and it may block
// briefly on subscriber queues; callers that log from arbitrary places
// publish from a goroutine of their own.
func (b *Broker) Publish(topicName string, payload []byte) {
	if b.ctx.Err() != nil {
		return
	}
	m := &Message{Topic: topicName, Payload: payload, From: "$SYS"}
	in := inbound{topic: m.Topic, payload: m.Payload, props: m.props(), from: m.From, now: time.Now(), msg: m}
	b.route(nil, &in)
}
