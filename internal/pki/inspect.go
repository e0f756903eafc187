package pki

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// InspectOptions are the optional inputs of Inspect.
type InspectOptions struct {
	Password []byte // for encrypted keys and PKCS#12 bundles
	// Key, when set, is checked against every certificate in the input
	// (inspect --key FILE); KeySource names it in the report.
	Key       crypto.Signer
	KeySource string
	// Roots are trusted CA certificates (inspect --ca FILE) to verify the
	// certificates and CRLs against. Self-signed certificates in the input
	// are used as roots as well.
	Roots []*x509.Certificate
	Now   time.Time // zero means time.Now()
}

// Report is what Inspect found in a file: a short summary in the spirit of
// "openssl x509 -text", meant to be rendered for people or as JSON.
type Report struct {
	Kind         Kind       `json:"kind"`   // the main content
	Format       string     `json:"format"` // PEM, DER or PKCS#12
	PKCS12       *P12Info   `json:"pkcs12,omitempty"`
	Certificates []CertInfo `json:"certificates,omitempty"`
	Keys         []KeyInfo  `json:"keys,omitempty"`
	Requests     []CSRInfo  `json:"requests,omitempty"`
	CRLs         []CRLInfo  `json:"crls,omitempty"`
	Notes        []string   `json:"notes,omitempty"` // about the file as a whole
	certs        []*x509.Certificate
	keys         []crypto.Signer // aligned with Keys; nil for public or undecrypted keys
	crls         []*x509.RevocationList
}

// CertInfo summarises one certificate.
type CertInfo struct {
	Subject            string    `json:"subject"`
	Issuer             string    `json:"issuer"`
	Serial             string    `json:"serial"` // lower-case hex, as "ca list" shows it
	Version            int       `json:"version"`
	NotBefore          time.Time `json:"not_before"`
	NotAfter           time.Time `json:"not_after"`
	DaysLeft           int       `json:"days_left"` // negative once expired
	Status             string    `json:"status"`    // valid, expired, not yet valid
	IsCA               bool      `json:"is_ca"`
	PathLen            *int      `json:"path_len,omitempty"`
	SelfSigned         bool      `json:"self_signed"`
	Key                string    `json:"key"`
	SignatureAlgorithm string    `json:"signature_algorithm"`
	SANs               []string  `json:"sans,omitempty"`
	KeyUsage           []string  `json:"key_usage,omitempty"`
	ExtKeyUsage        []string  `json:"ext_key_usage,omitempty"`
	SubjectKeyID       string    `json:"subject_key_id,omitempty"`
	AuthorityKeyID     string    `json:"authority_key_id,omitempty"`
	CRLURLs            []string  `json:"crl_urls,omitempty"`
	OCSPURLs           []string  `json:"ocsp_urls,omitempty"`
	SHA256             string    `json:"sha256_fingerprint"`
	KeyMatches         *bool     `json:"key_matches,omitempty"` // set when a key was available
	Verified           *bool     `json:"verified,omitempty"`    // set when roots were available
	VerifyError        string    `json:"verify_error,omitempty"`
	Warnings           []string  `json:"warnings,omitempty"`
}

// KeyInfo summarises one private or public key.
type KeyInfo struct {
	Source      string   `json:"source,omitempty"` // another file (inspect --key)
	Public      bool     `json:"public"`           // a public key only
	Key         string   `json:"key"`              // algorithm and size; "unknown" while encrypted
	Format      string   `json:"format"`           // PKCS#8, PKCS#1, SEC1, PKIX
	Encrypted   bool     `json:"encrypted"`
	Encryption  string   `json:"encryption,omitempty"`
	Decrypted   bool     `json:"decrypted"`
	SHA256      string   `json:"public_key_sha256,omitempty"` // of the SubjectPublicKeyInfo
	Certificate string   `json:"certificate,omitempty"`       // subject of the certificate it belongs to
	Warnings    []string `json:"warnings,omitempty"`
}

