package broker

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mamori-mqtt/mamori/internal/packet"
	"github.com/mamori-mqtt/mamori/internal/topic"
)

// conn is one network connection. Its read loop runs in serve; outbound
// bytes are appended to out by any goroutine (under outMu) and written by a
// writer goroutine that exists only while there is something to write, so
// an idle connection holds one goroutine and no buffers.
type conn struct {
	b  *Broker
	nc net.Conn
	l  *Listener
	r  *packet.Reader

	// Fields are grouped by size: an idle connection is mostly this
	// struct, and padding between scattered bools costs every one of them.

	// Set during CONNECT, read-only afterwards.
	info          ClientInfo
	sess          *session
	will          *pendingWill
	willDelay     uint32
	ready         atomic.Bool // CONNACK sent
	clientMaxPkt  uint32      // 0: no limit
	keepAlive     uint16      // seconds, as granted
	clientRecvMax uint16
	clientAliasMx uint16
	maxAlias      uint16
	recvMax       uint16 // the Receive Maximum given in CONNACK (MQTT 5); 0: none
	version       packet.Version
	maxQoS        byte
	problemInfo   bool // client's Request Problem Information
	isBridge      bool // CONNECT carried Mosquitto's bridge bit (try_private)

	// Owned by the read loop.
	aliasIn map[uint16]string
	mcache  *matchCache // made for the first topic worth caching
	w       *work       // scratch of the packet batch being handled; nil while idle

	outMu       sync.Mutex
	kickMark    atomic.Bool // queued in some publisher's touched list
	holding     atomic.Bool // the read loop waits for room in a subscriber's queue
	writing     bool
	closing     bool // close once out is written
	closed      bool
	closeDone   bool // closeNow has closed the socket
	out         []byte
	spare       []byte
	aliasOut    map[string]uint16 // outbound topic aliases (MQTT 5)
	lastOut     int64             // UnixNano of the last drained write
	closedCh    chan struct{}     // made on demand by closedSignal, closed by closeNow
	closeReason string

	// Parking (park_linux.go): an idle plain connection gives its
	// goroutine up, and after a while its net.Conn.
	parkMu     sync.Mutex
	parkID     int32
	heapIdx    int32 // position in the parker's timer heap, -1 when absent; under parker.mu
	fd         int32 // the socket (nc's or, released, the broker's own); under parkMu
	parkable   bool  // a plain socket: set at creation, read-only
	parked     bool
	released   bool // nc is nil, fd is a descriptor of the broker's own; under parkMu and outMu
	sockClosed bool // closeSocket has run: fd is no longer ours to read; under parkMu
	// linger asks closeSocket for a lingering close (close.go): the broker
	// sent a final packet (DISCONNECT, refusing CONNACK) and no read loop
	// reads the socket any more.
	linger          atomic.Bool
	epollArmed      bool  // fd is registered in the parker's epoll set
	parkTimedOut    bool  // resumed by its deadline
	justConnected   bool  // CONNACK sent, nothing read since: park at once
	waitedConnect   bool  // parked once waiting for CONNECT
	rawMode         bool  // the read loop reads a released descriptor; read loop only
	pollMode        bool  // the read loop polls the descriptor under its net.Conn; read loop only
	parkDeadline    int64 // UnixNano; 0: none; under parkMu and parker.mu
	parkedAt        int64 // UnixNano of the last park
	connectDeadline int64 // UnixNano

	closeOnce   sync.Once
	normalClose bool // DISCONNECT 0x00 received: no will
	sendWill    bool // DISCONNECT 0x04
	takenOver   bool
	// sessionResumed: a takeover resumed this connection's session, so
	// its will is not published (the client is still there, as Mosquitto
	// sees it); set by the new connection's attach.
	sessionResumed atomic.Bool
}

func newConn(b *Broker, nc net.Conn, l *Listener) *conn {
	c := &conn{b: b, nc: nc, l: l, fd: -1, heapIdx: -1}
	c.fd = int32(parkableFD(nc))
	c.parkable = c.fd >= 0
	c.r = packet.NewReader(readSource{c}, b.o().PreAuthMaxPacket)
	return c
}

// readSource reads from the connection's net.Conn, or, in raw mode, from
// the descriptor of a released connection (park_linux.go). Only the read
// loop reads.
type readSource struct{ c *conn }

func (r readSource) Read(b []byte) (int, error) {
	if r.c.rawMode || r.c.pollMode {
		return r.c.rawRead(b)
	}
	return r.c.nc.Read(b)
}

// netConn returns the connection's net.Conn, or nil while a parked
// connection has released it; for goroutines other than the read loop.
func (c *conn) netConn() net.Conn {
	c.outMu.Lock()
	defer c.outMu.Unlock()
	return c.nc
}

