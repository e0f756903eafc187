package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"software.sslmate.com/src/go-pkcs12"
)

// IssueRequest describes a leaf certificate to issue.
//
// Certificates always carry a subjectAltName, because modern clients (Go,
// MQTT.js, browsers, Python's ssl with hostname checking) ignore the CN:
//
//   - server: the DNS names and IP addresses given; when none are given, the
//     CN becomes a DNS or IP SAN. The CN defaults to the first name.
//   - client: the e-mail addresses, DNS names, IPs and URIs given; when none
//     are given, the CN becomes the SAN that fits its form (an IP address,
//     an e-mail address, a DNS name), or else the URI
//     "urn:mamori:client:CN". The CN is still what Mosquitto's
//     use_identity_as_username turns into the user name.
type IssueRequest struct {
	Kind           CertKind
	Name           string // base name of the files; default derived from the CN
	CommonName     string
	DNSNames       []string
	IPAddresses    []net.IP
	EmailAddresses []string
	URIs           []*url.URL
	Days           int     // default DefaultLeafDays; never beyond the issuer's expiry
	KeyType        KeyType // default the CA's key type (ignored by SignCSR)
	// Force issues even when a valid certificate of that name exists; the
	// files are replaced and the old certificate stays valid until revoked.
	Force bool
}

// Issued is the result of Issue and SignCSR.
type Issued struct {
	Record      Record
	Certificate *x509.Certificate
	Chain       []*x509.Certificate // the certificate, then the intermediate if any
	CertFile    string
	ChainFile   string
	KeyFile     string // empty for SignCSR
}

// Issue makes a key and a certificate for it, and writes
// issued/NAME.key (0600), issued/NAME.crt and issued/NAME-chain.crt.
func (c *CA) Issue(req IssueRequest) (*Issued, error) {
	kt := req.KeyType
	if kt == "" {
		kt = c.idx.KeyType
	}
	if err := normalizeRequest(&req); err != nil {
		return nil, err
	}
	signer, err := c.unlockKey()
	if err != nil {
		return nil, err
	}
	key, err := GenerateKey(kt)
	if err != nil {
		return nil, err
	}
	return c.issue(req, nil, key.Public(), key, signer)
}

// SignCSR issues a certificate for a key the device made itself. The
// subject comes from the CSR; the SANs too, unless req names any (the CA
// decides what a certificate vouches for, so req overrides the CSR). The
// CSR's signature is checked, proving the requester holds the key.
func (c *CA) SignCSR(csr *x509.CertificateRequest, req IssueRequest) (*Issued, error) {
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("CSR signature does not verify: %w", err)
	}
	if err := checkPublicKey(csr.PublicKey); err != nil {
		return nil, fmt.Errorf("CSR: %w", err)
	}
	if req.CommonName == "" {
		req.CommonName = csr.Subject.CommonName
	}
	if len(req.DNSNames)+len(req.IPAddresses)+len(req.EmailAddresses)+len(req.URIs) == 0 {
		req.DNSNames = csr.DNSNames
		req.IPAddresses = csr.IPAddresses
		req.EmailAddresses = csr.EmailAddresses
		req.URIs = csr.URIs
	}
	if err := normalizeRequest(&req); err != nil {
		return nil, err
	}
	signer, err := c.unlockKey()
	if err != nil {
		return nil, err
	}
	return c.issue(req, csr, csr.PublicKey, nil, signer)
}

// checkPublicKey refuses keys too weak to certify.
func checkPublicKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return fmt.Errorf("RSA key of %d bits is too weak (2048 at least)", k.N.BitLen())
		}
	case *ecdsa.PublicKey, ed25519.PublicKey:
	default:
		return fmt.Errorf("unsupported public key type %T", pub)
	}
	return nil
}