// CSRInfo summarises a certificate signing request.
type CSRInfo struct {
	Subject            string   `json:"subject"`
	Key                string   `json:"key"`
	SignatureAlgorithm string   `json:"signature_algorithm"`
	SignatureValid     bool     `json:"signature_valid"`
	SANs               []string `json:"sans,omitempty"`
	Warnings           []string `json:"warnings,omitempty"`
}

// CRLInfo summarises a certificate revocation list.
type CRLInfo struct {
	Issuer             string        `json:"issuer"`
	Number             string        `json:"number,omitempty"`
	ThisUpdate         time.Time     `json:"this_update"`
	NextUpdate         time.Time     `json:"next_update"`
	DaysToNextUpdate   int           `json:"days_to_next_update"`
	Stale              bool          `json:"stale"` // nextUpdate has passed
	SignatureAlgorithm string        `json:"signature_algorithm"`
	AuthorityKeyID     string        `json:"authority_key_id,omitempty"`
	Revoked            []RevokedInfo `json:"revoked"`
	SignedBy           string        `json:"signed_by,omitempty"` // subject of the verifying certificate
	Warnings           []string      `json:"warnings,omitempty"`
}

// RevokedInfo is one CRL entry.
type RevokedInfo struct {
	Serial string    `json:"serial"`
	Time   time.Time `json:"time"`
	Reason string    `json:"reason"`
}

// P12Info describes how a PKCS#12 bundle is protected.
type P12Info struct {
	Encryption []string `json:"encryption"` // per encrypted content: certificates, then key
	MAC        string   `json:"mac"`
	// Legacy: encrypted with the SHA-1 PKCS#12 PBE algorithms (3DES, RC2)
	// rather than PBES2/AES. RC2 needs "openssl -legacy" in OpenSSL 3.
	Legacy bool `json:"legacy"`
}

// Inspect reads any certificate, chain, key, CSR, CRL or PKCS#12 bundle
// and summarises it. A wrong password is an error; a missing one leaves
// encrypted keys undecrypted in the report (a PKCS#12 bundle cannot be read
// at all without it).
func Inspect(data []byte, opts InspectOptions) (*Report, error) {
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	r := &Report{}
	var err error
	switch {
	case isPEM(data):
		r.Format = "PEM"
		err = r.addPEM(data, opts)
	case isPKCS12(data):
		r.Format, r.Kind = "PKCS#12", KindPKCS12
		err = r.addPKCS12(data, opts)
	default:
		r.Format = "DER"
		err = r.addDER(data, opts)
	}
	if err != nil {
		return nil, err
	}
	if opts.Key != nil {
		r.addKey(opts.Key, KeyInfo{Source: opts.KeySource, Decrypted: true, Format: "—"})
	}
	r.crossCheck(opts)
	return r, nil
}

func (r *Report) setKind(k Kind) {
	if r.Kind == "" {
		r.Kind = k
	}
}

func (r *Report) addPEM(data []byte, opts InspectOptions) error {
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		k := pemKind(block.Type)
		var err error
		switch k {
		case KindCertificate:
			var c *x509.Certificate
			if c, err = x509.ParseCertificate(block.Bytes); err == nil {
				r.addCert(c, opts.Now)
			}
		case KindPrivateKey:
			err = r.addKeyBlock(block, opts.Password)
		case KindPublicKey:
			err = r.addPublicKey(block.Bytes)
		case KindCSR:
			err = r.addCSR(block.Bytes)
		case KindCRL:
			err = r.addCRL(block.Bytes, opts.Now)
		default:
			r.Notes = append(r.Notes, fmt.Sprintf("skipped a PEM block of type %q", block.Type))
			continue
		}
		if err != nil {
			var pe *PasswordError
			if errors.As(err, &pe) {
				return err
			}
			return fmt.Errorf("%s: %w", block.Type, err)
		}
		r.setKind(k)
	}
	if r.Kind == "" {
		return errors.New("no certificate, key, request or CRL found in the PEM data")
	}
	return nil
}

