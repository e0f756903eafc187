package tlspsk

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Conn is a TLS-PSK connection: a net.Conn whose Read and Write carry
// application data once the handshake (run by Handshake or the first Read
// or Write) has succeeded. Read and Write may be called concurrently.
type Conn struct {
	conn     net.Conn
	cfg      *Config
	isClient bool

	hsMu   sync.Mutex
	hsDone atomic.Bool
	hsErr  error

	// Set by the handshake, read-only afterwards.
	version    uint16
	suite      *suite
	identity   string
	hint       string
	alpn       string
	serverName string

	// Handshake-only state.
	tr           []byte // transcript: every handshake message so far
	allowCCS     bool   // TLS 1.3: ignore the compatibility ChangeCipherSpec
	skipFailures int    // TLS 1.3 server: bytes of undecryptable early data still to skip
	skipAppData  int    // TLS 1.3 server after HelloRetryRequest: early data records to skip
	clientRandom []byte
	emptyRecords int

	inMu      sync.Mutex
	in        halfConn
	br        *bufio.Reader
	hdr       [recordHeaderLen]byte
	rbuf      []byte
	hsq       []byte
	appData   []byte
	readErr   error
	pendingIn halfConn // TLS 1.2: keys that take effect at ChangeCipherSpec

	outMu      sync.Mutex
	out        halfConn
	wbuf       []byte
	writeErr   error
	pendingOut halfConn
	closeSent  bool
	sentCCS    bool // TLS 1.3 client: the compatibility ChangeCipherSpec went out
	closed     atomic.Bool
}

var _ net.Conn = (*Conn)(nil)

// Server returns a server-side connection over c.
func Server(c net.Conn, cfg *Config) *Conn {
	return &Conn{conn: c, cfg: cfg, br: bufio.NewReaderSize(c, 2048)}
}

// Client returns a client-side connection over c.
func Client(c net.Conn, cfg *Config) *Conn {
	return &Conn{conn: c, cfg: cfg, isClient: true, br: bufio.NewReaderSize(c, 2048)}
}

// Handshake runs the handshake if it has not run yet.
func (c *Conn) Handshake() error { return c.HandshakeContext(context.Background()) }

// aLongTimeAgo is a deadline that makes blocked I/O return at once.
var aLongTimeAgo = time.Unix(1, 0)

