package tlsprobe

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"
)

// Stage is one of the two stages of server verification that seed 000
// explains: first the chain, then the name.
type Stage int

// The verification stages.
const (
	// StageChain: the certificate chain is signed by a trusted CA and every
	// certificate in it is within its validity period.
	StageChain Stage = 1
	// StageName: the certificate is valid for the name the client asked for.
	StageName Stage = 2
)

// String names the stage as the output of tlscheck does.
func (s Stage) String() string {
	switch s {
	case StageChain:
		return "stage 1 (certificate chain)"
	case StageName:
		return "stage 2 (host name)"
	}
	return fmt.Sprintf("stage %d", int(s))
}

// VerifyKind says what went wrong within a stage.
type VerifyKind string

// The kinds of verification failure.
const (
	KindUnknownCA     VerifyKind = "unknown-ca"     // stage 1: no path to a trusted root
	KindExpired       VerifyKind = "expired"        // stage 1: a certificate's notAfter has passed
	KindNotYetValid   VerifyKind = "not-yet-valid"  // stage 1: a certificate's notBefore is in the future
	KindBadChain      VerifyKind = "bad-chain"      // stage 1: anything else x509 refused
	KindNameMismatch  VerifyKind = "name-mismatch"  // stage 2
	KindNoCertificate VerifyKind = "no-certificate" // the server sent no certificate at all
)

// VerifyError is a failed server verification. It carries everything
// Explain needs to say which stage failed, with which names, and what to do.
type VerifyError struct {
	Stage Stage
	Kind  VerifyKind
	// Cert is the server's (leaf) certificate.
	Cert *x509.Certificate
	// Chain is every certificate the server presented, leaf first.
	Chain []*x509.Certificate
	// Bad is the certificate at fault when it is not Cert (an expired CA).
	Bad *x509.Certificate
	// Roots describes the trust store: "ca2.crt", "the system's trust store".
	Roots string
	// Name is the name verified in stage 2 (the --servername or host).
	Name string
	// Names are the names the certificate is valid for (DNS and IP SANs, or
	// the CN when it has no DNS SAN).
	Names []string
	// Now is the time of verification.
	Now time.Time
	// Err is the underlying x509 error, when there is one.
	Err error
}

// Error is a one-line summary; Explain gives the full explanation.
func (e *VerifyError) Error() string {
	switch e.Kind {
	case KindUnknownCA:
		return fmt.Sprintf("tls: %s failed: certificate %s is signed by an unknown authority (%s)", e.Stage, certName(e.Cert), issuerName(e.Cert))
	case KindExpired, KindNotYetValid:
		c := e.Bad
		if c == nil {
			c = e.Cert
		}
		return fmt.Sprintf("tls: %s failed: certificate %s is not valid at %s (valid %s to %s)", e.Stage, certName(c),
			fmtTime(e.Now), fmtTime(c.NotBefore), fmtTime(c.NotAfter))
	case KindNameMismatch:
		return fmt.Sprintf("tls: %s failed: certificate is valid for %s, not %s", e.Stage, nameList(e.Names), e.Name)
	case KindNoCertificate:
		return "tls: the server sent no certificate"
	}
	if e.Err != nil {
		return fmt.Sprintf("tls: %s failed: %v", e.Stage, e.Err)
	}
	return fmt.Sprintf("tls: %s failed", e.Stage)
}

// Unwrap returns the underlying x509 error.
func (e *VerifyError) Unwrap() error { return e.Err }

// verifier checks a server's certificates the way OpenSSL and Mosquitto do.
// One verifier belongs to one tls.Config; it may verify many connections.
type verifier struct {
	roots     *x509.CertPool // nil: the system's roots
	rootsName string
	name      string // the name of stage 2
	insecure  bool   // skip stage 2 (Mosquitto's --insecure)
	warn      io.Writer
	warnOnce  sync.Once
	now       func() time.Time
}

