package tlsconf

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"golang.org/x/crypto/ocsp"
)

// staple is a fetched OCSP response for one server certificate.
type staple struct {
	raw        []byte
	status     int
	nextUpdate time.Time
}

// staples holds the OCSP responses by leaf certificate (its raw DER), so a
// certificate reload that keeps the same certificate keeps its staple.
type staples struct {
	mu sync.Mutex
	m  map[string]*staple
}

func (sp *staples) get(leaf *x509.Certificate) *staple {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return sp.m[string(leaf.Raw)]
}

func (sp *staples) set(leaf *x509.Certificate, st *staple) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.m == nil {
		sp.m = make(map[string]*staple)
	}
	sp.m[string(leaf.Raw)] = st
}

// withStaple returns the certificate to present with its OCSP response
// attached when one is held and still current (ocsp_stapling).
func (s *Server) withStaple(c *tls.Certificate, leaf *x509.Certificate) *tls.Certificate {
	st := s.staples.get(leaf)
	if st == nil || st.status != ocsp.Good || (!st.nextUpdate.IsZero() && s.now().After(st.nextUpdate)) {
		return c
	}
	cc := *c
	cc.OCSPStaple = st.raw
	return &cc
}

func (s *Server) now() time.Time {
	if s.o.Now != nil {
		return s.o.Now()
	}
	return time.Now()
}

// refreshStaples fetches an OCSP response for every server certificate
// from its issuer's responder (the certificate's AIA OCSP URL) and returns
// when the next fetch is due: halfway to the earliest nextUpdate, between
// one minute and one day.
//
// With onlyNew (the certificates changed), certificates that already hold a
// response are left alone: a reload does not ask the responders again.
func (s *Server) refreshStaples(ctx context.Context, onlyNew bool) time.Duration {
	st := s.state.Load()
	next := 24 * time.Hour
	for _, c := range st.certs {
		if have := s.staples.get(c.leaf); onlyNew && have != nil {
			if !have.nextUpdate.IsZero() {
				next = min(next, have.nextUpdate.Sub(s.now())/2)
			}
			continue
		}
		issuer := issuerOf(c)
		switch {
		case len(c.leaf.OCSPServer) == 0:
			s.warnOnce("ocsp "+c.name(), fmt.Sprintf("%s: ocsp_stapling: %s has no OCSP responder URL; nothing to staple",
				s.name, c.name()))
			continue
		case issuer == nil:
			s.warnOnce("ocsp issuer "+c.name(), fmt.Sprintf("%s: ocsp_stapling: %s has no issuer certificate in its chain; put the chain in certfile",
				s.name, c.name()))
			continue
		}
		resp, raw, err := s.fetchOCSP(ctx, c.leaf, issuer)
		if err != nil {
			s.log.Warn(fmt.Sprintf("%s: ocsp_stapling: %s: %v; the previous response, if any, stays in use", s.name, c.name(), err))
			next = min(next, 5*time.Minute)
			continue
		}
		if resp.Status == ocsp.Revoked {
			s.log.Error(fmt.Sprintf("%s: OCSP responder says %s (serial %x) is REVOKED since %s: replace the server certificate",
				s.name, c.name(), c.leaf.SerialNumber, resp.RevokedAt.Format(time.RFC3339)))
		}
		s.staples.set(c.leaf, &staple{raw: raw, status: resp.Status, nextUpdate: resp.NextUpdate})
		if !resp.NextUpdate.IsZero() {
			next = min(next, resp.NextUpdate.Sub(s.now())/2)
		}
	}
	return max(next, time.Minute)
}

// issuerOf is the certificate that signed the leaf, from the certfile chain.
func issuerOf(c *certItem) *x509.Certificate {
	for _, der := range c.cert.Certificate[1:] {
		ic, err := x509.ParseCertificate(der)
		if err == nil && c.leaf.CheckSignatureFrom(ic) == nil {
			return ic
		}
	}
	return nil
}

func (s *Server) fetchOCSP(ctx context.Context, leaf, issuer *x509.Certificate) (*ocsp.Response, []byte, error) {
	req, err := ocsp.CreateRequest(leaf, issuer, nil)
	if err != nil {
		return nil, nil, err
	}
	var lastErr error
	for _, url := range leaf.OCSPServer {
		hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(req))
		if err != nil {
			lastErr = err
			continue
		}
		hreq.Header.Set("Content-Type", "application/ocsp-request")
		hres, err := s.http.Do(hreq)
		if err != nil {
			lastErr = err
			continue
		}
		raw, err := io.ReadAll(io.LimitReader(hres.Body, 1<<20))
		hres.Body.Close()
		if err != nil {
			lastErr = err
			continue
		}
		if hres.StatusCode != http.StatusOK {
			lastErr = fmt.Errorf("responder %s answered %s", url, hres.Status)
			continue
		}
		resp, err := ocsp.ParseResponseForCert(raw, leaf, issuer)
		if err != nil {
			lastErr = fmt.Errorf("responder %s: %w", url, err)
			continue
		}
		return resp, raw, nil
	}
	return nil, nil, lastErr
}

// ocspLoop keeps the staples fresh until the server closes.
func (s *Server) ocspLoop() {
	defer s.wg.Done()
	onlyNew := false
	for {
		wait := s.refreshStaples(s.ctx, onlyNew)
		select {
		case <-s.ctx.Done():
			return
		case <-s.resyncOCSP:
			onlyNew = true
		case <-time.After(wait):
			onlyNew = false
		}
	}
}
