package pki

import (
	"bytes"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/youmark/pkcs8"
	"software.sslmate.com/src/go-pkcs12"
)

// Kind is what a file holds, as found from its content (never its name).
type Kind string

// The kinds of file Detect recognises.
const (
	KindCertificate Kind = "certificate"
	KindPrivateKey  Kind = "private key"
	KindPublicKey   Kind = "public key"
	KindCSR         Kind = "certificate request"
	KindCRL         Kind = "CRL"
	KindPKCS12      Kind = "PKCS#12 bundle"
	KindUnknown     Kind = "unknown"
)

// Errors that callers can test for with errors.Is.
var (
	// ErrWrongPassword: an encrypted key or PKCS#12 bundle did not decrypt
	// with the password given.
	ErrWrongPassword = errors.New("wrong password")
	// ErrPasswordRequired: the file is encrypted and no password was given.
	ErrPasswordRequired = errors.New("password required")
	// ErrKeyMismatch: a private key is not the key of a certificate.
	ErrKeyMismatch = errors.New("key does not match certificate")
)

// PasswordError reports a missing or wrong password for an encrypted key or
// PKCS#12 file. It matches ErrWrongPassword or ErrPasswordRequired.
type PasswordError struct {
	File    string // the file, when known
	Missing bool   // no password was given at all
}

// Error says which file and what to do, e.g. "wrong password for server.key".
func (e *PasswordError) Error() string {
	name := e.File
	if name == "" {
		name = "the key"
	}
	if e.Missing {
		return name + " is encrypted: a password is required"
	}
	return "wrong password for " + name
}

// Is lets errors.Is match the sentinel errors.
func (e *PasswordError) Is(target error) bool {
	if e.Missing {
		return target == ErrPasswordRequired
	}
	return target == ErrWrongPassword
}

// KindError reports a file that holds something other than what was asked
// for, e.g. "ca.pem is a CRL, not a certificate".
type KindError struct {
	File string // the file, when known
	Got  Kind   // what the file holds
	Want Kind   // what the caller needed
}

// Error names the file and both kinds.
func (e *KindError) Error() string {
	name := e.File
	if name == "" {
		name = "input"
	}
	if e.Got == KindUnknown || e.Got == "" {
		return fmt.Sprintf("%s holds no %s (not a PEM or DER file mamori recognises)", name, e.Want)
	}
	return fmt.Sprintf("%s is a %s, not a %s", name, e.Got, e.Want)
}

// withFile puts the file name into the errors that carry one, and prefixes
// the others with it.
func withFile(path string, err error) error {
	var pe *PasswordError
	if errors.As(err, &pe) && pe.File == "" {
		cp := *pe
		cp.File = path
		return &cp
	}
	var ke *KindError
	if errors.As(err, &ke) && ke.File == "" {
		cp := *ke
		cp.File = path
		return &cp
	}
	return fmt.Errorf("%s: %w", path, err)
}

// pemKind maps a PEM block type to a Kind.
func pemKind(typ string) Kind {
	switch {
	case typ == "CERTIFICATE" || typ == "X509 CERTIFICATE" || typ == "TRUSTED CERTIFICATE":
		return KindCertificate
	case strings.HasSuffix(typ, "PRIVATE KEY"):
		return KindPrivateKey
	case strings.HasSuffix(typ, "PUBLIC KEY"):
		return KindPublicKey
	case typ == "CERTIFICATE REQUEST" || typ == "NEW CERTIFICATE REQUEST":
		return KindCSR
	case typ == "X509 CRL":
		return KindCRL
	case typ == "PKCS12":
		return KindPKCS12
	}
	return KindUnknown
}

// isPEM reports whether data contains at least one PEM block.
func isPEM(data []byte) bool {
	block, _ := pem.Decode(data)
	return block != nil
}