func (r *Report) addDER(der []byte, opts InspectOptions) error {
	k := detectDER(der)
	r.setKind(k)
	switch k {
	case KindCertificate:
		certs, _ := x509.ParseCertificates(der)
		for _, c := range certs {
			r.addCert(c, opts.Now)
		}
		return nil
	case KindCRL:
		return r.addCRL(der, opts.Now)
	case KindCSR:
		return r.addCSR(der)
	case KindPublicKey:
		return r.addPublicKey(der)
	case KindPrivateKey:
		key, f, err := parsePrivateKey(der, opts.Password)
		return r.addParsedKey(key, f, err)
	}
	return errors.New("not a certificate, key, CSR, CRL or PKCS#12 file (neither PEM nor any DER structure mamori knows)")
}

func (r *Report) addKeyBlock(block *pem.Block, password []byte) error {
	key, f, err := parseKeyBlock(block, password)
	return r.addParsedKey(key, f, err)
}

// addParsedKey records a key, or an encrypted key that could not be opened
// for lack of a password.
func (r *Report) addParsedKey(key crypto.Signer, f keyFormat, err error) error {
	info := KeyInfo{Format: f.Format, Encrypted: f.Encrypted, Encryption: f.Encryption}
	if errors.Is(err, ErrPasswordRequired) {
		info.Key = "unknown until decrypted"
		if info.Format == "" {
			info.Format = "PEM"
		}
		r.Keys = append(r.Keys, info)
		r.Notes = append(r.Notes, "the key is encrypted: give --password to decrypt it and match it with certificates")
		return nil
	}
	if err != nil {
		return err
	}
	info.Decrypted = true
	if f.Encrypted && f.Format != "PKCS#8" {
		info.Warnings = append(info.Warnings, "legacy PEM encryption (MD5-based key derivation): re-encrypt with openssl pkcs8 -topk8 -v2 aes-256-cbc")
	}
	r.addKey(key, info)
	return nil
}

func (r *Report) addKey(key crypto.Signer, info KeyInfo) {
	info.Key = KeyDescription(key.Public())
	info.SHA256 = spkiFingerprint(key.Public())
	info.Decrypted = true
	if rk, ok := key.Public().(*rsa.PublicKey); ok && rk.N.BitLen() < 2048 {
		info.Warnings = append(info.Warnings, "RSA key shorter than 2048 bits: too weak")
	}
	r.Keys = append(r.Keys, info)
	r.keys = append(r.keys, key)
}

func (r *Report) addPublicKey(der []byte) error {
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		if k, err2 := x509.ParsePKCS1PublicKey(der); err2 == nil {
			pub, err = k, nil
		} else {
			return err
		}
	}
	r.Keys = append(r.Keys, KeyInfo{Public: true, Key: KeyDescription(pub), Format: "PKIX", SHA256: spkiFingerprint(pub)})
	// Keep index alignment with Keys: public keys cannot sign.
	r.keys = append(r.keys, nil)
	return nil
}