// normalizeRequest fills in defaults and checks names, so bad input fails
// before the CA key is unlocked.
func normalizeRequest(req *IssueRequest) error {
	// Work on a copy: names are lower-cased in place.
	req.DNSNames = append([]string(nil), req.DNSNames...)
	for i, d := range req.DNSNames {
		d = strings.ToLower(strings.TrimSuffix(d, "."))
		if !validDNSName(d) {
			return fmt.Errorf("%q is not a valid DNS name", req.DNSNames[i])
		}
		req.DNSNames[i] = d
	}
	for _, e := range req.EmailAddresses {
		if at := strings.LastIndexByte(e, '@'); at <= 0 || at == len(e)-1 || strings.ContainsAny(e, " <>") {
			return fmt.Errorf("%q is not a valid e-mail address", e)
		}
	}
	noSANs := len(req.DNSNames)+len(req.IPAddresses)+len(req.EmailAddresses)+len(req.URIs) == 0
	switch req.Kind {
	case ServerCert:
		if noSANs {
			if req.CommonName == "" {
				return errors.New("a server certificate needs the names clients connect to: --dns NAME and/or --ip ADDRESS")
			}
			if ip := net.ParseIP(req.CommonName); ip != nil {
				req.IPAddresses = []net.IP{ip}
			} else if d := strings.ToLower(req.CommonName); validDNSName(d) {
				req.DNSNames = []string{d}
			} else {
				return fmt.Errorf("the CN %q is not a host name or IP address: give --dns or --ip", req.CommonName)
			}
		}
		if req.CommonName == "" {
			if len(req.DNSNames) > 0 {
				req.CommonName = req.DNSNames[0]
			} else {
				req.CommonName = req.IPAddresses[0].String()
			}
		}
	case ClientCert:
		if req.CommonName == "" {
			return errors.New("a client certificate needs --cn: its identity, which use_identity_as_username makes the user name")
		}
		if noSANs {
			cn := req.CommonName
			switch at := strings.LastIndexByte(cn, '@'); {
			case net.ParseIP(cn) != nil:
				req.IPAddresses = []net.IP{net.ParseIP(cn)}
			case at > 0 && at < len(cn)-1 && !strings.ContainsAny(cn, " <>"):
				req.EmailAddresses = []string{cn}
			case validDNSName(strings.ToLower(cn)) && !strings.HasPrefix(cn, "*"):
				req.DNSNames = []string{strings.ToLower(cn)}
			default:
				req.URIs = []*url.URL{{Scheme: "urn", Opaque: "mamori:client:" + url.PathEscape(cn)}}
			}
		}
	default:
		return fmt.Errorf("unknown certificate kind %q (want server or client)", req.Kind)
	}
	if req.Name == "" {
		req.Name = fileName(req.CommonName)
	} else if !validFileName(req.Name) {
		return fmt.Errorf("name %q: use letters, digits, '.', '_', '-' and '@' only", req.Name)
	}
	if req.Days <= 0 {
		req.Days = DefaultLeafDays
	}
	return nil
}

// validDNSName accepts host names, with an optional leading "*." wildcard
// and underscores (common in internal names, and accepted by Go's verifier).
func validDNSName(d string) bool {
	d = strings.TrimPrefix(d, "*.")
	if d == "" || len(d) > 253 {
		return false
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}

func validFileName(n string) bool {
	if n == "" || len(n) > 100 || n[0] == '.' || n[0] == '-' {
		return false
	}
	for _, r := range n {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-@", r)) {
			return false
		}
	}
	return true
}

// fileName derives a safe file name from a CN: "*.example.com" becomes
// "wildcard.example.com", other unsafe characters become '-'.
func fileName(cn string) string {
	if strings.HasPrefix(cn, "*.") {
		cn = "wildcard" + cn[1:]
	}
	b := []byte(cn)
	for i, r := range b {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-@", rune(r))) {
			b[i] = '-'
		}
	}
	n := strings.Trim(string(b), ".-")
	if len(n) > 100 {
		n = n[:100]
	}
	if n == "" {
		n = "cert"
	}
	return n
}