// remoteAddr is the peer's address, also while the net.Conn is released.
func (c *conn) remoteAddr() net.Addr {
	if c.info.Remote != nil {
		return c.info.Remote
	}
	if nc := c.netConn(); nc != nil {
		return nc.RemoteAddr()
	}
	return nil
}

// serve runs the connection: CONNECT, then its read loop.
func (c *conn) serve() {
	if c.connectDeadline == 0 {
		c.connectDeadline = time.Now().Add(c.b.o().ConnectTimeout).UnixNano()
	}
	c.run()
}

// resume continues a parked connection in a new goroutine (park_linux.go).
func (c *conn) resume() { c.run() }

// run runs the read loop until the connection ends — then cleans up — or
// parks, in which case the connection stays accounted for (broker wait
// group, listener count) with no goroutine until it is resumed.
func (c *conn) run() {
	parked := false
	defer func() {
		if v := recover(); v != nil {
			c.b.stats.Panics.Add(1)
			c.b.log.Error("panic in connection; closed", "remote", c.remoteAddr(), "client", c.info.ClientID,
				"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			c.abandonBatch()
			c.closeNow("internal error")
			parked = false
		}
		if parked {
			return
		}
		// Past the recovery above: a panic in cleanup would end the
		// process, and the connection would stay counted.
		func() {
			defer c.b.recoverIn("the cleanup of a connection")
			c.cleanup()
		}()
		c.l.active.Add(-1)
		c.b.wg.Done()
	}()
	if !c.ready.Load() {
		if c.parkTimedOut {
			c.closeNow("no CONNECT within the connect timeout")
			return
		}
		err := c.readConnect()
		if err == errParked {
			parked = true
			return
		}
		if err != nil {
			c.closeNow(err.Error())
			return
		}
	} else if c.parkTimedOut {
		c.endWithError(packet.ErrKeepAliveTimeout)
		return
	}
	err := c.readLoop()
	if err == errParked {
		parked = true
		return
	}
	c.endWithError(err)
}

// readConnect waits for CONNECT, within the connect deadline and a small
// packet limit, so unauthenticated peers cannot hold resources
// [MQTT-3.1.0-1].
func (c *conn) readConnect() error {
	_ = c.nc.SetReadDeadline(time.Unix(0, c.connectDeadline))
	for {
		h, body, ok, err := c.r.Next()
		if err != nil {
			c.b.stats.ProtocolErrors.Add(1)
			return fmt.Errorf("before CONNECT: %w", err)
		}
		if ok {
			if h.Type != packet.CONNECT {
				c.b.stats.ProtocolErrors.Add(1)
				return fmt.Errorf("first packet is %v, not CONNECT", h.Type)
			}
			c.b.stats.BytesReceived.Add(uint64(h.Size()))
			return c.handleConnect(body)
		}
		if c.parkable && c.r.Buffered() == 0 && !c.waitedConnect {
			// Wait for CONNECT without a goroutine: a connection storm
			// then costs goroutines only while packets are being handled.
			c.waitedConnect = true
			if c.park(time.Unix(0, c.connectDeadline)) {
				return errParked
			}
		}
		if err := c.r.Fill(); err != nil {
			if isTimeout(err) {
				return errors.New("no CONNECT within the connect timeout")
			}
			return err
		}
	}
}

// randomUUID is a random (version 4) UUID in its text form: Mosquitto
// assigns client identifiers of this shape, and clients may size buffers
// or patterns after it.
func randomUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded)
}

// refuse answers a CONNECT with a failure and closes [MQTT-3.2.2-6].
func (c *conn) refuse(code packet.ReasonCode, why string) error {
	ack := packet.Connack{Code: code}
	if c.version != packet.V5 {
		ack.Code = packet.ReasonCode(packet.ConnackV3(code))
	} else if why != "" && c.b.o().ReasonStrings {
		ack.Props.Set(packet.PropReasonString)
		ack.Props.ReasonString = []byte(why)
	}
	v := c.version
	if v < packet.V31 || v > packet.V5 {
		v = packet.V311
	}
	if c.b.o().ConnectionMessages {
		// The reason goes to the log, not to the client (see ReasonStrings).
		id := c.info.ClientID
		if id == "" {
			id = "<unknown>"
		}
		c.b.log.Info(fmt.Sprintf("Client %s from %s refused: %v (%s).", id, compactAddr(c.nc.RemoteAddr()), code, why))
	}
	_ = c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, _ = c.nc.Write(ack.Append(nil, v))
	c.linger.Store(true)
	return fmt.Errorf("connection refused: %v (%s)", code, why)
}

