package tlsconf

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Handshake failure reasons, the keys of Stats.Failures.
const (
	ReasonUnknownCA     = "unknown CA"            // the client certificate's chain does not lead to cafile/capath
	ReasonRevoked       = "revoked"               // the client certificate is in a CRL
	ReasonExpired       = "expired"               // the client certificate is expired or not yet valid
	ReasonNoClientCert  = "no client certificate" // require_certificate, and the client sent none
	ReasonBadClientCert = "bad client certificate"
	ReasonVersion       = "protocol version"   // no TLS version in common
	ReasonNoCipher      = "no shared cipher"   // no cipher suite (or signature algorithm) in common
	ReasonServerCert    = "server certificate" // the client refused the server's certificate
	ReasonNotTLS        = "not TLS"            // the client spoke something else, e.g. plain MQTT
	ReasonTimeout       = "timeout"            // no complete handshake within the timeout
	ReasonClosed        = "closed"             // the client went away during the handshake
	ReasonBusy          = "too many pending"   // closed to make room: its address had too many handshakes in progress
	ReasonOther         = "other"
)

var reasons = []string{ReasonUnknownCA, ReasonRevoked, ReasonExpired, ReasonNoClientCert, ReasonBadClientCert,
	ReasonVersion, ReasonNoCipher, ReasonServerCert, ReasonNotTLS, ReasonTimeout, ReasonClosed, ReasonBusy, ReasonOther}

// Stats counts a listener's handshakes. Metrics read it; the map's keys
// are fixed at creation, so reading it needs no lock.
type Stats struct {
	// Handshakes counts completed handshakes.
	Handshakes atomic.Uint64
	// Failures counts failed handshakes by reason (the Reason constants).
	Failures map[string]*atomic.Uint64
}

func newStats() *Stats {
	s := &Stats{Failures: make(map[string]*atomic.Uint64, len(reasons))}
	for _, r := range reasons {
		s.Failures[r] = new(atomic.Uint64)
	}
	return s
}

// FailureCounts returns a copy of the failure counters.
func (s *Stats) FailureCounts() map[string]uint64 {
	out := make(map[string]uint64, len(s.Failures))
	for r, c := range s.Failures {
		out[r] = c.Load()
	}
	return out
}

// classify turns a server-side handshake error into a reason and words
// for a person.
func classify(err error) (reason, why string) {
	var re *RevokedError
	if errors.As(err, &re) {
		return ReasonRevoked, re.Error()
	}
	var cve *tls.CertificateVerificationError
	if errors.As(err, &cve) {
		who := "the client certificate"
		if len(cve.UnverifiedCertificates) > 0 {
			who += " " + subject(cve.UnverifiedCertificates[0])
		}
		var ua x509.UnknownAuthorityError
		var ci x509.CertificateInvalidError
		switch {
		case errors.As(cve.Err, &ua):
			return ReasonUnknownCA, who + " is not signed by any CA in cafile/capath"
		case errors.As(cve.Err, &ci) && ci.Reason == x509.Expired:
			return ReasonExpired, who + " is expired or not yet valid: " + ci.Detail
		case errors.As(cve.Err, &ci) && ci.Reason == x509.IncompatibleUsage:
			return ReasonBadClientCert, who + " is not for client authentication (extendedKeyUsage lacks clientAuth)"
		}
		return ReasonBadClientCert, who + ": " + cve.Err.Error()
	}
	var rh tls.RecordHeaderError
	if errors.As(err, &rh) {
		if looksLikeMQTT(rh.RecordHeader[:]) {
			return ReasonNotTLS, "the client sent plain MQTT to the TLS port (it should use TLS, e.g. --cafile, or the plain port)"
		}
		return ReasonNotTLS, "the client did not speak TLS"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
		return ReasonTimeout, "no complete handshake in time"
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "client didn't provide a certificate"):
		return ReasonNoClientCert, "no client certificate, and require_certificate is true (the client must pass --cert and --key)"
	case strings.Contains(msg, "unsupported versions") || strings.Contains(msg, "protocol version"):
		return ReasonVersion, "the client offers no TLS version this listener accepts (" + msg + "); see tls_version"
	case strings.Contains(msg, "no cipher suite supported") || strings.Contains(msg, "no ECDHE curve") ||
		strings.Contains(msg, "no mutually supported") || strings.Contains(msg, "signature algorithm"):
		return ReasonNoCipher, "no cipher suite in common with the client (" + msg + "); see ciphers"
	case strings.Contains(msg, "remote error"):
		// The client sent an alert: it refused our certificate (unknown CA,
		// wrong name) or gave up for its own reasons.
		return ReasonServerCert, "the client refused the handshake (" + strings.TrimPrefix(msg, "remote error: ") +
			"): usually it does not trust the server's certificate or it was issued for another name"
	case strings.Contains(msg, "bad record MAC"):
		// OpenSSL clients that refuse the server's certificate in TLS 1.3
		// send their alert in a record this side cannot decrypt yet.
		return ReasonServerCert, "the client ended the handshake with an alert that could not be read: most likely it does not trust the server's certificate or it was issued for another name"
	case errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, context.Canceled):
		return ReasonClosed, "the client closed the connection during the handshake (it may have refused the server's certificate)"
	}
	return ReasonOther, msg
}

