package broker

import (
	"fmt"
	"net"
	"runtime/debug"
	"strings"

	"github.com/mamori-mqtt/mamori/internal/packet"
)

// authBox lets an Auth (an interface value) be swapped atomically on
// reload while connections keep calling it.
type authBox struct{ a Auth }

// Revalidator is an optional interface of Auth: after a reload the broker
// asks it whether each connected client would still be let in, and
// disconnects those that would not (a user deleted from the password file,
// a PSK identity deleted from psk_file). Clients whose user name comes from
// the transport (ClientInfo.CertIdentity) are asked about too.
type Revalidator interface {
	Revalidate(ci *ClientInfo) bool
}

// SetAuth replaces the broker-wide Auth; connected clients use it from
// their next check on.
func (b *Broker) SetAuth(a Auth) { b.authp.Store(&authBox{a}) }

// SetAuth replaces the listener's own Auth (per_listener_settings).
func (l *Listener) SetAuth(a Auth) { l.authp.Store(&authBox{a}) }

func (l *Listener) initAuth() {
	l.authOnce.Do(func() {
		if l.Auth != nil && l.authp.Load() == nil {
			l.authp.Store(&authBox{l.Auth})
		}
	})
}

// authFor is the Auth in force for clients of l: the listener's own, or
// the broker's.
func (b *Broker) authFor(l *Listener) Auth {
	if p := l.authp.Load(); p != nil && p.a != nil {
		return p.a
	}
	if p := b.authp.Load(); p != nil {
		return p.a
	}
	return nil
}

func (c *conn) authz() Auth { return c.b.authFor(c.l) }

// authorize checks an access of this client; without an Auth everything
// is allowed.
func (c *conn) authorize(topicName string, acc Access) bool {
	a := c.authz()
	return a == nil || a.Authorize(&c.info, topicName, acc)
}

// authorizeLocked is authorize for callers that hold a session's lock
// (deliveries, queues): see authorizeHeld.
func (c *conn) authorizeLocked(topicName string, acc Access) bool {
	a := c.authz()
	return a == nil || c.b.authorizeHeld(a, &c.info, topicName, acc)
}

// authorizeHeld asks a while a session lock is held. A panic in a would
// unwind past the lock and leave it held — the session, and soon the
// broker, stuck — so it is recovered here and the access denied (fail
// closed), logged and counted.
func (b *Broker) authorizeHeld(a Auth, ci *ClientInfo, topicName string, acc Access) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			b.stats.Panics.Add(1)
			b.log.Error("panic in an ACL check; access denied", "client", ci.ClientID, "topic", topicName,
				"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			ok = false
		}
	}()
	return a.Authorize(ci, topicName, acc)
}

// DisconnectWhere disconnects every connected client for which match
// returns true (for example one whose certificate a new CRL revokes), MQTT 5
// clients with a DISCONNECT carrying code. It returns how many. nc is nil
// for an idle plain connection that has given up its net.Conn (parking).
func (b *Broker) DisconnectWhere(match func(ci *ClientInfo, nc net.Conn) bool, code packet.ReasonCode, reason string) int {
	n := 0
	for _, c := range b.connected() {
		if match(&c.info, c.netConn()) {
			c.disconnect(code, reason)
			n++
		}
	}
	return n
}

// connected lists connections that completed CONNECT.
func (b *Broker) connected() []*conn {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]*conn, 0, len(b.conns))
	for c := range b.conns {
		if c.ready.Load() {
			out = append(out, c)
		}
	}
	return out
}

// Recheck applies the Auth now in force to every session, as Mosquitto
// does after a SIGHUP: a connected client its Auth no longer accepts
// (Revalidator) is disconnected; subscriptions a client may no longer make
// are removed; and messages queued for a client that may no longer read
// them are dropped — offline sessions included, judged by who the client
// was on its last connection. It returns the number of clients
// disconnected and subscriptions removed.
func (b *Broker) Recheck() (disconnected, unsubscribed int) {
	online := make(map[*session]bool)
	for _, c := range b.connected() {
		a := c.authz()
		if a == nil {
			continue
		}
		if rv, ok := a.(Revalidator); ok && !rv.Revalidate(&c.info) {
			b.log.Info("Client " + c.info.ClientID + " is no longer authorised after reload; disconnecting.")
			c.disconnect(packet.ErrNotAuthorized, "no longer authorized")
			disconnected++
			continue
		}
		online[c.sess] = true
		unsubscribed += b.recheckSession(c.sess, a, &c.info)
	}
	b.mu.Lock()
	offline := make([]*session, 0, len(b.sessions))
	for _, s := range b.sessions {
		if !online[s] {
			offline = append(offline, s)
		}
	}
	b.mu.Unlock()
	for _, s := range offline {
		s.mu.Lock()
		l, info, gone := s.l, s.info, s.gone || s.conn != nil
		s.mu.Unlock()
		if gone || l == nil {
			continue // ended, just connected (start checks it), or restored with no identity
		}
		if a := b.authFor(l); a != nil {
			unsubscribed += b.recheckSession(s, a, &info)
		}
	}
	return disconnected, unsubscribed
}

// recheckSession removes the subscriptions of s that a may no longer allow
// for ci, and drops its queued messages ci may no longer read. It returns
// the number of subscriptions removed.
func (b *Broker) recheckSession(s *session, a Auth, ci *ClientInfo) int {
	s.mu.Lock()
	if s.gone {
		s.mu.Unlock()
		return 0
	}
	var drop []string
	for full := range s.subs {
		if !b.authorizeHeld(a, ci, subscribeCheckName(full), AccessSubscribe) {
			drop = append(drop, full)
		}
	}
	for _, f := range drop {
		delete(s.subs, f)
	}
	// In-flight messages of a connected client were sent already; an
	// offline client's are checked again when it returns.
	purged := s.purgeUnreadable(func(t string) bool { return b.authorizeHeld(a, ci, t, AccessRead) }, false)
	if len(drop) > 0 {
		b.subs.UnsubscribeAll(s.id, drop)
	}
	s.mu.Unlock()
	if len(drop) > 0 {
		b.log.Info("Client "+s.id+": subscriptions removed after reload", "filters", drop)
		b.saveSession(s)
	}
	if purged > 0 {
		b.log.Info("Client "+s.id+": queued messages dropped after reload: no longer readable", "count", purged)
	}
	return len(drop)
}

// subscribeCheckName strips "$share/group/" so the ACL sees the filter the
// client actually reads.
func subscribeCheckName(full string) string {
	const p = "$share/"
	if len(full) > len(p) && full[:len(p)] == p {
		rest := full[len(p):]
		for i := 0; i < len(rest); i++ {
			if rest[i] == '/' {
				return rest[i+1:]
			}
		}
	}
	return full
}

// sourceMayPublish reports whether the publisher of retained message m may
// still publish it (check_retain_source); true when the message carries
// no source.
func (b *Broker) sourceMayPublish(m *Message) bool {
	src := m.Source
	if src == nil || !b.o().CheckRetainSource {
		return true
	}
	a := b.authFor(src.l)
	return a == nil || a.Authorize(&src.info, strings.TrimPrefix(m.Topic, src.l.MountPoint), AccessWrite)
}
