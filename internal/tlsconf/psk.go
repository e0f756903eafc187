package tlsconf

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mamori-mqtt/mamori/internal/auth"
	"github.com/mamori-mqtt/mamori/internal/config"
	"github.com/mamori-mqtt/mamori/internal/tlspsk"
)

// TLS-PSK handshake failure reasons, in addition to the shared ones
// (ReasonVersion, ReasonNoCipher, ReasonNotTLS, ReasonTimeout,
// ReasonClosed, ReasonOther).
const (
	ReasonUnknownIdentity = "unknown PSK identity" // not in psk_file
	ReasonWrongKey        = "wrong PSK key"        // binder or Finished did not verify
)

var pskReasons = []string{ReasonUnknownIdentity, ReasonWrongKey, ReasonVersion, ReasonNoCipher,
	ReasonNotTLS, ReasonTimeout, ReasonClosed, ReasonBusy, ReasonOther}

// PSKOptions configure a TLS-PSK listener (one with psk_hint).
type PSKOptions struct {
	// Listener is the listener served. Required; its TLS options must
	// have psk_hint and no certificates.
	Listener *config.Listener
	// Keys is the loaded psk_file; SetKeys replaces it on reload.
	Keys *auth.PSKFile
	// Log receives handshake failures; nil discards.
	Log *slog.Logger
	// HandshakeTimeout bounds each handshake (DefaultHandshakeTimeout
	// when zero).
	HandshakeTimeout time.Duration
	// KeyLogWriter, when set, receives the secrets of every connection in
	// the NSS key log format: for debugging with Wireshark only.
	KeyLogWriter io.Writer
}

// PSKServer serves a listener with TLS-PSK (package tlspsk): psk_hint,
// psk_file, tls_version, ciphers and ciphers_tls1.3 apply, and
// use_identity_as_username gives the PSK identity as the user name.
type PSKServer struct {
	name    string
	log     *slog.Logger
	timeout time.Duration
	stats   *Stats
	failLog failLimiter // rations handshake-failure lines per address

	mu   sync.RWMutex
	keys *auth.PSKFile
	cfg  atomic.Pointer[tlspsk.Config]

	identity bool
	keyLog   io.Writer
	ctx      context.Context
	cancel   context.CancelFunc
}