// looksLikeMQTT reports whether the first bytes are an MQTT CONNECT.
func looksLikeMQTT(b []byte) bool { return len(b) > 0 && b[0] == 0x10 }

// handshakeFailed logs and counts one failed handshake.
func (s *Server) handshakeFailed(tc *tls.Conn, err error) {
	reason, why := classify(err)
	s.stats.Failures[reason].Add(1)
	if reason == ReasonClosed && s.ctx.Err() != nil {
		return // the listener is closing
	}
	s.failLog.log(s.log, s.name, "TLS", tc.RemoteAddr(), tc.ConnectionState().ServerName, reason, why)
}

// failLogPerMinute is how many failed handshakes from one address are
// logged per minute; each takes a line, so a client that connects in a
// loop and sends garbage would otherwise fill the disk.
const failLogPerMinute = 10

// failLogMaxAddrs bounds the addresses remembered per minute; past it,
// failures from addresses not yet seen that minute are only counted.
const failLogMaxAddrs = 4096

type logVerdict int

const (
	logIt    logVerdict = iota
	logLast             // the line that says the rest is not logged
	logQuiet            // counted only
)

// log writes the line for one failed handshake of kind ("TLS",
// "TLS-PSK") from addr, unless addr has had its share of lines this
// minute.
func (f *failLimiter) log(log *slog.Logger, name, kind string, addr net.Addr, serverName, reason, why string) {
	switch f.allow(addrKey(addr), time.Now()) {
	case logQuiet:
		return
	case logLast:
		log.Warn(fmt.Sprintf("%s: %s handshakes from %s keep failing: more than %d in a minute; the rest of this minute's failures from there are counted but not logged",
			name, kind, addrString(addrKey(addr)), failLogPerMinute))
		return
	}
	sni := "no SNI"
	if serverName != "" {
		sni = fmt.Sprintf("SNI %q", serverName)
	}
	log.Warn(fmt.Sprintf("%s: %s handshake failed: client %s, %s: %s: %s", name, kind, addr, sni, reason, why))
}

// failLimiter rations handshake-failure log lines per address and minute.
type failLimiter struct {
	mu     sync.Mutex
	window time.Time
	n      map[netip.Prefix]int
}

func (f *failLimiter) allow(key netip.Prefix, now time.Time) logVerdict {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n == nil || now.Sub(f.window) >= time.Minute || now.Before(f.window) {
		f.window, f.n = now, map[netip.Prefix]int{}
	}
	c, seen := f.n[key]
	if !seen && len(f.n) >= failLogMaxAddrs {
		return logQuiet
	}
	f.n[key] = c + 1
	switch {
	case c < failLogPerMinute:
		return logIt
	case c == failLogPerMinute:
		return logLast
	}
	return logQuiet
}

// Limits on handshakes in progress. A handshake holds a goroutine and a
// connection for up to Options.HandshakeTimeout, so a client that opens
// connections and stays silent must not be able to hold them all: past
// maxPendingPerAddr pending handshakes from one address (an IPv4 address,
// or an IPv6 /64, which one host usually has whole), a new connection from
// that address replaces its oldest pending one; past maxPendingHandshakes on
// the listener, it replaces the listener's oldest. Accepting never stops,
// so a new client always gets its handshake started, and a flood costs its
// own address first.
const (
	maxPendingHandshakes = 1024
	maxPendingPerAddr    = 16
)

// NewListener wraps a listener so that Accept returns connections, as
// *tls.Conn, whose handshake has completed: each runs in its own goroutine
// under Options.HandshakeTimeout, and a failure is logged once (client
// address, SNI, reason in words), counted, and never reaches the broker.
// Closing the returned listener closes inner and aborts the handshakes in
// progress.
func (s *Server) NewListener(inner net.Listener) net.Listener {
	return s.newListener(inner, maxPendingHandshakes, maxPendingPerAddr)
}

