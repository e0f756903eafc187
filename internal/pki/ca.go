package pki

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// File names inside a CA directory (see the package documentation).
const (
	RootCertFile         = "ca.crt"
	RootKeyFile          = "ca.key"
	IntermediateCertFile = "intermediate.crt"
	IntermediateKeyFile  = "intermediate.key"
	CRLFile              = "crl.pem"
	IndexFile            = "index.json"
	IssuedDir            = "issued"
)

// Default validity periods.
const (
	// DefaultCADays is ten years: replacing a root means touching every
	// device, so it should outlive them.
	DefaultCADays = 3650
	// DefaultLeafDays is the longest validity Apple platforms accept for a
	// TLS server certificate (825 days, even from a private CA), so iOS and
	// macOS MQTT clients can connect; clients use the same for symmetry.
	DefaultLeafDays = 825
	// DefaultCRLDays is how long a CRL stays current (nextUpdate), as
	// openssl's default_crl_days.
	DefaultCRLDays = 30
)

// backdate is how far before "now" certificates start, so that a device
// whose clock runs a little behind still accepts a certificate issued a
// moment ago.
const backdate = time.Hour

// ErrNoCA is returned by Open when the directory holds no CA.
var ErrNoCA = errors.New("no CA here")

// ErrCAExists is returned by Init when the directory already holds a CA.
var ErrCAExists = errors.New("a CA already exists")

// Status is the state of an issued certificate.
type Status string

// The states shown by "ca list". Only valid and revoked are stored; expired
// is computed from the expiry date.
const (
	StatusValid   Status = "valid"
	StatusRevoked Status = "revoked"
	StatusExpired Status = "expired"
)

// CertKind is what a leaf certificate is for.
type CertKind string

// The kinds of leaf certificate the CA issues.
const (
	ServerCert CertKind = "server"
	ClientCert CertKind = "client"
)

// Record is one issued certificate in index.json.
type Record struct {
	Serial    string     `json:"serial"` // lower-case hex, see SerialHex
	Name      string     `json:"name"`   // base name of the files in issued/
	Kind      CertKind   `json:"kind"`
	Subject   string     `json:"subject"`
	SANs      []string   `json:"sans,omitempty"` // "DNS:…", "IP:…", "email:…", "URI:…"
	Key       string     `json:"key,omitempty"`  // key algorithm, e.g. "ECDSA P-256"
	NotBefore time.Time  `json:"not_before"`
	NotAfter  time.Time  `json:"not_after"`
	Status    Status     `json:"status"` // valid or revoked
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	Reason    string     `json:"reason,omitempty"`     // RFC 5280 reason name
	CertFile  string     `json:"cert_file,omitempty"`  // relative to the CA directory
	ChainFile string     `json:"chain_file,omitempty"` // relative to the CA directory
	KeyFile   string     `json:"key_file,omitempty"`   // empty when signed from a CSR
	FromCSR   bool       `json:"from_csr,omitempty"`
}

// State returns revoked, expired (at now) or valid.
func (r Record) State(now time.Time) Status {
	if r.Status == StatusRevoked {
		return StatusRevoked
	}
	if now.After(r.NotAfter) {
		return StatusExpired
	}
	return StatusValid
}

// index is the content of index.json: the CA's own settings and every
// certificate it issued.
type index struct {
	Version      int       `json:"version"`
	CommonName   string    `json:"common_name"`
	KeyType      KeyType   `json:"key_type"`
	Intermediate bool      `json:"intermediate"`
	Encrypted    bool      `json:"encrypted"`
	Created      time.Time `json:"created"`
	// CRLNumber is the number of the last CRL written; the next one gets a
	// larger one (RFC 5280 5.2.3 requires them to increase).
	CRLNumber    int64    `json:"crl_number"`
	Certificates []Record `json:"certificates"`
}

const indexVersion = 1

// CA is an open certificate authority directory.
type CA struct {
	dir      string
	idx      index
	root     *x509.Certificate
	issuer   *x509.Certificate // the intermediate, or the root
	password func() ([]byte, error)
	signer   crypto.Signer // the issuer's key, once unlocked
	now      func() time.Time
}