func spkiFingerprint(pub crypto.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

func (r *Report) addCert(c *x509.Certificate, now time.Time) {
	sum := sha256.Sum256(c.Raw)
	ci := CertInfo{
		Subject:            nameString(c.Subject),
		Issuer:             nameString(c.Issuer),
		Serial:             SerialHex(c.SerialNumber),
		Version:            c.Version,
		NotBefore:          c.NotBefore,
		NotAfter:           c.NotAfter,
		DaysLeft:           daysUntil(now, c.NotAfter),
		Status:             "valid",
		IsCA:               c.IsCA,
		SelfSigned:         isSelfSigned(c),
		Key:                KeyDescription(c.PublicKey),
		SignatureAlgorithm: c.SignatureAlgorithm.String(),
		SANs:               sanStrings(c),
		KeyUsage:           keyUsageNames(c.KeyUsage),
		ExtKeyUsage:        extKeyUsageNames(c.ExtKeyUsage),
		SubjectKeyID:       colonHex(c.SubjectKeyId),
		AuthorityKeyID:     colonHex(c.AuthorityKeyId),
		CRLURLs:            c.CRLDistributionPoints,
		OCSPURLs:           c.OCSPServer,
		SHA256:             colonHex(sum[:]),
	}
	if c.BasicConstraintsValid && c.IsCA && (c.MaxPathLen > 0 || c.MaxPathLenZero) {
		n := c.MaxPathLen
		ci.PathLen = &n
	}
	switch {
	case now.After(c.NotAfter):
		ci.Status = "expired"
		ci.Warnings = append(ci.Warnings, fmt.Sprintf("expired %d days ago", -ci.DaysLeft))
	case now.Before(c.NotBefore):
		ci.Status = "not yet valid"
		ci.Warnings = append(ci.Warnings, "not valid before "+c.NotBefore.UTC().Format(time.RFC3339)+": check the clocks of the CA and this machine")
	case ci.DaysLeft < 30:
		ci.Warnings = append(ci.Warnings, fmt.Sprintf("expires in %d days", ci.DaysLeft))
	}
	if c.Version < 3 {
		ci.Warnings = append(ci.Warnings, "X.509 v1 certificate: no extensions, so no SAN, key usage or CA flag (as made by openssl x509 -req without -extfile)")
	}
	leaf := !c.IsCA && !ci.SelfSigned || c.Version < 3 && !ci.SelfSigned
	if leaf && len(ci.SANs) == 0 {
		ci.Warnings = append(ci.Warnings, "no subjectAltName: clients that ignore the CN (Go, MQTT.js, browsers) cannot match a host name against it; re-issue with SANs (mamori ca issue server --dns NAME)")
	}
	switch c.SignatureAlgorithm {
	case x509.SHA1WithRSA, x509.ECDSAWithSHA1, x509.DSAWithSHA1, x509.MD5WithRSA, x509.MD2WithRSA:
		if !ci.SelfSigned {
			ci.Warnings = append(ci.Warnings, "signed with "+c.SignatureAlgorithm.String()+": rejected by current TLS libraries")
		}
	}
	if rk, ok := c.PublicKey.(*rsa.PublicKey); ok && rk.N.BitLen() < 2048 {
		ci.Warnings = append(ci.Warnings, "RSA key shorter than 2048 bits: rejected by current TLS libraries")
	}
	apple := time.Date(2019, 7, 1, 0, 0, 0, 0, time.UTC)
	if leaf && c.NotBefore.After(apple) && c.NotAfter.Sub(c.NotBefore) > 825*24*time.Hour && (len(c.ExtKeyUsage) == 0 || hasEKU(c, x509.ExtKeyUsageServerAuth)) {
		ci.Warnings = append(ci.Warnings, fmt.Sprintf("valid for %d days: iOS and macOS reject TLS server certificates valid for more than 825 days", int(c.NotAfter.Sub(c.NotBefore).Hours()/24)))
	}
	r.Certificates = append(r.Certificates, ci)
	r.certs = append(r.certs, c)
}

func hasEKU(c *x509.Certificate, eku x509.ExtKeyUsage) bool {
	for _, e := range c.ExtKeyUsage {
		if e == eku || e == x509.ExtKeyUsageAny {
			return true
		}
	}
	return false
}

func (r *Report) addCSR(der []byte) error {
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return err
	}
	info := CSRInfo{
		Subject:            nameString(csr.Subject),
		Key:                KeyDescription(csr.PublicKey),
		SignatureAlgorithm: csr.SignatureAlgorithm.String(),
		SignatureValid:     csr.CheckSignature() == nil,
	}
	for _, d := range csr.DNSNames {
		info.SANs = append(info.SANs, "DNS:"+d)
	}
	for _, ip := range csr.IPAddresses {
		info.SANs = append(info.SANs, "IP:"+ip.String())
	}
	for _, e := range csr.EmailAddresses {
		info.SANs = append(info.SANs, "email:"+e)
	}
	for _, u := range csr.URIs {
		info.SANs = append(info.SANs, "URI:"+u.String())
	}
	if !info.SignatureValid {
		info.Warnings = append(info.Warnings, "the request's signature does not verify: it was altered or is corrupt")
	}
	if len(info.SANs) == 0 {
		info.Warnings = append(info.Warnings, "no SANs requested: mamori ca sign adds one from the CN, or give --dns/--ip/--email")
	}
	r.Requests = append(r.Requests, info)
	return nil
}

