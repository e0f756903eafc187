package tlsprobe

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestMatchName(t *testing.T) {
	cnOnly := &x509.Certificate{Subject: pkix.Name{CommonName: "mqtt.local"}}
	san := &x509.Certificate{Subject: pkix.Name{CommonName: "ignored.example"},
		DNSNames: []string{"mqtt.example.com", "*.example.org"}, IPAddresses: []net.IP{net.ParseIP("192.0.2.1")}}
	ipOnly := &x509.Certificate{Subject: pkix.Name{CommonName: "mqtt.local"}, IPAddresses: []net.IP{net.ParseIP("192.0.2.1")}}
	ipCN := &x509.Certificate{Subject: pkix.Name{CommonName: "192.0.2.7"}}
	wildCN := &x509.Certificate{Subject: pkix.Name{CommonName: "*.example.net"}}
	tests := []struct {
		name     string
		cert     *x509.Certificate
		host     string
		ok, byCN bool
	}{
		{"CN only matches (seed 001)", cnOnly, "mqtt.local", true, true},
		{"CN only, case and trailing dot", cnOnly, "MQTT.Local.", true, true},
		{"CN only, other name", cnOnly, "mqtt.example.com", false, false},
		{"DNS SAN", san, "mqtt.example.com", true, false},
		{"CN ignored when a DNS SAN exists", san, "ignored.example", false, false},
		{"wildcard one label", san, "a.example.org", true, false},
		{"wildcard not two labels", san, "a.b.example.org", false, false},
		{"wildcard not the bare domain", san, "example.org", false, false},
		{"IP SAN", san, "192.0.2.1", true, false},
		{"IP not in SAN", san, "192.0.2.2", false, false},
		{"IP SAN only: CN still used for DNS names", ipOnly, "mqtt.local", true, true},
		{"IP in the CN of a SAN-less certificate", ipCN, "192.0.2.7", true, true},
		{"IP in brackets", san, "[192.0.2.1]", true, false},
		{"wildcard CN", wildCN, "broker.example.net", true, true},
		{"wildcard never a public suffix", &x509.Certificate{DNSNames: []string{"*.com"}}, "example.com", false, false},
		{"empty name", cnOnly, "", false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ok, byCN := MatchName(tc.cert, tc.host)
			if ok != tc.ok || byCN != tc.byCN {
				t.Errorf("MatchName(%q) = %v, %v; want %v, %v", tc.host, ok, byCN, tc.ok, tc.byCN)
			}
		})
	}
}

func TestCertNames(t *testing.T) {
	c := &x509.Certificate{Subject: pkix.Name{CommonName: "x"}, DNSNames: []string{"a", "b"}, IPAddresses: []net.IP{net.ParseIP("::1")}}
	if got, want := CertNames(c), []string{"a", "b", "::1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("CertNames = %v, want %v", got, want)
	}
	c = &x509.Certificate{Subject: pkix.Name{CommonName: "mqtt.local"}}
	if got, want := CertNames(c), []string{"mqtt.local"}; !reflect.DeepEqual(got, want) {
		t.Errorf("CertNames = %v, want %v", got, want)
	}
}