// InitOptions are the settings of a new CA.
type InitOptions struct {
	CommonName   string  // the root's CN; default "mamori CA (HOSTNAME)"
	KeyType      KeyType // default ECDSA P-256
	Intermediate bool    // create an intermediate that issues the leaves
	Days         int     // root validity; default DefaultCADays
	// Password encrypts the CA keys. An empty password is an error unless
	// NoPassword is set: an unencrypted CA key must be asked for explicitly.
	Password   []byte
	NoPassword bool
	Now        func() time.Time // nil means time.Now
}

// OpenOptions are the settings for opening an existing CA.
type OpenOptions struct {
	// Password is called once, and only when an encrypted CA key must be
	// used (issue, sign, revoke, crl), so "list" never asks for it.
	Password func() ([]byte, error)
	Now      func() time.Time // nil means time.Now
}

// Init creates a CA in dir (made with mode 0755 if needed). It refuses to
// overwrite an existing CA.
//
// The directory is searchable by everyone so that a broker that drops its
// privileges (Mosquitto's `user mosquitto`) can still read the CA
// certificate and re-read crl.pem (both 0644) after a revocation; the keys
// (0600) and index.json (0600) stay readable by their owner only. A 0700
// directory made the broker's CRL reloads fail, so revocations never took
// effect.
func Init(dir string, opts InitOptions) (*CA, error) {
	if !opts.NoPassword && len(opts.Password) == 0 {
		return nil, errors.New("an empty passphrase would leave the CA key unencrypted: give a passphrase, or ask for an unencrypted key explicitly (--no-password)")
	}
	if opts.NoPassword {
		opts.Password = nil
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	if opts.KeyType == "" {
		opts.KeyType = DefaultKeyType
	}
	if opts.Days <= 0 {
		opts.Days = DefaultCADays
	}
	if opts.CommonName == "" {
		opts.CommonName = defaultCAName("mamori CA")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create CA directory: %w", err)
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	// Checked under the lock, so two processes initialising the same
	// directory at once cannot both create a CA.
	for _, f := range []string{IndexFile, RootCertFile, RootKeyFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			return nil, fmt.Errorf("%w in %s (%s found); use another --dir", ErrCAExists, dir, f)
		}
	}

	t := now()
	rootKey, err := GenerateKey(opts.KeyType)
	if err != nil {
		return nil, fmt.Errorf("generate root key: %w", err)
	}
	rootTmpl, err := caTemplate(opts.CommonName, rootKey.Public(), t, t.AddDate(0, 0, opts.Days))
	if err != nil {
		return nil, err
	}
	// A root that signs only an intermediate allows one CA below it; a root
	// that signs leaves directly allows none (RFC 5280 4.2.1.9).
	rootTmpl.MaxPathLen = 0
	rootTmpl.MaxPathLenZero = true
	if opts.Intermediate {
		rootTmpl.MaxPathLen = 1
		rootTmpl.MaxPathLenZero = false
	}
	root, err := createCert(rootTmpl, rootTmpl, rootKey.Public(), rootKey)
	if err != nil {
		return nil, fmt.Errorf("create root certificate: %w", err)
	}
	if err := writeKey(filepath.Join(dir, RootKeyFile), rootKey, opts.Password); err != nil {
		return nil, err
	}
	if err := WriteFileAtomic(filepath.Join(dir, RootCertFile), EncodeCertificatesPEM(root), 0o644); err != nil {
		return nil, err
	}

	c := &CA{dir: dir, root: root, issuer: root, signer: rootKey, now: now}
	if opts.Intermediate {
		interKey, err := GenerateKey(opts.KeyType)
		if err != nil {
			return nil, fmt.Errorf("generate intermediate key: %w", err)
		}
		tmpl, err := caTemplate(opts.CommonName+" Intermediate", interKey.Public(), t, root.NotAfter)
		if err != nil {
			return nil, err
		}
		tmpl.MaxPathLen = 0
		tmpl.MaxPathLenZero = true
		inter, err := createCert(tmpl, root, interKey.Public(), rootKey)
		if err != nil {
			return nil, fmt.Errorf("create intermediate certificate: %w", err)
		}
		if err := writeKey(filepath.Join(dir, IntermediateKeyFile), interKey, opts.Password); err != nil {
			return nil, err
		}
		if err := WriteFileAtomic(filepath.Join(dir, IntermediateCertFile), EncodeCertificatesPEM(inter), 0o644); err != nil {
			return nil, err
		}
		c.issuer, c.signer = inter, interKey
	}
	c.idx = index{
		Version:      indexVersion,
		CommonName:   opts.CommonName,
		KeyType:      opts.KeyType,
		Intermediate: opts.Intermediate,
		Encrypted:    len(opts.Password) > 0,
		Created:      t.UTC(),
		Certificates: []Record{},
	}
	// An empty CRL from the start lets brokers point crlfile at crl.pem
	// before anything was revoked.
	if _, err := c.writeCRL(&c.idx, DefaultCRLDays*24*time.Hour); err != nil {
		return nil, err
	}
	if err := c.saveIndex(&c.idx); err != nil {
		return nil, err
	}
	return c, nil
}

// defaultCAName adds the host name so that CAs made on different machines
// can be told apart in a trust store.
func defaultCAName(base string) string {
	if h, err := os.Hostname(); err == nil && h != "" {
		return base + " (" + h + ")"
	}
	return base
}

// caTemplate is the certificate template shared by roots and intermediates.
func caTemplate(cn string, pub crypto.PublicKey, now, notAfter time.Time) (*x509.Certificate, error) {
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	ski, err := subjectKeyID(pub)
	if err != nil {
		return nil, err
	}
	return &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             now.Add(-backdate),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		SubjectKeyId:          ski,
	}, nil
}