// Detect tells what data holds from its content: the first recognised PEM
// block, or for DER the first structure that parses.
func Detect(data []byte) Kind {
	if isPEM(data) {
		rest := data
		for {
			var block *pem.Block
			block, rest = pem.Decode(rest)
			if block == nil {
				return KindUnknown
			}
			if k := pemKind(block.Type); k != KindUnknown {
				return k
			}
		}
	}
	return detectDER(data)
}

// detectDER tries the DER structures in an order where no earlier parser
// accepts a later kind.
func detectDER(der []byte) Kind {
	if _, err := x509.ParseCertificates(der); err == nil && len(der) > 0 {
		return KindCertificate
	}
	if _, err := x509.ParseRevocationList(der); err == nil {
		return KindCRL
	}
	if _, err := x509.ParseCertificateRequest(der); err == nil {
		return KindCSR
	}
	if isPKCS12(der) {
		return KindPKCS12
	}
	if _, _, err := parsePlainKeyDER(der); err == nil {
		return KindPrivateKey
	}
	if isEncryptedPKCS8(der) {
		return KindPrivateKey
	}
	if _, err := x509.ParsePKIXPublicKey(der); err == nil {
		return KindPublicKey
	}
	return KindUnknown
}

// pfxHeader is the outer shape of a PKCS#12 file (RFC 7292 section 4),
// enough to recognise one without a password.
type pfxHeader struct {
	Version  int
	AuthSafe struct {
		ContentType asn1.ObjectIdentifier
		Content     asn1.RawValue `asn1:"tag:0,explicit,optional"`
	}
	MacData asn1.RawValue `asn1:"optional"`
}

func isPKCS12(der []byte) bool {
	var p pfxHeader
	rest, err := asn1.Unmarshal(der, &p)
	return err == nil && len(rest) == 0 && p.Version == 3
}

// encryptedPKCS8 is EncryptedPrivateKeyInfo (RFC 5958 section 3).
type encryptedPKCS8 struct {
	Algorithm pkix.AlgorithmIdentifier
	Data      []byte
}

var (
	oidPBES2  = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBKDF2 = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
	oidScrypt = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11591, 4, 11}
)

// pbeNames names the password-based encryption OIDs seen in key files, for
// messages and for inspect.
var pbeNames = map[string]string{
	"1.2.840.113549.1.5.13":   "PBES2",
	"1.2.840.113549.1.5.3":    "PBES1 (MD5, DES)",
	"1.2.840.113549.1.5.10":   "PBES1 (SHA-1, DES)",
	"1.2.840.113549.1.12.1.3": "PKCS#12 PBE (SHA-1, 3DES)",
	"1.2.840.113549.1.12.1.6": "PKCS#12 PBE (SHA-1, RC2-40)",
	"2.16.840.1.101.3.4.1.2":  "AES-128-CBC",
	"2.16.840.1.101.3.4.1.22": "AES-192-CBC",
	"2.16.840.1.101.3.4.1.42": "AES-256-CBC",
	"2.16.840.1.101.3.4.1.6":  "AES-128-GCM",
	"2.16.840.1.101.3.4.1.46": "AES-256-GCM",
	"1.2.840.113549.3.7":      "DES-EDE3-CBC",
	"1.2.840.113549.2.7":      "HMAC-SHA1",
	"1.2.840.113549.2.9":      "HMAC-SHA256",
	"1.2.840.113549.2.10":     "HMAC-SHA384",
	"1.2.840.113549.2.11":     "HMAC-SHA512",
}

func oidName(oid asn1.ObjectIdentifier) string {
	if n, ok := pbeNames[oid.String()]; ok {
		return n
	}
	return oid.String()
}

func isEncryptedPKCS8(der []byte) bool {
	var e encryptedPKCS8
	rest, err := asn1.Unmarshal(der, &e)
	return err == nil && len(rest) == 0 && len(e.Data) > 0 && len(e.Algorithm.Algorithm) > 0
}

