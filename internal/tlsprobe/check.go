package tlsprobe

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/mamori-mqtt/mamori/internal/packet"
)

// CheckOptions are tlscheck's settings beyond the TLS options.
type CheckOptions struct {
	// Timeout bounds the whole check (dial, handshake, CONNECT/CONNACK);
	// 0 means 10 seconds.
	Timeout time.Duration
	// SkipMQTT leaves out the CONNECT/CONNACK step.
	SkipMQTT bool
	// MQTT are the CONNECT fields. Credentials are sent only to a server
	// that passed verification.
	MQTT MQTTOptions
	// ExpiryWarningDays marks a certificate expiring within that many days
	// (0 means 30, the broker's cert_expiry_warning_days default).
	ExpiryWarningDays int
	// Now is the clock (tests); nil is time.Now.
	Now func() time.Time
}

// Report is what tlscheck found. Its JSON form is tlscheck --json.
type Report struct {
	Address     string `json:"address"`
	ServerName  string `json:"server_name"`  // the name of stage 2
	SNI         string `json:"sni"`          // "" when none was sent (an IP address)
	TrustStore  string `json:"trust_store"`  // the CAs of stage 1
	Connected   bool   `json:"connected"`    // TCP connection made
	Handshake   bool   `json:"handshake"`    // TLS handshake completed
	TLSVersion  string `json:"tls_version"`  // "TLS 1.3"
	CipherSuite string `json:"cipher_suite"` // IANA name
	// CipherOpenSSL is the suite's OpenSSL name, for comparing with the
	// broker's ciphers option.
	CipherOpenSSL string `json:"cipher_openssl"`
	ALPN          string `json:"alpn"` // negotiated protocol, "" when none

	Chain      []CertInfo     `json:"chain"` // as presented, leaf first
	Stage1     StageResult    `json:"stage1_chain"`
	Stage2     StageResult    `json:"stage2_name"`
	Expiry     ExpiryInfo     `json:"expiry"`
	OCSP       OCSPInfo       `json:"ocsp"`
	ClientCert ClientCertInfo `json:"client_certificate"`
	MQTT       MQTTResult     `json:"mqtt"`

	Warnings []string `json:"warnings"`
	// Error and Explanation describe a failed connection or handshake.
	Error       string `json:"error,omitempty"`
	Explanation string `json:"explanation,omitempty"`
	// OK: the handshake completed, both stages verified (stage 2 may be
	// skipped with --insecure), no certificate is outside its dates, no
	// stapled OCSP response says revoked, and the server answered CONNECT
	// with CONNACK (a refusal for credentials still counts as MQTT working).
	OK bool `json:"ok"`
}

// CertInfo describes one certificate of the chain.
type CertInfo struct {
	Subject            string    `json:"subject"`
	Issuer             string    `json:"issuer"`
	DNSNames           []string  `json:"dns_names"`
	IPAddresses        []string  `json:"ip_addresses"`
	Emails             []string  `json:"emails,omitempty"`
	URIs               []string  `json:"uris,omitempty"`
	NotBefore          time.Time `json:"not_before"`
	NotAfter           time.Time `json:"not_after"`
	KeyType            string    `json:"key_type"` // "RSA 2048", "ECDSA P-256", "Ed25519"
	Serial             string    `json:"serial"`   // hex, as openssl x509 -serial prints it
	Version            int       `json:"version"`  // 1 for the seeds' "openssl x509 -req" certificates
	IsCA               bool      `json:"is_ca"`
	SelfSigned         bool      `json:"self_signed"`
	SignatureAlgorithm string    `json:"signature_algorithm"`
	SHA256             string    `json:"sha256"` // fingerprint of the DER
}

// StageResult is the outcome of one verification stage.
type StageResult struct {
	OK      bool   `json:"ok"`
	Skipped bool   `json:"skipped"` // stage 2 with --insecure
	Against string `json:"against"` // the trust store (stage 1) or the name (stage 2)
	// MatchedBy (stage 2): "dns-san", "ip-san" or "cn".
	MatchedBy string `json:"matched_by,omitempty"`
	// VerifiedChain (stage 1): subjects from the leaf to the trusted root.
	VerifiedChain []string `json:"verified_chain,omitempty"`
	// ValidFor (stage 2): the names the certificate is valid for.
	ValidFor    []string `json:"valid_for,omitempty"`
	Error       string   `json:"error,omitempty"`
	Explanation string   `json:"explanation,omitempty"`
}