func (c *conn) handleConnect(body []byte) error {
	var p packet.Connect
	err := p.Decode(body)
	c.version = p.Version
	c.isBridge = p.Bridge
	if err != nil {
		known := string(p.ProtocolName) == "MQTT" || string(p.ProtocolName) == "MQIsdp"
		if packet.CodeOf(err) == packet.ErrUnsupportedVersion && known {
			// Any level with a known protocol name: CONNACK 1 in the MQTT 3
			// form, as Mosquitto answers; an unknown name is just closed.
			return c.refuse(packet.ErrUnsupportedVersion, "unsupported protocol version") // [MQTT-3.1.2-2]
		}
		c.b.stats.ProtocolErrors.Add(1)
		return fmt.Errorf("bad CONNECT: %w", err)
	}
	o := c.b.o()
	c.maxQoS, c.maxAlias = o.MaxQoS, o.MaxTopicAlias
	if c.l.MaxQoS != nil {
		c.maxQoS = min(*c.l.MaxQoS, 2)
	}
	if c.l.MaxTopicAlias != nil {
		c.maxAlias = *c.l.MaxTopicAlias
	}
	c.info = ClientInfo{ClientID: string(p.ClientID), Listener: c.l.Name, Remote: compactAddr(c.nc.RemoteAddr())}
	if p.UsernameFlag {
		c.info.Username = string(p.Username)
	}
	c.info.Anonymous = !p.UsernameFlag

	if p.Version == packet.V5 {
		if p.Props.Present(packet.PropAuthMethod) {
			// No enhanced authentication method is supported [MQTT-4.12.0-1].
			return c.refuse(packet.ErrBadAuthMethod, "authentication method not supported")
		}
		c.clientRecvMax = 65535
		if p.Props.Present(packet.PropReceiveMaximum) {
			c.clientRecvMax = p.Props.ReceiveMaximum
		}
		if p.Props.Present(packet.PropMaximumPacketSize) {
			c.clientMaxPkt = p.Props.MaximumPacketSize
		}
		c.clientAliasMx = p.Props.TopicAliasMaximum
		c.problemInfo = !p.Props.Present(packet.PropRequestProblemInfo) || p.Props.RequestProblemInfo == 1
	}

	// Identity from the transport (TLS certificate): it replaces whatever
	// user name the CONNECT carries.
	if c.l.Identity != nil {
		name, ok, err := c.l.Identity(c.nc)
		if err != nil || !ok {
			why := "no usable client identity"
			if err != nil {
				why = err.Error()
			}
			c.b.stats.AuthFailures.Add(1)
			// Mosquitto's code for a missing or unusable certificate
			// identity: bad user name or password (4 in MQTT 3).
			return c.refuse(packet.ErrBadUsernameOrPassword, why)
		}
		c.info.Username, c.info.Anonymous, c.info.CertIdentity = name, false, true
	}

	// Client identifier rules [MQTT-3.1.3-6] [MQTT-3.1.3-8].
	assigned := false
	if c.l.UseUsernameAsClientID {
		// The identifier is the authenticated user name — the
		// certificate's with use_identity_as_username, never a name the
		// client merely claims — and a client without one is refused, as
		// Mosquitto does: it would otherwise pick any identifier it likes.
		if c.info.Anonymous {
			c.b.stats.AuthFailures.Add(1)
			return c.refuse(packet.ErrNotAuthorized, "use_username_as_clientid: no user name")
		}
		c.info.ClientID = c.info.Username
	}
	if c.info.ClientID == "" {
		allowZero, prefix := o.AllowZeroLengthClientID, o.AutoIDPrefix
		if c.l.AllowZeroLengthClientID != nil {
			allowZero = *c.l.AllowZeroLengthClientID
		}
		if c.l.AutoIDPrefix != nil {
			prefix = *c.l.AutoIDPrefix
		}
		if p.Version == packet.V31 || !allowZero || (p.Version == packet.V311 && !p.CleanStart) {
			code := packet.ErrClientIDNotValid
			if p.Version == packet.V5 {
				code = packet.ErrUnspecified // Mosquitto's CONNACK code here
			}
			return c.refuse(code, "empty client identifier not allowed")
		}
		c.info.ClientID = prefix + randomUUID()
		assigned = true
	}
	if p.Version == packet.V31 && len(c.info.ClientID) > 23 {
		return c.refuse(packet.ErrClientIDNotValid, "MQTT 3.1 client identifier longer than 23 characters")
	}

	// Keep alive [MQTT-3.1.2-24] and server keep alive [MQTT-3.2.2-21].
	ka := p.KeepAlive
	serverKA := false
	if o.MaxKeepAlive > 0 && (ka == 0 || ka > o.MaxKeepAlive) {
		if p.Version != packet.V5 {
			return c.refuse(packet.ErrClientIDNotValid, "keep alive above max_keepalive")
		}
		ka = o.MaxKeepAlive
		serverKA = true
	}
	c.keepAlive = ka

	// Authentication.
	a := c.authz()
	if a != nil {
		if code := a.Authenticate(&c.info, p.Password, p.PasswordFlag); code.IsError() {
			c.b.stats.AuthFailures.Add(1)
			return c.refuse(code, "authentication failed")
		}
	} else if c.info.Anonymous && !o.AllowAnonymous {
		c.b.stats.AuthFailures.Add(1)
		return c.refuse(packet.ErrNotAuthorized, "anonymous clients are not allowed")
	}

	// Will [MQTT-3.1.2-8] [MQTT-3.1.2-9].
	if p.WillFlag {
		wt := string(p.WillTopic)
		if err := checkTopic(wt, false); err != nil {
			// Mosquitto closes without a CONNACK.
			c.b.stats.ProtocolErrors.Add(1)
			return fmt.Errorf("invalid will topic: %w", err)
		}
		if o.MessageSizeLimit > 0 && len(p.WillPayload) > o.MessageSizeLimit {
			return c.refuse(packet.ErrPacketTooLarge, "will payload exceeds message_size_limit")
		}
		if p.WillQoS > c.maxQoS {
			return c.refuse(packet.ErrQoSNotSupported, "will QoS above maximum QoS") // [MQTT-3.2.2-12]
		}
		if p.WillRetain && !o.RetainAvailable {
			return c.refuse(packet.ErrRetainNotSupported, "retain not available") // [MQTT-3.2.2-13]
		}
		if p.WillProps.PayloadFormat == 1 && !packet.ValidUTF8(p.WillPayload) {
			return c.refuse(packet.ErrPayloadFormatInvalid, "will payload is not UTF-8")
		}
		// Like Mosquitto 2.0, a will topic the client may not publish to
		// ($SYS included) does not refuse the CONNECT: the will is checked
		// when it is published, and dropped then.
		full := c.l.MountPoint + wt
		if len(full) > topic.MaxLen {
			return c.refuse(packet.ErrTopicNameInvalid, "will topic too long with the mount point")
		}
		wp := packet.Publish{QoS: p.WillQoS, Retain: p.WillRetain, Payload: p.WillPayload, Props: p.WillProps}
		c.will = &pendingWill{msg: newMessage(full, &wp, c.info.ClientID, time.Time{}), info: c.info, l: c.l}
		c.willDelay = p.WillProps.WillDelay
	}

	// Session expiry: MQTT 5 from the property; MQTT 3 clean session 0 is a
	// session that does not expire (unless persistent_client_expiration).
	var expiry uint32
	if p.Version == packet.V5 {
		expiry = p.Props.SessionExpiry
	} else if !p.CleanStart {
		expiry = neverExpires
		if d := o.PersistentClientExpiration; d > 0 {
			expiry = uint32(min(d/time.Second, neverExpires-1))
		}
	}

	present := c.b.attach(c, p.CleanStart, expiry)

	// MQTT 3.1 has no session present flag: its CONNACK byte is reserved.
	ack := packet.Connack{SessionPresent: present && p.Version != packet.V31}
	if p.Version == packet.V5 {
		// Mosquitto's order (clients and its test suite compare bytes):
		// what the CONNECT decided first, then the broker's limits.
		pr := &ack.Props
		if c.maxAlias > 0 {
			pr.Set(packet.PropTopicAliasMaximum)
			pr.TopicAliasMaximum = c.maxAlias
		}
		if serverKA {
			pr.Set(packet.PropServerKeepAlive)
			pr.ServerKeepAlive = ka
		}
		if assigned {
			pr.Set(packet.PropAssignedClientID) // [MQTT-3.2.2-16]
			pr.AssignedClientID = []byte(c.info.ClientID)
		}
		if !o.RetainAvailable {
			pr.Set(packet.PropRetainAvailable)
		}
		if o.MaxPacketSize > 0 {
			pr.Set(packet.PropMaximumPacketSize)
			pr.MaximumPacketSize = uint32(o.MaxPacketSize)
		}
		if o.MaxInflightMessages < 65535 {
			pr.Set(packet.PropReceiveMaximum)
			pr.ReceiveMaximum = uint16(o.MaxInflightMessages)
			c.recvMax = pr.ReceiveMaximum
		}
		if c.maxQoS < 2 {
			pr.Set(packet.PropMaximumQoS)
			pr.MaximumQoS = c.maxQoS
		}
	}
	if c.clientMaxPkt > 0 && len(ack.Append(nil, p.Version)) > int(c.clientMaxPkt) {
		// The client could not take even the CONNACK: closed without one,
		// as Mosquitto does [MQTT-3.1.2-24]; its will is dropped with it.
		c.will = nil
		return fmt.Errorf("CONNACK larger than the client's maximum packet size %d", c.clientMaxPkt)
	}
	c.r.MaxSize = o.MaxPacketSize
	c.r.PubrelDup = p.Version == packet.V31
	// CONNACK goes out before anything the resumed session resends
	// [MQTT-3.2.0-1]: attach queued nothing yet, start() does.
	c.writePacket(&ack)
	c.b.stats.TotalConnects.Add(1)
	c.b.stats.Connections.Add(1)
	if c.b.o().ConnectionMessages {
		kind := "client"
		if c.isBridge {
			kind = "bridge"
		}
		msg := fmt.Sprintf("New %s connected from %s as %s (p%d, c%d, k%d%s).", kind,
			hostOf(c.nc.RemoteAddr()), c.info.ClientID, p.Version, b2i(p.CleanStart), p.KeepAlive, userSuffix(&c.info))
		if cs, ok := c.nc.(interface{ ConnectionState() tls.ConnectionState }); ok {
			st := cs.ConnectionState()
			cipher := tls.CipherSuiteName(st.CipherSuite)
			if n, ok := c.nc.(interface{ CipherName() string }); ok {
				cipher = n.CipherName() // TLS-PSK suites crypto/tls does not name
			}
			attrs := []any{"tls", tls.VersionName(st.Version), "cipher", cipher}
			if len(st.PeerCertificates) > 0 {
				attrs = append(attrs, "certificate", st.PeerCertificates[0].Subject.String())
			}
			c.b.log.Info(msg, attrs...)
		} else {
			c.b.log.Info(msg)
		}
	}
	c.ready.Store(true)
	c.justConnected = true
	c.b.start(c)
	return nil
}

