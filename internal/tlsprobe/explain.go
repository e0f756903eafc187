package tlsprobe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"strings"
	"syscall"

	"github.com/mamori-mqtt/mamori/internal/packet"
	"github.com/mamori-mqtt/mamori/internal/pki"
	"github.com/mamori-mqtt/mamori/internal/tlspsk"
)

// TLS alert numbers (RFC 8446 §6, RFC 5246 §7.2) that Explain interprets.
const (
	alertHandshakeFailure      = 40
	alertBadCertificate        = 42
	alertUnsupportedCert       = 43
	alertCertificateRevoked    = 44
	alertCertificateExpired    = 45
	alertCertificateUnknown    = 46
	alertUnknownCA             = 48
	alertAccessDenied          = 49
	alertProtocolVersion       = 70
	alertInsufficientSecurity  = 71
	alertUnrecognizedName      = 112
	alertCertificateRequired   = 116
	alertNoApplicationProtocol = 120
)

// RemoteAlert returns the TLS alert the server sent, if err carries one.
// crypto/tls reports a received alert as a *net.OpError with Op "remote
// error" around an unexported uint8 type; its number is read by reflection
// because the text alone would tie mamori to Go's wording.
func RemoteAlert(err error) (code uint8, ok bool) {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "remote error" && oe.Err != nil {
		v := reflect.ValueOf(oe.Err)
		if v.Kind() == reflect.Uint8 {
			return uint8(v.Uint()), true
		}
	}
	return 0, false
}

// Explain turns a handshake error into a sentence that says which stage
// failed, the names involved and how to fix it.
//
// err may come from ClientConfig, from a handshake with its configuration,
// from the first read after the handshake (in TLS 1.3 a server refuses a
// client certificate only then), or from Dial, whose *HandshakeError adds
// what the handshake revealed (a certificate request, a plain MQTT port).
// host is the host dialled, optionally "host:port".
func Explain(err error, o ClientOptions, host string) string {
	if err == nil {
		return ""
	}
	var he *HandshakeError
	errors.As(err, &he)
	var ve *VerifyError
	if errors.As(err, &ve) {
		return explainVerify(ve, o)
	}
	if errors.Is(err, ErrPSKUnsupported) {
		return "TLS: " + err.Error()
	}
	where := host
	if he != nil && he.Addr != "" {
		where = he.Addr
	}
	if pe := (*tlspsk.Error)(nil); errors.As(err, &pe) {
		return explainPSK(pe, o, where)
	}
	if he != nil && he.PlainMQTT {
		return fmt.Sprintf("TLS: %s speaks plain MQTT, not TLS (it answered an MQTT CONNECT with CONNACK) — leave out --cafile/--capath/--cert, or connect to the broker's TLS port (usually 8883)", where)
	}
	var rh tls.RecordHeaderError
	if errors.As(err, &rh) {
		return explainRecordHeader(rh, where)
	}
	if code, ok := RemoteAlert(err); ok {
		return explainAlert(code, err, o, he)
	}
	var ae tls.AlertError
	if errors.As(err, &ae) {
		return explainAlert(uint8(ae), err, o, he)
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "server selected unsupported protocol version"),
		strings.Contains(msg, "no supported versions"),
		strings.Contains(msg, "protocol version not supported"):
		return explainVersion(o)
	case strings.Contains(msg, "server chose an unconfigured cipher suite"):
		return explainCiphers(o, "the server chose a cipher suite this client did not offer")
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Sprintf("TLS: no answer from %s during the TLS handshake — the port may speak plain MQTT and be waiting for a CONNECT (try port 8883), or a firewall drops the packets", where)
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Sprintf("TLS: could not connect to %s: connection refused — nothing listens there (the broker's TLS port is usually 8883)", where)
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return fmt.Sprintf("TLS: cannot resolve %s: %v", dnsErr.Name, dnsErr.Err)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) {
		if he != nil && he.CertRequested && he.SentCert == nil {
			// Asked for a certificate, sent none, and the server hung up:
			// with TLS 1.3 its alert is often lost to the reset.
			return explainCertRequired(he)
		}
		if he != nil && len(he.ServerCerts) > 0 {
			// The server saw our certificate (or its absence) and hung up
			// without saying why: most often a refused client certificate.
			if he.CertRequested {
				return explainClientCertRefused(o, he, "the server closed the connection after receiving it")
			}
			return fmt.Sprintf("TLS: %s closed the connection during the handshake without a TLS alert, after sending its certificate", where)
		}
		return fmt.Sprintf("TLS: %s closed the connection at the start of the TLS handshake without a TLS alert — it probably speaks plain MQTT (leave out the TLS options, or use the TLS port, usually 8883), or it refused this client before TLS", where)
	}
	return "TLS: " + msg
}