func (s *Server) newListener(inner net.Listener, maxTotal, maxPerAddr int) net.Listener {
	return newHandshakeListener(s.ctx, inner, s, maxTotal, maxPerAddr)
}

// handshake implements handshaker.
func (s *Server) handshake(ctx context.Context, c net.Conn) (net.Conn, error) {
	tc := tls.Server(c, s.base)
	return tc, tc.HandshakeContext(ctx)
}

// failed implements handshaker.
func (s *Server) failed(c net.Conn, err error) { s.handshakeFailed(c.(*tls.Conn), err) }

// common implements handshaker.
func (s *Server) common() (string, *slog.Logger, *Stats, time.Duration) {
	return s.name, s.log, s.stats, s.o.HandshakeTimeout
}

// handshaker is one kind of TLS server (certificates, or TLS-PSK) as the
// handshaking listener drives it.
type handshaker interface {
	// handshake runs the server side of the handshake on c and returns
	// the connection that wraps it, on failure too (to be closed).
	handshake(ctx context.Context, c net.Conn) (net.Conn, error)
	// failed logs and counts a failed handshake.
	failed(c net.Conn, err error)
	// common returns the listener's name, log, counters and handshake
	// timeout.
	common() (name string, log *slog.Logger, stats *Stats, timeout time.Duration)
}

func newHandshakeListener(parent context.Context, inner net.Listener, hs handshaker, maxTotal, maxPerAddr int) net.Listener {
	ctx, cancel := context.WithCancel(parent)
	l := &listener{Listener: inner, hs: hs, ctx: ctx, cancel: cancel,
		ready: make(chan accepted), pend: newPending(maxTotal, maxPerAddr)}
	l.name, l.log, l.stats, l.timeout = hs.common()
	l.wg.Add(1)
	go l.acceptLoop()
	return l
}

type accepted struct {
	c   net.Conn
	err error
}

// listener runs the handshakes of the connections inner accepts, bounded
// per address (see maxPendingPerAddr), and hands over those that succeed.
type listener struct {
	net.Listener
	hs      handshaker
	name    string
	log     *slog.Logger
	stats   *Stats
	timeout time.Duration
	ctx     context.Context
	cancel  context.CancelFunc
	ready   chan accepted
	pend    *pending
	wg      sync.WaitGroup
	once    sync.Once
}

// Accept returns the next connection whose handshake succeeded, or the
// inner listener's error (the broker backs off on temporary ones).
func (l *listener) Accept() (net.Conn, error) {
	select {
	case a := <-l.ready:
		return a.c, a.err
	case <-l.ctx.Done():
		return nil, net.ErrClosed
	}
}

// Close stops accepting, aborts pending handshakes and waits for them.
func (l *listener) Close() error {
	var err error
	l.once.Do(func() {
		l.cancel()
		err = l.Listener.Close()
		l.wg.Wait()
	})
	return err
}

func (l *listener) acceptLoop() {
	defer l.wg.Done()
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if l.ctx.Err() != nil {
				return
			}
			// Hand the error over and wait until it is taken, so that the
			// caller's back-off also paces this loop.
			select {
			case l.ready <- accepted{err: err}:
			case <-l.ctx.Done():
				return
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		ctx, cancel := context.WithTimeout(l.ctx, l.timeout)
		p, evicted := l.pend.add(c.RemoteAddr(), cancel)
		for _, e := range evicted {
			l.stats.Failures[ReasonBusy].Add(1)
			if e.first {
				l.log.Warn(fmt.Sprintf("%s: too many TLS handshakes in progress from %s (more than %d): the oldest ones are closed to make room; this address may be flooding the listener",
					l.name, addrString(e.key), e.limit))
			}
		}
		l.wg.Add(1)
		go l.handshake(ctx, c, p)
	}
}

func (l *listener) handshake(ctx context.Context, c net.Conn, p *pendingConn) {
	defer l.wg.Done()
	tc, err := l.hs.handshake(ctx, c)
	evicted := l.pend.done(p)
	p.cancel()
	if err != nil {
		if !evicted {
			l.hs.failed(tc, err)
		}
		tc.Close()
		return
	}
	l.stats.Handshakes.Add(1)
	select {
	case l.ready <- accepted{c: tc}:
	case <-l.ctx.Done():
		tc.Close()
	}
}

var (
	_ handshaker = (*Server)(nil)
	_ handshaker = (*PSKServer)(nil)
)
