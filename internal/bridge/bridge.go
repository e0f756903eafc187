// Package bridge runs Mosquitto's bridges: a connection from this broker to
// a remote MQTT broker over which the topics of a `connection` block are
// shared in both directions, with the same bytes on the wire as Mosquitto
// 2.0 sends (so a remote Mosquitto treats it as one of its own bridges).
//
// The local side is an MQTT 5 session on the local broker, served in
// process over net.Pipe: its subscriptions use No Local, so messages the
// bridge publishes locally are not sent back out (loop prevention), and
// Retain As Published, so retain flags cross the bridge as they were
// published. The remote side is a client of its own, on internal/packet,
// because a bridge keeps its in-flight messages and packet identifiers
// across connections (QoS 1/2 resent with DUP after a reconnect), which
// internal/client, made for one connection, does not. TLS to the remote
// is built by internal/tlsprobe, so certificate handling and explained
// failures are those of `mamori pub/sub`.
//
// Messages waiting for the remote are held in memory, bounded by
// max_queued_messages and max_queued_bytes; they do not survive a restart
// of this broker until the persistence store exists.
package bridge

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mamori-mqtt/mamori/internal/broker"
	"github.com/mamori-mqtt/mamori/internal/client"
	"github.com/mamori-mqtt/mamori/internal/config"
	"github.com/mamori-mqtt/mamori/internal/packet"
)

// Options configure one bridge.
type Options struct {
	Config *config.Bridge
	// Broker is the local broker; the bridge's local session runs on it.
	Broker *broker.Broker
	Logger *slog.Logger
	// MaxInflight is the number of QoS 1/2 messages sent to the remote and
	// not yet acknowledged (max_inflight_messages); 0 means 20.
	MaxInflight int
	// MaxQueued and MaxQueuedBytes bound the messages waiting for the
	// remote (max_queued_messages, max_queued_bytes); 0 means no limit.
	MaxQueued      int
	MaxQueuedBytes int
	// QueueQoS0 keeps QoS 0 messages while the remote is down
	// (queue_qos0_messages); otherwise they are dropped, as in Mosquitto.
	QueueQoS0 bool

	// primaryRetry replaces the 5 s between checks of the main address
	// (tests).
	primaryRetry time.Duration
}

// Stats are a bridge's counters, read by $SYS and the metrics endpoint.
type Stats struct {
	Connected   atomic.Bool
	Connects    atomic.Int64 // successful connections (CONNACK accepted)
	MessagesIn  atomic.Int64 // PUBLISH received from the remote
	MessagesOut atomic.Int64 // PUBLISH sent to the remote (resends not counted)
	Dropped     atomic.Int64 // messages dropped: queue full, too large, QoS 0 while down
	Queued      atomic.Int64 // messages waiting or in flight
}

// Reconnects is the number of connections after the first.
func (s *Stats) Reconnects() int64 { return max(s.Connects.Load()-1, 0) }

// message is one application message on its way to the remote.
type message struct {
	topic   string // remote topic name
	payload []byte
	qos     byte
	retain  bool
	props   packet.Properties
	id      uint16 // packet identifier once in flight
	pubrel  bool   // QoS 2: PUBREC received, PUBREL sent
	hash    uint64 // of the payload, for retained messages (see pendingRetained)
}

// Bridge is one running bridge.
type Bridge struct {
	cfg   *config.Bridge
	o     Options
	log   *slog.Logger
	dial  dialer
	stats Stats

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	wake   chan struct{} // queue or window changed

	mu       sync.Mutex
	queue    []*message
	qbytes   int
	inflight []*message
	inQoS2   map[uint16]bool // QoS 2 ids received from the remote, PUBREL pending
	lastID   uint16
	cur      *remote // nil while disconnected
	// linkUp is true from the TCP connection on, CONNACK not yet read: as
	// in Mosquitto, a message that arrives then is sent after CONNACK, not
	// dropped as if the remote were down.
	linkUp    bool
	lastUse   time.Time
	local     *client.Client
	dropNoted bool
	// fromRemoteRetained holds, by local topic, a hash of each retained
	// message the remote sent us, so that the local broker's copy is not
	// sent back to the remote on the next connection (see fromLocal).
	fromRemoteRetained map[string]uint64
	// pendingRetained holds, by remote topic, the payload hash of the last
	// retained message queued or in flight, so the refresh on a new
	// connection does not send the same retained message a second time.
	pendingRetained map[string]uint64
	seed            maphash.Seed

	localReady chan struct{}
	readyOnce  sync.Once
	listener   *broker.Listener
}

