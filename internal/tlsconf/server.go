package tlsconf

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mamori-mqtt/mamori/internal/config"
	"github.com/mamori-mqtt/mamori/internal/tlsprobe"
)

// DefaultNextProtos is the ALPN protocol offered on MQTT listeners
// ("mqtt", as registered for MQTT over TLS on port 8883).
var DefaultNextProtos = []string{"mqtt"}

// defaultSuites are the TLS 1.2 suites offered without `ciphers`: ECDHE
// key exchange (forward secrecy) with an AEAD cipher only. TLS 1.3 suites
// are all AEAD and forward-secret, and Go does not let them be chosen.
var defaultSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// legacySuites are added to the defaults when tls_version tlsv1.1 is set:
// TLS 1.1 has no AEAD suite, so without them the option would admit no
// TLS 1.1 client at all. They still use ECDHE.
var legacySuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
	tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
	tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
}

// Defaults for Options fields left zero.
const (
	DefaultHandshakeTimeout   = 10 * time.Second
	DefaultDebounce           = 500 * time.Millisecond
	DefaultCRLRefreshInterval = time.Hour
)

// Options configure a Server.
type Options struct {
	// Listener is the listener whose TLS options are served. Required.
	Listener *config.Listener
	// ExpiryWarningDays is cert_expiry_warning_days: certificates and CAs
	// that expire within this many days are warned about at start and
	// daily. Zero or less disables the warnings (expired ones are still
	// reported).
	ExpiryWarningDays int
	// Log receives everything the TLS layer reports; nil discards.
	Log *slog.Logger
	// NextProtos are the ALPN protocols offered; nil means
	// DefaultNextProtos. A WebSocket listener passes "http/1.1". A client
	// that offers none of them is served without ALPN, as Mosquitto does,
	// rather than refused.
	NextProtos []string
	// Disconnect closes the open connections of this listener for which
	// match returns true, and returns how many. It is called when the CRLs
	// change; match logs each connection it selects. The broker's
	// DisconnectWhere fits; nil disables closing revoked connections.
	Disconnect func(match func(nc net.Conn, clientID string) bool) int
	// HTTPClient fetches crl_url and OCSP responses; nil uses a client with
	// a 30-second timeout.
	HTTPClient *http.Client
	// CRLCacheDir, when set, keeps the last verified CRL of each crl_url,
	// so that after a restart while the URL does not answer, revocation
	// by it is still in force (from the saved copy, verified again)
	// instead of off until the first fetch.
	CRLCacheDir string
	// HandshakeTimeout bounds each handshake in NewListener.
	HandshakeTimeout time.Duration
	// Debounce is how long file events must be quiet before a reload, so
	// that a certificate and its key written one after the other are
	// loaded together.
	Debounce time.Duration
	// Now replaces the clock in tests.
	Now func() time.Time
}

// Server is a listener's TLS layer: the tls.Config to serve, the files
// behind it, and their reloading. Its methods are safe for concurrent use.
type Server struct {
	o     Options
	log   *slog.Logger
	name  string // "listener 8883", for messages
	base  *tls.Config
	stats *Stats
	http  *http.Client

	state atomic.Pointer[state]

	// mu serialises loading (Reload, Apply, CRL fetches) and guards bad.
	mu sync.Mutex
	// bad remembers, per item, the content that last failed to load, so a
	// broken file is reported once and not on every event.
	bad map[string]badLoad

	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	started bool
	resync  chan struct{} // the watched files or URLs changed (Apply)

	staples    staples       // OCSP responses (ocsp_stapling)
	resyncOCSP chan struct{} // certificates changed: fetch their staples
	warned     sync.Map      // messages already logged once
	failLog    failLimiter   // rations handshake-failure lines per address
	// watchReady is closed once the directories are watched (or watching
	// failed), so tests know when a file change will be seen.
	watchReady chan struct{}
}

// badLoad is an item's content that failed to load, and why.
type badLoad struct {
	sum digest
	err string
}

// spec is what a listener's options ask for, checked.
type spec struct {
	l          *config.Listener
	minVersion uint16
	suites     []uint16
	clientAuth tls.ClientAuthType
	identity   bool // use_identity_as_username or use_subject_as_username
	useSubject bool // the full subject, not the CN
	crlRefresh time.Duration
}

