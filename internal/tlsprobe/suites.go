package tlsprobe

import (
	"crypto/tls"
	"fmt"
	"sort"
	"strings"
)

// opensslSuites maps OpenSSL cipher names, as mosquitto's --ciphers and the
// ciphers option take them, to the suites Go's crypto/tls implements.
var opensslSuites = map[string]uint16{
	"ECDHE-ECDSA-AES128-GCM-SHA256": tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	"ECDHE-ECDSA-AES256-GCM-SHA384": tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	"ECDHE-ECDSA-CHACHA20-POLY1305": tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	"ECDHE-RSA-AES128-GCM-SHA256":   tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	"ECDHE-RSA-AES256-GCM-SHA384":   tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	"ECDHE-RSA-CHACHA20-POLY1305":   tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	"ECDHE-ECDSA-AES128-SHA256":     tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256,
	"ECDHE-RSA-AES128-SHA256":       tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256,
	"ECDHE-ECDSA-AES128-SHA":        tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
	"ECDHE-ECDSA-AES256-SHA":        tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
	"ECDHE-RSA-AES128-SHA":          tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
	"ECDHE-RSA-AES256-SHA":          tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
	"ECDHE-RSA-DES-CBC3-SHA":        tls.TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA,
	"AES128-GCM-SHA256":             tls.TLS_RSA_WITH_AES_128_GCM_SHA256,
	"AES256-GCM-SHA384":             tls.TLS_RSA_WITH_AES_256_GCM_SHA384,
	"AES128-SHA256":                 tls.TLS_RSA_WITH_AES_128_CBC_SHA256,
	"AES128-SHA":                    tls.TLS_RSA_WITH_AES_128_CBC_SHA,
	"AES256-SHA":                    tls.TLS_RSA_WITH_AES_256_CBC_SHA,
	"DES-CBC3-SHA":                  tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA,
}

// tls13Suites are OpenSSL's TLS 1.3 names. Go always offers all three in
// TLS 1.3 and cannot restrict them, so naming them is accepted and changes
// nothing (OpenSSL takes them in a separate list, -ciphersuites).
var tls13Suites = map[string]bool{
	"TLS_AES_128_GCM_SHA256":       true,
	"TLS_AES_256_GCM_SHA384":       true,
	"TLS_CHACHA20_POLY1305_SHA256": true,
}

// exclusionClasses are OpenSSL cipher classes that Go never offers anyway,
// so "!aNULL:!MD5" style exclusions need no action.
var exclusionClasses = map[string]bool{
	"ANULL": true, "ENULL": true, "NULL": true, "MD5": true, "RC4": true, "DES": true, "EXP": true,
	"EXPORT": true, "LOW": true, "PSK": true, "SRP": true, "DSS": true, "ADSS": true, "CAMELLIA": true,
	"SEED": true, "IDEA": true, "ADH": true, "AECDH": true, "KDHE": true, "DHE": true, "EDH": true,
	"ARIA": true, "CCM": true, "CCM8": true, "3DES": true, "SHA1": true, "KRSA": true, "MEDIUM": true,
}