// leafTemplate builds the template of a server or client certificate.
func (c *CA) leafTemplate(req IssueRequest, pub crypto.PublicKey, now time.Time) (*x509.Certificate, error) {
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	ski, err := subjectKeyID(pub)
	if err != nil {
		return nil, err
	}
	// Validity counts from the backdated start, minus the one second that
	// RFC 5280's inclusive notAfter adds, so that "825 days" is within
	// Apple's limit as Apple measures it.
	notBefore := now.Add(-backdate)
	notAfter := notBefore.AddDate(0, 0, req.Days).Add(-time.Second)
	// A certificate outliving its issuer fails verification anyway; cut it
	// at the issuer's expiry so the date shown is the real one.
	if notAfter.After(c.issuer.NotAfter) {
		notAfter = c.issuer.NotAfter
	}
	t := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: req.CommonName},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		BasicConstraintsValid: true,
		SubjectKeyId:          ski,
		DNSNames:              req.DNSNames,
		IPAddresses:           req.IPAddresses,
		EmailAddresses:        req.EmailAddresses,
		URIs:                  req.URIs,
		KeyUsage:              x509.KeyUsageDigitalSignature,
	}
	switch req.Kind {
	case ServerCert:
		t.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		// RSA key exchange (TLS 1.2 without ECDHE, still offered by some
		// OpenSSL clients) encrypts to the server key.
		if _, ok := pub.(*rsa.PublicKey); ok {
			t.KeyUsage |= x509.KeyUsageKeyEncipherment
		}
	case ClientCert:
		t.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	return t, nil
}

// issue signs and writes a leaf certificate; key is nil for a CSR.
func (c *CA) issue(req IssueRequest, csr *x509.CertificateRequest, pub crypto.PublicKey, key, signer crypto.Signer) (*Issued, error) {
	now := c.now()
	tmpl, err := c.leafTemplate(req, pub, now)
	if err != nil {
		return nil, err
	}
	if csr != nil && req.CommonName == csr.Subject.CommonName {
		// Keep the requester's full subject (O, OU, C…) as openssl x509 -req does.
		tmpl.RawSubject = csr.RawSubject
	}
	var out *Issued
	err = c.update(func(idx *index) error {
		if !req.Force {
			for _, r := range idx.Certificates {
				if r.Name == req.Name && r.State(now) == StatusValid {
					return fmt.Errorf("a valid certificate named %q exists (serial %s, until %s): choose another --name, or --force to replace its files (the old one stays valid until revoked)",
						r.Name, r.Serial, r.NotAfter.Format("2006-01-02"))
				}
			}
		}
		cert, err := createCert(tmpl, c.issuer, pub, signer)
		if err != nil {
			return fmt.Errorf("sign certificate: %w", err)
		}
		issued := filepath.Join(c.dir, IssuedDir)
		// Searchable, like the CA directory: certificates are public (0644)
		// and a broker that runs as its own user reads its certfile here;
		// every key is 0600.
		if err := os.MkdirAll(issued, 0o755); err != nil {
			return err
		}
		openLegacyDir(issued)
		rel := func(suffix string) string { return filepath.Join(IssuedDir, req.Name+suffix) }
		out = &Issued{Certificate: cert, Chain: []*x509.Certificate{cert}}
		if c.idx.Intermediate {
			out.Chain = append(out.Chain, c.issuer)
		}
		rec := Record{
			Serial:    SerialHex(cert.SerialNumber),
			Name:      req.Name,
			Kind:      req.Kind,
			Subject:   cert.Subject.String(),
			SANs:      sanStrings(cert),
			Key:       KeyDescription(cert.PublicKey),
			NotBefore: cert.NotBefore.UTC(),
			NotAfter:  cert.NotAfter.UTC(),
			Status:    StatusValid,
			CertFile:  rel(".crt"),
			ChainFile: rel("-chain.crt"),
			FromCSR:   csr != nil,
		}
		if key != nil {
			rec.KeyFile = rel(".key")
			if err := writeKey(filepath.Join(c.dir, rec.KeyFile), key, nil); err != nil {
				return err
			}
		} else {
			// A stale key from an earlier certificate of that name would
			// not match the new certificate.
			os.Remove(filepath.Join(c.dir, rel(".key")))
		}
		if err := WriteFileAtomic(filepath.Join(c.dir, rec.CertFile), EncodeCertificatesPEM(cert), 0o644); err != nil {
			return err
		}
		if err := WriteFileAtomic(filepath.Join(c.dir, rec.ChainFile), EncodeCertificatesPEM(out.Chain...), 0o644); err != nil {
			return err
		}
		idx.Certificates = append(idx.Certificates, rec)
		out.Record = rec
		return nil
	})
	if err != nil {
		return nil, err
	}
	out.CertFile = filepath.Join(c.dir, out.Record.CertFile)
	out.ChainFile = filepath.Join(c.dir, out.Record.ChainFile)
	if out.Record.KeyFile != "" {
		out.KeyFile = filepath.Join(c.dir, out.Record.KeyFile)
	}
	return out, nil
}

