package tlsconf

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mamori-mqtt/mamori/internal/config"
	"github.com/mamori-mqtt/mamori/internal/pki"
	"github.com/mamori-mqtt/mamori/internal/tlsprobe"
)

// digest identifies the content an item was loaded from, so that a reload
// parses only what changed and a file rewritten with the same bytes is not
// reported as reloaded.
type digest [sha256.Size]byte

// certItem is one certfile/keyfile pair as loaded.
type certItem struct {
	ck   config.CertKey
	sum  digest
	cert *tls.Certificate
	leaf *x509.Certificate
	// own is how many certificates the certfile held (leaf first); cert
	// may carry more, added from cafile/capath (completeChain).
	own   int
	added []*x509.Certificate
}

// name is how logs name the pair: "certfile /etc/mamori/server.crt".
func (c *certItem) name() string { return "certfile " + c.ck.CertFile.Path }

// readCertPair reads the bytes of a pair, for its digest.
func readCertPair(ck config.CertKey) (digest, error) {
	h := sha256.New()
	for _, f := range []config.File{ck.CertFile, ck.KeyFile} {
		if !f.IsSet() {
			continue
		}
		b, err := os.ReadFile(f.Path)
		if err != nil {
			return digest{}, err
		}
		h.Write(b)
		h.Write([]byte{0})
	}
	h.Write([]byte(ck.Password))
	var d digest
	copy(d[:], h.Sum(nil))
	return d, nil
}

// loadCertItem loads a pair. The error names the option line at fault:
// the keyfile line for a key that is missing, encrypted or of the wrong
// kind, the certfile line otherwise.
func loadCertItem(ck config.CertKey) (*certItem, error) {
	if !ck.CertFile.IsSet() {
		return nil, fmt.Errorf("%s: keyfile %s has no certfile to go with it", ck.KeyFile.Pos, ck.KeyFile.Path)
	}
	sum, err := readCertPair(ck)
	if err == nil {
		var c tls.Certificate
		c, err = pki.LoadKeyPair(ck.CertFile.Path, ck.KeyFile.Path, []byte(ck.Password))
		if err == nil {
			return &certItem{ck: ck, sum: sum, cert: &c, leaf: c.Leaf, own: len(c.Certificate)}, nil
		}
	}
	pos, opt := ck.CertFile.Pos, "certfile"
	if ck.KeyFile.IsSet() && blamesKey(err, ck.KeyFile.Path) {
		pos, opt = ck.KeyFile.Pos, "keyfile"
	}
	if errors.Is(err, pki.ErrWrongPassword) || errors.Is(err, pki.ErrPasswordRequired) {
		err = fmt.Errorf("%w (set it with keyfile_password)", err)
	}
	return nil, fmt.Errorf("%s: %s: %w", pos, opt, err)
}

// blamesKey reports whether err is about the key file rather than the
// certificate file.
func blamesKey(err error, keyFile string) bool {
	var pe *pki.PasswordError
	if errors.As(err, &pe) {
		return pe.File == keyFile
	}
	var ke *pki.KindError
	if errors.As(err, &ke) {
		return ke.File == keyFile
	}
	var pathErr *os.PathError
	if errors.As(err, &pathErr) {
		return pathErr.Path == keyFile
	}
	return false
}

// caItem is the trust anchors of cafile or of capath.
type caItem struct {
	file  config.File
	isDir bool
	sum   digest
	certs []*x509.Certificate
}

func (c *caItem) name() string {
	if c.isDir {
		return "capath " + c.file.Path
	}
	return "cafile " + c.file.Path
}

// readCAPath reads every regular file of a capath directory, sorted by
// name. Files that hold no certificate (an index, a README, a CRL) are
// skipped: OpenSSL looks certificates up there by hashed name, mamori
// loads every certificate it finds, so c_rehash is not needed.
func readCAPath(dir string) (map[string][]byte, digest, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, digest{}, err
	}
	files := map[string][]byte{}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		st, err := os.Stat(p) // follows symlinks, as c_rehash makes them
		if err != nil || !st.Mode().IsRegular() || st.Size() > 1<<20 {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, digest{}, err
		}
		files[e.Name()] = b
		names = append(names, e.Name())
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		h.Write([]byte(n))
		h.Write([]byte{0})
		h.Write(files[n])
	}
	var d digest
	copy(d[:], h.Sum(nil))
	return files, d, nil
}

// loadCA loads cafile (isDir false) or capath.
func loadCA(f config.File, isDir bool) (*caItem, error) {
	it := &caItem{file: f, isDir: isDir}
	if !isDir {
		data, err := os.ReadFile(f.Path)
		if err != nil {
			return nil, fmt.Errorf("%s: cafile: %w", f.Pos, err)
		}
		it.sum = sha256.Sum256(data)
		certs, err := pki.ParseCertificates(data)
		if err != nil {
			var ke *pki.KindError
			if errors.As(err, &ke) && ke.File == "" {
				ke.File = f.Path
			}
			return nil, fmt.Errorf("%s: cafile: %w", f.Pos, err)
		}
		it.certs = certs
		return it, nil
	}
	files, sum, err := readCAPath(f.Path)
	if err != nil {
		return nil, fmt.Errorf("%s: capath: %w", f.Pos, err)
	}
	it.sum = sum
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if pki.Detect(files[n]) != pki.KindCertificate {
			continue
		}
		certs, err := pki.ParseCertificates(files[n])
		if err != nil {
			continue
		}
		it.certs = append(it.certs, certs...)
	}
	if len(it.certs) == 0 {
		return nil, fmt.Errorf("%s: capath: %s holds no CA certificate", f.Pos, f.Path)
	}
	return it, nil
}