// explainVerify explains a failed stage 1 or stage 2.
func explainVerify(e *VerifyError, o ClientOptions) string {
	switch e.Kind {
	case KindNoCertificate:
		return "TLS: the server presented no certificate"
	case KindNameMismatch:
		return explainName(e)
	case KindExpired, KindNotYetValid:
		return explainDates(e)
	case KindUnknownCA:
		return explainUnknownCA(e, o)
	}
	var ci x509.CertificateInvalidError
	if errors.As(e.Err, &ci) {
		switch ci.Reason {
		case x509.IncompatibleUsage:
			return fmt.Sprintf("TLS: the server's certificate (%s) is not for TLS servers: its extended key usage lacks serverAuth — reissue it as a server certificate (mamori ca issue server)", certName(e.Cert))
		case x509.NotAuthorizedToSign:
			return fmt.Sprintf("TLS: a certificate in the server's chain (%s) signs others but is not a CA certificate (basicConstraints CA:TRUE is missing) — reissue the intermediate as a CA", certName(ci.Cert))
		}
	}
	var ia x509.InsecureAlgorithmError
	if errors.As(e.Err, &ia) {
		return fmt.Sprintf("TLS: the server's certificate chain is signed with %s, which is no longer accepted — reissue it with SHA-256", x509.SignatureAlgorithm(ia))
	}
	return fmt.Sprintf("TLS: the server's certificate (%s, issued by %s) does not verify against %s: %v", certName(e.Cert), issuerName(e.Cert), e.Roots, e.Err)
}

// explainUnknownCA: stage 1 found no path to a trusted CA.
func explainUnknownCA(e *VerifyError, o ClientOptions) string {
	leaf := e.Cert
	if e.Bad != nil { // a trusted root exists but is outside its dates
		return explainDates(e)
	}
	roots := e.Roots
	autoOS := o.CAFile == "" && o.CAPath == "" && !o.UseOSCerts
	if autoOS {
		roots += " (used because no --cafile was given)"
	}
	if isSelfIssued(leaf) {
		return fmt.Sprintf("TLS: the server's certificate (%s) is self-signed and is not in %s — pass that certificate itself with --cafile, or give the server a certificate from your CA", certName(leaf), roots)
	}
	// The CA to pass is the top of the chain the server sent: the leaf's
	// issuer, or the root above the intermediates (OpenSSL servers such as
	// mosquitto also send the root when it is in their cafile).
	anchor := issuerName(e.Chain[len(e.Chain)-1])
	s := fmt.Sprintf("TLS: the server's certificate (%s, issued by %s) is not signed by any CA in %s", certName(leaf), issuerName(leaf), roots)
	if anchor != issuerName(leaf) {
		s += fmt.Sprintf(" (its chain leads to %s)", anchor)
	}
	return s + fmt.Sprintf(" — pass %s's certificate with --cafile (or, if the server chooses its certificate by SNI, ask for the other one with --servername)", anchor)
}

// explainDates: a certificate of the chain is expired or not yet valid.
func explainDates(e *VerifyError) string {
	c := e.Cert
	what := fmt.Sprintf("the server's certificate (%s)", certName(c))
	if e.Bad != nil {
		c = e.Bad
		what = fmt.Sprintf("the CA certificate %s in the server's chain", certName(c))
	}
	if k, _ := dateProblem(c, e.Now); k == KindNotYetValid {
		return fmt.Sprintf("TLS: %s is not valid before %s (it is now %s) — check the clock of this machine and of the CA that issued it",
			what, fmtTime(c.NotBefore), fmtTime(e.Now))
	}
	return fmt.Sprintf("TLS: %s expired on %s (valid from %s; it is now %s) — renew it on the server, or check this machine's clock",
		what, fmtTime(c.NotAfter), fmtTime(c.NotBefore), fmtTime(e.Now))
}