// NewPSK checks the listener's options and builds its PSK server.
func NewPSK(o PSKOptions) (*PSKServer, error) {
	l := o.Listener
	if len(l.TLS.Certs) > 0 {
		return nil, fmt.Errorf("%s: psk_hint: %s has both certificates and psk_hint; one listener can use only one of them (as in Mosquitto): use two listeners", l.Pos, l)
	}
	if o.Keys == nil {
		return nil, fmt.Errorf("%s: psk_hint: %s has no psk_file, so no client could connect: add psk_file with identity:hexkey lines", l.Pos, l)
	}
	s := &PSKServer{name: l.String(), log: o.Log, timeout: o.HandshakeTimeout, stats: newPSKStats(),
		keys: o.Keys, identity: l.TLS.UseIdentityAsUsername, keyLog: o.KeyLogWriter}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.timeout <= 0 {
		s.timeout = DefaultHandshakeTimeout
	}
	if err := s.Apply(l); err != nil {
		return nil, err
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

func newPSKStats() *Stats {
	s := &Stats{Failures: make(map[string]*atomic.Uint64, len(pskReasons))}
	for _, r := range pskReasons {
		s.Failures[r] = new(atomic.Uint64)
	}
	return s
}

// pskConfig maps the listener's TLS options to a tlspsk.Config.
func (s *PSKServer) pskConfig(l *config.Listener) (*tlspsk.Config, error) {
	t := &l.TLS
	cfg := &tlspsk.Config{Hint: t.PSKHint, GetKey: s.key, NextProtos: DefaultNextProtos, KeyLogWriter: s.keyLog}
	switch t.Version.Text {
	case "", "tlsv1.2":
	case "tlsv1.3":
		cfg.MinVersion = tlspsk.VersionTLS13
	default:
		return nil, fmt.Errorf("%s: tls_version: %s is not available with TLS-PSK (TLS 1.2 and 1.3 are)", t.Version.Pos, t.Version.Text)
	}
	suites := slices.Clone(tlspsk.DefaultCipherSuites)
	if t.Ciphers13.IsSet() {
		ids, err := tlspsk.ParseCipherList(t.Ciphers13.Text)
		if err != nil {
			return nil, fmt.Errorf("%s: ciphers_tls1.3: %w", t.Ciphers13.Pos, err)
		}
		suites = slices.DeleteFunc(suites, tlspsk.IsTLS13Suite)
		for _, id := range ids {
			if !tlspsk.IsTLS13Suite(id) {
				return nil, fmt.Errorf("%s: ciphers_tls1.3: %s is not a TLS 1.3 suite", t.Ciphers13.Pos, tlspsk.CipherSuiteName(id))
			}
		}
		suites = append(ids, suites...)
	}
	if t.Ciphers.IsSet() {
		ids, err := tlspsk.ParseCipherList(t.Ciphers.Text)
		if err != nil {
			return nil, fmt.Errorf("%s: ciphers: %w", t.Ciphers.Pos, err)
		}
		suites = slices.DeleteFunc(suites, func(id uint16) bool { return !tlspsk.IsTLS13Suite(id) })
		for _, id := range ids {
			if !tlspsk.IsTLS13Suite(id) {
				suites = append(suites, id)
			}
		}
	}
	cfg.CipherSuites = suites
	cfg.GetKey = s.key
	if err := cfg.Check(true); err != nil {
		return nil, fmt.Errorf("%s: %s: %w", l.Pos, l, err)
	}
	return cfg, nil
}

// Apply takes the listener's TLS options (after a configuration reload).
func (s *PSKServer) Apply(l *config.Listener) error {
	cfg, err := s.pskConfig(l)
	if err != nil {
		return err
	}
	s.cfg.Store(cfg)
	return nil
}

// key returns a copy of identity's key: the handshake zeroes its copy,
// and SetKeys may zero the file's.
func (s *PSKServer) key(identity string) ([]byte, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	k, ok := s.keys.Key(identity)
	if !ok {
		return nil, false
	}
	return slices.Clone(k), true
}

// SetKeys replaces the keys (psk_file re-read on SIGHUP) and zeroes the
// previous ones, so old keys do not linger in memory.
func (s *PSKServer) SetKeys(f *auth.PSKFile) {
	if f == nil {
		return
	}
	s.mu.Lock()
	old := s.keys
	s.keys = f
	s.mu.Unlock()
	if old != f {
		old.Zero()
	}
}

// Identity returns the broker's user-name source for
// use_identity_as_username: the PSK identity of the connection. Nil when
// the option is off.
func (s *PSKServer) Identity() func(net.Conn) (string, bool, error) {
	if !s.identity {
		return nil
	}
	return func(nc net.Conn) (string, bool, error) {
		if pc, ok := nc.(*tlspsk.Conn); ok && pc.Identity() != "" {
			return pc.Identity(), true, nil
		}
		return "", false, errors.New("the connection has no PSK identity")
	}
}

// Stats returns the listener's handshake counters.
func (s *PSKServer) Stats() *Stats { return s.stats }

// Close aborts the handshakes in progress.
func (s *PSKServer) Close() { s.cancel() }

// classifyPSK turns a handshake error into a reason and words.
func classifyPSK(err error) (reason, why string) {
	var e *tlspsk.Error
	if errors.As(err, &e) {
		switch {
		case e.Alert == tlspsk.AlertUnknownPSKIdentity && !e.Remote:
			return ReasonUnknownIdentity, e.Reason
		case (e.Alert == tlspsk.AlertDecryptError || e.Alert == tlspsk.AlertBadRecordMAC) && !e.Remote:
			return ReasonWrongKey, e.Reason
		case e.Alert == tlspsk.AlertProtocolVersion:
			return ReasonVersion, e.Reason + "; see tls_version"
		case e.Alert == tlspsk.AlertHandshakeFailure && !e.Remote:
			return ReasonNoCipher, e.Reason
		case e.Alert == tlspsk.AlertUnexpectedMessage && !e.Remote && e.Reason != "" && strings.Contains(e.Reason, "not a TLS record") || strings.Contains(e.Reason, "plain MQTT"):
			return ReasonNotTLS, e.Reason
		}
		return ReasonOther, e.Error()
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return ReasonTimeout, "no complete handshake within the handshake timeout"
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, context.Canceled):
		return ReasonClosed, "the client closed the connection during the handshake"
	}
	return ReasonOther, err.Error()
}

// NewListener wraps inner so that Accept returns *tlspsk.Conn connections
// whose handshake succeeded; each handshake runs in its own goroutine
// under the timeout, bounded per client address as on certificate
// listeners, and a failure is logged (rationed per address) with the
// client's address and the reason, counted, and never reaches the broker.
func (s *PSKServer) NewListener(inner net.Listener) net.Listener {
	return newHandshakeListener(s.ctx, inner, s, maxPendingHandshakes, maxPendingPerAddr)
}

// handshake implements handshaker.
func (s *PSKServer) handshake(ctx context.Context, c net.Conn) (net.Conn, error) {
	pc := tlspsk.Server(c, s.cfg.Load())
	return pc, pc.HandshakeContext(ctx)
}

// failed implements handshaker.
func (s *PSKServer) failed(c net.Conn, err error) {
	reason, why := classifyPSK(err)
	s.stats.Failures[reason].Add(1)
	if reason == ReasonClosed && s.ctx.Err() != nil {
		return // the listener is closing
	}
	s.failLog.log(s.log, s.name, "TLS-PSK", c.RemoteAddr(), c.(*tlspsk.Conn).ServerName(), reason, why)
}

// common implements handshaker.
func (s *PSKServer) common() (string, *slog.Logger, *Stats, time.Duration) {
	return s.name, s.log, s.stats, s.timeout
}