func (r *Report) addCRL(der []byte, now time.Time) error {
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		return err
	}
	info := CRLInfo{
		Issuer:             nameString(crl.Issuer),
		ThisUpdate:         crl.ThisUpdate,
		NextUpdate:         crl.NextUpdate,
		SignatureAlgorithm: crl.SignatureAlgorithm.String(),
		AuthorityKeyID:     colonHex(crl.AuthorityKeyId),
		Revoked:            []RevokedInfo{},
	}
	if crl.Number != nil {
		info.Number = crl.Number.String()
	}
	if !crl.NextUpdate.IsZero() {
		info.DaysToNextUpdate = daysUntil(now, crl.NextUpdate)
		if now.After(crl.NextUpdate) {
			info.Stale = true
			info.Warnings = append(info.Warnings, "nextUpdate has passed: Mosquitto rejects every client while this CRL is loaded (mamori keeps using it and warns); publish a new one with mamori ca crl")
		} else if info.DaysToNextUpdate < 7 {
			info.Warnings = append(info.Warnings, fmt.Sprintf("nextUpdate in %d days: publish a new CRL before then", info.DaysToNextUpdate))
		}
	}
	for _, e := range crl.RevokedCertificateEntries {
		info.Revoked = append(info.Revoked, RevokedInfo{Serial: SerialHex(e.SerialNumber), Time: e.RevocationTime, Reason: ReasonName(e.ReasonCode)})
	}
	r.CRLs = append(r.CRLs, info)
	r.crls = append(r.crls, crl)
	return nil
}

// crossCheck matches keys with certificates, checks the order of a chain,
// and verifies certificates and CRLs against the roots.
func (r *Report) crossCheck(opts InspectOptions) {
	// Keys and certificates.
	for i, c := range r.certs {
		var anyKey bool
		for j, k := range r.keys {
			if k == nil && !r.Keys[j].Public {
				continue
			}
			anyKey = true
			var match bool
			if k != nil {
				match = KeyMatches(c.PublicKey, k)
			} else {
				match = r.Keys[j].SHA256 == spkiFingerprint(c.PublicKey)
			}
			if match {
				t := true
				r.Certificates[i].KeyMatches = &t
				r.Keys[j].Certificate = r.Certificates[i].Subject
			}
		}
		// A CA certificate further down a chain is not expected to match
		// the key of the leaf; only say "no" where a match was expected.
		if anyKey && r.Certificates[i].KeyMatches == nil && (i == 0 || !c.IsCA) {
			f := false
			r.Certificates[i].KeyMatches = &f
		}
	}
	for j, k := range r.Keys {
		if k.Decrypted && k.Certificate == "" && len(r.certs) > 0 {
			r.Notes = append(r.Notes, fmt.Sprintf("key %d matches none of the certificates", j+1))
		}
	}
	// Chain order: each certificate should be issued by the next.
	for i := 0; i+1 < len(r.certs); i++ {
		c, next := r.certs[i], r.certs[i+1]
		if c.CheckSignatureFrom(next) != nil && !isSelfSigned(c) {
			r.Notes = append(r.Notes, fmt.Sprintf("certificate %d is not signed by certificate %d: a chain file lists the certificate first, then each issuer in turn", i+1, i+2))
			break
		}
	}
	// Verification against roots.
	roots := x509.NewCertPool()
	inter := x509.NewCertPool()
	var anchors []*x509.Certificate
	for _, c := range opts.Roots {
		roots.AddCert(c)
		anchors = append(anchors, c)
	}
	for _, c := range r.certs {
		if isSelfSigned(c) {
			roots.AddCert(c)
		} else {
			inter.AddCert(c)
		}
		anchors = append(anchors, c)
	}
	if len(anchors) == 0 {
		return
	}
	if len(opts.Roots) > 0 || len(r.certs) > 1 {
		for i, c := range r.certs {
			if isSelfSigned(c) && len(opts.Roots) == 0 {
				continue
			}
			_, err := c.Verify(x509.VerifyOptions{
				Roots:         roots,
				Intermediates: inter,
				CurrentTime:   opts.Now,
				KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
			})
			ok := err == nil
			r.Certificates[i].Verified = &ok
			if err != nil {
				r.Certificates[i].VerifyError = err.Error()
			}
		}
	}
	for i, crl := range r.crls {
		for _, a := range anchors {
			if bytes.Equal(a.RawSubject, crl.RawIssuer) && crl.CheckSignatureFrom(a) == nil {
				r.CRLs[i].SignedBy = nameString(a.Subject)
				break
			}
		}
		if r.CRLs[i].SignedBy == "" && len(opts.Roots) > 0 {
			r.CRLs[i].Warnings = append(r.CRLs[i].Warnings, "not signed by any of the CA certificates given")
		}
	}
}