// sanStrings lists a certificate's SANs in openssl's notation.
func sanStrings(c *x509.Certificate) []string {
	var s []string
	for _, d := range c.DNSNames {
		s = append(s, "DNS:"+d)
	}
	for _, ip := range c.IPAddresses {
		s = append(s, "IP:"+ip.String())
	}
	for _, e := range c.EmailAddresses {
		s = append(s, "email:"+e)
	}
	for _, u := range c.URIs {
		s = append(s, "URI:"+u.String())
	}
	return s
}

// ExportOptions select the PKCS#12 encryption.
type ExportOptions struct {
	Password string
	// Legacy uses PBE-SHA1-3DES with a SHA-1 MAC instead of AES-256/PBKDF2/
	// SHA-256: what Windows before Server 2019 / Windows 10 1709, Java
	// before 8u301 and OpenSSL 1.0 need. OpenSSL 3 still reads it.
	Legacy bool
}

// ExportPKCS12 bundles an issued certificate (by serial or name), its key
// and the CA chain up to and including the root, so that importing the
// bundle on Windows or in a Java keystore also brings the CA.
func (c *CA) ExportPKCS12(selector string, opts ExportOptions) ([]byte, Record, error) {
	rec, err := c.Find(selector)
	if err != nil {
		return nil, Record{}, err
	}
	if rec.Status == StatusRevoked {
		return nil, rec, fmt.Errorf("%s (serial %s) is revoked: issue a new certificate instead", rec.Name, rec.Serial)
	}
	if rec.KeyFile == "" {
		return nil, rec, fmt.Errorf("%s was signed from a CSR: its key never left the device, so there is nothing to bundle", rec.Name)
	}
	certs, err := LoadCertificates(filepath.Join(c.dir, rec.CertFile))
	if err != nil {
		return nil, rec, err
	}
	if SerialHex(certs[0].SerialNumber) != rec.Serial {
		return nil, rec, fmt.Errorf("%s now holds a newer certificate than serial %s; export it by name", rec.CertFile, rec.Serial)
	}
	key, err := LoadPrivateKey(filepath.Join(c.dir, rec.KeyFile), nil)
	if err != nil {
		return nil, rec, err
	}
	if err := CheckKeyPair(certs[0], key); err != nil {
		return nil, rec, fmt.Errorf("%s: %w", rec.KeyFile, err)
	}
	var chain []*x509.Certificate
	if c.idx.Intermediate {
		chain = append(chain, c.issuer)
	}
	chain = append(chain, c.root)
	enc := pkcs12.Modern
	if opts.Legacy {
		enc = pkcs12.LegacyDES
	}
	data, err := enc.Encode(key, certs[0], chain, opts.Password)
	if err != nil {
		return nil, rec, fmt.Errorf("encode PKCS#12: %w", err)
	}
	return data, rec, nil
}