// createCert signs template with the parent's key and parses the result.
func createCert(template, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, template, parent, pub, signer)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// writeKey writes a private key with mode 0600, encrypted when password is
// not empty.
func writeKey(path string, key crypto.Signer, password []byte) error {
	data, err := MarshalPrivateKeyPEM(key, password)
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	return WriteFileAtomic(path, data, 0o600)
}

// Open opens the CA in dir.
func Open(dir string, opts OpenOptions) (*CA, error) {
	c := &CA{dir: dir, password: opts.Password, now: time.Now}
	if opts.Now != nil {
		c.now = opts.Now
	}
	if err := c.loadIndex(&c.idx); err != nil {
		return nil, err
	}
	certs, err := LoadCertificates(filepath.Join(dir, RootCertFile))
	if err != nil {
		return nil, err
	}
	c.root, c.issuer = certs[0], certs[0]
	if c.idx.Intermediate {
		certs, err := LoadCertificates(filepath.Join(dir, IntermediateCertFile))
		if err != nil {
			return nil, err
		}
		c.issuer = certs[0]
	}
	if c.idx.KeyType == "" {
		// A hand-edited index: leaves default to the issuer's algorithm.
		c.idx.KeyType = keyTypeOf(c.issuer.PublicKey)
	}
	return c, nil
}

func (c *CA) loadIndex(idx *index) error {
	path := filepath.Join(c.dir, IndexFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w: %s has no %s", ErrNoCA, c.dir, IndexFile)
	}
	if err != nil {
		return err
	}
	*idx = index{}
	if err := json.Unmarshal(data, idx); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if idx.Version != indexVersion {
		return fmt.Errorf("%s: version %d not supported (this mamori reads version %d)", path, idx.Version, indexVersion)
	}
	return nil
}

func (c *CA) saveIndex(idx *index) error {
	data, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return err
	}
	return WriteFileAtomic(filepath.Join(c.dir, IndexFile), append(data, '\n'), 0o600)
}

// update runs fn on a fresh copy of the index under the directory lock and
// saves it when fn succeeds, so concurrent commands never lose each
// other's records.
func (c *CA) update(fn func(idx *index) error) error {
	unlock, err := lockDir(c.dir)
	if err != nil {
		return err
	}
	defer unlock()
	var idx index
	if err := c.loadIndex(&idx); err != nil {
		return err
	}
	if err := fn(&idx); err != nil {
		return err
	}
	if err := c.saveIndex(&idx); err != nil {
		return err
	}
	c.idx = idx
	return nil
}