// state is one immutable snapshot of the loaded material. Handshakes read
// the current one; loads build a new one and swap it in.
type state struct {
	spec    *spec
	certs   []*certItem
	cas     []*caItem
	pool    *x509.CertPool // nil without cafile/capath
	crls    []*crlItem     // crlfile items
	urlCRLs map[string]*crlItem
	conf    *tls.Config // served to clients that offer one of our ALPN protocols, or none
	noALPN  *tls.Config // served to clients that offer only other protocols
}

// allCRLs lists file and URL CRLs.
func (st *state) allCRLs() []*crlItem {
	out := slices.Clone(st.crls)
	for _, v := range st.urlCRLs {
		if v != nil {
			out = append(out, v)
		}
	}
	return out
}

// New loads the listener's certificates, keys, CAs and CRLs and returns a
// Server ready to serve; nothing runs in the background until Start. Every
// problem is reported, each naming the configuration file and line.
func New(o Options) (*Server, error) {
	if o.Listener == nil {
		return nil, errors.New("tlsconf: no listener")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.NextProtos == nil {
		o.NextProtos = DefaultNextProtos
	}
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if o.Debounce <= 0 {
		o.Debounce = DefaultDebounce
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Server{o: o, log: o.Log, name: o.Listener.String(), stats: newStats(),
		http: o.HTTPClient, bad: map[string]badLoad{}, resync: make(chan struct{}, 1),
		resyncOCSP: make(chan struct{}, 1),
		watchReady: make(chan struct{})}
	if s.http == nil {
		s.http = &http.Client{Timeout: 30 * time.Second}
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	sp, err := newSpec(o.Listener)
	if err != nil {
		return nil, err
	}
	st, errs := s.load(sp, nil, true)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	s.loadCachedCRLs(st)
	s.state.Store(st)
	s.base = &tls.Config{
		MinVersion:         sp.minVersion,
		GetConfigForClient: s.configForClient,
		// Set so that wrappers that check for a certificate source (such as
		// http.Server.ServeTLS) find one; GetConfigForClient's answer is
		// what handshakes use.
		GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
			return s.state.Load().getCertificate(h)
		},
	}
	for _, c := range st.certs {
		s.log.Info(fmt.Sprintf("%s: serving %s from %s; %s", s.name, describeServerCert(c.leaf), c.ck.CertFile.Path,
			describeChain(c, st.cas)))
	}
	return s, nil
}

// newSpec checks the listener's options that do not involve files.
func newSpec(l *config.Listener) (*spec, error) {
	t := &l.TLS
	if t.PSKHint != "" {
		return nil, fmt.Errorf("%s: psk_hint: %s cannot serve TLS-PSK: Go's crypto/tls has no pre-shared-key cipher suites, and mamori does not use a hand-made TLS stack; give the listener a certificate instead (certfile/keyfile, with require_certificate for client certificates)", l.Pos, l)
	}
	if len(t.Certs) == 0 {
		return nil, fmt.Errorf("%s: %s has TLS options but no certfile", l.Pos, l)
	}
	sp := &spec{l: l, minVersion: t.MinVersion(), suites: slices.Clone(defaultSuites),
		crlRefresh: t.CRLRefreshInterval}
	if sp.crlRefresh <= 0 {
		sp.crlRefresh = DefaultCRLRefreshInterval
	}
	if sp.minVersion < tls.VersionTLS12 {
		sp.suites = append(sp.suites, legacySuites...)
	}
	if t.Ciphers.IsSet() {
		ids, err := tlsprobe.ParseCiphers(t.Ciphers.Text)
		if err != nil {
			return nil, fmt.Errorf("%s: ciphers: %s", t.Ciphers.Pos, strings.TrimPrefix(err.Error(), "--ciphers: "))
		}
		if ids != nil {
			sp.suites = ids
		}
	}
	if t.RequireCertificate {
		if !t.CAFile.IsSet() && !t.CAPath.IsSet() {
			return nil, fmt.Errorf("%s: require_certificate: %s has neither cafile nor capath to verify client certificates against", l.Pos, l)
		}
		sp.clientAuth = tls.RequireAndVerifyClientCert
	}
	// Without require_certificate no client certificate is asked for, as
	// in Mosquitto (SSL_VERIFY_NONE): a device that sends one from some
	// other CA keeps working, as it did there.
	sp.identity = t.UseIdentityAsUsername || t.UseSubjectAsUsername
	sp.useSubject = t.UseSubjectAsUsername && !t.UseIdentityAsUsername
	return sp, nil
}

// Config returns the tls.Config to serve the listener with, for
// tls.NewListener, tls.Server or an http.Server. Each handshake takes the
// certificates, CAs and CRLs current at that moment. Prefer NewListener,
// which also logs and counts handshake failures.
func (s *Server) Config() *tls.Config { return s.base }

// Stats returns the listener's handshake counters.
func (s *Server) Stats() *Stats { return s.stats }

// configForClient serves the current snapshot.
func (s *Server) configForClient(h *tls.ClientHelloInfo) (*tls.Config, error) {
	st := s.state.Load()
	if len(h.SupportedProtos) > 0 {
		for _, p := range h.SupportedProtos {
			if slices.Contains(st.conf.NextProtos, p) {
				return st.conf, nil
			}
		}
		return st.noALPN, nil
	}
	return st.conf, nil
}

// getCertificate picks the certificate for the client's SNI: among those
// valid for the name, the first whose key the client can use; with no
// match, the first pair.
func (st *state) getCertificate(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if len(st.certs) == 0 {
		return nil, errors.New("no server certificate loaded")
	}
	if h.ServerName != "" {
		// SupportsCertificate would also check the name, without the CN
		// fallback that MatchName applies; the name is checked here.
		anon := *h
		anon.ServerName = ""
		var match *tls.Certificate
		for _, c := range st.certs {
			if ok, _ := tlsprobe.MatchName(c.leaf, h.ServerName); !ok {
				continue
			}
			if anon.SupportsCertificate(c.cert) == nil {
				return c.cert, nil
			}
			if match == nil {
				match = c.cert
			}
		}
		if match != nil {
			return match, nil
		}
	}
	return st.certs[0].cert, nil
}

// certsChanged asks the OCSP loop to fetch staples for new certificates,
// when the certificates of prev and next differ: a reload that changed
// nothing, or only CRLs, asks the responders nothing.
func (s *Server) certsChanged(prev, next *state) {
	if prev != nil && slices.Equal(prev.certs, next.certs) {
		return
	}
	select {
	case s.resyncOCSP <- struct{}{}:
	default:
	}
}

// warnOnce logs a warning the first time key is seen.
func (s *Server) warnOnce(key, msg string) {
	if _, seen := s.warned.LoadOrStore(key, true); !seen {
		s.log.Warn(msg)
	}
}

// buildConfigs makes the snapshot's tls.Configs.
func (s *Server) buildConfigs(st *state) {
	sp := st.spec
	c := &tls.Config{
		MinVersion:       sp.minVersion,
		CipherSuites:     sp.suites,
		NextProtos:       s.o.NextProtos,
		ClientAuth:       sp.clientAuth,
		GetCertificate:   st.getCertificate,
		VerifyConnection: s.verifyConnection,
	}
	if sp.clientAuth != tls.NoClientCert {
		c.ClientCAs = st.pool
	}
	if sp.l.TLS.OCSPStapling {
		c.GetCertificate = func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
			cert, err := st.getCertificate(h)
			if err != nil {
				return nil, err
			}
			for _, it := range st.certs {
				if it.cert == cert {
					return s.withStaple(cert, it.leaf), nil
				}
			}
			return cert, nil
		}
	}
	st.conf = c
	n := c.Clone()
	n.NextProtos = nil
	st.noALPN = n
}

// itemKey identifies an item across loads: same option, same files.
func certKey(ck config.CertKey) string {
	return "cert\x00" + ck.CertFile.Path + "\x00" + ck.KeyFile.Path + "\x00" + ck.Password
}

// load builds a snapshot for sp. Items whose files did not change are
// taken from prev. With strict (start-up, Apply) every failure is an
// error; otherwise (a reload of the same options) an item that fails to
// load keeps its previous version, and the failure is logged once.
func (s *Server) load(sp *spec, prev *state, strict bool) (*state, []error) {
	st := &state{spec: sp, urlCRLs: map[string]*crlItem{}}
	var errs []error
	now := s.o.Now()
	fail := func(key string, sum digest, err error, old bool) {
		if strict || !old {
			errs = append(errs, err)
			return
		}
		// The same content failing the same way is reported once, also
		// when the file cannot be read at all (no content, zero digest):
		// a log file in the watched directory must not turn each report
		// into the event that triggers the next.
		seen := badLoad{sum: sum, err: err.Error()}
		if s.bad[key] == seen {
			return
		}
		s.bad[key] = seen
		s.log.Error(fmt.Sprintf("%s: %v; keeping the previous version in service", s.name, err))
	}
	ok := func(key string, old bool, what string) {
		delete(s.bad, key)
		if old && !strict {
			s.log.Info(fmt.Sprintf("%s: reloaded %s", s.name, what))
		}
	}

	prevCerts := map[string]*certItem{}
	prevCAs := map[string]*caItem{}
	prevCRLs := map[string][]*crlItem{}
	if prev != nil {
		for _, c := range prev.certs {
			prevCerts[certKey(c.ck)] = c
		}
		for _, c := range prev.cas {
			prevCAs[c.name()] = c
		}
		for _, c := range prev.crls {
			prevCRLs[c.source] = append(prevCRLs[c.source], c)
		}
		for u, c := range prev.urlCRLs {
			st.urlCRLs[u] = c
		}
	}

	for _, ck := range sp.l.TLS.Certs {
		key := certKey(ck)
		old := prevCerts[key]
		sum, rerr := readCertPair(ck)
		if old != nil && rerr == nil && sum == old.sum {
			st.certs = append(st.certs, old)
			continue
		}
		it, err := loadCertItem(ck)
		if err != nil {
			fail(key, sum, err, old != nil)
			if old != nil && !strict {
				st.certs = append(st.certs, old)
			}
			continue
		}
		ok(key, old != nil, "certfile "+ck.CertFile.Path+": "+describeServerCert(it.leaf))
		st.certs = append(st.certs, it)
	}

	t := &sp.l.TLS
	for _, ca := range []struct {
		f     config.File
		isDir bool
	}{{t.CAFile, false}, {t.CAPath, true}} {
		if !ca.f.IsSet() {
			continue
		}
		probe := &caItem{file: ca.f, isDir: ca.isDir}
		key := probe.name()
		old := prevCAs[key]
		var sum digest
		if ca.isDir {
			_, sum, _ = readCAPath(ca.f.Path)
		} else {
			sum, _ = fileDigest(ca.f.Path)
		}
		if old != nil && sum == old.sum {
			st.cas = append(st.cas, old)
			continue
		}
		it, err := loadCA(ca.f, ca.isDir)
		if err != nil {
			fail(key, sum, err, old != nil)
			if old != nil && !strict {
				st.cas = append(st.cas, old)
			}
			continue
		}
		ok(key, old != nil, fmt.Sprintf("%s: %d CA certificate(s)", key, len(it.certs)))
		st.cas = append(st.cas, it)
	}
	if len(st.cas) > 0 {
		st.pool = x509.NewCertPool()
		for _, ca := range st.cas {
			for _, c := range ca.certs {
				st.pool.AddCert(c)
			}
		}
	}

	for _, f := range t.CRLFiles {
		key := "crlfile " + f.Path
		old := prevCRLs[key]
		sum, _ := fileDigest(f.Path)
		if len(old) > 0 && sum == old[0].sum && (allVerified(old) || len(st.cas) == 0) {
			st.crls = append(st.crls, old...)
			continue
		}
		items, err := loadCRLFile(f, now)
		for _, it := range items {
			if err != nil {
				break
			}
			// Checked before anything else looks at it: the number of a
			// CRL whose signature is not the CA's means nothing.
			if verr := st.verifyCRL(it); verr != nil {
				err = fmt.Errorf("%s: crlfile %s: %w", f.Pos, f.Path, verr)
			}
		}
		if err != nil {
			fail(key, sum, err, old != nil)
			if old != nil && !strict {
				st.crls = append(st.crls, old...)
			}
			continue
		}
		if back, prior := rollback(items, old); back != nil {
			fail(key, sum, fmt.Errorf("%s: crlfile %s: this CRL (%s) is older than the one in use (%s); refusing to go back to an older CRL",
				f.Pos, f.Path, back.describe(), prior.describe()), true)
			st.crls = append(st.crls, old...)
			continue
		}
		for _, it := range items {
			ok(key, old != nil, key+": "+it.describe())
			s.checkCRL(it, now)
		}
		st.crls = append(st.crls, items...)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	if len(st.certs) == 0 {
		return nil, []error{fmt.Errorf("%s: %s has no usable certificate", sp.l.Pos, sp.l)}
	}
	for i, it := range st.certs {
		st.certs[i] = completeChain(it, st.cas)
	}
	s.buildConfigs(st)
	return st, nil
}

// allVerified reports whether every item's signature was verified.
func allVerified(items []*crlItem) bool {
	for _, it := range items {
		if it.issuer == nil {
			return false
		}
	}
	return true
}

// rollback finds a CRL among next that is older than the verified one of
// the same issuer among cur.
func rollback(next, cur []*crlItem) (older, prior *crlItem) {
	for _, n := range next {
		for _, c := range cur {
			if c.issuer != nil && olderCRL(n, c) {
				return n, c
			}
		}
	}
	return nil, nil
}

// olderCRL reports whether next carries a lower CRL number than cur, both
// from the same issuer and verified: a rollback, which would un-revoke
// certificates.
func olderCRL(next, cur *crlItem) bool {
	if !bytes.Equal(next.crl.RawIssuer, cur.crl.RawIssuer) {
		return false
	}
	if next.crl.Number != nil && cur.crl.Number != nil {
		return next.crl.Number.Cmp(cur.crl.Number) < 0
	}
	return next.crl.ThisUpdate.Before(cur.crl.ThisUpdate)
}

// verifyCRL checks that the CRL is signed by its issuer, found among the
// CAs of cafile/capath or the CA certificates of a certfile chain that
// lead to them, and remembers the issuer. A CRL that fails is never put
// in service: anyone on the path of a plain-HTTP crl_url, or able to write
// the file, could otherwise switch revocation off with an empty CRL.
// Without cafile/capath no client certificate is verified, so CRLs are
// not used and not checked.
func (st *state) verifyCRL(it *crlItem) error {
	if len(st.cas) == 0 {
		return nil
	}
	var cands []*x509.Certificate
	for _, ca := range st.cas {
		for _, c := range ca.certs {
			if bytes.Equal(c.RawSubject, it.crl.RawIssuer) {
				cands = append(cands, c)
			}
		}
	}
	for _, c := range st.certs {
		for _, der := range c.cert.Certificate[1:] {
			ic, err := x509.ParseCertificate(der)
			if err != nil || !ic.IsCA || !bytes.Equal(ic.RawSubject, it.crl.RawIssuer) || st.pool == nil {
				continue
			}
			// An intermediate counts only if it leads to a trusted CA.
			if _, err := ic.Verify(x509.VerifyOptions{Roots: st.pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err == nil {
				cands = append(cands, ic)
			}
		}
	}
	for _, c := range cands {
		if it.signedBy(c) {
			it.issuer = c
			return nil
		}
	}
	if len(cands) == 0 {
		return fmt.Errorf("cannot verify this CRL: its issuer %s is not in cafile/capath (nor a CA in a certfile chain); add the issuing CA's certificate to cafile — a CRL whose signature cannot be checked is not used",
			it.crl.Issuer)
	}
	return fmt.Errorf("REJECTED: the CRL's signature does not verify with the CA %s that it names as issuer: it is forged or corrupt, and is not used",
		subject(cands[0]))
}

// checkCRL warns about a CRL that is past its nextUpdate.
func (s *Server) checkCRL(it *crlItem, now time.Time) {
	if it.stale(now) {
		s.warnStaleCRL(it, now)
	}
}

// warnStaleCRL is the loud warning about an out-of-date CRL.
func (s *Server) warnStaleCRL(it *crlItem, now time.Time) {
	s.log.Warn(fmt.Sprintf("%s: WARNING: %s is out of date: its nextUpdate %s passed %s ago; it is still used (refusing every client would be an outage) — publish a new CRL",
		s.name, it.source, it.crl.NextUpdate.UTC().Format(time.RFC3339), now.Sub(it.crl.NextUpdate).Round(time.Minute)))
}

// Reload re-reads every file of the listener (SIGHUP). Files that changed
// are loaded; one that does not load keeps its previous version in
// service, and the reason is logged. Connections are not touched, except
// those whose certificate a changed CRL now revokes, which are closed.
func (s *Server) Reload() {
	s.mu.Lock()
	prev := s.state.Load()
	st, errs := s.load(prev.spec, prev, false)
	if len(errs) > 0 {
		// Only new items can fail here; the options did not change.
		s.mu.Unlock()
		s.log.Error(fmt.Sprintf("%s: TLS reload failed, nothing changed: %v", s.name, errors.Join(errs...)))
		return
	}
	s.state.Store(st)
	s.certsChanged(prev, st)
	s.mu.Unlock()
	if crlsChanged(prev, st) || !slices.Equal(prev.cas, st.cas) {
		s.closeRevoked()
	}
}

// Apply switches the listener to new TLS options (a configuration reload
// that changed them). Everything must load; on any error nothing changes
// and the error, naming file and line, is returned. The identity options
// (use_identity_as_username, use_subject_as_username) cannot change on a
// running listener: the broker reads them when it opens it.
func (s *Server) Apply(l *config.Listener) error {
	if l.AutoCert || sameOptions(s.state.Load().spec.l, l) {
		// Nothing changed in the options (or the local CA's listener,
		// whose files are mamori's own): re-read the files, keeping what
		// does not load.
		s.Reload()
		return nil
	}
	sp, err := newSpec(l)
	if err != nil {
		return err
	}
	s.mu.Lock()
	prev := s.state.Load()
	if sp.identity != prev.spec.identity || sp.useSubject != prev.spec.useSubject {
		s.mu.Unlock()
		return fmt.Errorf("%s: use_identity_as_username/use_subject_as_username changed: restart the broker to apply", l.Pos)
	}
	st, errs := s.load(sp, prev, true)
	if len(errs) > 0 {
		s.mu.Unlock()
		return errors.Join(errs...)
	}
	// Keep only the fetched CRLs of URLs still configured.
	for u := range st.urlCRLs {
		if !slices.ContainsFunc(l.TLS.CRLURLs, func(v config.Value) bool { return v.Text == u }) {
			delete(st.urlCRLs, u)
		}
	}
	s.buildConfigs(st)
	s.state.Store(st)
	s.certsChanged(prev, st)
	s.mu.Unlock()
	select {
	case s.resync <- struct{}{}:
	default:
	}
	if crlsChanged(prev, st) || !slices.Equal(prev.cas, st.cas) {
		s.closeRevoked()
	}
	return nil
}

// crlsChanged reports whether the set of CRLs differs between snapshots.
func crlsChanged(a, b *state) bool {
	x, y := a.allCRLs(), b.allCRLs()
	if len(x) != len(y) {
		return true
	}
	seen := map[*crlItem]bool{}
	for _, c := range x {
		seen[c] = true
	}
	for _, c := range y {
		if !seen[c] {
			return true
		}
	}
	return false
}

// setURLCRL installs a CRL fetched from url.
func (s *Server) setURLCRL(url string, it *crlItem) {
	s.mu.Lock()
	prev := s.state.Load()
	if _, ok := prev.urlCRLs[url]; !ok && !slices.ContainsFunc(prev.spec.l.TLS.CRLURLs, func(v config.Value) bool { return v.Text == url }) {
		s.mu.Unlock()
		return // the URL was removed by Apply meanwhile
	}
	st := *prev
	st.urlCRLs = make(map[string]*crlItem, len(prev.urlCRLs)+1)
	for k, v := range prev.urlCRLs {
		st.urlCRLs[k] = v
	}
	st.urlCRLs[url] = it
	s.buildConfigs(&st)
	s.state.Store(&st)
	s.mu.Unlock()
	s.closeRevoked()
}

// fileDigest hashes a file's content.
func fileDigest(path string) (digest, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return digest{}, err
	}
	return sha256.Sum256(b), nil
}

// sameOptions reports whether two listeners have the same TLS options,
// wherever in the file they are written.
func sameOptions(a, b *config.Listener) bool {
	return reflect.DeepEqual(withoutPositions(a.TLS), withoutPositions(b.TLS))
}

func withoutPositions(t config.TLSOptions) config.TLSOptions {
	t.CAFile.Pos, t.CAPath.Pos, t.Ciphers.Pos, t.Ciphers13.Pos, t.Version.Pos, t.DHParamFile.Pos =
		config.Pos{}, config.Pos{}, config.Pos{}, config.Pos{}, config.Pos{}, config.Pos{}
	t.Certs = slices.Clone(t.Certs)
	for i := range t.Certs {
		t.Certs[i].CertFile.Pos, t.Certs[i].KeyFile.Pos = config.Pos{}, config.Pos{}
	}
	t.CRLFiles = slices.Clone(t.CRLFiles)
	for i := range t.CRLFiles {
		t.CRLFiles[i].Pos = config.Pos{}
	}
	t.CRLURLs = slices.Clone(t.CRLURLs)
	for i := range t.CRLURLs {
		t.CRLURLs[i].Pos = config.Pos{}
	}
	return t
}