// nameString renders a distinguished name the way Mosquitto's
// use_subject_as_username and openssl do: most significant RDN last, as
// Go's pkix.Name.String does (RFC 2253 order).
func nameString(n pkix.Name) string {
	s := n.String()
	if s == "" {
		return "(empty)"
	}
	return s
}

func daysUntil(now, t time.Time) int {
	return int(math.Floor(t.Sub(now).Hours() / 24))
}

func keyUsageNames(ku x509.KeyUsage) []string {
	names := []string{"digitalSignature", "contentCommitment", "keyEncipherment", "dataEncipherment", "keyAgreement", "keyCertSign", "cRLSign", "encipherOnly", "decipherOnly"}
	var out []string
	for i, n := range names {
		if ku&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return out
}

func extKeyUsageNames(ekus []x509.ExtKeyUsage) []string {
	names := map[x509.ExtKeyUsage]string{
		x509.ExtKeyUsageAny:             "any",
		x509.ExtKeyUsageServerAuth:      "serverAuth",
		x509.ExtKeyUsageClientAuth:      "clientAuth",
		x509.ExtKeyUsageCodeSigning:     "codeSigning",
		x509.ExtKeyUsageEmailProtection: "emailProtection",
		x509.ExtKeyUsageTimeStamping:    "timeStamping",
		x509.ExtKeyUsageOCSPSigning:     "OCSPSigning",
	}
	var out []string
	for _, e := range ekus {
		if n, ok := names[e]; ok {
			out = append(out, n)
		} else {
			out = append(out, fmt.Sprintf("eku-%d", e))
		}
	}
	return out
}

// addPKCS12 opens a bundle and reports its content and protection.
func (r *Report) addPKCS12(der []byte, opts InspectOptions) error {
	r.PKCS12 = describePKCS12(der)
	b, err := ParsePKCS12(der, string(opts.Password))
	if err != nil {
		return err
	}
	if b.Certificate != nil {
		r.addCert(b.Certificate, opts.Now)
	}
	for _, c := range b.CACerts {
		r.addCert(c, opts.Now)
	}
	if b.Key != nil {
		r.addKey(b.Key, KeyInfo{Format: "PKCS#8 (in PKCS#12)", Encrypted: true, Decrypted: true})
	}
	return nil
}

var (
	oidData          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidEncryptedData = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 6}
	oidPBMAC1        = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 14}
	// PKCS#12 bag types (RFC 7292 section 4.2).
	oidKeyBag         = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 1}
	oidShroudedKeyBag = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 2}
	oidCertBag        = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 3}
)