// ParseCiphers turns an OpenSSL cipher list ("ECDHE-RSA-AES128-GCM-SHA256:
// ECDHE-ECDSA-AES128-GCM-SHA256", separated by ':', ',' or spaces) into Go
// suite ids for TLS 1.0-1.2. DEFAULT and HIGH stand for Go's default
// selection; "!X" and "-X" remove a suite, or are ignored for classes Go
// never offers (aNULL, MD5, RC4...). A name Go cannot provide is an error
// naming it. An empty result (only TLS 1.3 names) returns nil: Go's
// defaults then apply to TLS 1.2.
func ParseCiphers(list string) ([]uint16, error) {
	var ids []uint16
	seen := map[uint16]bool{}
	add := func(id uint16) {
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	tokens := strings.FieldsFunc(list, func(r rune) bool { return r == ':' || r == ',' || r == ' ' })
	for _, tok := range tokens {
		if strings.HasPrefix(tok, "@") { // @STRENGTH, @SECLEVEL=n: ordering and policy knobs
			continue
		}
		if tok[0] == '!' || tok[0] == '-' {
			name := strings.ToUpper(tok[1:])
			if id, ok := opensslSuites[name]; ok {
				delete(seen, id)
				ids = removeID(ids, id)
				seen[id] = true // "!X" also stops a later keyword re-adding it
				continue
			}
			if exclusionClasses[name] || tls13Suites[name] {
				continue
			}
			return nil, fmt.Errorf("--ciphers: unknown exclusion %q", tok)
		}
		tok = strings.TrimPrefix(tok, "+")
		name := strings.ToUpper(tok)
		if id, ok := opensslSuites[name]; ok {
			add(id)
			continue
		}
		if tls13Suites[name] {
			continue
		}
		switch name {
		case "DEFAULT", "HIGH", "ALL", "ECDHE", "EECDH", "AESGCM", "CHACHA20":
			for _, s := range tls.CipherSuites() {
				if len(s.SupportedVersions) == 1 && s.SupportedVersions[0] == tls.VersionTLS13 {
					continue
				}
				add(s.ID)
			}
			continue
		}
		return nil, cipherError(tok)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	return ids, nil
}

func removeID(ids []uint16, id uint16) []uint16 {
	out := ids[:0]
	for _, x := range ids {
		if x != id {
			out = append(out, x)
		}
	}
	return out
}

// cipherError explains why a cipher name cannot be used, with the nearest
// suite Go has when there is one.
func cipherError(name string) error {
	up := strings.ToUpper(name)
	switch {
	case strings.HasPrefix(up, "DHE-") || strings.HasPrefix(up, "EDH-"):
		alt := "ECDHE-" + strings.TrimPrefix(strings.TrimPrefix(up, "DHE-"), "EDH-")
		if _, ok := opensslSuites[alt]; ok {
			return fmt.Errorf("--ciphers: %s is not available: Go's TLS has no finite-field DHE key exchange; use %s", name, alt)
		}
		return fmt.Errorf("--ciphers: %s is not available: Go's TLS has no finite-field DHE key exchange; use an ECDHE suite such as ECDHE-RSA-AES128-GCM-SHA256", name)
	case strings.Contains(up, "RC4"):
		return fmt.Errorf("--ciphers: %s is not available: RC4 is broken (RFC 7465) and Go does not offer it", name)
	case strings.Contains(up, "PSK"):
		return fmt.Errorf("--ciphers: %s is not available with certificates: PSK suites are used with a pre-shared key (--psk and --psk-identity; psk_hint and psk_file on a listener)", name)
	}
	return fmt.Errorf("--ciphers: %s is not a cipher Go's TLS provides; available: %s", name, strings.Join(CipherNames(), ":"))
}

// CipherNames lists the OpenSSL names ParseCiphers accepts, sorted.
func CipherNames() []string {
	names := make([]string, 0, len(opensslSuites))
	for n := range opensslSuites {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// OpenSSLName returns the OpenSSL name of a Go cipher suite id, or Go's
// name when OpenSSL has none in the table ("TLS_AES_128_GCM_SHA256").
func OpenSSLName(id uint16) string {
	for n, x := range opensslSuites {
		if x == id {
			return n
		}
	}
	return tls.CipherSuiteName(id)
}

// ParseTLSVersion reads mosquitto's --tls-version / tls_version values:
// tlsv1.3, tlsv1.2, tlsv1.1 and tlsv1 (also "1.2", "TLSv1.2"). It is a
// minimum, as in Mosquitto 2. TLS 1.0 and 1.1 are accepted because Go still
// speaks them as a client when asked explicitly, but they are obsolete
// (RFC 8996), so old reports the caller should warn about. "" is TLS 1.2.
func ParseTLSVersion(s string) (v uint16, old bool, err error) {
	switch strings.TrimPrefix(strings.ToLower(strings.TrimSpace(s)), "tlsv") {
	case "", "1.2":
		return tls.VersionTLS12, false, nil
	case "1.3":
		return tls.VersionTLS13, false, nil
	case "1.1":
		return tls.VersionTLS11, true, nil
	case "1", "1.0":
		return tls.VersionTLS10, true, nil
	}
	return 0, false, fmt.Errorf("--tls-version %q: use tlsv1.3, tlsv1.2, tlsv1.1 or tlsv1", s)
}

// VersionName names a TLS version: "TLS 1.3".
func VersionName(v uint16) string {
	switch v {
	case 0:
		return "none"
	case tls.VersionTLS10:
		return "TLS 1.0"
	case tls.VersionTLS11:
		return "TLS 1.1"
	case tls.VersionTLS12:
		return "TLS 1.2"
	case tls.VersionTLS13:
		return "TLS 1.3"
	}
	return tls.VersionName(v)
}
