// Package broker is mamori's MQTT broker: connection lifecycle,
// authentication and authorization calls, sessions, routing, retained
// messages, wills, takeover and $SYS.
//
// Lock order: Broker.mu (sessions map) → session.mu → conn.outMu, and
// Broker.mu → session.mu → the subscription tree's lock: a session's
// entries in the tree change under its lock, so that a session that has
// ended cannot touch the entries of the next session with its client id. The tree's match callbacks take
// no lock (they copy subscriptions into a scratch slice and read
// session.isOnline), so deliveries happen after the tree is released.
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mamori-mqtt/mamori/internal/packet"
	"github.com/mamori-mqtt/mamori/internal/store"
	"github.com/mamori-mqtt/mamori/internal/topic"
)

// Options are the broker-wide settings (mosquitto.conf's global options).
type Options struct {
	MaxPacketSize              int           // 0: protocol maximum
	MessageSizeLimit           int           // payload limit; 0: none
	MaxInflightMessages        int           // outbound QoS>0 window per client (mosquitto default 20)
	MaxQueuedMessages          int           // per-session queue of QoS>0 messages (default 1000)
	MaxQueuedBytes             int           // 0: no byte limit
	MaxKeepAlive               uint16        // 0: no limit (server keep alive in MQTT 5)
	AllowZeroLengthClientID    bool          // default true
	AutoIDPrefix               string        // default "auto-"
	MaxQoS                     byte          // default 2
	RetainAvailable            bool          // default true
	PersistentClientExpiration time.Duration // 0: never, for MQTT 3 persistent sessions
	QueueQoS0Messages          bool
	MaxTopicAlias              uint16        // topic aliases the broker accepts from a client (default 10)
	MaxOutBytes                int           // encoded bytes waiting for a subscriber's socket before QoS 0 is dropped
	ConnectTimeout             time.Duration // CONNECT must arrive within it
	PreAuthMaxPacket           int           // packet limit before CONNECT is accepted
	WriteTimeout               time.Duration // a subscriber that accepts nothing this long is disconnected
	SysInterval                time.Duration // $SYS publish interval; 0 disables
	ConnectionMessages         bool          // log connects and disconnects
	// ReasonStrings adds reason strings to failure CONNACK, PUBACK, PUBREC
	// and DISCONNECT packets (MQTT 5). Off by default, like Mosquitto: the
	// reasons are logged instead, so a refused client learns only the code.
	ReasonStrings bool
	// CheckRetainSource (check_retain_source) checks again, each time a
	// retained message is served, that its publisher may still publish to
	// its topic: an ACL changed by a reload withdraws what was retained.
	CheckRetainSource bool
	// UpgradeOutgoingQoS (upgrade_outgoing_qos) sends messages at the
	// subscription's QoS even when published at a lower one, as Mosquitto
	// does with this option (the MQTT specification says the lower).
	UpgradeOutgoingQoS bool
	TrimMemory         bool // hand free memory back to the system when quiet (trim.go)
	Version            string

	Logger         *slog.Logger
	Store          store.Store
	Auth           Auth // nil: everybody allowed (AllowAnonymous governs clients without a user name)
	AllowAnonymous bool
}

// DefaultOptions returns Mosquitto's defaults.
func DefaultOptions() Options {
	return Options{
		MaxInflightMessages:     20,
		MaxQueuedMessages:       1000,
		AllowZeroLengthClientID: true,
		AutoIDPrefix:            "auto-",
		MaxQoS:                  2,
		RetainAvailable:         true,
		MaxTopicAlias:           10,
		MaxOutBytes:             8 << 20,
		ConnectTimeout:          10 * time.Second,
		PreAuthMaxPacket:        256 << 10,
		WriteTimeout:            60 * time.Second,
		SysInterval:             10 * time.Second,
		ConnectionMessages:      true,
		TrimMemory:              true,
		AllowAnonymous:          true,
		Version:                 "dev",
	}
}

// Access is the kind of topic access being authorized.
type Access int

