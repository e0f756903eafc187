package auth

import (
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// CertUsername returns the username Mosquitto derives from a verified
// client certificate. With useSubject false (use_identity_as_username) it
// is the subject's first commonName; with useSubject true
// (use_subject_as_username) it is the whole subject as OpenSSL prints it
// with XN_FLAG_RFC2253, e.g. "CN=dev1,OU=plant,O=Acme,C=JP": components in
// reverse order, OpenSSL's short names, RFC 2253 escaping with bytes
// outside printable ASCII as \XX, unknown attributes as OID=#hex. The
// result goes into Client.Username, so certificate users meet the same ACL
// "user" lines as password users. With either option the password file is
// not consulted.
func CertUsername(cert *x509.Certificate, useSubject bool) (string, error) {
	atvs, err := parseName(cert.RawSubject)
	if err != nil {
		return "", fmt.Errorf("client certificate subject: %w", err)
	}
	if !useSubject {
		for _, a := range atvs {
			if a.oid.Equal(oidCommonName) {
				s, ok := a.text()
				if !ok || s == "" || strings.IndexByte(s, 0) >= 0 {
					return "", errors.New("client certificate commonName is empty or not text")
				}
				return s, nil
			}
		}
		return "", errors.New("client certificate has no commonName (use_identity_as_username needs one)")
	}
	var b strings.Builder
	for i := len(atvs) - 1; i >= 0; i-- {
		a := atvs[i]
		if i < len(atvs)-1 {
			if atvs[i+1].set == a.set {
				b.WriteByte('+')
			} else {
				b.WriteByte(',')
			}
		}
		name, known := shortNames[a.oid.String()]
		if !known {
			name = a.oid.String()
		}
		b.WriteString(name)
		b.WriteByte('=')
		if s, ok := a.text(); ok && known {
			b.WriteString(escapeRFC2253(s))
		} else {
			b.WriteByte('#')
			b.WriteString(strings.ToUpper(hex.EncodeToString(a.der)))
		}
	}
	return b.String(), nil
}

var oidCommonName = asn1.ObjectIdentifier{2, 5, 4, 3}

// shortNames are OpenSSL's short names for the attributes seen in
// certificate subjects.
var shortNames = map[string]string{
	"2.5.4.3": "CN", "2.5.4.4": "SN", "2.5.4.5": "serialNumber", "2.5.4.6": "C",
	"2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.9": "street", "2.5.4.10": "O",
	"2.5.4.11": "OU", "2.5.4.12": "title", "2.5.4.13": "description",
	"2.5.4.15": "businessCategory", "2.5.4.17": "postalCode", "2.5.4.41": "name",
	"2.5.4.42": "GN", "2.5.4.43": "initials", "2.5.4.44": "generationQualifier",
	"2.5.4.46": "dnQualifier", "2.5.4.65": "pseudonym", "2.5.4.97": "organizationIdentifier",
	"1.2.840.113549.1.9.1":       "emailAddress",
	"0.9.2342.19200300.100.1.1":  "UID",
	"0.9.2342.19200300.100.1.25": "DC",
	"1.3.6.1.4.1.311.60.2.1.1":   "jurisdictionL",
	"1.3.6.1.4.1.311.60.2.1.2":   "jurisdictionST",
	"1.3.6.1.4.1.311.60.2.1.3":   "jurisdictionC",
}

// atv is one attribute of a distinguished name, in DER order.
type atv struct {
	set   int // index of the RDN (SET) it belongs to
	oid   asn1.ObjectIdentifier
	tag   cbasn1.Tag
	value []byte // content octets
	der   []byte // whole DER encoding of the value
}

// parseName walks the DER of a Name keeping each value's raw encoding,
// which encoding/asn1's RDNSequence would lose.
func parseName(raw []byte) ([]atv, error) {
	in := cryptobyte.String(raw)
	var seq cryptobyte.String
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !in.Empty() {
		return nil, errors.New("malformed name")
	}
	var out []atv
	for set := 0; !seq.Empty(); set++ {
		var rdn cryptobyte.String
		if !seq.ReadASN1(&rdn, cbasn1.SET) {
			return nil, errors.New("malformed RDN")
		}
		for !rdn.Empty() {
			var pair cryptobyte.String
			a := atv{set: set}
			var full cryptobyte.String
			if !rdn.ReadASN1(&pair, cbasn1.SEQUENCE) || !pair.ReadASN1ObjectIdentifier(&a.oid) ||
				!pair.ReadAnyASN1Element(&full, &a.tag) {
				return nil, errors.New("malformed attribute")
			}
			a.der = full
			var content cryptobyte.String
			var tag cbasn1.Tag
			if !full.ReadAnyASN1(&content, &tag) {
				return nil, errors.New("malformed attribute value")
			}
			a.value = content
			out = append(out, a)
		}
	}
	return out, nil
}

// text decodes string-typed values to UTF-8, as OpenSSL's UTF8_CONVERT
// does; ok is false for other types, which are printed as hex.
func (a atv) text() (string, bool) {
	switch a.tag {
	case cbasn1.UTF8String, cbasn1.PrintableString, cbasn1.IA5String, 26 /* VisibleString */, 18 /* NumericString */ :
		return string(a.value), true
	case cbasn1.T61String: // OpenSSL treats it as Latin-1
		r := make([]rune, len(a.value))
		for i, c := range a.value {
			r[i] = rune(c)
		}
		return string(r), true
	case 30: // BMPString, UCS-2 big endian
		if len(a.value)%2 != 0 {
			return "", false
		}
		u := make([]uint16, len(a.value)/2)
		for i := range u {
			u[i] = uint16(a.value[2*i])<<8 | uint16(a.value[2*i+1])
		}
		return string(utf16.Decode(u)), true
	case 28: // UniversalString, UCS-4 big endian
		if len(a.value)%4 != 0 {
			return "", false
		}
		var b strings.Builder
		for i := 0; i < len(a.value); i += 4 {
			b.WriteRune(rune(a.value[i])<<24 | rune(a.value[i+1])<<16 | rune(a.value[i+2])<<8 | rune(a.value[i+3]))
		}
		return b.String(), true
	}
	return "", false
}

// escapeRFC2253 escapes like OpenSSL's ASN1_STRFLGS_RFC2253: the RFC 2253
// specials with a backslash, '#' or ' ' first and ' ' last likewise, and
// control characters and every byte of non-ASCII UTF-8 as \XX.
func escapeRFC2253(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c < 0x20 || c == 0x7f || c >= utf8.RuneSelf:
			fmt.Fprintf(&b, "\\%02X", c)
		case strings.IndexByte(",+\"\\<>;", c) >= 0,
			i == 0 && (c == '#' || c == ' '),
			i == len(s)-1 && c == ' ':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