// HandshakeContext runs the handshake; when ctx ends first, the pending
// I/O is interrupted and ctx's error returned.
func (c *Conn) HandshakeContext(ctx context.Context) error {
	if c.hsDone.Load() {
		return nil
	}
	c.hsMu.Lock()
	defer c.hsMu.Unlock()
	if c.hsErr != nil {
		return c.hsErr
	}
	if c.hsDone.Load() {
		return nil
	}
	var fired chan struct{}
	var stop func() bool
	if ctx.Done() != nil {
		fired = make(chan struct{})
		stop = context.AfterFunc(ctx, func() {
			c.conn.SetDeadline(aLongTimeAgo)
			close(fired)
		})
	}
	c.inMu.Lock()
	c.outMu.Lock()
	var err error
	if c.isClient {
		err = c.clientHandshake()
	} else {
		err = c.serverHandshake()
	}
	if err != nil {
		c.sendAlertFor(err)
	}
	c.tr = nil
	c.outMu.Unlock()
	c.inMu.Unlock()
	if stop != nil && !stop() {
		<-fired
		if err == nil {
			err = ctx.Err()
		} else {
			err = fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
	}
	if err != nil {
		c.hsErr = err
		return err
	}
	c.hsDone.Store(true)
	return nil
}

// sendAlertFor sends the alert a local handshake error carries.
func (c *Conn) sendAlertFor(err error) {
	var e *Error
	if errors.As(err, &e) && !e.Remote {
		c.sendAlertLocked(e.Alert)
	}
}

// sendAlertLocked sends an alert; outMu is held. Errors are ignored: the
// connection is failing anyway.
func (c *Conn) sendAlertLocked(a Alert) {
	level := byte(2)
	if a == AlertCloseNotify || a == AlertUserCanceled || a == AlertNoRenegotiation {
		level = 1
	}
	var err error
	c.wbuf, err = c.out.seal(c.wbuf[:0], recordAlert, []byte{level, byte(a)})
	if err == nil {
		c.conn.Write(c.wbuf)
	}
	if a != AlertCloseNotify && a != AlertNoRenegotiation && c.writeErr == nil {
		c.writeErr = &Error{Alert: a, Reason: "the connection was aborted"}
	}
}

// queue appends records carrying data of type typ to the output buffer,
// split at the record size limit.
func (c *Conn) queue(typ uint8, data []byte) error {
	for first := true; first || len(data) > 0; first = false {
		n := min(len(data), maxPlaintext)
		var err error
		c.wbuf, err = c.out.seal(c.wbuf, typ, data[:n])
		if err != nil {
			return err
		}
		data = data[n:]
	}
	return nil
}

// flush writes the output buffer.
func (c *Conn) flush() error {
	if len(c.wbuf) == 0 {
		return nil
	}
	_, err := c.conn.Write(c.wbuf)
	if cap(c.wbuf) > 4*maxCiphertext12 {
		c.wbuf = nil // a large write does not pin its buffer
	} else {
		c.wbuf = c.wbuf[:0]
	}
	return err
}

// writeHandshake queues a handshake message and adds it to the transcript.
func (c *Conn) writeHandshake(msg []byte) error {
	c.tr = append(c.tr, msg...)
	return c.queue(recordHandshake, msg)
}

// readRecord reads and decrypts one record. The returned slice is valid
// until the next call.
func (c *Conn) readRecord() (uint8, []byte, error) {
	for {
		if _, err := io.ReadFull(c.br, c.hdr[:]); err != nil {
			if err == io.ErrUnexpectedEOF {
				return 0, nil, io.ErrUnexpectedEOF
			}
			return 0, nil, err
		}
		typ := c.hdr[0]
		n := int(c.hdr[3])<<8 | int(c.hdr[4])
		if typ < recordChangeCipherSpec || typ > recordApplicationData {
			if c.hdr[0] == 0x10 || c.hdr[0] == 'G' {
				return 0, nil, errorf(AlertUnexpectedMessage, "the client speaks plain MQTT or HTTP on a TLS-PSK port")
			}
			return 0, nil, errorf(AlertUnexpectedMessage, "not a TLS record (content type %d)", typ)
		}
		if c.hdr[1] != 3 {
			return 0, nil, errorf(AlertProtocolVersion, "record version %d.%d is not TLS", c.hdr[1], c.hdr[2])
		}
		limit := c.in.maxIn()
		if c.in.tls13 && typ == recordChangeCipherSpec {
			limit = 1
		}
		if n > limit {
			return 0, nil, errorf(AlertRecordOverflow, "record of %d bytes is over the limit of %d", n, limit)
		}
		if cap(c.rbuf) < n {
			c.rbuf = make([]byte, n, max(n, 1024))
		}
		buf := c.rbuf[:n]
		if _, err := io.ReadFull(c.br, buf); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, nil, err
		}
		if c.skipAppData > 0 && typ == recordApplicationData {
			// Early data after a ClientHello answered with a
			// HelloRetryRequest: skipped unread (RFC 8446 §4.2.10).
			c.skipAppData -= n
			continue
		}
		if typ == recordChangeCipherSpec && c.allowCCS {
			// The compatibility ChangeCipherSpec (RFC 8446 §5) is never
			// protected and is dropped.
			if n != 1 || buf[0] != 1 {
				return 0, nil, errorf(AlertUnexpectedMessage, "malformed ChangeCipherSpec")
			}
			continue
		}
		if typ == recordChangeCipherSpec && c.in.tls13 {
			return 0, nil, errorf(AlertUnexpectedMessage, "ChangeCipherSpec after the handshake")
		}
		hdr := c.hdr[:]
		rtyp, pt, err := c.in.open(hdr, buf)
		if err != nil {
			if c.skipFailures > 0 && err.Alert == AlertBadRecordMAC {
				// Rejected 0-RTT data cannot be decrypted with the
				// handshake key: skip it, up to the budget.
				c.skipFailures -= n
				continue
			}
			return 0, nil, err
		}
		c.skipFailures = 0
		if rtyp != recordApplicationData {
			if len(pt) == 0 {
				return 0, nil, errorf(AlertUnexpectedMessage, "empty record of type %d", rtyp)
			}
			c.emptyRecords = 0
		} else if len(pt) == 0 {
			c.emptyRecords++
			if c.emptyRecords > 64 {
				return 0, nil, errorf(AlertUnexpectedMessage, "too many empty records")
			}
			continue
		} else {
			c.emptyRecords = 0
		}
		return rtyp, pt, nil
	}
}

