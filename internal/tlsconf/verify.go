package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/mamori-mqtt/mamori/internal/auth"
	"github.com/mamori-mqtt/mamori/internal/pki"
)

// RevokedError is the handshake error for a client certificate (or one of
// its intermediates) listed in a CRL.
type RevokedError struct {
	Subject   string    // the revoked certificate's subject
	Serial    string    // its serial number in hex
	Source    string    // the CRL: "crlfile PATH" or "crl_url URL"
	RevokedAt time.Time // the revocation date in the CRL
	Reason    int       // CRL reason code; 0 when unspecified
}

// Error says which certificate, which CRL and when.
func (e *RevokedError) Error() string {
	s := fmt.Sprintf("client certificate %s (serial %s) is revoked by %s since %s", e.Subject, e.Serial, e.Source,
		e.RevokedAt.UTC().Format(time.RFC3339))
	if e.Reason != 0 {
		s += " (" + pki.ReasonName(e.Reason) + ")"
	}
	return s
}

// verifyConnection runs after the chain was verified, on full handshakes
// and on resumed sessions alike: a session resumed after its certificate
// was revoked, or after its CA was removed, is refused.
func (s *Server) verifyConnection(cs tls.ConnectionState) error {
	st := s.state.Load()
	if st.spec.clientAuth == tls.NoClientCert || len(cs.PeerCertificates) == 0 {
		return nil
	}
	chains := cs.VerifiedChains
	if cs.DidResume {
		var err error
		if chains, err = st.verifyChain(cs.PeerCertificates, s.o.Now()); err != nil {
			return err
		}
	}
	if len(chains) == 0 {
		return nil
	}
	if re := st.revocation(chains); re != nil {
		return re
	}
	return nil
}

// verifyChain verifies a client certificate chain against the snapshot's
// CAs, as crypto/tls does on a full handshake.
func (st *state) verifyChain(certs []*x509.Certificate, now time.Time) ([][]*x509.Certificate, error) {
	if st.pool == nil {
		return nil, nil
	}
	opts := x509.VerifyOptions{Roots: st.pool, Intermediates: x509.NewCertPool(), CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	for _, c := range certs[1:] {
		opts.Intermediates.AddCert(c)
	}
	chains, err := certs[0].Verify(opts)
	if err != nil {
		return nil, &tls.CertificateVerificationError{UnverifiedCertificates: certs, Err: err}
	}
	return chains, nil
}

// revocation returns why the certificate is revoked, or nil. A chain
// counts as revoked when any certificate in it below the root is listed in
// a CRL of its issuer; the certificate is revoked when every chain is.
func (st *state) revocation(chains [][]*x509.Certificate) *RevokedError {
	crls := st.allCRLs()
	if len(crls) == 0 {
		return nil
	}
	var first *RevokedError
	for _, chain := range chains {
		re := chainRevoked(chain, crls)
		if re == nil {
			return nil
		}
		if first == nil {
			first = re
		}
	}
	return first
}

func chainRevoked(chain []*x509.Certificate, crls []*crlItem) *RevokedError {
	for i := 0; i+1 < len(chain); i++ {
		for _, crl := range crls {
			if e, ok := crl.revokes(chain[i], chain[i+1]); ok {
				return &RevokedError{Subject: subject(chain[i]), Serial: serialHex(chain[i].SerialNumber),
					Source: crl.source, RevokedAt: e.RevocationTime, Reason: e.ReasonCode}
			}
		}
	}
	return nil
}

// connectionState finds the TLS state of a broker connection: a *tls.Conn,
// or a wrapper (a WebSocket connection over TLS) that either has a
// ConnectionState method or unwraps with NetConn.
func connectionState(nc net.Conn) (tls.ConnectionState, bool) {
	for range 8 {
		switch c := nc.(type) {
		case interface{ ConnectionState() tls.ConnectionState }:
			return c.ConnectionState(), true
		case interface{ NetConn() net.Conn }:
			nc = c.NetConn()
		default:
			return tls.ConnectionState{}, false
		}
	}
	return tls.ConnectionState{}, false
}

// Revoked reports whether the client certificate of an open connection is
// revoked by the current CRLs.
func (s *Server) Revoked(nc net.Conn) (*RevokedError, bool) {
	cs, ok := connectionState(nc)
	if !ok || len(cs.VerifiedChains) == 0 {
		return nil, false
	}
	re := s.state.Load().revocation(cs.VerifiedChains)
	return re, re != nil
}

// refused says why an open connection's client certificate would not be
// let in now: revoked by the current CRLs, or no longer leading to a CA of
// the current cafile/capath (a CA taken out of them). Empty when it would.
func (s *Server) refused(nc net.Conn) string {
	cs, ok := connectionState(nc)
	if !ok || len(cs.VerifiedChains) == 0 {
		return ""
	}
	st := s.state.Load()
	// Trust is checked, not expiry: a certificate that expired during a
	// connection is not cut off here (nor anywhere, as in Mosquitto), so
	// the check runs at a moment when every certificate was valid.
	at := s.o.Now()
	for _, c := range cs.PeerCertificates {
		if c.NotAfter.Before(at) {
			at = c.NotAfter
		}
	}
	chains, err := st.verifyChain(cs.PeerCertificates, at)
	if err != nil {
		_, why := classify(err)
		return why + " (cafile/capath changed)"
	}
	if len(chains) == 0 {
		chains = cs.VerifiedChains
	}
	if re := st.revocation(chains); re != nil {
		return re.Error()
	}
	return ""
}

// closeRevoked closes the connections whose certificate the current CRLs
// revoke, or that the current CAs no longer accept, logging each with the
// certificate's subject and serial.
func (s *Server) closeRevoked() {
	if s.o.Disconnect == nil || s.state.Load().spec.clientAuth == tls.NoClientCert {
		return
	}
	n := s.o.Disconnect(func(nc net.Conn, clientID string) bool {
		why := s.refused(nc)
		if why != "" {
			s.log.Warn(fmt.Sprintf("%s: closing client %q from %s: %s", s.name, clientID, nc.RemoteAddr(), why))
		}
		return why != ""
	})
	if n > 0 {
		s.log.Info(fmt.Sprintf("%s: closed %d connection(s) whose client certificate is now revoked or no longer trusted", s.name, n))
	}
}

// Identity returns the function the broker calls during CONNECT to take
// the user name from the client certificate (use_identity_as_username:
// its CN; use_subject_as_username: the whole subject in Mosquitto's
// format), or nil when the listener does neither.
func (s *Server) Identity() func(net.Conn) (string, bool, error) {
	sp := s.state.Load().spec
	if !sp.identity {
		return nil
	}
	return func(nc net.Conn) (string, bool, error) {
		cs, ok := connectionState(nc)
		if !ok {
			return "", false, errors.New("the connection is not TLS, so it has no client certificate")
		}
		if len(cs.PeerCertificates) == 0 {
			return "", false, errors.New("no client certificate: this listener takes the user name from the certificate (use_identity_as_username), so one is required")
		}
		if len(cs.VerifiedChains) == 0 {
			return "", false, errors.New("the client certificate was not verified (set require_certificate true and cafile)")
		}
		name, err := auth.CertUsername(cs.PeerCertificates[0], sp.useSubject)
		if err != nil {
			return "", false, err
		}
		return name, true, nil
	}
}