// explainName: stage 2, in the words of SPEC §6.
func explainName(e *VerifyError) string {
	if len(e.Names) == 0 {
		return fmt.Sprintf("TLS: the server's certificate (%s) names no host (no subjectAltName and no CN), so it cannot match %s — reissue it with a SAN, or connect with --insecure", certName(e.Cert), e.Name)
	}
	fix := "--insecure"
	for _, n := range e.Names {
		if !strings.HasPrefix(n, "*") {
			fix = "--servername " + n + ", or --insecure"
			break
		}
	}
	return fmt.Sprintf("TLS: certificate is valid for %s, not %s — connect with %s", nameList(e.Names), e.Name, fix)
}

// explainRecordHeader: the server answered the ClientHello with something
// that is not TLS.
func explainRecordHeader(rh tls.RecordHeaderError, where string) string {
	hdr := rh.RecordHeader[:]
	if h, ok, err := packet.ParseHeader(hdr, 0); err == nil && ok && h.Type == packet.CONNACK || looksLikeMQTT(hdr) {
		return fmt.Sprintf("TLS: %s answered with plain MQTT, not TLS — this port does not speak TLS: leave out --cafile/--capath/--cert, or connect to the broker's TLS port (usually 8883)", where)
	}
	if strings.HasPrefix(string(hdr), "HTTP/") {
		return fmt.Sprintf("TLS: %s answered with plain HTTP, not TLS — it is not an MQTT-over-TLS port", where)
	}
	return fmt.Sprintf("TLS: %s answered with something that is not TLS (first bytes % x) — check the port", where, hdr)
}

// looksLikeMQTT reports whether b starts with a fixed header a broker could
// send to a client that sent garbage: CONNACK or DISCONNECT.
func looksLikeMQTT(b []byte) bool {
	h, _, err := packet.ParseHeader(b, 0)
	return err == nil && (h.Type == packet.CONNACK || h.Type == packet.DISCONNECT)
}

// explainAlert explains a TLS alert the server sent.
func explainAlert(code uint8, err error, o ClientOptions, he *HandshakeError) string {
	sentCert := o.CertFile != ""
	requested := he != nil && he.CertRequested
	switch code {
	case alertCertificateRequired:
		return explainCertRequired(he)
	case alertHandshakeFailure, alertBadCertificate, alertCertificateUnknown:
		if !sentCert && (requested || code != alertHandshakeFailure) {
			return explainCertRequired(he)
		}
		if sentCert && (requested || code != alertHandshakeFailure) {
			return explainClientCertRefused(o, he, "the server answered "+alertName(code))
		}
		if he != nil && !requested && len(he.ServerCerts) == 0 {
			return explainCiphers(o, "the server ended the handshake (handshake failure) before sending its certificate")
		}
		// Without Dial's record of the handshake, a handshake failure can
		// mean either; say both.
		return "TLS: the server ended the handshake (handshake failure): it shares no TLS version or cipher with this client (check --tls-version and --ciphers), or it requires a client certificate (pass --cert and --key)"
	case alertUnknownCA:
		return explainClientCertRefused(o, he, "the server does not know the CA that issued it (unknown CA)")
	case alertCertificateExpired:
		return explainClientCertRefused(o, he, "the server says it is expired or not yet valid")
	case alertCertificateRevoked:
		return explainClientCertRefused(o, he, "the server says it is revoked (listed in the server's CRL)")
	case alertUnsupportedCert:
		return explainClientCertRefused(o, he, "the server does not support its type or key usage")
	case alertAccessDenied:
		return "TLS: the server denied access to this client (access denied alert)"
	case alertProtocolVersion:
		return explainVersion(o)
	case alertInsufficientSecurity:
		return explainCiphers(o, "the server found the offered cipher suites too weak (insufficient security)")
	case alertUnrecognizedName:
		return fmt.Sprintf("TLS: the server has no certificate for the name %q sent as SNI — check --servername", o.ServerName)
	case alertNoApplicationProtocol:
		offered := "none"
		if len(o.ALPN) > 0 {
			offered = strings.Join(o.ALPN, ", ")
		}
		return fmt.Sprintf("TLS: the server accepts none of the ALPN protocols offered (%s) — check --tls-alpn", offered)
	}
	return fmt.Sprintf("TLS: the server aborted the handshake: %v", err)
}