// New checks a bridge's configuration (its TLS files are read here, so an
// error names the option's file:line) and returns it, not yet started.
func New(o Options) (*Bridge, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxInflight <= 0 {
		o.MaxInflight = 20
	}
	d, err := newDialer(o.Config, o.Logger)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Bridge{
		cfg:                o.Config,
		o:                  o,
		log:                o.Logger, // every line names the bridge, as Mosquitto's do
		dial:               d,
		ctx:                ctx,
		cancel:             cancel,
		wake:               make(chan struct{}, 1),
		inQoS2:             map[uint16]bool{},
		seed:               maphash.MakeSeed(),
		fromRemoteRetained: map[string]uint64{},
		pendingRetained:    map[string]uint64{},
		localReady:         make(chan struct{}),
		listener:           &broker.Listener{Name: "bridge " + o.Config.Name, Auth: trusted{}},
	}
	return b, nil
}

// Name is the bridge's connection name.
func (b *Bridge) Name() string { return b.cfg.Name }

// Stats returns the bridge's counters.
func (b *Bridge) Stats() *Stats { return &b.stats }

// Start opens the local session, waits until its subscriptions are in
// place (so that nothing published from now on is missed), and starts
// connecting to the remote as start_type says.
func (b *Bridge) Start() error {
	b.wg.Add(1)
	go b.localLoop()
	select {
	case <-b.localReady:
	case <-time.After(10 * time.Second):
		b.Close()
		return fmt.Errorf("bridge %s: the local session did not start", b.cfg.Name)
	}
	if b.cfg.Notifications {
		b.notifyLocal("0")
	}
	b.wg.Add(1)
	go b.run()
	return nil
}

// Close stops the bridge: a connected remote gets DISCONNECT. It waits for
// the bridge's goroutines.
func (b *Bridge) Close() {
	b.cancel()
	b.mu.Lock()
	lc := b.local
	b.mu.Unlock()
	b.wg.Wait()
	if lc != nil {
		lc.Close()
	}
}

// signal wakes the writer (or a lazy bridge waiting for its threshold).
func (b *Bridge) signal() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// sleep waits d or until the bridge is closed; false means closed.
func (b *Bridge) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-b.ctx.Done():
		return false
	}
}

// trusted is the local session's Auth: a bridge is configured by the
// broker's operator, so its local side is neither authenticated nor
// restricted by ACLs (local_username names it in logs).
type trusted struct{}

func (trusted) Authenticate(*broker.ClientInfo, []byte, bool) packet.ReasonCode {
	return packet.Success
}
func (trusted) Authorize(*broker.ClientInfo, string, broker.Access) bool { return true }

// localLoop keeps the local session up for the bridge's life.
func (b *Bridge) localLoop() {
	defer b.wg.Done()
	for {
		c, err := b.dialLocal()
		if err != nil {
			if b.ctx.Err() != nil {
				return
			}
			b.log.Warn("Bridge " + b.cfg.Name + ": local session: " + err.Error())
			if !b.sleep(time.Second) {
				return
			}
			continue
		}
		b.mu.Lock()
		b.local = c
		b.mu.Unlock()
		b.readyOnce.Do(func() { close(b.localReady) })
		select {
		case <-c.Done():
		case <-b.ctx.Done():
			c.Close()
			return
		}
		b.mu.Lock()
		b.local = nil
		b.mu.Unlock()
		if b.ctx.Err() != nil {
			return
		}
		if !b.sleep(time.Second) {
			return
		}
	}
}