// alertError turns a received alert into an error; close_notify is io.EOF.
func (c *Conn) alertError(data []byte) error {
	if len(data) != 2 {
		return errorf(AlertDecodeError, "malformed alert")
	}
	a := Alert(data[1])
	if a == AlertCloseNotify {
		return io.EOF
	}
	return &Error{Alert: a, Remote: true, Reason: remoteReason(a, c.isClient)}
}

// readHandshake returns the next complete handshake message (header
// included), reassembled from records as needed.
func (c *Conn) readHandshake() ([]byte, error) {
	for {
		if len(c.hsq) >= 4 {
			n := int(c.hsq[1])<<16 | int(c.hsq[2])<<8 | int(c.hsq[3])
			if n > maxHandshake {
				return nil, errorf(AlertDecodeError, "handshake message of %d bytes is over the limit", n)
			}
			if len(c.hsq) >= 4+n {
				msg := make([]byte, 4+n)
				copy(msg, c.hsq)
				c.hsq = c.hsq[4+n:]
				if len(c.hsq) == 0 {
					c.hsq = nil
				}
				return msg, nil
			}
		}
		typ, data, err := c.readRecord()
		if err != nil {
			return nil, err
		}
		switch typ {
		case recordHandshake:
			if len(c.hsq)+len(data) > maxHandshake+4 {
				return nil, errorf(AlertDecodeError, "handshake message over the limit")
			}
			c.hsq = append(c.hsq, data...)
		case recordAlert:
			if len(data) == 2 && data[0] == 1 && Alert(data[1]) != AlertCloseNotify && c.version != VersionTLS13 {
				continue // a TLS 1.2 warning
			}
			return nil, c.alertError(data)
		default:
			return nil, errorf(AlertUnexpectedMessage, "unexpected record of type %d during the handshake", typ)
		}
	}
}

// expectKeyChange checks that no handshake data straddles a key change
// (RFC 8446 §5.1).
func (c *Conn) expectKeyChange() error {
	if len(c.hsq) != 0 {
		return errorf(AlertUnexpectedMessage, "handshake message continues across a key change")
	}
	return nil
}

// Read reads application data.
func (c *Conn) Read(p []byte) (int, error) {
	if err := c.Handshake(); err != nil {
		return 0, err
	}
	if len(p) == 0 {
		return 0, nil
	}
	c.inMu.Lock()
	defer c.inMu.Unlock()
	for len(c.appData) == 0 {
		if c.readErr != nil {
			return 0, c.readErr
		}
		if err := c.readOne(); err != nil {
			var e *Error
			if errors.As(err, &e) && !e.Remote {
				c.outMu.Lock()
				c.sendAlertLocked(e.Alert)
				c.outMu.Unlock()
			}
			c.readErr = err
		}
	}
	n := copy(p, c.appData)
	c.appData = c.appData[n:]
	return n, nil
}