// Access kinds, as Mosquitto's ACL check distinguishes them.
const (
	AccessRead Access = iota + 1
	AccessWrite
	AccessSubscribe
)

// ClientInfo identifies a connected client to the Auth hooks.
type ClientInfo struct {
	ClientID  string
	Username  string // empty for anonymous clients
	Listener  string
	Remote    net.Addr
	Anonymous bool
	// CertIdentity is set when the listener derives the user name from the
	// TLS client certificate (use_identity_as_username/use_subject_as_username);
	// the password file is then not consulted.
	CertIdentity bool
}

// Auth authenticates CONNECTs and authorizes topic access. It must be safe
// for concurrent use.
type Auth interface {
	// Authenticate decides a CONNECT. A failure code is sent in CONNACK.
	Authenticate(ci *ClientInfo, password []byte, hasPassword bool) packet.ReasonCode
	// Authorize decides an access to a topic name (read, write) or filter
	// (subscribe).
	Authorize(ci *ClientInfo, topic string, acc Access) bool
}

// Listener carries per-listener settings for connections accepted on it.
type Listener struct {
	Name                  string // for logs, e.g. "1883" or "/run/mqtt.sock"
	MountPoint            string
	UseUsernameAsClientID bool
	MaxConnections        int // 0 or negative: unlimited
	// Identity, when set, derives the user name from the connection (for
	// example the TLS client certificate); ok false refuses the client.
	Identity func(net.Conn) (username string, ok bool, err error)
	Auth     Auth // per-listener auth (per_listener_settings); nil: the broker's
	// MaxQoS and MaxTopicAlias override the broker's when set (max_qos and
	// max_topic_alias are listener options in mosquitto.conf).
	MaxQoS        *byte
	MaxTopicAlias *uint16
	// AllowZeroLengthClientID and AutoIDPrefix override the broker's when
	// set (per_listener_settings true makes them listener options).
	AllowZeroLengthClientID *bool
	AutoIDPrefix            *string

	active   atomic.Int64
	authp    atomic.Pointer[authBox]
	authOnce sync.Once
}

// subscription is what the topic tree stores per (client, filter).
type subscription struct {
	sess              *session
	qos               byte
	noLocal           bool
	retainAsPublished bool
	subID             uint32
}

// Broker is one MQTT broker instance.
type Broker struct {
	// optp holds the options in force; UpdateOptions swaps them on reload,
	// so readers take a snapshot with o() and never see a half-updated set.
	optp atomic.Pointer[Options]
	log  *slog.Logger
	st   store.Store

	subs     *topic.Tree[subscription]
	retained *topic.Retained[*Message]

	mu       sync.Mutex
	sessions map[string]*session
	conns    map[*conn]struct{}
	closed   bool

	stats   Stats
	started time.Time
	wg      sync.WaitGroup
	ctx     context.Context
	cancel  context.CancelFunc
	seq     atomic.Uint64
	authp   atomic.Pointer[authBox]
	persist bool    // the store keeps something: track queued messages in it
	park    *parker // nil: connections never park
	// restores counts released connections given a net.Conn again
	// (park_linux.go): the cost that releasing aims to keep rare.
	restores atomic.Uint64
	trims    atomic.Uint64 // times free memory was handed back (trim.go)
	// polling counts read loops polling for acknowledgements, at most
	// maxPolling (park_linux.go).
	polling    atomic.Int32
	maxPolling int32
	ackPolls   atomic.Uint64 // polls started

	// hookSessionEnded, when set (tests), runs when endSession has removed
	// a session, before its will is published.
	hookSessionEnded atomic.Pointer[func()]

	// subLog and unsubLog carry Mosquitto's subscribe/unsubscribe log types,
	// which log_type selects separately from the level.
	subLog, unsubLog *slog.Logger
}

