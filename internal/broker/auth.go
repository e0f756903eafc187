package broker

import (
	"net"

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

// Recheck applies the Auth now in force to connected clients, as Mosquitto
// does after a SIGHUP: a client its Auth no longer accepts (Revalidator) is
// disconnected, and subscriptions it may no longer make are removed. It
// returns the number of clients disconnected and subscriptions removed.
func (b *Broker) Recheck() (disconnected, unsubscribed int) {
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
		s := c.sess
		s.mu.Lock()
		var drop []string
		for full := range s.subs {
			if !a.Authorize(&c.info, subscribeCheckName(full), AccessSubscribe) {
				drop = append(drop, full)
			}
		}
		for _, f := range drop {
			delete(s.subs, f)
		}
		s.mu.Unlock()
		for _, f := range drop {
			b.subs.Unsubscribe(s.id, f)
			unsubscribed++
		}
		if len(drop) > 0 {
			b.log.Info("Client "+c.info.ClientID+": subscriptions removed after reload", "filters", drop)
			b.saveSession(s)
		}
	}
	return disconnected, unsubscribed
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