// readOne reads one record after the handshake.
func (c *Conn) readOne() error {
	typ, data, err := c.readRecord()
	if err != nil {
		return err
	}
	switch typ {
	case recordApplicationData:
		c.appData = data
		return nil
	case recordAlert:
		if len(data) == 2 && data[0] == 1 && Alert(data[1]) != AlertCloseNotify &&
			(c.version != VersionTLS13 || Alert(data[1]) == AlertUserCanceled) {
			return nil
		}
		return c.alertError(data)
	case recordHandshake:
		if len(c.hsq)+len(data) > maxHandshake+4 {
			return errorf(AlertDecodeError, "handshake message over the limit")
		}
		c.hsq = append(c.hsq, data...)
		for len(c.hsq) >= 4 {
			n := int(c.hsq[1])<<16 | int(c.hsq[2])<<8 | int(c.hsq[3])
			if n > maxHandshake {
				return errorf(AlertDecodeError, "handshake message of %d bytes is over the limit", n)
			}
			if len(c.hsq) < 4+n {
				return nil
			}
			msg := c.hsq[:4+n]
			c.hsq = c.hsq[4+n:]
			if err := c.postHandshake(msg); err != nil {
				return err
			}
		}
		c.hsq = nil
		return nil
	}
	return errorf(AlertUnexpectedMessage, "unexpected record of type %d", typ)
}

// postHandshake handles a handshake message after the handshake: KeyUpdate
// and NewSessionTicket in TLS 1.3, a renegotiation attempt in TLS 1.2.
func (c *Conn) postHandshake(msg []byte) error {
	if c.version != VersionTLS13 {
		// TLS 1.2: a HelloRequest (client) or ClientHello (server) asks
		// to renegotiate, which mamori never does (RFC 5746 §4.2).
		if (c.isClient && msg[0] == 0) || (!c.isClient && msg[0] == typeClientHello) {
			c.outMu.Lock()
			c.sendAlertLocked(AlertNoRenegotiation)
			c.outMu.Unlock()
			return nil
		}
		return errorf(AlertUnexpectedMessage, "unexpected handshake message %d after the handshake", msg[0])
	}
	switch msg[0] {
	case typeNewSessionTicket:
		if c.isClient {
			return nil // no resumption: tickets are dropped
		}
	case typeKeyUpdate:
		body, perr := parseBody(msg, typeKeyUpdate, "KeyUpdate")
		if perr != nil || len(body) != 1 || body[0] > 1 {
			return errorf(AlertDecodeError, "malformed KeyUpdate")
		}
		if len(c.hsq) != 0 {
			return errorf(AlertUnexpectedMessage, "handshake message continues across a key change")
		}
		next := nextSecret(c.suite, c.in.secret)
		if err := c.in.set13(c.suite, next); err != nil {
			return err
		}
		if body[0] == 1 {
			// update_requested: answer with our own update before any
			// further data (RFC 8446 §4.6.3).
			c.outMu.Lock()
			err := c.updateWriteKeyLocked(false)
			c.outMu.Unlock()
			if err != nil {
				return err
			}
		}
		return nil
	}
	return errorf(AlertUnexpectedMessage, "unexpected handshake message %d after the handshake", msg[0])
}

// updateWriteKeyLocked sends a KeyUpdate and moves to the next write key;
// outMu is held.
func (c *Conn) updateWriteKeyLocked(request bool) error {
	if c.writeErr != nil {
		return c.writeErr
	}
	var req byte
	if request {
		req = 1
	}
	if err := c.queue(recordHandshake, handshakeMsg(typeKeyUpdate, []byte{req})); err != nil {
		return err
	}
	if err := c.flush(); err != nil {
		c.writeErr = err
		return err
	}
	return c.out.set13(c.suite, nextSecret(c.suite, c.out.secret))
}

// KeyUpdate sends a TLS 1.3 KeyUpdate, asking the peer to update its
// keys too when requestPeer is set. Only for TLS 1.3 connections.
func (c *Conn) KeyUpdate(requestPeer bool) error {
	if err := c.Handshake(); err != nil {
		return err
	}
	if c.version != VersionTLS13 {
		return errors.New("tls-psk: KeyUpdate needs TLS 1.3")
	}
	c.outMu.Lock()
	defer c.outMu.Unlock()
	return c.updateWriteKeyLocked(requestPeer)
}