// peerAddr is a TCP peer's address kept for the connection's whole life:
// 24 bytes, where a *net.TCPAddr and the socket address its IP points into
// take 80 — a good part of what an idle connection costs.
type peerAddr netip.AddrPort

func (a peerAddr) Network() string { return "tcp" }
func (a peerAddr) String() string  { return netip.AddrPort(a).String() }

// compactAddr turns a TCP address into a peerAddr; IPv4 clients of a
// dual-stack listener keep their IPv4 form, as net.TCPAddr prints them.
func compactAddr(a net.Addr) net.Addr {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return a
	}
	ap := ta.AddrPort()
	return peerAddr(netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
}

func hostOf(a net.Addr) string {
	if a == nil {
		return "unknown"
	}
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host + ":" + port
}

func b2i(v bool) int {
	if v {
		return 1
	}
	return 0
}

func userSuffix(ci *ClientInfo) string {
	if ci.Username == "" {
		return ""
	}
	return ", u'" + ci.Username + "'"
}

// readLoop reads packets until the connection ends. Every packet that one
// read returned is handled before the next read, and the connections it
// delivered to are flushed once after the batch.
func (c *conn) readLoop() error {
	err := c.readPackets()
	if err != errParked {
		// Not on the parked path: once parked, another goroutine may own
		// the connection at any moment, so this one touches nothing more.
		c.releaseWork()
	}
	return err
}