// unlockKey loads the issuing key, asking for the password only if the key
// is encrypted.
func (c *CA) unlockKey() (crypto.Signer, error) {
	if c.signer != nil {
		return c.signer, nil
	}
	name := RootKeyFile
	if c.idx.Intermediate {
		name = IntermediateKeyFile
	}
	path := filepath.Join(c.dir, name)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	key, err := ParsePrivateKey(data, nil)
	if errors.Is(err, ErrPasswordRequired) {
		if c.password == nil {
			return nil, withFile(path, err)
		}
		var pw []byte
		if pw, err = c.password(); err != nil {
			return nil, err
		}
		key, err = ParsePrivateKey(data, pw)
	}
	if err != nil {
		return nil, withFile(path, err)
	}
	if err := CheckKeyPair(c.issuer, key); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	c.signer = key
	return key, nil
}

// Dir returns the CA directory.
func (c *CA) Dir() string { return c.dir }

// Path returns the absolute-or-relative path of a file in the CA directory,
// as the CA's Dir was given.
func (c *CA) Path(name string) string { return filepath.Join(c.dir, name) }

// Root returns the root certificate, the trust anchor clients need.
func (c *CA) Root() *x509.Certificate { return c.root }

// Issuer returns the certificate that signs leaves and CRLs: the
// intermediate when there is one, else the root.
func (c *CA) Issuer() *x509.Certificate { return c.issuer }

// HasIntermediate reports whether leaves are issued by an intermediate.
func (c *CA) HasIntermediate() bool { return c.idx.Intermediate }

// KeyType returns the CA's key type, which leaves default to.
func (c *CA) KeyType() KeyType { return c.idx.KeyType }

// Encrypted reports whether the CA keys are encrypted with a passphrase.
func (c *CA) Encrypted() bool { return c.idx.Encrypted }

// CRLNumber returns the number of the last CRL written.
func (c *CA) CRLNumber() int64 { return c.idx.CRLNumber }

// Records returns every issued certificate, oldest first.
func (c *CA) Records() []Record {
	out := make([]Record, len(c.idx.Certificates))
	copy(out, c.idx.Certificates)
	return out
}

// normalizeSerial turns "0A:1b:…" or "0x0a1b…" into the stored form.
func normalizeSerial(s string) (string, bool) {
	s = strings.ToLower(strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X"))
	s = strings.ReplaceAll(s, ":", "")
	if s == "" {
		return "", false
	}
	n, ok := new(big.Int).SetString(s, 16)
	if !ok {
		return "", false
	}
	return SerialHex(n), true
}

// find resolves a serial or a name to an index position. A name must match
// exactly one certificate that is not revoked, unless newest is set, in
// which case the most recently issued one is taken (its files are the ones
// in issued/).
func find(idx *index, selector string, newest bool) (int, error) {
	if s, ok := normalizeSerial(selector); ok {
		for i, r := range idx.Certificates {
			if r.Serial == s {
				return i, nil
			}
		}
	}
	var found []int
	revoked := -1
	for i, r := range idx.Certificates {
		if r.Name != selector {
			continue
		}
		if r.Status == StatusRevoked {
			revoked = i
			continue
		}
		found = append(found, i)
	}
	switch {
	case len(found) == 1 || (len(found) > 1 && newest):
		return found[len(found)-1], nil
	case len(found) > 1:
		var serials []string
		for _, i := range found {
			serials = append(serials, idx.Certificates[i].Serial)
		}
		return -1, fmt.Errorf("%d certificates are named %q (serials %s): give the serial", len(found), selector, strings.Join(serials, ", "))
	case revoked >= 0:
		r := idx.Certificates[revoked]
		return -1, fmt.Errorf("%s (serial %s) is already revoked", selector, r.Serial)
	}
	return -1, fmt.Errorf("no certificate with serial or name %q (see mamori ca list)", selector)
}

// Find returns the record for a serial or name (the newest one with that
// name that is not revoked).
func (c *CA) Find(selector string) (Record, error) {
	i, err := find(&c.idx, selector, true)
	if err != nil {
		return Record{}, err
	}
	return c.idx.Certificates[i], nil
}