// describePKCS8Encryption names the scheme of an encrypted PKCS#8 key,
// e.g. "PBES2, PBKDF2-HMAC-SHA256, AES-256-CBC".
func describePKCS8Encryption(der []byte) string {
	var e encryptedPKCS8
	if _, err := asn1.Unmarshal(der, &e); err != nil {
		return "unknown"
	}
	if !e.Algorithm.Algorithm.Equal(oidPBES2) {
		return oidName(e.Algorithm.Algorithm)
	}
	var params struct {
		KDF    pkix.AlgorithmIdentifier
		Scheme pkix.AlgorithmIdentifier
	}
	if _, err := asn1.Unmarshal(e.Algorithm.Parameters.FullBytes, &params); err != nil {
		return "PBES2"
	}
	kdf := oidName(params.KDF.Algorithm)
	switch {
	case params.KDF.Algorithm.Equal(oidPBKDF2):
		kdf = "PBKDF2-HMAC-SHA1" // the RFC 8018 default when no PRF is named
		var p struct {
			Salt       []byte
			Iterations int
			KeyLength  int                      `asn1:"optional"`
			PRF        pkix.AlgorithmIdentifier `asn1:"optional"`
		}
		if _, err := asn1.Unmarshal(params.KDF.Parameters.FullBytes, &p); err == nil {
			if len(p.PRF.Algorithm) > 0 {
				kdf = "PBKDF2-" + oidName(p.PRF.Algorithm)
			}
			kdf += fmt.Sprintf(" (%d iterations)", p.Iterations)
		}
	case params.KDF.Algorithm.Equal(oidScrypt):
		kdf = "scrypt"
	}
	return "PBES2, " + kdf + ", " + oidName(params.Scheme.Algorithm)
}

// keyFormat describes how a private key was stored, for inspect.
type keyFormat struct {
	Format     string // "PKCS#8", "PKCS#1", "SEC1"
	Encrypted  bool
	Encryption string // scheme, when encrypted
}

// parsePlainKeyDER parses an unencrypted key in any of the three DER forms
// OpenSSL writes.
func parsePlainKeyDER(der []byte) (crypto.Signer, string, error) {
	if k, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		s, err := asSigner(k)
		return s, "PKCS#8", err
	}
	if k, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return k, "PKCS#1", nil
	}
	if k, err := x509.ParseECPrivateKey(der); err == nil {
		return k, "SEC1", nil
	}
	return nil, "", errors.New("not a PKCS#8, PKCS#1 or SEC1 private key")
}

func asSigner(k any) (crypto.Signer, error) {
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("unsupported private key type %T", k)
	}
	return s, nil
}

// ParsePrivateKey reads the first private key in data: PEM or DER; PKCS#8,
// PKCS#1 ("RSA PRIVATE KEY") or SEC1 ("EC PRIVATE KEY"); encrypted PKCS#8
// ("ENCRYPTED PRIVATE KEY", PBES2 as OpenSSL 1.1+ writes it); legacy
// encrypted PEM ("Proc-Type: 4,ENCRYPTED", as "openssl genrsa -des3" and
// "-aes256" write it); or the key of a PKCS#12 bundle. The password is
// ignored for unencrypted keys.
func ParsePrivateKey(data, password []byte) (crypto.Signer, error) {
	k, _, err := parsePrivateKey(data, password)
	return k, err
}

func parsePrivateKey(data, password []byte) (crypto.Signer, keyFormat, error) {
	if !isPEM(data) {
		if isPKCS12(data) {
			b, err := ParsePKCS12(data, string(password))
			if err != nil {
				return nil, keyFormat{}, err
			}
			if b.Key == nil {
				return nil, keyFormat{}, errors.New("the PKCS#12 bundle holds no private key")
			}
			return b.Key, keyFormat{Format: "PKCS#12"}, nil
		}
		if k, f, err := parsePlainKeyDER(data); err == nil {
			return k, keyFormat{Format: f}, nil
		}
		if isEncryptedPKCS8(data) {
			k, err := parseEncryptedPKCS8(data, password)
			return k, keyFormat{Format: "PKCS#8", Encrypted: true, Encryption: describePKCS8Encryption(data)}, err
		}
		return nil, keyFormat{}, &KindError{Got: Detect(data), Want: KindPrivateKey}
	}
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, keyFormat{}, &KindError{Got: Detect(data), Want: KindPrivateKey}
		}
		if pemKind(block.Type) == KindPrivateKey {
			return parseKeyBlock(block, password)
		}
	}
}