// dialLocal connects the local MQTT 5 session in process and subscribes to
// the out topics with No Local and Retain As Published. Retained messages
// are not asked for here but on each connection to the remote
// (refreshRetained), so each reaches the remote once per connection.
func (b *Bridge) dialLocal() (*client.Client, error) {
	srv, cli := net.Pipe()
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		b.o.Broker.ServeConn(srv, b.listener)
	}()
	o := client.Options{
		Dial:        func(context.Context) (net.Conn, error) { return cli, nil },
		Version:     packet.V5,
		ClientID:    b.cfg.LocalClientID,
		CleanStart:  b.cfg.LocalCleanSession,
		MaxInflight: 65535,
		OnMessage:   b.fromLocal,
	}
	if !b.cfg.LocalCleanSession {
		o.Props.SessionExpiry = 0xFFFFFFFF
		o.Props.Set(packet.PropSessionExpiry)
	}
	if b.cfg.LocalUsername != nil {
		o.Username = b.cfg.LocalUsername
		if b.cfg.LocalPassword != nil {
			o.Password = []byte(*b.cfg.LocalPassword)
		}
	}
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	c, _, err := client.Dial(ctx, o)
	if err != nil {
		cli.Close()
		return nil, err
	}
	if subs := b.localSubs(2); len(subs) > 0 {
		if _, err := c.Subscribe(ctx, subID(liveSub), subs...); err != nil {
			c.Close()
			return nil, fmt.Errorf("subscribe: %w", err)
		}
	}
	return c, nil
}

// localSubs are the local subscriptions of the out and both topics.
func (b *Bridge) localSubs(retainHandling byte) []packet.Subscription {
	var subs []packet.Subscription
	for _, t := range b.cfg.Topics {
		if t.Direction == config.BridgeIn {
			continue
		}
		subs = append(subs, packet.Subscription{Filter: []byte(t.LocalFilter()), QoS: t.QoS,
			NoLocal: true, RetainAsPublished: true, RetainHandling: retainHandling})
	}
	return subs
}

// Subscription identifiers of the local session: liveSub marks the
// messages published while the bridge runs, refreshSub the retained
// messages the local broker sends for refreshRetained.
const (
	liveSub    = 1
	refreshSub = 2
)

// subID is SUBSCRIBE properties carrying one subscription identifier.
func subID(id uint32) *packet.Properties {
	var p packet.Properties
	p.SubscriptionIDs = []uint32{id}
	p.Set(packet.PropSubscriptionID)
	return &p
}

// refreshRetained subscribes the out topics again with Retain Handling 0,
// so the local broker sends its retained messages, which go to the remote
// (Mosquitto sends them on every connection too), then back to the live
// subscription identifier.
func (b *Bridge) refreshRetained() {
	b.mu.Lock()
	lc := b.local
	b.mu.Unlock()
	if len(b.localSubs(0)) == 0 || lc == nil {
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	_, err := lc.Subscribe(ctx, subID(refreshSub), b.localSubs(0)...)
	if err == nil {
		_, err = lc.Subscribe(ctx, subID(liveSub), b.localSubs(2)...)
	}
	if err != nil && b.ctx.Err() == nil {
		b.log.Warn("Bridge " + b.cfg.Name + ": retained messages not refreshed: " + err.Error())
	}
}

// fromLocal is called for each message the local session receives: it is
// mapped to the remote topic and queued.
func (b *Bridge) fromLocal(m *client.Message) {
	rt, tqos, ok := outbound(b.cfg.Topics, m.Topic)
	if !ok {
		return
	}
	msg := &message{topic: rt, payload: m.Payload, qos: min(tqos, m.QoS), retain: m.Retain && b.cfg.OutgoingRetain,
		props: forwardable(&m.Props)}
	if msg.retain {
		msg.hash = maphash.Bytes(b.seed, m.Payload)
	}
	if m.Retain && slices.Contains(m.Props.SubscriptionIDs, refreshSub) {
		// A refresh delivery. Not sent when the same retained message is
		// already queued or in flight, nor when the remote itself sent
		// it (through a both topic): sending that back could overwrite a
		// newer value the remote has meanwhile. Mosquitto sends both.
		h := maphash.Bytes(b.seed, m.Payload)
		b.mu.Lock()
		fromRemote, seen := b.fromRemoteRetained[m.Topic]
		pending, queued := b.pendingRetained[rt]
		b.mu.Unlock()
		if seen && fromRemote == h || queued && pending == h {
			return
		}
	}
	b.enqueue(msg)
}

// enqueue adds msg to the queue unless a limit says to drop it.
func (b *Bridge) enqueue(msg *message) {
	b.mu.Lock()
	b.lastUse = time.Now()
	why := ""
	switch {
	case msg.qos == 0 && !b.linkUp && !b.o.QueueQoS0:
		why = "QoS 0 message while the remote is not connected"
	case !b.linkUp && b.keepsNothing():
		why = "local_cleansession is true, so nothing is kept while the remote is not connected"
	case b.o.MaxQueued > 0 && len(b.queue) >= b.o.MaxQueued:
		why = fmt.Sprintf("queue full (max_queued_messages %d)", b.o.MaxQueued)
	case b.o.MaxQueuedBytes > 0 && b.qbytes+len(msg.payload) > b.o.MaxQueuedBytes:
		why = fmt.Sprintf("queue full (max_queued_bytes %d)", b.o.MaxQueuedBytes)
	}
	if why != "" {
		noted := b.dropNoted
		b.dropNoted = true
		b.mu.Unlock()
		b.stats.Dropped.Add(1)
		if !noted && msg.qos > 0 {
			b.log.Warn("Bridge " + b.cfg.Name + ": dropping messages for the remote: " + why)
		}
		return
	}
	b.dropNoted = false
	if msg.retain {
		b.pendingRetained[msg.topic] = msg.hash
	}
	b.queue = append(b.queue, msg)
	b.qbytes += len(msg.payload)
	b.stats.Queued.Store(int64(len(b.queue) + len(b.inflight)))
	b.mu.Unlock()
	b.signal()
}

// keepsNothing reports whether messages for a disconnected remote are
// dropped: with local_cleansession true the bridge's local session is a
// clean one, which Mosquitto does not queue for while the bridge is down.
// A lazy bridge queues anyway: queued messages are what starts it.
func (b *Bridge) keepsNothing() bool {
	return b.cfg.LocalCleanSession && b.cfg.StartType != config.StartLazy
}

// dropQueue empties the queue (not what is in flight, which completes on
// the next connection) when the connection ends and keepsNothing.
func (b *Bridge) dropQueue() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.keepsNothing() || len(b.queue) == 0 {
		return
	}
	b.stats.Dropped.Add(int64(len(b.queue)))
	for _, m := range b.queue {
		b.sentOn(m)
	}
	b.queue, b.qbytes = nil, 0
	b.stats.Queued.Store(int64(len(b.inflight)))
}