// Stats are the broker's counters, read with atomic loads.
type Stats struct {
	MessagesReceived atomic.Uint64
	MessagesSent     atomic.Uint64
	MessagesDropped  atomic.Uint64
	BytesReceived    atomic.Uint64
	BytesSent        atomic.Uint64
	PublishReceived  atomic.Uint64
	PublishSent      atomic.Uint64
	Connections      atomic.Int64 // currently connected clients
	TotalConnects    atomic.Uint64
	Panics           atomic.Uint64
	ProtocolErrors   atomic.Uint64
	AuthFailures     atomic.Uint64
}

// New creates a broker. Call Serve for each listener and Close to stop.
func New(opts Options) (*Broker, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Store == nil {
		opts.Store = store.Nop{}
	}
	normalize(&opts)
	b := &Broker{
		log:      opts.Logger,
		st:       opts.Store,
		subs:     topic.NewTree[subscription](),
		retained: topic.NewRetained[*Message](),
		sessions: make(map[string]*session),
		conns:    make(map[*conn]struct{}),
		started:  time.Now(),
	}
	b.optp.Store(&opts)
	b.maxPolling = int32(max(1, runtime.GOMAXPROCS(0)/2))
	b.subLog = b.log.With("log_type", "subscribe")
	b.unsubLog = b.log.With("log_type", "unsubscribe")
	b.ctx, b.cancel = context.WithCancel(context.Background())
	if opts.Auth != nil {
		b.SetAuth(opts.Auth)
	}
	_, nop := b.st.(store.Nop)
	b.persist = !nop
	if err := b.restore(); err != nil {
		return nil, err
	}
	if opts.SysInterval > 0 {
		b.wg.Add(1)
		go b.sysLoop(opts.SysInterval)
	}
	b.wg.Add(1)
	go b.sweep()
	if opts.TrimMemory {
		b.wg.Add(1)
		go b.trimLoop()
	}
	b.startParker()
	return b, nil
}

// normalize fills in defaults and clamps out-of-range values.
func normalize(opts *Options) {
	if opts.MaxInflightMessages <= 0 || opts.MaxInflightMessages > 65535 {
		opts.MaxInflightMessages = 65535
	}
	if opts.MaxOutBytes <= 0 {
		opts.MaxOutBytes = 8 << 20
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = 10 * time.Second
	}
	if opts.PreAuthMaxPacket <= 0 {
		opts.PreAuthMaxPacket = 256 << 10
	}
	if opts.MaxPacketSize > 0 && opts.PreAuthMaxPacket > opts.MaxPacketSize {
		opts.PreAuthMaxPacket = opts.MaxPacketSize
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 60 * time.Second
	}
	if opts.MaxQoS > 2 {
		opts.MaxQoS = 2
	}
}

// sweep frees the output buffers of connections that went quiet, every
// few seconds, until the broker closes.
func (b *Broker) sweep() {
	defer b.wg.Done()
	t := time.NewTicker(idleRelease / 2)
	defer t.Stop()
	var conns []*conn
	for {
		select {
		case <-b.ctx.Done():
			return
		case now := <-t.C:
			b.mu.Lock()
			for c := range b.conns {
				conns = append(conns, c)
			}
			b.mu.Unlock()
			for _, c := range conns {
				c.releaseIfIdle(now.UnixNano())
			}
			clear(conns)
			conns = conns[:0]
		}
	}
}

// o returns the options in force.
func (b *Broker) o() *Options { return b.optp.Load() }

// UpdateOptions applies a change of limits while the broker runs (SIGHUP).
// Limits apply from the next check on: new connections get the new
// CONNACK limits, queues and windows the new bounds. Logger, Store, Auth,
// SysInterval and TrimMemory are fixed at New and keep their values.
func (b *Broker) UpdateOptions(change func(*Options)) {
	cur := *b.o()
	next := cur
	change(&next)
	next.Logger, next.Store, next.Auth, next.SysInterval = cur.Logger, cur.Store, cur.Auth, cur.SysInterval
	next.TrimMemory = cur.TrimMemory
	normalize(&next)
	b.optp.Store(&next)
}