func (c *conn) readPackets() error {
	fresh := true // just connected (or resumed): nothing read yet in this loop
	for {
		if c.w == nil {
			c.w = workPool.Get().(*work)
		}
		more := c.parkable // one look for more before the batch is flushed
		for {
			h, body, ok, err := c.r.Next()
			if err != nil {
				c.flushTouched() // what the batch delivered still goes out
				if packet.CodeOf(err) == packet.ErrMalformedPacket && h.Type != packet.PUBLISH &&
					h.Type != packet.SUBSCRIBE && h.Type != packet.UNSUBSCRIBE {
					// Bad flags of other packet types: closed without a
					// DISCONNECT, as by Mosquitto (see handle).
					return closeOnly{err}
				}
				return err
			}
			if !ok {
				if more {
					more = false
					got, err := c.readMore()
					if err != nil {
						c.flushTouched()
						return err
					}
					if got {
						continue
					}
				}
				break
			}
			c.b.stats.BytesReceived.Add(uint64(h.Size()))
			if err := c.handle(h, body); err != nil {
				c.flushTouched()
				return err
			}
			if c.w.hold != nil {
				// A subscriber's queue is full: deliver what is pending and
				// wait for room before handling the next packet, so each
				// publisher overshoots the queue limit by one message at most.
				c.flushTouched()
				c.waitForRoom()
			} else if len(c.w.touched) > 64 {
				c.flushTouched()
			}
		}
		c.flushTouched()
		c.releaseWork() // an idle connection holds no scratch
		if c.r.Buffered() == 0 {
			c.r.Release()
		}
		// [MQTT-3.1.2-24] one and a half times the keep alive; a
		// connection that can park is also woken after parkAfter of
		// silence, to give its goroutine up.
		var kaDeadline, deadline time.Time
		now := time.Now()
		if c.keepAlive > 0 {
			kaDeadline = now.Add(time.Duration(c.keepAlive) * time.Second * 3 / 2)
			deadline = kaDeadline
		}
		idleCheck := c.parkable && c.r.Buffered() == 0
		if idleCheck && fresh && c.justConnected {
			// A device that has just connected is usually quiet for a
			// while: park at once instead of holding a goroutine for
			// parkAfter. Epoll is level-triggered, so bytes already waiting
			// wake the connection straight away.
			c.justConnected = false
			if c.park(kaDeadline) {
				return errParked
			}
		}
		if c.parkable && c.isReleased() {
			// Woken without a net.Conn: read what the socket holds.
			c.rawMode = true
			err := c.r.Fill()
			c.rawMode = false
			if err == nil {
				fresh = false
				continue
			}
			if err != errWouldBlock {
				return err
			}
			// Drained. An idle device parks again as it is; one that woke
			// soon after parking is busy again and gets a net.Conn (and a
			// goroutine while it stays busy).
			if c.wasIdle() && c.park(kaDeadline) {
				return errParked
			}
			if _, err := c.restore(); err != nil {
				// No descriptor to spare (EMFILE): go on without a net.Conn.
				if c.park(kaDeadline) {
					return errParked
				}
				return err
			}
		}
		fresh = false
		if c.parkable && c.awaitingAcks() {
			got, err := c.pollAcks()
			if err != nil {
				return err
			}
			if got {
				continue
			}
		}
		if idleCheck && (deadline.IsZero() || now.Add(parkAfter).Before(deadline)) {
			deadline = now.Add(parkAfter)
		}
		_ = c.nc.SetReadDeadline(deadline)
		if err := c.r.Fill(); err != nil {
			if !isTimeout(err) {
				return err
			}
			if !kaDeadline.IsZero() && !time.Now().Before(kaDeadline) {
				return packet.ErrKeepAliveTimeout
			}
			if idleCheck && c.r.Buffered() == 0 && c.park(kaDeadline) {
				return errParked
			}
		}
	}
}