var macNames = map[string]string{
	"1.3.14.3.2.26":          "SHA-1",
	"2.16.840.1.101.3.4.2.1": "SHA-256",
	"2.16.840.1.101.3.4.2.2": "SHA-384",
	"2.16.840.1.101.3.4.2.3": "SHA-512",
}

// describePKCS12 reads the algorithms of a bundle without the password: the
// encryption of each encrypted content and the MAC. Whether a bundle is
// legacy is the usual reason OpenSSL 3 refuses it ("unsupported algorithm
// RC2-40-CBC") while older Windows refuse the modern ones.
func describePKCS12(der []byte) *P12Info {
	info := &P12Info{}
	var pfx struct {
		Version  int
		AuthSafe struct {
			ContentType asn1.ObjectIdentifier
			Content     []byte `asn1:"tag:0,explicit"`
		}
		MacData struct {
			Mac struct {
				Algorithm pkix.AlgorithmIdentifier
				Digest    []byte
			}
			Salt       []byte
			Iterations int `asn1:"optional,default:1"`
		} `asn1:"optional"`
	}
	if _, err := asn1.Unmarshal(der, &pfx); err != nil {
		return info
	}
	mac := pfx.MacData.Mac.Algorithm.Algorithm
	switch {
	case len(mac) == 0:
		info.MAC = "none"
	case mac.Equal(oidPBMAC1):
		info.MAC = "PBMAC1"
	default:
		info.MAC = macNames[mac.String()]
		if info.MAC == "" {
			info.MAC = mac.String()
		}
		info.MAC = "HMAC-" + info.MAC + fmt.Sprintf(" (%d iterations)", pfx.MacData.Iterations)
	}
	var contents []struct {
		ContentType asn1.ObjectIdentifier
		Content     asn1.RawValue `asn1:"tag:0,explicit,optional"`
	}
	if _, err := asn1.Unmarshal(pfx.AuthSafe.Content, &contents); err != nil {
		return info
	}
	for _, ci := range contents {
		switch {
		case ci.ContentType.Equal(oidData):
			// Plain data holding bags; a shrouded key bag is encrypted on its own.
			var octets []byte
			var bags []struct {
				ID    asn1.ObjectIdentifier
				Value asn1.RawValue `asn1:"tag:0,explicit"`
				Attrs asn1.RawValue `asn1:"optional"`
			}
			if _, err := asn1.Unmarshal(ci.Content.Bytes, &octets); err != nil {
				continue
			}
			if _, err := asn1.Unmarshal(octets, &bags); err != nil {
				continue
			}
			for _, b := range bags {
				switch {
				case b.ID.Equal(oidShroudedKeyBag):
					desc := describePKCS8Encryption(b.Value.Bytes)
					if !strings.HasPrefix(desc, "PBES2") {
						info.Legacy = true
					}
					info.Encryption = append(info.Encryption, "key: "+desc)
				case b.ID.Equal(oidKeyBag):
					info.Encryption = append(info.Encryption, "key: NOT encrypted")
				case b.ID.Equal(oidCertBag):
					info.Encryption = append(info.Encryption, "certificate: not encrypted")
				}
			}
		case ci.ContentType.Equal(oidEncryptedData):
			var ed struct {
				Version int
				Info    struct {
					ContentType asn1.ObjectIdentifier
					Algorithm   pkix.AlgorithmIdentifier
				}
			}
			if _, err := asn1.Unmarshal(ci.Content.Bytes, &ed); err != nil {
				continue
			}
			alg := ed.Info.Algorithm
			name := oidName(alg.Algorithm)
			if alg.Algorithm.Equal(oidPBES2) {
				// Reuse the PKCS#8 describer: PBES2 parameters have the same shape.
				fake, err := asn1.Marshal(encryptedPKCS8{Algorithm: alg, Data: []byte{0}})
				if err == nil {
					name = describePKCS8Encryption(fake)
				}
			} else {
				info.Legacy = true
			}
			info.Encryption = append(info.Encryption, "certificates: "+name)
		}
	}
	return info
}