// verifyChain is stage 1: a path from the leaf through the certificates the
// server sent to a trusted root, every certificate within its dates.
func (v *verifier) verifyChain(certs []*x509.Certificate) ([][]*x509.Certificate, error) {
	now := v.clock()
	if len(certs) == 0 {
		return nil, &VerifyError{Stage: StageChain, Kind: KindNoCertificate, Roots: v.rootsName, Now: now}
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	chains, err := certs[0].Verify(x509.VerifyOptions{
		Roots:         v.roots,
		Intermediates: inter,
		CurrentTime:   now,
		// The name is checked by verifyName (stage 2), with OpenSSL's rules
		// rather than Go's, which ignore the CN.
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err == nil {
		return chains, nil
	}
	ve := &VerifyError{Stage: StageChain, Kind: KindBadChain, Cert: certs[0], Chain: certs, Roots: v.rootsName, Now: now, Err: err}
	// Dates first: an expired certificate makes x509 report either an
	// invalid certificate or, for a CA, no path at all; the dates are what
	// the person must fix.
	for _, c := range certs {
		if k, bad := dateProblem(c, now); bad {
			ve.Kind = k
			if c != certs[0] {
				ve.Bad = c
			}
			return nil, ve
		}
	}
	var ua x509.UnknownAuthorityError
	var ci x509.CertificateInvalidError
	switch {
	case errors.As(err, &ua):
		ve.Kind = KindUnknownCA
		// The root that would anchor the chain may itself be outside its
		// dates; x509 then reports no path. Say so instead.
		if root := v.findIssuer(certs[len(certs)-1]); root != nil {
			if k, bad := dateProblem(root, now); bad {
				ve.Kind, ve.Bad = k, root
			}
		}
	case errors.As(err, &ci) && ci.Reason == x509.Expired:
		ve.Kind = KindExpired
	}
	return nil, ve
}

// findIssuer looks for the trusted root that signed c, ignoring dates.
func (v *verifier) findIssuer(c *x509.Certificate) *x509.Certificate {
	if v.roots == nil {
		return nil
	}
	// The pool does not expose its certificates by subject, so verify at a
	// time inside c's own validity and return the root of the chain found.
	chains, err := c.Verify(x509.VerifyOptions{Roots: v.roots, CurrentTime: c.NotBefore.Add(time.Second),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil || len(chains) == 0 {
		return nil
	}
	return chains[0][len(chains[0])-1]
}

// dateProblem reports whether c is outside its validity period at now.
func dateProblem(c *x509.Certificate, now time.Time) (VerifyKind, bool) {
	switch {
	case now.After(c.NotAfter):
		return KindExpired, true
	case now.Before(c.NotBefore):
		return KindNotYetValid, true
	}
	return "", false
}

// verifyName is stage 2. byCN reports that the name matched the CN of a
// certificate without DNS SAN, which earns the caller a warning.
func (v *verifier) verifyName(leaf *x509.Certificate) (byCN bool, err error) {
	ok, byCN := MatchName(leaf, v.name)
	if ok {
		return byCN, nil
	}
	return false, &VerifyError{Stage: StageName, Kind: KindNameMismatch, Cert: leaf, Roots: v.rootsName,
		Name: v.name, Names: CertNames(leaf), Now: v.clock()}
}

// warnCN writes the CN-only warning once per configuration: a client that
// reconnects every few seconds must not fill its log with it.
func (v *verifier) warnCN(leaf *x509.Certificate) {
	if v.warn == nil {
		return
	}
	v.warnOnce.Do(func() {
		fmt.Fprintln(v.warn, CNWarning(leaf))
	})
}

// CNWarning is the one-line warning for a certificate whose CN, not a SAN,
// matched the name.
func CNWarning(leaf *x509.Certificate) string {
	return fmt.Sprintf("Warning: the server's certificate (CN=%s) has no DNS subjectAltName, so its CN was matched; CN-only certificates are deprecated (RFC 6125) — reissue it with a SAN (mamori ca issue server --dns %s)",
		leaf.Subject.CommonName, leaf.Subject.CommonName)
}

func (v *verifier) clock() time.Time {
	if v.now != nil {
		return v.now()
	}
	return time.Now()
}

// MatchName reports whether cert is valid for name as OpenSSL's host check
// (and so Mosquitto) decides: an IP address matches an IP SAN; a DNS name
// matches a DNS SAN, with a wildcard allowed as the whole leftmost label
// (RFC 6125 §6.4.3). When the certificate has no DNS SAN, its subject CN is
// matched instead (byCN is then true): the seeds' "openssl x509 -req"
// certificates carry only a CN, and OpenSSL accepts them.
func MatchName(cert *x509.Certificate, name string) (ok, byCN bool) {
	name = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(name)), ".")
	if name == "" || cert == nil {
		return false, false
	}
	if ip := net.ParseIP(strings.Trim(name, "[]")); ip != nil {
		for _, sip := range cert.IPAddresses {
			if sip.Equal(ip) {
				return true, false
			}
		}
		// A certificate with no SAN at all may carry the address in its CN.
		if len(cert.DNSNames) == 0 && len(cert.IPAddresses) == 0 {
			if cip := net.ParseIP(cert.Subject.CommonName); cip != nil && cip.Equal(ip) {
				return true, true
			}
		}
		return false, false
	}
	for _, d := range cert.DNSNames {
		if matchDNS(d, name) {
			return true, false
		}
	}
	if len(cert.DNSNames) == 0 && cert.Subject.CommonName != "" && matchDNS(cert.Subject.CommonName, name) {
		return true, true
	}
	return false, false
}

// matchDNS matches one certificate name (possibly "*.example.com") against
// a host name, case-insensitively.
func matchDNS(pattern, host string) bool {
	pattern = strings.TrimSuffix(strings.ToLower(pattern), ".")
	if pattern == host {
		return true
	}
	if !strings.HasPrefix(pattern, "*.") {
		return false
	}
	suffix := pattern[1:] // ".example.com"
	// The wildcard covers exactly one label, never a public suffix alone
	// ("*.com"), and never an IP address.
	if strings.Count(suffix, ".") < 2 || !strings.HasSuffix(host, suffix) {
		return false
	}
	label := host[:len(host)-len(suffix)]
	return label != "" && !strings.Contains(label, ".")
}

// CertNames lists the names cert is valid for in stage 2: DNS and IP SANs,
// or its CN when it has no DNS SAN.
func CertNames(cert *x509.Certificate) []string {
	var names []string
	names = append(names, cert.DNSNames...)
	for _, ip := range cert.IPAddresses {
		names = append(names, ip.String())
	}
	if len(cert.DNSNames) == 0 && cert.Subject.CommonName != "" {
		names = append(names, cert.Subject.CommonName)
	}
	return names
}

// certName is how messages name a certificate: "CN=mqtt.local", or the
// whole subject when it has no CN.
func certName(c *x509.Certificate) string {
	if c == nil {
		return "(none)"
	}
	if c.Subject.CommonName != "" {
		return "CN=" + c.Subject.CommonName
	}
	if s := c.Subject.String(); s != "" {
		return s
	}
	return "(empty subject)"
}

// issuerName is the issuer's CN, or the whole issuer DN: "CA1".
func issuerName(c *x509.Certificate) string {
	if c == nil {
		return ""
	}
	if c.Issuer.CommonName != "" {
		return c.Issuer.CommonName
	}
	if s := c.Issuer.String(); s != "" {
		return s
	}
	return "(empty issuer)"
}

// isSelfIssued reports whether c names itself as its issuer and its
// signature checks with its own key.
func isSelfIssued(c *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, c.RawSubject) &&
		c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil
}

// nameList joins names for a sentence: "a", "a and b", "a, b and c".
func nameList(names []string) string {
	switch len(names) {
	case 0:
		return "no name"
	case 1:
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

func fmtTime(t time.Time) string {
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}