// Write writes application data.
func (c *Conn) Write(p []byte) (int, error) {
	if err := c.Handshake(); err != nil {
		return 0, err
	}
	c.outMu.Lock()
	defer c.outMu.Unlock()
	if c.writeErr != nil {
		return 0, c.writeErr
	}
	if c.closeSent {
		return 0, net.ErrClosed
	}
	written := 0
	for len(p) > 0 {
		if c.version == VersionTLS13 && c.out.seq >= keyUpdateAfter {
			if err := c.updateWriteKeyLocked(false); err != nil {
				return written, err
			}
		}
		// At most 64 KiB per flush, so a large Write does not build a
		// buffer of its own size.
		n := min(len(p), 4*maxPlaintext)
		if err := c.queue(recordApplicationData, p[:n]); err != nil {
			c.writeErr = err
			return written, err
		}
		if err := c.flush(); err != nil {
			c.writeErr = err
			return written, err
		}
		written += n
		p = p[n:]
	}
	return written, nil
}

// CloseWrite sends close_notify without closing the connection.
func (c *Conn) CloseWrite() error {
	c.outMu.Lock()
	defer c.outMu.Unlock()
	return c.closeNotifyLocked()
}

func (c *Conn) closeNotifyLocked() error {
	if c.closeSent || !c.hsDone.Load() || c.writeErr != nil {
		return nil
	}
	c.closeSent = true
	c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	c.sendAlertLocked(AlertCloseNotify)
	return nil
}

// Close sends close_notify when it can do so without waiting for a Write
// in progress, then closes the connection.
func (c *Conn) Close() error {
	if c.closed.Swap(true) {
		return net.ErrClosed
	}
	if c.outMu.TryLock() {
		c.closeNotifyLocked()
		c.outMu.Unlock()
	}
	return c.conn.Close()
}

// LocalAddr returns the local address.
func (c *Conn) LocalAddr() net.Addr { return c.conn.LocalAddr() }

// RemoteAddr returns the peer's address.
func (c *Conn) RemoteAddr() net.Addr { return c.conn.RemoteAddr() }

// SetDeadline sets the read and write deadlines of the connection.
func (c *Conn) SetDeadline(t time.Time) error { return c.conn.SetDeadline(t) }

// SetReadDeadline sets the read deadline.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.conn.SetReadDeadline(t) }

// SetWriteDeadline sets the write deadline.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.conn.SetWriteDeadline(t) }

// NetConn returns the underlying connection.
func (c *Conn) NetConn() net.Conn { return c.conn }

// Identity returns the PSK identity of a completed handshake.
func (c *Conn) Identity() string {
	if !c.hsDone.Load() {
		return ""
	}
	return c.identity
}

// State describes a completed handshake.
type State struct {
	Version            uint16
	CipherSuite        uint16
	Identity           string
	IdentityHint       string // TLS 1.2: the hint the server sent
	NegotiatedProtocol string
	ServerName         string
}

// State returns the state of a completed handshake (zero before).
func (c *Conn) State() State {
	if !c.hsDone.Load() {
		return State{}
	}
	st := State{Version: c.version, Identity: c.identity, IdentityHint: c.hint,
		NegotiatedProtocol: c.alpn, ServerName: c.serverName}
	if c.suite != nil {
		st.CipherSuite = c.suite.id
	}
	return st
}

// ConnectionState returns the handshake's state in crypto/tls's form, so
// that code that logs TLS versions and suites of *tls.Conn handles a PSK
// connection the same way. No certificates are involved.
func (c *Conn) ConnectionState() tls.ConnectionState {
	st := c.State()
	return tls.ConnectionState{Version: st.Version, HandshakeComplete: c.hsDone.Load(),
		CipherSuite: st.CipherSuite, NegotiatedProtocol: st.NegotiatedProtocol, ServerName: st.ServerName}
}

// CipherName is the OpenSSL name of the negotiated suite, for logs.
func (c *Conn) CipherName() string { return CipherSuiteName(c.State().CipherSuite) }

// ServerName is the SNI of the ClientHello, once read; unlike State it is
// also there after a failed handshake, for the failure's log line. Not
// safe to call during the handshake.
func (c *Conn) ServerName() string { return c.serverName }