// parseKeyBlock decodes one PEM private key block.
func parseKeyBlock(block *pem.Block, password []byte) (crypto.Signer, keyFormat, error) {
	if block.Type == "OPENSSH PRIVATE KEY" {
		return nil, keyFormat{}, errors.New("OpenSSH private keys are not used for TLS; convert with: ssh-keygen -p -m PEM -f KEY")
	}
	if block.Type == "ENCRYPTED PRIVATE KEY" {
		f := keyFormat{Format: "PKCS#8", Encrypted: true, Encryption: describePKCS8Encryption(block.Bytes)}
		k, err := parseEncryptedPKCS8(block.Bytes, password)
		return k, f, err
	}
	der := block.Bytes
	var f keyFormat
	if block.Headers["Proc-Type"] == "4,ENCRYPTED" {
		f.Encrypted = true
		f.Encryption = "legacy PEM, " + strings.SplitN(block.Headers["DEK-Info"], ",", 2)[0]
		if len(password) == 0 {
			return nil, f, &PasswordError{Missing: true}
		}
		// Legacy PEM encryption (RFC 1423) is weak and deprecated, but it is
		// what "openssl genrsa -des3" and "-aes256" still write, and the seed
		// recipes make CA keys that way: mamori must read them (never write).
		//lint:ignore SA1019 reading legacy encrypted keys made by openssl is required for compatibility.
		plain, err := x509.DecryptPEMBlock(block, password) //nolint:staticcheck // see above
		if err != nil {
			if errors.Is(err, x509.IncorrectPasswordError) {
				return nil, f, &PasswordError{}
			}
			return nil, f, fmt.Errorf("decrypt legacy PEM key: %w", err)
		}
		der = plain
	}
	var (
		k   crypto.Signer
		err error
	)
	switch block.Type {
	case "RSA PRIVATE KEY":
		f.Format = "PKCS#1"
		k, err = x509.ParsePKCS1PrivateKey(der)
	case "EC PRIVATE KEY":
		f.Format = "SEC1"
		k, err = x509.ParseECPrivateKey(der)
	default:
		var raw any
		f.Format = "PKCS#8"
		raw, err = x509.ParsePKCS8PrivateKey(der)
		if err == nil {
			k, err = asSigner(raw)
		}
	}
	if err != nil {
		if f.Encrypted {
			// The CBC padding check passes by chance for about one wrong
			// password in 256; the garbage then fails to parse.
			return nil, f, &PasswordError{}
		}
		return nil, f, fmt.Errorf("parse %s: %w", strings.ToLower(block.Type), err)
	}
	return k, f, nil
}

// pkcs8Options is how mamori encrypts keys: PBES2 with PBKDF2-HMAC-SHA256
// and AES-256-CBC, which OpenSSL 1.1+ and every current TLS stack read. The
// iteration count follows OWASP's 2023 advice for PBKDF2-SHA256; it costs a
// fraction of a second once per CA operation.
func pkcs8Options() *pkcs8.Opts {
	return &pkcs8.Opts{
		Cipher: pkcs8.AES256CBC,
		KDFOpts: pkcs8.PBKDF2Opts{
			SaltSize:       16,
			IterationCount: 600000,
			HMACHash:       crypto.SHA256,
		},
	}
}