// ExpiryInfo summarises the dates of the server's chain.
type ExpiryInfo struct {
	NotAfter    time.Time `json:"not_after"`     // of the server's certificate
	DaysLeft    int       `json:"days_left"`     // until NotAfter, rounded down
	Expired     bool      `json:"expired"`       // any certificate of the chain
	NotYetValid bool      `json:"not_yet_valid"` // any certificate of the chain
	// Soon: a certificate of the chain expires within the warning days.
	Soon bool `json:"soon"`
	// FirstToExpire is the subject of the chain's certificate that expires
	// first, which may be an intermediate.
	FirstToExpire string    `json:"first_to_expire"`
	FirstNotAfter time.Time `json:"first_not_after"`
}

// OCSPInfo describes a stapled OCSP response.
type OCSPInfo struct {
	Stapled    bool       `json:"stapled"`
	Status     string     `json:"status,omitempty"` // "good", "revoked", "unknown"
	ThisUpdate *time.Time `json:"this_update,omitempty"`
	NextUpdate *time.Time `json:"next_update,omitempty"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
	Error      string     `json:"error,omitempty"`
}

// ClientCertInfo says whether the server asked for a client certificate.
type ClientCertInfo struct {
	Requested     bool     `json:"requested"`
	AcceptableCAs []string `json:"acceptable_cas"`
	Sent          bool     `json:"sent"`
	Subject       string   `json:"subject,omitempty"`
}

// MQTTResult is the outcome of the CONNECT/CONNACK step.
type MQTTResult struct {
	Attempted      bool   `json:"attempted"`
	Connack        bool   `json:"connack"`  // a CONNACK arrived
	Accepted       bool   `json:"accepted"` // return code 0
	ReturnCode     int    `json:"return_code"`
	Reason         string `json:"reason,omitempty"` // mosquitto's wording
	SessionPresent bool   `json:"session_present"`
	// CredentialsWithheld: a username was given but the server did not
	// verify, so CONNECT went without it.
	CredentialsWithheld bool   `json:"credentials_withheld,omitempty"`
	Error               string `json:"error,omitempty"`
	Explanation         string `json:"explanation,omitempty"`
}

// Check connects to addr ("host:port") with o, and reports what the server
// presents and whether it verifies, without stopping at the first failure:
// the chain is shown even when it does not verify, and both stages are
// evaluated. The error is for local problems only (an unreadable --cafile,
// a wrong --cert-pass); everything about the server is in the Report.
func Check(ctx context.Context, addr string, o ClientOptions, co CheckOptions) (*Report, error) {
	var warnings bytes.Buffer
	cfg, v, info, err := buildConfig(o, addr, &warnings, true)
	if err != nil {
		return nil, err
	}
	if co.Now != nil {
		v.now = co.Now
	}
	timeout := co.Timeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	r := &Report{Address: addr, ServerName: v.name, TrustStore: v.rootsName,
		Stage1: StageResult{Against: v.rootsName}, Stage2: StageResult{Against: v.name}}
	if net.ParseIP(cfg.ServerName) == nil {
		r.SNI = cfg.ServerName
	}
	defer func() { r.Warnings = splitLines(warnings.String()) }()

	conn, herr := handshake(ctx, addr, cfg)
	s := info.snapshot()
	r.ClientCert = ClientCertInfo{Requested: s.certRequested, AcceptableCAs: dnNames(s.acceptableCAs), Sent: s.sentCert != nil}
	if r.ClientCert.AcceptableCAs == nil {
		r.ClientCert.AcceptableCAs = []string{}
	}
	if s.sentCert != nil {
		r.ClientCert.Subject = s.sentCert.Subject.String()
	}
	var oe *net.OpError
	r.Connected = herr == nil || !(errors.As(herr, &oe) && oe.Op == "dial")
	r.describeChain(s.peerCerts)
	chains := r.verify(v, s.peerCerts, o, co)
	if herr != nil {
		he := newHandshakeError(ctx, addr, herr, info)
		r.Error = herr.Error()
		r.Explanation = Explain(he, o, addr)
		return r, nil
	}
	defer conn.Close()
	r.Handshake = true
	st := conn.ConnectionState()
	r.TLSVersion = VersionName(st.Version)
	r.CipherSuite = tls.CipherSuiteName(st.CipherSuite)
	r.CipherOpenSSL = OpenSSLName(st.CipherSuite)
	r.ALPN = st.NegotiatedProtocol
	r.checkOCSP(st.OCSPResponse, s.peerCerts, chains)

	verified := r.Stage1.OK && (r.Stage2.OK || r.Stage2.Skipped)
	if !co.SkipMQTT {
		r.mqttStep(ctx, conn, addr, co.MQTT, verified, o, info)
	}
	r.OK = verified && !r.Expiry.Expired && !r.Expiry.NotYetValid && r.OCSP.Status != "revoked" &&
		(co.SkipMQTT || r.MQTT.Connack)
	return r, nil
}

// describeChain fills Chain and Expiry from the certificates presented.
func (r *Report) describeChain(certs []*x509.Certificate) {
	r.Chain = []CertInfo{}
	for _, c := range certs {
		r.Chain = append(r.Chain, DescribeCert(c))
	}
}

// verify runs both stages offline on the presented chain.
func (r *Report) verify(v *verifier, certs []*x509.Certificate, o ClientOptions, co CheckOptions) [][]*x509.Certificate {
	if len(certs) == 0 {
		r.Stage1.Error = "the server presented no certificate"
		r.Stage2.Error = r.Stage1.Error
		return nil
	}
	now := v.clock()
	warnDays := co.ExpiryWarningDays
	if warnDays == 0 {
		warnDays = 30
	}
	leaf := certs[0]
	r.Expiry.NotAfter = leaf.NotAfter
	r.Expiry.DaysLeft = int(leaf.NotAfter.Sub(now).Hours() / 24)
	first := leaf
	for _, c := range certs {
		if c.NotAfter.Before(first.NotAfter) {
			first = c
		}
		switch k, _ := dateProblem(c, now); k {
		case KindExpired:
			r.Expiry.Expired = true
		case KindNotYetValid:
			r.Expiry.NotYetValid = true
		}
	}
	r.Expiry.FirstToExpire = first.Subject.String()
	r.Expiry.FirstNotAfter = first.NotAfter
	r.Expiry.Soon = !r.Expiry.Expired && first.NotAfter.Sub(now) < time.Duration(warnDays)*24*time.Hour

	chains, err := v.verifyChain(certs)
	if err != nil {
		r.Stage1.Error = err.Error()
		r.Stage1.Explanation = Explain(err, o, r.Address)
	} else {
		r.Stage1.OK = true
		for _, c := range chains[0] {
			r.Stage1.VerifiedChain = append(r.Stage1.VerifiedChain, c.Subject.String())
		}
	}
	r.Stage2.ValidFor = CertNames(leaf)
	ok, byCN := MatchName(leaf, v.name)
	switch {
	case ok && byCN:
		r.Stage2.OK, r.Stage2.MatchedBy = true, "cn"
		if !v.insecure {
			v.warnCN(leaf)
		}
	case ok && net.ParseIP(strings.Trim(v.name, "[]")) != nil:
		r.Stage2.OK, r.Stage2.MatchedBy = true, "ip-san"
	case ok:
		r.Stage2.OK, r.Stage2.MatchedBy = true, "dns-san"
	default:
		_, err := v.verifyName(leaf)
		r.Stage2.Error = err.Error()
		r.Stage2.Explanation = Explain(err, o, r.Address)
	}
	if v.insecure {
		r.Stage2.Skipped = true
	}
	return chains
}

// checkOCSP parses a stapled OCSP response.
func (r *Report) checkOCSP(resp []byte, certs []*x509.Certificate, chains [][]*x509.Certificate) {
	if len(resp) == 0 {
		return
	}
	r.OCSP.Stapled = true
	var issuer *x509.Certificate
	switch {
	case len(chains) > 0 && len(chains[0]) > 1:
		issuer = chains[0][1]
	case len(certs) > 1:
		issuer = certs[1]
	}
	or, err := ocsp.ParseResponseForCert(resp, certs[0], issuer)
	if err != nil {
		r.OCSP.Error = err.Error()
		return
	}
	switch or.Status {
	case ocsp.Good:
		r.OCSP.Status = "good"
	case ocsp.Revoked:
		r.OCSP.Status = "revoked"
		t := or.RevokedAt
		r.OCSP.RevokedAt = &t
	default:
		r.OCSP.Status = "unknown"
	}
	tu := or.ThisUpdate
	r.OCSP.ThisUpdate = &tu
	if !or.NextUpdate.IsZero() {
		nu := or.NextUpdate
		r.OCSP.NextUpdate = &nu
	}
}

// mqttStep sends CONNECT over the TLS connection and reads CONNACK.
func (r *Report) mqttStep(ctx context.Context, conn *tls.Conn, addr string, mo MQTTOptions, verified bool, o ClientOptions, info *handshakeInfo) {
	r.MQTT.Attempted = true
	if !verified && (mo.Username != "" || mo.Password != "") {
		// Never hand a password to a server that failed verification.
		mo.Username, mo.Password = "", ""
		r.MQTT.CredentialsWithheld = true
	}
	var ack *packet.Connack
	err := awaitRefusal(conn, r.ClientCert.Requested)
	if err == nil {
		ack, err = mqttConnect(ctx, conn, mo)
	}
	if err != nil {
		r.MQTT.Error = err.Error()
		if _, ok := RemoteAlert(err); ok {
			// TLS 1.3: the server checks the client certificate after the
			// client's handshake is done, and refuses it here.
			s := info.snapshot()
			he := &HandshakeError{Addr: addr, Err: err, CertRequested: s.certRequested,
				AcceptableCAs: dnNames(s.acceptableCAs), SentCert: s.sentCert, ServerCerts: s.peerCerts}
			r.MQTT.Explanation = Explain(he, o, addr)
			return
		}
		var ne net.Error
		switch {
		case errors.As(err, &ne) && ne.Timeout():
			r.MQTT.Explanation = "MQTT: no CONNACK within the timeout — the TLS port may not lead to an MQTT broker"
		case isClosed(err) && r.ClientCert.Sent:
			// TLS 1.3 again, but the server's alert was lost: it closed the
			// socket with our CONNECT unread, and the reset discards it.
			s := info.snapshot()
			r.MQTT.Explanation = fmt.Sprintf("MQTT: the server closed the connection right after the TLS handshake, without a CONNACK — it probably refused the client certificate %s (%s, issued by %s): use one issued by a CA in the server's cafile, not revoked and within its dates",
				o.CertFile, certName(s.sentCert), issuerName(s.sentCert))
		case isClosed(err) && r.ClientCert.Requested && !r.ClientCert.Sent:
			r.MQTT.Explanation = "MQTT: the server closed the connection after the handshake; it asked for a client certificate and none was sent — pass --cert and --key"
		case isClosed(err):
			r.MQTT.Explanation = "MQTT: the server closed the connection after CONNECT without a CONNACK"
		default:
			r.MQTT.Explanation = "MQTT: " + err.Error()
		}
		return
	}
	r.MQTT.Connack = true
	r.MQTT.ReturnCode = int(ack.Code)
	r.MQTT.Accepted = ack.Code == 0
	r.MQTT.Reason = connackText(byte(ack.Code))
	r.MQTT.SessionPresent = ack.SessionPresent
}

// awaitRefusal gives a TLS 1.3 server that asked for a client certificate
// a moment to refuse it before CONNECT is sent. In TLS 1.3 the server
// checks the certificate after the client's handshake has finished; if
// CONNECT is already on its way when it closes, the unread bytes make its
// kernel send a reset, which can destroy the alert that says why.
func awaitRefusal(conn *tls.Conn, requested bool) error {
	if !requested || conn.ConnectionState().Version != tls.VersionTLS13 {
		return nil
	}
	conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	defer conn.SetReadDeadline(time.Time{})
	// A server says nothing before CONNECT; this read ends with the
	// deadline (a temporary error that leaves the connection usable), or
	// with the alert.
	_, err := conn.Read(make([]byte, 1))
	var ne net.Error
	if err == nil || errors.As(err, &ne) && ne.Timeout() {
		return nil
	}
	return err
}

// DescribeCert summarises a certificate for tlscheck.
func DescribeCert(c *x509.Certificate) CertInfo {
	ci := CertInfo{
		Subject:            c.Subject.String(),
		Issuer:             c.Issuer.String(),
		DNSNames:           append([]string{}, c.DNSNames...),
		IPAddresses:        []string{},
		Emails:             c.EmailAddresses,
		NotBefore:          c.NotBefore,
		NotAfter:           c.NotAfter,
		KeyType:            KeyType(c),
		Serial:             serialHex(c),
		Version:            c.Version,
		IsCA:               c.BasicConstraintsValid && c.IsCA,
		SelfSigned:         isSelfIssued(c),
		SignatureAlgorithm: c.SignatureAlgorithm.String(),
	}
	for _, ip := range c.IPAddresses {
		ci.IPAddresses = append(ci.IPAddresses, ip.String())
	}
	for _, u := range c.URIs {
		ci.URIs = append(ci.URIs, u.String())
	}
	sum := sha256.Sum256(c.Raw)
	ci.SHA256 = fmt.Sprintf("%X", sum[:])
	return ci
}

// KeyType names a certificate's public key: "RSA 2048", "ECDSA P-256",
// "Ed25519".
func KeyType(c *x509.Certificate) string {
	switch k := c.PublicKey.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d", k.N.BitLen())
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case ed25519.PublicKey:
		return "Ed25519"
	}
	return c.PublicKeyAlgorithm.String()
}

// serialHex is the serial as "openssl x509 -serial" prints it: upper-case
// hex with an even number of digits.
func serialHex(c *x509.Certificate) string {
	if c.SerialNumber == nil || c.SerialNumber.Sign() == 0 {
		return "00"
	}
	return fmt.Sprintf("%X", c.SerialNumber.Bytes())
}

func splitLines(s string) []string {
	out := []string{}
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}
