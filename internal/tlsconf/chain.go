package tlsconf

import (
	"bytes"
	"crypto/x509"
	"strings"
)

// maxChainDepth bounds chain completion (OpenSSL's default verify depth is
// 100; real chains have two or three certificates).
const maxChainDepth = 10

// completeChain returns the item to serve for it in a state whose CAs are
// cas. A certfile that holds only the leaf is completed the way OpenSSL
// completes it for Mosquitto: the issuers are looked up in cafile/capath,
// up to and including the trust anchor, and sent after the leaf — clients
// that trust only the root then still find the intermediates. A certfile
// with its own chain is served as written. The item is copied, never
// changed: items are shared between states.
func completeChain(it *certItem, cas []*caItem) *certItem {
	n := it.own
	if n == 0 || n > len(it.cert.Certificate) {
		n = len(it.cert.Certificate)
	}
	own := it.cert.Certificate[:n:n]
	var added []*x509.Certificate
	if n == 1 {
		added = issuers(it.leaf, cas)
	}
	if len(added) == 0 && len(it.cert.Certificate) == n {
		return it
	}
	cp := *it
	cert := *it.cert
	cert.Certificate = own
	for _, c := range added {
		cert.Certificate = append(cert.Certificate, c.Raw)
	}
	cp.cert = &cert
	cp.added = added
	return &cp
}

// issuers walks from leaf up through the CA certificates: each step the
// certificate whose subject is the current one's issuer and whose key
// signed it. Validity dates are not checked (OpenSSL builds the chain it
// sends the same way; the client judges it). It stops at a self-signed
// certificate, a loop or a missing issuer.
func issuers(leaf *x509.Certificate, cas []*caItem) []*x509.Certificate {
	var out []*x509.Certificate
	cur := leaf
	for len(out) < maxChainDepth {
		if isSelfSigned(cur) {
			break
		}
		next := findIssuer(cur, cas)
		if next == nil || next.Equal(leaf) || containsCert(out, next) {
			break
		}
		out = append(out, next)
		cur = next
	}
	return out
}

func findIssuer(c *x509.Certificate, cas []*caItem) *x509.Certificate {
	for _, ca := range cas {
		for _, x := range ca.certs {
			if bytes.Equal(x.RawSubject, c.RawIssuer) && c.CheckSignatureFrom(x) == nil {
				return x
			}
		}
	}
	return nil
}

func isSelfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawSubject, c.RawIssuer) && c.CheckSignatureFrom(c) == nil
}

func containsCert(list []*x509.Certificate, c *x509.Certificate) bool {
	for _, x := range list {
		if x.Equal(c) {
			return true
		}
	}
	return false
}

// describeChain names the certificates served after the leaf, for the
// start-up log: "chain: CN=inter, CN=root (completed from cafile ...)".
func describeChain(it *certItem, cas []*caItem) string {
	n := len(it.cert.Certificate) - 1
	if n == 0 {
		return "no chain certificates (certfile holds only the leaf and cafile/capath has no issuer of it)"
	}
	var names []string
	if len(it.added) > 0 {
		for _, c := range it.added {
			names = append(names, subject(c))
		}
		var from []string
		for _, ca := range cas {
			from = append(from, ca.name())
		}
		return "chain: " + strings.Join(names, " <- ") + " (completed from " + strings.Join(from, ", ") + ")"
	}
	for _, der := range it.cert.Certificate[1:] {
		if c, err := x509.ParseCertificate(der); err == nil {
			names = append(names, subject(c))
		}
	}
	return "chain: " + strings.Join(names, " <- ") + " (from the certfile)"
}