// parseEncryptedPKCS8 decrypts an EncryptedPrivateKeyInfo.
func parseEncryptedPKCS8(der, password []byte) (k crypto.Signer, err error) {
	var e encryptedPKCS8
	if _, err := asn1.Unmarshal(der, &e); err != nil {
		return nil, fmt.Errorf("malformed encrypted PKCS#8 key: %w", err)
	}
	if !e.Algorithm.Algorithm.Equal(oidPBES2) {
		return nil, fmt.Errorf("the key is encrypted with %s, which mamori does not read; re-encrypt it with: openssl pkcs8 -topk8 -v2 aes-256-cbc -in KEY -out NEWKEY", oidName(e.Algorithm.Algorithm))
	}
	if len(password) == 0 {
		return nil, &PasswordError{Missing: true}
	}
	// The library calls cipher.CryptBlocks on the input without checking its
	// length, which panics on a truncated or hostile file; a broker loading
	// a keyfile must get an error instead.
	defer func() {
		if r := recover(); r != nil {
			k, err = nil, fmt.Errorf("malformed encrypted PKCS#8 key: %v", r)
		}
	}()
	raw, err := pkcs8.ParsePKCS8PrivateKey(der, password)
	if err != nil {
		msg := err.Error()
		if strings.Contains(msg, "unsupported") || strings.Contains(msg, "invalid") || strings.Contains(msg, "only") {
			return nil, fmt.Errorf("encrypted PKCS#8 key: %w", err)
		}
		// Anything else means the decrypted bytes were not a key (or an
		// AEAD tag failed): the password was wrong.
		return nil, &PasswordError{}
	}
	return asSigner(raw)
}

// MarshalPrivateKeyPEM encodes a key as PEM PKCS#8: "ENCRYPTED PRIVATE KEY"
// (PBES2, PBKDF2-HMAC-SHA256, AES-256-CBC) when password is not empty, else "PRIVATE KEY".
func MarshalPrivateKeyPEM(key crypto.Signer, password []byte) ([]byte, error) {
	if len(password) == 0 {
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, err
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
	}
	der, err := pkcs8.MarshalPrivateKey(key, password, pkcs8Options())
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: der}), nil
}

// LoadPrivateKey reads a private key file (see ParsePrivateKey). Errors name
// the file: "wrong password for server.key", "ca.crt is a certificate, not a
// private key".
func LoadPrivateKey(path string, password []byte) (crypto.Signer, error) {
	return loadWith(path, func(data []byte) (crypto.Signer, error) { return ParsePrivateKey(data, password) })
}

// ParseCertificates reads every certificate in data, PEM (any number of
// CERTIFICATE blocks, other blocks ignored) or DER, in file order.
func ParseCertificates(data []byte) ([]*x509.Certificate, error) {
	if !isPEM(data) {
		certs, err := x509.ParseCertificates(data)
		if err != nil || len(certs) == 0 {
			return nil, &KindError{Got: Detect(data), Want: KindCertificate}
		}
		return certs, nil
	}
	var certs []*x509.Certificate
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" && block.Type != "X509 CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, &KindError{Got: Detect(data), Want: KindCertificate}
	}
	return certs, nil
}

// loadWith reads the file at path and parses it, naming the file in a
// parse error.
func loadWith[T any](path string, parse func([]byte) (T, error)) (T, error) {
	var zero T
	data, err := os.ReadFile(path)
	if err != nil {
		return zero, err
	}
	v, err := parse(data)
	if err != nil {
		return zero, withFile(path, err)
	}
	return v, nil
}

// LoadCertificates reads every certificate in a file; see ParseCertificates.
func LoadCertificates(path string) ([]*x509.Certificate, error) {
	return loadWith(path, ParseCertificates)
}