// work is the scratch a read loop needs while it handles packets. It is
// taken from a pool for each batch and returned before the loop waits for
// the network again, so that idle connections do not each hold one.
type work struct {
	pub     packet.Publish
	ack     packet.Ack
	props   packet.Properties // forwardable properties of the PUBLISH being routed
	enc     encCache
	matches []subscription
	groups  []groupPick
	touched []*conn  // connections with new output, flushed once per batch
	hold    *session // a subscriber whose full queue holds this publisher back
}

var workPool = sync.Pool{New: func() any { return new(work) }}

// abandonBatch hands the connections a batch cut short by a panic had
// marked for flushing to their writers: while marked, no other publisher
// would flush them, and their output — acknowledgements included — would
// wait forever.
func (c *conn) abandonBatch() {
	if c.w == nil {
		return
	}
	for i, t := range c.w.touched {
		t.kickMark.Store(false)
		if t != c {
			t.kick()
		}
		c.w.touched[i] = nil
	}
	c.w.touched = c.w.touched[:0]
	c.w.hold = nil
}

func (c *conn) releaseWork() {
	if c.w != nil {
		workPool.Put(c.w)
		c.w = nil
	}
}

// maxHold bounds how long a publisher waits for a subscriber's queue: a
// subscriber that takes nothing for this long is stalled and no longer
// holds anyone back, and what does not fit in its queue is dropped.
const maxHold = time.Second

// holdFor records that s's queue is full, so this publisher reads no more
// until it has room (back-pressure instead of losing acknowledged
// messages). Called with s.mu held; the wait happens after the batch.
func (c *conn) holdFor(s *session) {
	if c.w.hold == nil {
		c.w.hold = s
	}
}