// Stats returns the broker's live counters.
func (b *Broker) Stats() *Stats { return &b.stats }

// Serve accepts connections on ln until ln fails permanently or the broker
// is closed. Temporary accept errors (such as running out of file
// descriptors) back off and retry instead of stopping the listener.
func (b *Broker) Serve(ln net.Listener, l *Listener) error {
	if l == nil {
		l = &Listener{Name: ln.Addr().String()}
	}
	l.initAuth()
	// Counted under the lock that Close takes before it waits: a Serve
	// that starts as the broker closes must not add to the wait group
	// while Close waits on it.
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		ln.Close()
		return nil
	}
	b.wg.Add(1)
	b.mu.Unlock()
	defer b.wg.Done()
	go func() {
		<-b.ctx.Done()
		ln.Close()
	}()
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if b.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			if delay == 0 {
				delay = 5 * time.Millisecond
			} else if delay *= 2; delay > time.Second {
				delay = time.Second
			}
			b.log.Warn("accept failed; retrying", "listener", l.Name, "err", err, "retry_in", delay)
			select {
			case <-time.After(delay):
			case <-b.ctx.Done():
				return nil
			}
			continue
		}
		delay = 0
		if l.MaxConnections > 0 && l.active.Load() >= int64(l.MaxConnections) {
			b.log.Info("connection refused: max_connections reached", "listener", l.Name, "remote", nc.RemoteAddr())
			nc.Close()
			continue
		}
		if tc, ok := nc.(*net.TCPConn); ok {
			_ = tc.SetNoDelay(true)
		}
		c := newConn(b, nc, l)
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			nc.Close()
			return nil
		}
		b.conns[c] = struct{}{}
		b.mu.Unlock()
		l.active.Add(1)
		b.wg.Add(1)
		c.connectDeadline = time.Now().Add(b.o().ConnectTimeout).UnixNano()
		if c.fd >= 0 {
			// Wait for CONNECT in the epoll set rather than in a goroutine.
			c.waitedConnect = true
			if c.park(time.Unix(0, c.connectDeadline)) {
				continue
			}
		}
		go c.run()
	}
}

// ServeConn runs the MQTT protocol on an already accepted connection (used
// by WebSocket and other transports) and returns when it ends.
func (b *Broker) ServeConn(nc net.Conn, l *Listener) {
	if l == nil {
		l = &Listener{Name: "conn"}
	}
	l.initAuth()
	c := newConn(b, nc, l)
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		nc.Close()
		return
	}
	b.conns[c] = struct{}{}
	b.wg.Add(1) // under the lock, as in Serve
	b.mu.Unlock()
	l.active.Add(1)
	c.serve()
}

// Close disconnects every client (MQTT 5 clients get DISCONNECT 0x8B,
// server shutting down) and waits for the broker's goroutines.
func (b *Broker) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	conns := make([]*conn, 0, len(b.conns))
	for c := range b.conns {
		conns = append(conns, c)
	}
	b.mu.Unlock()
	b.cancel()
	for _, c := range conns {
		c.disconnect(packet.ErrServerShuttingDown, "")
	}
	b.wg.Wait()
	b.closeParker()
	b.mu.Lock()
	for _, s := range b.sessions {
		s.stopTimers()
	}
	b.mu.Unlock()
	return b.st.Close()
}

func (b *Broker) nextSeq() uint64 { return b.seq.Add(1) }

// guarded wraps the work of a timer (a delayed will, a session's expiry),
// which runs outside any connection: a panic there — in an Auth, or in
// routing the will — is recovered, logged and counted like a connection's,
// instead of ending the process.
func (b *Broker) guarded(what string, fn func()) func() {
	return func() {
		defer b.recoverIn(what)
		fn()
	}
}

// recoverIn, deferred, recovers a panic in what, logs and counts it.
func (b *Broker) recoverIn(what string) {
	if v := recover(); v != nil {
		b.stats.Panics.Add(1)
		b.log.Error("panic in "+what+"; recovered", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	}
}