// crlItem is one CRL, from a crlfile or a crl_url.
type crlItem struct {
	source string // "crlfile /path" or "crl_url https://..."
	pos    config.Pos
	sum    digest
	crl    *x509.RevocationList
	// revoked maps a serial number (big.Int.String) to its entry.
	revoked map[string]x509.RevocationListEntry
	loaded  time.Time
	// issuer is the CA certificate whose signature on the CRL was
	// verified when it was loaded (see verifyCRL); nil when there were no
	// CAs to verify it with.
	issuer *x509.Certificate

	// cached marks a crl_url CRL read from Options.CRLCacheDir at start
	// rather than fetched: the URL is still to be asked at once.
	cached bool

	// sigOK caches the outcome of checking the CRL's signature against an
	// issuer certificate, keyed by the issuer's DER.
	sigMu sync.Mutex
	sigOK map[string]bool
}

func newCRLItem(source string, pos config.Pos, data []byte, now time.Time) (*crlItem, error) {
	crl, err := pki.ParseCRL(data)
	if err != nil {
		return nil, err
	}
	return crlItemOf(source, pos, sha256.Sum256(data), crl, now), nil
}

func crlItemOf(source string, pos config.Pos, sum digest, crl *x509.RevocationList, now time.Time) *crlItem {
	it := &crlItem{source: source, pos: pos, sum: sum, crl: crl,
		revoked: make(map[string]x509.RevocationListEntry, len(crl.RevokedCertificateEntries)),
		loaded:  now, sigOK: map[string]bool{}}
	for _, e := range crl.RevokedCertificateEntries {
		if e.SerialNumber != nil {
			it.revoked[e.SerialNumber.String()] = e
		}
	}
	return it
}

// loadCRLFile loads a crlfile: every CRL in it, as OpenSSL (and so
// Mosquitto) does with a file that bundles one CRL per CA. Using only the
// first would silently ignore the revocations of the others.
func loadCRLFile(f config.File, now time.Time) ([]*crlItem, error) {
	data, err := os.ReadFile(f.Path)
	if err != nil {
		return nil, fmt.Errorf("%s: crlfile: %w", f.Pos, err)
	}
	crls, err := pki.ParseCRLs(data)
	if err != nil {
		var ke *pki.KindError
		if errors.As(err, &ke) && ke.File == "" {
			ke.File = f.Path
			return nil, fmt.Errorf("%s: crlfile: %w", f.Pos, ke)
		}
		return nil, fmt.Errorf("%s: crlfile %s: %w", f.Pos, f.Path, err)
	}
	sum := digest(sha256.Sum256(data))
	items := make([]*crlItem, len(crls))
	for i, crl := range crls {
		items[i] = crlItemOf("crlfile "+f.Path, f.Pos, sum, crl, now)
	}
	return items, nil
}

// stale reports whether the CRL's nextUpdate has passed.
func (c *crlItem) stale(now time.Time) bool {
	return !c.crl.NextUpdate.IsZero() && now.After(c.crl.NextUpdate)
}

// signedBy reports whether issuer signed the CRL, remembering the answer.
func (c *crlItem) signedBy(issuer *x509.Certificate) bool {
	key := string(issuer.Raw)
	c.sigMu.Lock()
	defer c.sigMu.Unlock()
	ok, known := c.sigOK[key]
	if !known {
		ok = c.crl.CheckSignatureFrom(issuer) == nil
		c.sigOK[key] = ok
	}
	return ok
}

// revokes returns the entry revoking cert, whose issuer is issuer, if this
// CRL is that issuer's and lists cert's serial.
func (c *crlItem) revokes(cert, issuer *x509.Certificate) (x509.RevocationListEntry, bool) {
	if !bytes.Equal(c.crl.RawIssuer, cert.RawIssuer) {
		return x509.RevocationListEntry{}, false
	}
	e, listed := c.revoked[cert.SerialNumber.String()]
	if !listed || !c.signedBy(issuer) {
		return x509.RevocationListEntry{}, false
	}
	return e, true
}

// describe is a one-line summary for the log.
func (c *crlItem) describe() string {
	s := fmt.Sprintf("issuer %s, %d revoked", c.crl.Issuer, len(c.revoked))
	if c.crl.Number != nil {
		s += ", number " + c.crl.Number.String()
	}
	if !c.crl.NextUpdate.IsZero() {
		s += ", next update " + c.crl.NextUpdate.UTC().Format(time.RFC3339)
	}
	return s
}

// describeCert names a certificate for the log: subject, serial and, for a
// server certificate, the names it serves.
func describeCert(c *x509.Certificate) string {
	return fmt.Sprintf("%s (serial %s, expires %s)", subject(c), serialHex(c.SerialNumber), c.NotAfter.UTC().Format("2006-01-02"))
}

func describeServerCert(c *x509.Certificate) string {
	names := tlsprobe.CertNames(c)
	if len(names) == 0 {
		return describeCert(c)
	}
	return describeCert(c) + " for " + strings.Join(names, ", ")
}

// subject is a certificate's subject, or "(empty subject)".
func subject(c *x509.Certificate) string {
	if s := c.Subject.String(); s != "" {
		return s
	}
	return "(empty subject)"
}

// serialHex formats a serial number as OpenSSL prints it: upper-case hex,
// an even number of digits.
func serialHex(n *big.Int) string {
	if n == nil {
		return "?"
	}
	s := strings.ToUpper(n.Text(16))
	if len(s)%2 == 1 {
		s = "0" + s
	}
	return s
}