// ParseCRL reads a CRL, PEM ("X509 CRL") or DER.
func ParseCRL(data []byte) (*x509.RevocationList, error) {
	der := data
	if isPEM(data) {
		der = nil
		rest := data
		for {
			var block *pem.Block
			block, rest = pem.Decode(rest)
			if block == nil {
				break
			}
			if block.Type == "X509 CRL" {
				der = block.Bytes
				break
			}
		}
		if der == nil {
			return nil, &KindError{Got: Detect(data), Want: KindCRL}
		}
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		if k := Detect(data); k != KindCRL {
			return nil, &KindError{Got: k, Want: KindCRL}
		}
		return nil, err
	}
	return crl, nil
}

// ParseCRLs reads every CRL of a PEM bundle ("X509 CRL" blocks, as
// OpenSSL loads them all from one file: one CRL per issuing CA), or the one
// CRL of DER data.
func ParseCRLs(data []byte) ([]*x509.RevocationList, error) {
	if !isPEM(data) {
		crl, err := ParseCRL(data)
		if err != nil {
			return nil, err
		}
		return []*x509.RevocationList{crl}, nil
	}
	var out []*x509.RevocationList
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "X509 CRL" {
			continue
		}
		crl, err := x509.ParseRevocationList(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("CRL %d of the file: %w", len(out)+1, err)
		}
		out = append(out, crl)
	}
	if len(out) == 0 {
		return nil, &KindError{Got: Detect(data), Want: KindCRL}
	}
	return out, nil
}

// LoadCRL reads a CRL file; see ParseCRL.
func LoadCRL(path string) (*x509.RevocationList, error) {
	return loadWith(path, ParseCRL)
}

// ParseCSR reads a certificate signing request, PEM ("CERTIFICATE REQUEST"
// or "NEW CERTIFICATE REQUEST") or DER.
func ParseCSR(data []byte) (*x509.CertificateRequest, error) {
	der := data
	if isPEM(data) {
		der = nil
		rest := data
		for der == nil {
			var block *pem.Block
			block, rest = pem.Decode(rest)
			if block == nil {
				return nil, &KindError{Got: Detect(data), Want: KindCSR}
			}
			if pemKind(block.Type) == KindCSR {
				der = block.Bytes
			}
		}
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		if k := Detect(data); k != KindCSR {
			return nil, &KindError{Got: k, Want: KindCSR}
		}
		return nil, err
	}
	return csr, nil
}

// Bundle is the content of a PKCS#12 file.
type Bundle struct {
	Key         crypto.Signer       // nil for a trust store
	Certificate *x509.Certificate   // the certificate of Key; nil for a trust store
	CACerts     []*x509.Certificate // the rest, usually the chain up to the root
}

// ParsePKCS12 decodes a DER PKCS#12 bundle with its password: modern
// (PBES2/AES, as OpenSSL 3 writes by default) and legacy (3DES, RC2-40)
// encryption, or a Java trust store without a key.
func ParsePKCS12(data []byte, password string) (*Bundle, error) {
	if isPEM(data) || !isPKCS12(data) {
		return nil, &KindError{Got: Detect(data), Want: KindPKCS12}
	}
	key, cert, ca, err := pkcs12.DecodeChain(data, password)
	if err == nil {
		s, err := asSigner(key)
		if err != nil {
			return nil, err
		}
		return &Bundle{Key: s, Certificate: cert, CACerts: ca}, nil
	}
	if errors.Is(err, pkcs12.ErrIncorrectPassword) || errors.Is(err, pkcs12.ErrDecryption) {
		return nil, &PasswordError{Missing: password == ""}
	}
	if certs, terr := pkcs12.DecodeTrustStore(data, password); terr == nil {
		return &Bundle{CACerts: certs}, nil
	}
	return nil, fmt.Errorf("PKCS#12: %w", err)
}

// LoadPKCS12 reads a PKCS#12 file; see ParsePKCS12.
func LoadPKCS12(path, password string) (*Bundle, error) {
	return loadWith(path, func(data []byte) (*Bundle, error) { return ParsePKCS12(data, password) })
}