// sentOn forgets a retained message in pendingRetained once it has left
// the bridge (acknowledged, or sent at QoS 0, or dropped). Called with mu.
func (b *Bridge) sentOn(m *message) {
	if m.retain && b.pendingRetained[m.topic] == m.hash {
		delete(b.pendingRetained, m.topic)
	}
}

// forwardable copies the properties of an application message that cross
// a bridge (not the topic alias or subscription identifiers, which belong
// to one connection).
func forwardable(p *packet.Properties) packet.Properties {
	var out packet.Properties
	for _, id := range []int{packet.PropPayloadFormat, packet.PropMessageExpiry, packet.PropContentType,
		packet.PropResponseTopic, packet.PropCorrelationData} {
		if p.Present(id) {
			out.Set(id)
		}
	}
	out.PayloadFormat, out.MessageExpiry = p.PayloadFormat, p.MessageExpiry
	out.ContentType, out.ResponseTopic, out.CorrelationData = p.ContentType, p.ResponseTopic, p.CorrelationData
	if len(p.User) > 0 {
		out.User = p.User
		out.Set(packet.PropUser)
	}
	return out
}

// notifyLocal publishes the bridge state ("1" or "0") retained on the
// local broker.
func (b *Bridge) notifyLocal(state string) {
	b.mu.Lock()
	lc := b.local
	b.mu.Unlock()
	if lc == nil {
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	err := lc.Publish(ctx, &client.Message{Topic: b.cfg.NotificationTopic, Payload: []byte(state), QoS: 1, Retain: true})
	if err != nil && b.ctx.Err() == nil {
		b.log.Warn("Bridge " + b.cfg.Name + ": local notification: " + err.Error())
	}
}

// publishLocal publishes a message from the remote on the local broker and
// returns when the local broker has it (QoS 1/2: acknowledged).
func (b *Bridge) publishLocal(m *client.Message) error {
	b.mu.Lock()
	lc := b.local
	b.mu.Unlock()
	if lc == nil {
		return errors.New("the local session is down")
	}
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	return lc.Publish(ctx, m)
}