// waitForRoom blocks the read loop until the session that held it back
// has room in its queue, goes offline, or maxHold passes.
func (c *conn) waitForRoom() {
	s := c.w.hold
	c.w.hold = nil
	s.mu.Lock()
	if s.conn == nil || s.drained() {
		s.mu.Unlock()
		return
	}
	if s.space == nil {
		s.space = make(chan struct{})
	}
	ch := s.space
	s.mu.Unlock()
	c.holding.Store(true)
	defer c.holding.Store(false)
	t := time.NewTimer(maxHold)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
	case <-c.closedSignal():
	}
}

// closeOnly marks a protocol error after which the connection is closed
// without a DISCONNECT, as Mosquitto does for every packet type except
// PUBLISH, SUBSCRIBE and UNSUBSCRIBE (and unknown types).
type closeOnly struct{ error }

func (e closeOnly) Unwrap() error { return e.error }

// handle dispatches one packet; errors of packets other than PUBLISH,
// SUBSCRIBE and UNSUBSCRIBE close the connection without a DISCONNECT.
func (c *conn) handle(h packet.Header, body []byte) error {
	err := c.handlePacket(h, body)
	if err == nil || err == errParked || err == io.EOF {
		return err
	}
	switch {
	case h.Type == packet.PUBLISH, h.Type == packet.SUBSCRIBE, h.Type == packet.UNSUBSCRIBE,
		errors.Is(err, errExpiryAfterZero):
		return err
	}
	if h.Type >= packet.CONNECT && h.Type <= packet.AUTH {
		return closeOnly{err}
	}
	return err
}

// malformed turns a SUBSCRIBE or UNSUBSCRIBE decode error into a malformed
// packet, the reason code Mosquitto sends for every such error; and a
// PUBLISH property that is not allowed there likewise.
func malformed(err error) error {
	if packet.CodeOf(err) == packet.ErrProtocol {
		return packet.ErrMalformedPacket.With(packet.ReasonOf(err))
	}
	return err
}

func (c *conn) handlePacket(h packet.Header, body []byte) error {
	switch h.Type {
	case packet.PUBLISH:
		if err := c.w.pub.Decode(h.Flags, body, c.version); err != nil {
			if c.w.pub.PacketID == 0 && c.w.pub.QoS > 0 {
				return err // packet identifier 0: a protocol error
			}
			return malformed(err)
		}
		return c.onPublish(&c.w.pub)
	case packet.PUBACK, packet.PUBREC, packet.PUBREL, packet.PUBCOMP:
		if err := c.w.ack.Decode(h.Type, body, c.version); err != nil {
			return err
		}
		return c.onAck(&c.w.ack)
	case packet.SUBSCRIBE:
		var s packet.Subscribe
		if err := s.Decode(body, c.version); err != nil {
			return malformed(err)
		}
		return c.onSubscribe(&s)
	case packet.UNSUBSCRIBE:
		var u packet.Unsubscribe
		if err := u.Decode(body, c.version); err != nil {
			return malformed(err)
		}
		return c.onUnsubscribe(&u)
	case packet.PINGREQ:
		if len(body) != 0 {
			return packet.ErrMalformedPacket.With("PINGREQ with a body")
		}
		c.writePacket(packet.Pingresp{}) // [MQTT-3.12.4-1]
		c.touch(c)
		return nil
	case packet.DISCONNECT:
		var d packet.Disconnect
		if err := d.Decode(body, c.version); err != nil {
			return err
		}
		return c.onDisconnect(&d)
	case packet.AUTH:
		if c.version != packet.V5 {
			return packet.ErrProtocol.With("AUTH before MQTT 5")
		}
		// No authentication method was negotiated, so any AUTH is a
		// protocol error [MQTT-4.12.0-2]... [MQTT-3.15.2-1].
		return packet.ErrProtocol.With("AUTH without an authentication method")
	case packet.CONNECT:
		return packet.ErrProtocol.With("second CONNECT") // [MQTT-3.1.0-2]
	default:
		return packet.ErrProtocol.With(h.Type.String() + " is not sent by clients")
	}
}

// errExpiryAfterZero is the one DISCONNECT error Mosquitto answers with a
// DISCONNECT of its own (0x82).
var errExpiryAfterZero = packet.ErrProtocol.With("session expiry set on DISCONNECT after 0 in CONNECT")

func (c *conn) onDisconnect(d *packet.Disconnect) error {
	if c.version == packet.V5 && d.Props.Present(packet.PropSessionExpiry) {
		c.sess.mu.Lock()
		zero := c.sess.expiry == 0
		if !zero {
			c.sess.expiry = d.Props.SessionExpiry
		}
		c.sess.mu.Unlock()
		if zero && d.Props.SessionExpiry != 0 {
			return errExpiryAfterZero // [MQTT-3.14.2-2]
		}
	}
	if d.Code == packet.DisconnectWithWill {
		c.sendWill = true
	} else {
		c.normalClose = true // [MQTT-3.14.4-3] the will is discarded
	}
	return io.EOF
}