// KeyMatches reports whether key is the private key of the public key pub
// (for example a certificate's PublicKey).
func KeyMatches(pub crypto.PublicKey, key crypto.Signer) bool {
	if key == nil || pub == nil {
		return false
	}
	eq, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && eq.Equal(pub)
}

// CheckKeyPair returns an error matching ErrKeyMismatch when key is not the
// private key of cert.
func CheckKeyPair(cert *x509.Certificate, key crypto.Signer) error {
	if !KeyMatches(cert.PublicKey, key) {
		return fmt.Errorf("%w (%s)", ErrKeyMismatch, cert.Subject)
	}
	return nil
}

// LoadKeyPair loads a certificate chain and its key for TLS, the way
// mosquitto's certfile and keyfile are used, plus two extensions: keyFile may
// be encrypted (password), and certFile may be a PKCS#12 bundle holding key
// and chain, in which case keyFile must be empty and password opens the
// bundle. The certificate file must start with the certificate whose key
// is keyFile, followed by its intermediates (as OpenSSL also requires);
// when it does not, the error says which certificate the key belongs to.
func LoadKeyPair(certFile, keyFile string, password []byte) (tls.Certificate, error) {
	data, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	if !isPEM(data) && isPKCS12(data) {
		if keyFile != "" {
			return tls.Certificate{}, fmt.Errorf("%s is a PKCS#12 bundle that holds its own key: leave keyfile %s out", certFile, keyFile)
		}
		b, err := ParsePKCS12(data, string(password))
		if err != nil {
			return tls.Certificate{}, withFile(certFile, err)
		}
		if b.Key == nil {
			return tls.Certificate{}, fmt.Errorf("%s holds only CA certificates, no key", certFile)
		}
		chain := [][]byte{b.Certificate.Raw}
		for _, c := range b.CACerts {
			// The root is the client's to have; sending it only costs bytes.
			if !isSelfSigned(c) {
				chain = append(chain, c.Raw)
			}
		}
		return tls.Certificate{Certificate: chain, PrivateKey: b.Key, Leaf: b.Certificate}, nil
	}
	certs, err := ParseCertificates(data)
	if err != nil {
		return tls.Certificate{}, withFile(certFile, err)
	}
	var key crypto.Signer
	if keyFile == "" {
		// A combined PEM (certificate and key in one file) needs no keyfile.
		key, err = ParsePrivateKey(data, password)
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("no keyfile given and %s holds no usable key: %w", certFile, err)
		}
		keyFile = certFile
	} else if key, err = LoadPrivateKey(keyFile, password); err != nil {
		return tls.Certificate{}, err
	}
	if !KeyMatches(certs[0].PublicKey, key) {
		for i, c := range certs[1:] {
			if KeyMatches(c.PublicKey, key) {
				return tls.Certificate{}, fmt.Errorf("%w: %s is the key of certificate %d in %s (%s), not of the first one; put that certificate first", ErrKeyMismatch, keyFile, i+2, certFile, c.Subject)
			}
		}
		return tls.Certificate{}, fmt.Errorf("%w: %s is not the key of %s (%s)", ErrKeyMismatch, keyFile, certFile, certs[0].Subject)
	}
	chain := make([][]byte, len(certs))
	for i, c := range certs {
		chain[i] = c.Raw
	}
	return tls.Certificate{Certificate: chain, PrivateKey: key, Leaf: certs[0]}, nil
}

// isSelfSigned reports whether c is its own issuer (a root).
func isSelfSigned(c *x509.Certificate) bool {
	// CheckSignature, not CheckSignatureFrom: the latter also demands the CA
	// flag, which v1 roots made by "openssl x509 -req" do not have.
	return bytes.Equal(c.RawIssuer, c.RawSubject) &&
		c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil
}

// EncodeCertificatesPEM encodes certificates as consecutive PEM blocks.
func EncodeCertificatesPEM(certs ...*x509.Certificate) []byte {
	var b bytes.Buffer
	for _, c := range certs {
		pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return b.Bytes()
}