// alertName is Go's text for an alert number ("bad certificate").
func alertName(code uint8) string {
	return strings.TrimPrefix(tls.AlertError(code).Error(), "tls: ")
}

// explainCertRequired: the server wants a client certificate and got none.
func explainCertRequired(he *HandshakeError) string {
	s := "TLS: the server requires a client certificate — pass --cert and --key (or --cert FILE.p12 --cert-pass PASS)"
	if he != nil && len(he.AcceptableCAs) > 0 {
		s += " issued by " + strings.Join(he.AcceptableCAs, " or ")
	}
	return s
}

// explainClientCertRefused: a client certificate was sent and refused.
func explainClientCertRefused(o ClientOptions, he *HandshakeError, why string) string {
	var c *x509.Certificate
	if he != nil {
		c = he.SentCert
	}
	if c == nil && o.CertFile != "" {
		// Explain may be called without Dial's record; read the file again
		// to name the certificate.
		if kp, err := pki.LoadKeyPair(o.CertFile, o.KeyFile, []byte(o.CertPass)); err == nil {
			c = kp.Leaf
		}
	}
	if o.CertFile == "" && c == nil {
		return explainCertRequired(he)
	}
	who := o.CertFile
	if c != nil {
		who = fmt.Sprintf("%s (%s, issued by %s)", o.CertFile, certName(c), issuerName(c))
	}
	s := fmt.Sprintf("TLS: the server refused the client certificate %s: %s", who, why)
	if he != nil && len(he.AcceptableCAs) > 0 {
		s += fmt.Sprintf(" — the server accepts certificates issued by %s", strings.Join(he.AcceptableCAs, " or "))
	} else {
		s += " — use a certificate issued by a CA in the server's cafile, not revoked and within its dates"
	}
	return s
}

// explainVersion: no TLS version in common.
func explainVersion(o ClientOptions) string {
	minVer, _, err := ParseTLSVersion(o.TLSVersion)
	if err == nil && minVer == tls.VersionTLS13 {
		return "TLS: the server and this client share no TLS version: the client offered only TLS 1.3 (--tls-version tlsv1.3) — try --tls-version tlsv1.2, or enable TLS 1.3 on the server"
	}
	return fmt.Sprintf("TLS: the server and this client share no TLS version: the client offered %s to TLS 1.3 — the server needs updating (or allows only a version this client refused)", VersionName(minVer))
}

// explainCiphers: no cipher suite in common.
func explainCiphers(o ClientOptions, what string) string {
	s := "TLS: " + what + ": it shares no cipher suite (or TLS version) with this client"
	if o.Ciphers != "" {
		return s + " — the client offered only --ciphers " + o.Ciphers + "; compare with the server's ciphers option, or leave --ciphers out"
	}
	return s + " — check the server's ciphers and tls_version options (Go offers ECDHE suites only, no DHE)"
}

// ExplainPlainFailure explains why a plain (non-TLS) MQTT client got no
// CONNACK from hostport: reply is what the server sent back (possibly
// nothing), err the read error. ok is false when nothing points at a TLS
// port. Some TLS servers answer an MQTT CONNECT with a TLS alert record;
// Go's and OpenSSL's close without a word, and then the function tries a
// TLS handshake to the same address (SpeaksTLS) to be sure.
func ExplainPlainFailure(ctx context.Context, err error, reply []byte, hostport string) (msg string, ok bool) {
	const tlsHint = " — add --cafile CA.crt (or --tls-use-os-certs), or connect to the plain MQTT port (usually 1883)"
	if len(reply) >= 3 && (reply[0] == 0x15 || reply[0] == 0x16) && reply[1] == 0x03 {
		return "MQTT: " + hostport + " speaks TLS, not plain MQTT (it answered CONNECT with a TLS record)" + tlsHint, true
	}
	if len(reply) == 0 && isClosed(err) && SpeaksTLS(ctx, hostport) {
		return "MQTT: " + hostport + " speaks TLS, not plain MQTT (it closed the connection on CONNECT and answers a TLS handshake)" + tlsHint, true
	}
	return "", false
}

// isClosed reports an end of connection without any TLS alert.
func isClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE)
}