func TestParseCiphers(t *testing.T) {
	tests := []struct {
		in      string
		want    []uint16
		wantErr string
	}{
		{in: "ECDHE-RSA-AES128-GCM-SHA256", want: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}},
		{in: "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384, ECDHE-RSA-AES128-GCM-SHA256",
			want: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384}},
		{in: "TLS_AES_128_GCM_SHA256", want: nil},
		{in: "ECDHE-RSA-AES256-SHA:!aNULL:!MD5:@STRENGTH", want: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA}},
		{in: "DHE-RSA-AES128-GCM-SHA256", wantErr: "--ciphers: DHE-RSA-AES128-GCM-SHA256 is not available: Go's TLS has no finite-field DHE key exchange; use ECDHE-RSA-AES128-GCM-SHA256"},
		{in: "RC4-SHA", wantErr: "--ciphers: RC4-SHA is not available: RC4 is broken (RFC 7465) and Go does not offer it"},
		{in: "PSK-AES128-CBC-SHA", wantErr: "--ciphers: PSK-AES128-CBC-SHA is not available with certificates: PSK suites are used with a pre-shared key (--psk and --psk-identity; psk_hint and psk_file on a listener)"},
		{in: "NO-SUCH-CIPHER", wantErr: "--ciphers: NO-SUCH-CIPHER is not a cipher Go's TLS provides; available: AES128-GCM-SHA256:"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseCiphers(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want prefix %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("ParseCiphers = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
	def, err := ParseCiphers("DEFAULT:!ECDHE-RSA-AES128-GCM-SHA256")
	if err != nil || len(def) == 0 {
		t.Fatalf("DEFAULT: %v %v", def, err)
	}
	for _, id := range def {
		if id == tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 {
			t.Error("the excluded suite is still in the list")
		}
	}
}

func TestParseTLSVersion(t *testing.T) {
	tests := []struct {
		in   string
		v    uint16
		old  bool
		fail bool
	}{
		{"", tls.VersionTLS12, false, false},
		{"tlsv1.2", tls.VersionTLS12, false, false},
		{"TLSv1.3", tls.VersionTLS13, false, false},
		{"1.3", tls.VersionTLS13, false, false},
		{"tlsv1.1", tls.VersionTLS11, true, false},
		{"tlsv1", tls.VersionTLS10, true, false},
		{"sslv3", 0, false, true},
	}
	for _, tc := range tests {
		v, old, err := ParseTLSVersion(tc.in)
		if (err != nil) != tc.fail || v != tc.v || old != tc.old {
			t.Errorf("ParseTLSVersion(%q) = %v, %v, %v", tc.in, v, old, err)
		}
	}
}

func TestClientConfigOptions(t *testing.T) {
	dir := t.TempDir()
	if _, err := ClientConfig(ClientOptions{PSK: "0102", PSKIdentity: "dev"}, "h", nil); err != ErrPSKUnsupported {
		t.Errorf("PSK: err = %v", err)
	}
	if _, err := ClientConfig(ClientOptions{KeyFile: "k.pem"}, "h", nil); err == nil || err.Error() != "--key k.pem given without --cert" {
		t.Errorf("key without cert: err = %v", err)
	}
	if _, err := ClientConfig(ClientOptions{Ciphers: "BOGUS"}, "h", nil); err == nil || !strings.HasPrefix(err.Error(), "--ciphers: BOGUS") {
		t.Errorf("bad cipher: err = %v", err)
	}
	if _, err := ClientConfig(ClientOptions{CAFile: filepath.Join(dir, "missing.crt")}, "h", nil); err == nil || !strings.Contains(err.Error(), "--cafile") {
		t.Errorf("missing cafile: err = %v", err)
	}
	empty := filepath.Join(dir, "empty")
	os.Mkdir(empty, 0o700)
	os.WriteFile(filepath.Join(empty, "README"), []byte("no certificates here"), 0o600)
	if _, err := ClientConfig(ClientOptions{CAPath: empty}, "h", nil); err == nil || err.Error() != "--capath "+empty+": no CA certificate found in the directory" {
		t.Errorf("empty capath: err = %v", err)
	}
	var warn strings.Builder
	cfg, err := ClientConfig(ClientOptions{TLSVersion: "tlsv1.1", ALPN: []string{"mqtt"}, ServerName: "broker.example"}, "10.0.0.1:8883", &warn)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MinVersion != tls.VersionTLS11 || cfg.ServerName != "broker.example" || !reflect.DeepEqual(cfg.NextProtos, []string{"mqtt"}) || !cfg.InsecureSkipVerify || cfg.VerifyConnection == nil {
		t.Errorf("config = min %x name %q alpn %v", cfg.MinVersion, cfg.ServerName, cfg.NextProtos)
	}
	if got := warn.String(); got != "Warning: --tls-version tlsv1.1 allows TLS 1.1, which is obsolete and insecure (RFC 8996)\n" {
		t.Errorf("warning = %q", got)
	}
}

func TestTrustStoreNames(t *testing.T) {
	tests := []struct {
		name string
		o    ClientOptions
		want string
	}{
		{"port 8883 without a CA uses the OS store, as mosquitto does", ClientOptions{Port: 8883}, "the system's trust store"},
		{"explicit --tls-use-os-certs", ClientOptions{UseOSCerts: true, Port: 1884}, "the system's trust store"},
		{"nothing given on another port", ClientOptions{Port: 18883}, "the system's trust store"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pool, name, err := loadRoots(tc.o)
			if err != nil {
				t.Skipf("no system trust store here: %v", err)
			}
			if pool == nil || name != tc.want {
				t.Errorf("loadRoots = %v, %q; want %q", pool != nil, name, tc.want)
			}
		})
	}
}