// endWithError closes the connection after the read loop stopped. Protocol
// errors are answered with DISCONNECT and a reason code in MQTT 5
// [MQTT-4.13.1-1]; MQTT 3 connections are just closed.
func (c *conn) endWithError(err error) {
	switch {
	case err == nil || errors.Is(err, io.EOF) && (c.normalClose || c.sendWill):
		c.closeNow("client disconnected")
		return
	case errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrUnexpectedEOF):
		c.closeNow("connection closed by peer")
		return
	}
	code := packet.CodeOf(err)
	if code == packet.ErrUnspecified {
		// A network error, not a protocol one.
		c.closeNow(err.Error())
		return
	}
	var co closeOnly
	if errors.As(err, &co) {
		c.b.stats.ProtocolErrors.Add(1)
		c.closeNow(fmt.Sprintf("%v: %s", code, packet.ReasonOf(err)))
		return
	}
	if code != packet.ErrKeepAliveTimeout {
		c.b.stats.ProtocolErrors.Add(1)
	}
	// The read loop has ended: nobody reads the socket, so the close may
	// linger to let the DISCONNECT arrive (close.go).
	c.linger.Store(true)
	c.disconnect(code, packet.ReasonOf(err))
}

// disconnect sends DISCONNECT with code to an MQTT 5 client, then closes.
func (c *conn) disconnect(code packet.ReasonCode, reason string) {
	why := code.String()
	if reason != "" {
		why += ": " + reason
	}
	// version and sess are the read loop's until CONNACK (ready): Close
	// and DisconnectWhere call this from other goroutines, and a
	// connection still in CONNECT is just closed.
	if c.ready.Load() && c.version == packet.V5 && c.sess != nil {
		d := packet.Disconnect{Code: code}
		if reason != "" && c.problemInfo && c.b.o().ReasonStrings {
			d.Props.Set(packet.PropReasonString)
			d.Props.ReasonString = []byte(reason)
		}
		c.outMu.Lock()
		c.closeReason = why
		c.out = d.Append(c.out, c.version)
		c.closing = true
		c.outMu.Unlock()
		c.kick()
		// The writer closes after flushing; do not wait on a stuck peer.
		time.AfterFunc(2*time.Second, func() { c.closeNow(why) })
		return
	}
	c.closeNow(why)
}

// closeNow closes the network connection; the read loop then ends and
// cleanup runs.
func (c *conn) closeNow(why string) {
	c.closeOnce.Do(func() {
		c.outMu.Lock()
		c.closed = true
		if c.closeReason == "" {
			c.closeReason = why
		}
		c.outMu.Unlock()
		c.closeSocket()
		c.outMu.Lock()
		c.closeDone = true
		if c.closedCh != nil {
			close(c.closedCh)
		}
		c.outMu.Unlock()
	})
	// A parked connection has no goroutine to notice the close: wake it so
	// that its read fails and it cleans up.
	c.unpark(0, false)
}

// closedSignal returns a channel that is closed once closeNow has closed
// the socket. It is made on first use: few connections are ever waited on,
// and an idle one should not carry a channel.
func (c *conn) closedSignal() <-chan struct{} {
	c.outMu.Lock()
	defer c.outMu.Unlock()
	if c.closedCh == nil {
		c.closedCh = make(chan struct{})
		if c.closeDone {
			close(c.closedCh)
		}
	}
	return c.closedCh
}

// cleanup runs once when serve ends: the session is detached, the will is
// scheduled, and the connection leaves the broker.
func (c *conn) cleanup() {
	c.outMu.Lock()
	closing := c.closing
	c.outMu.Unlock()
	if closing {
		// Let the writer deliver the DISCONNECT it was given; disconnect's
		// timer bounds the wait.
		<-c.closedSignal()
	}
	c.closeNow("closed")
	c.b.mu.Lock()
	delete(c.b.conns, c)
	c.b.mu.Unlock()
	if c.sess == nil {
		return
	}
	c.b.stats.Connections.Add(-1)
	if c.b.o().ConnectionMessages {
		c.outMu.Lock()
		why := c.closeReason
		c.outMu.Unlock()
		if c.normalClose {
			c.b.log.Info(fmt.Sprintf("Client %s disconnected.", c.info.ClientID))
		} else {
			c.b.log.Info(fmt.Sprintf("Client %s closed its connection.", c.info.ClientID), "reason", why)
		}
	}
	c.b.detach(c)
}
