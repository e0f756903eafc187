package tlsprobe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mamori-mqtt/mamori/internal/pki"
	"github.com/mamori-mqtt/mamori/internal/tlsprobe/probetest"
)

// serverConfig is a Go TLS server presenting one certificate of p.
func serverConfig(t *testing.T, p *probetest.PKI, name string) *tls.Config {
	t.Helper()
	kp, err := tls.LoadX509KeyPair(p.Path(name+".crt"), p.Path(name+".key"))
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{kp}}
}

// requireClientCert makes cfg demand a client certificate from CA1.
func requireClientCert(t *testing.T, p *probetest.PKI, cfg *tls.Config, maxVer uint16) *tls.Config {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(p.Cert(t, "ca1.crt"))
	cfg.ClientAuth = tls.RequireAndVerifyClientCert
	cfg.ClientCAs = pool
	cfg.MaxVersion = maxVer
	return cfg
}

// connect dials addr with o, then sends CONNECT and reads CONNACK: a TLS
// 1.3 server refuses a client certificate only after the client's
// handshake is done. It returns the warnings and the first error.
func connect(t *testing.T, addr string, o ClientOptions) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var warn strings.Builder
	conn, err := Dial(ctx, addr, o, &warn)
	if err != nil {
		return warn.String(), err
	}
	defer conn.Close()
	ack, err := mqttConnect(ctx, conn, MQTTOptions{})
	if err != nil {
		return warn.String(), err
	}
	if ack.Code != 0 {
		t.Fatalf("CONNACK %d", ack.Code)
	}
	return warn.String(), nil
}

func verifyErr(t *testing.T, err error) *VerifyError {
	t.Helper()
	var ve *VerifyError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v (%T) is not a *VerifyError", err, err)
	}
	return ve
}

// TestExplainStages covers every failure the issue lists, each with the
// exact explanation a user sees.
func TestExplainStages(t *testing.T) {
	p := probetest.NewPKI(t)
	ca1, ca2 := p.Path("ca1.crt"), p.Path("ca2.crt")
	server1 := probetest.StartTLS(t, serverConfig(t, p, "server1"), 0)
	sanSrv := probetest.StartTLS(t, serverConfig(t, p, "san"), 0)
	expired := probetest.StartTLS(t, serverConfig(t, p, "expired"), 0)
	future := probetest.StartTLS(t, serverConfig(t, p, "future"), 0)
	mtls12 := probetest.StartTLS(t, requireClientCert(t, p, serverConfig(t, p, "server1"), tls.VersionTLS12), 0)
	mtls13 := probetest.StartTLS(t, requireClientCert(t, p, serverConfig(t, p, "server1"), tls.VersionTLS13), 0)
	only12 := serverConfig(t, p, "server1")
	only12.MaxVersion = tls.VersionTLS12
	tls12 := probetest.StartTLS(t, only12, 0)

	expCert, futCert := p.Cert(t, "expired.crt"), p.Cert(t, "future.crt")
	cnWarn := CNWarning(p.Cert(t, "server1.crt")) + "\n"
	tests := []struct {
		name string
		addr string
		o    ClientOptions
		// want is the explanation; wantFn builds it from the error when it
		// holds the time of verification.
		want   string
		wantFn func(err error) string
		warn   string
	}{
		{
			name: "stage 1: unknown CA (seed 000, wrong CA file)",
			addr: server1, o: ClientOptions{CAFile: ca2, ServerName: "mqtt.local"},
			want: "TLS: the server's certificate (CN=mqtt.local, issued by CA1) is not signed by any CA in " + ca2 +
				" — pass CA1's certificate with --cafile (or, if the server chooses its certificate by SNI, ask for the other one with --servername)",
		},
		{
			name: "stage 1 still checked with --insecure",
			addr: server1, o: ClientOptions{CAFile: ca2, Insecure: true},
			want: "TLS: the server's certificate (CN=mqtt.local, issued by CA1) is not signed by any CA in " + ca2 +
				" — pass CA1's certificate with --cafile (or, if the server chooses its certificate by SNI, ask for the other one with --servername)",
		},
		{
			name: "stage 2: host name mismatch (SPEC §6 wording)",
			addr: server1, o: ClientOptions{CAFile: ca1, ServerName: "mqtt.example.com"},
			want: "TLS: certificate is valid for mqtt.local, not mqtt.example.com — connect with --servername mqtt.local, or --insecure",
		},
		{
			name: "stage 2: connecting by IP to a CN-only certificate",
			addr: server1, o: ClientOptions{CAFile: ca1},
			want: "TLS: certificate is valid for mqtt.local, not 127.0.0.1 — connect with --servername mqtt.local, or --insecure",
		},
		{
			name: "stage 2: SAN certificate lists every name",
			addr: sanSrv, o: ClientOptions{CAFile: ca1, ServerName: "a.b.example.org"},
			want: "TLS: certificate is valid for mqtt.example.com, *.example.org and 127.0.0.1, not a.b.example.org — connect with --servername mqtt.example.com, or --insecure",
		},
		{
			name: "CN-only certificate verifies by CN, with a warning (seed 000 without --insecure)",
			addr: server1, o: ClientOptions{CAFile: ca1, ServerName: "mqtt.local"},
			warn: "Warning: the server's certificate (CN=mqtt.local) has no DNS subjectAltName, so its CN was matched; CN-only certificates are deprecated (RFC 6125) — reissue it with a SAN (mamori ca issue server --dns mqtt.local)\n",
		},
		{name: "--insecure skips stage 2 only (seed 000 verification 1)", addr: server1, o: ClientOptions{CAFile: ca1, Insecure: true}},
		{name: "IP SAN", addr: sanSrv, o: ClientOptions{CAFile: ca1}},
		{name: "wildcard SAN", addr: sanSrv, o: ClientOptions{CAFile: ca1, ServerName: "broker.example.org"}},
		{
			name: "stage 1: expired",
			addr: expired, o: ClientOptions{CAFile: ca1, ServerName: "mqtt.local"},
			wantFn: func(err error) string {
				return "TLS: the server's certificate (CN=mqtt.local) expired on " + fmtTime(expCert.NotAfter) + " (valid from " +
					fmtTime(expCert.NotBefore) + "; it is now " + fmtTime(verifyErr(t, err).Now) + ") — renew it on the server, or check this machine's clock"
			},
		},
		{
			name: "stage 1: not yet valid",
			addr: future, o: ClientOptions{CAFile: ca1, ServerName: "mqtt.local"},
			wantFn: func(err error) string {
				return "TLS: the server's certificate (CN=mqtt.local) is not valid before " + fmtTime(futCert.NotBefore) +
					" (it is now " + fmtTime(verifyErr(t, err).Now) + ") — check the clock of this machine and of the CA that issued it"
			},
		},
		{
			name: "server wants a client certificate (TLS 1.2)",
			warn: cnWarn,
			addr: mtls12, o: ClientOptions{CAFile: ca1, ServerName: "mqtt.local"},
			want: "TLS: the server requires a client certificate — pass --cert and --key (or --cert FILE.p12 --cert-pass PASS) issued by CN=CA1",
		},
		{
			name: "server wants a client certificate (TLS 1.3, refused after the handshake)",
			warn: cnWarn,
			addr: mtls13, o: ClientOptions{CAFile: ca1, ServerName: "mqtt.local"},
			want: "TLS: the server requires a client certificate — pass --cert and --key (or --cert FILE.p12 --cert-pass PASS) issued by CN=CA1",
		},
		{
			name: "client certificate refused (TLS 1.2)",
			warn: cnWarn,
			addr: mtls12, o: ClientOptions{CAFile: ca1, ServerName: "mqtt.local", CertFile: p.Path("device2.crt"), KeyFile: p.Path("device2.key")},
			want: "TLS: the server refused the client certificate " + p.Path("device2.crt") + " (CN=device2, issued by CA2): the server does not know the CA that issued it (unknown CA) — the server accepts certificates issued by CN=CA1",
		},
		{
			name: "client certificate refused (TLS 1.3)",
			warn: cnWarn,
			addr: mtls13, o: ClientOptions{CAFile: ca1, ServerName: "mqtt.local", CertFile: p.Path("device2.crt"), KeyFile: p.Path("device2.key")},
			want: "TLS: the server refused the client certificate " + p.Path("device2.crt") + " (CN=device2, issued by CA2): the server does not know the CA that issued it (unknown CA) — the server accepts certificates issued by CN=CA1",
		},
		{name: "client certificate accepted", addr: mtls13, o: ClientOptions{CAFile: ca1, ServerName: "mqtt.local", CertFile: p.Path("device1.crt"), KeyFile: p.Path("device1.key")},
			warn: cnWarn},
		{
			name: "no common TLS version",
			addr: tls12, o: ClientOptions{CAFile: ca1, ServerName: "mqtt.local", TLSVersion: "tlsv1.3"},
			want: "TLS: the server and this client share no TLS version: the client offered only TLS 1.3 (--tls-version tlsv1.3) — try --tls-version tlsv1.2, or enable TLS 1.3 on the server",
		},
		{
			name: "no common cipher",
			addr: tls12, o: ClientOptions{CAFile: ca1, ServerName: "mqtt.local", Ciphers: "ECDHE-ECDSA-AES128-GCM-SHA256"},
			want: "TLS: the server ended the handshake (handshake failure) before sending its certificate: it shares no cipher suite (or TLS version) with this client — the client offered only --ciphers ECDHE-ECDSA-AES128-GCM-SHA256; compare with the server's ciphers option, or leave --ciphers out",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			warn, err := connect(t, tc.addr, tc.o)
			want := tc.want
			if tc.wantFn != nil && err != nil {
				want = tc.wantFn(err)
			}
			if want == "" && tc.wantFn == nil {
				if err != nil {
					t.Fatalf("connection failed: %v\n%s", err, Explain(err, tc.o, tc.addr))
				}
			} else if err == nil {
				t.Fatal("connection succeeded; want a failure")
			} else if got := Explain(err, tc.o, tc.addr); got != want {
				t.Errorf("Explain:\n got: %s\nwant: %s\n(error %v)", got, want, err)
			}
			if warn != tc.warn {
				t.Errorf("warnings = %q, want %q", warn, tc.warn)
			}
		})
	}
}

// TestExplainNotTLS covers the wrong protocol in both directions, refused
// connections and timeouts.
func TestExplainNotTLS(t *testing.T) {
	plain := probetest.StartPlainMQTT(t, false)
	garbage := probetest.StartPlainMQTT(t, true)
	silent := probetest.StartSilent(t)
	closed := "127.0.0.1:" + strconv.Itoa(probetest.FreePort(t))
	tests := []struct {
		name, addr, want string
		timeout          time.Duration
	}{
		{"TLS client to a plain MQTT port", plain, "TLS: " + plain + " speaks plain MQTT, not TLS (it answered an MQTT CONNECT with CONNACK) — leave out --cafile/--capath/--cert, or connect to the broker's TLS port (usually 8883)", 0},
		{"plain port answering the ClientHello with MQTT", garbage, "TLS: " + garbage + " answered with plain MQTT, not TLS — this port does not speak TLS: leave out --cafile/--capath/--cert, or connect to the broker's TLS port (usually 8883)", 0},
		{"timeout", silent, "TLS: no answer from " + silent + " during the TLS handshake — the port may speak plain MQTT and be waiting for a CONNECT (try port 8883), or a firewall drops the packets", 300 * time.Millisecond},
		{"connection refused", closed, "TLS: could not connect to " + closed + ": connection refused — nothing listens there (the broker's TLS port is usually 8883)", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			timeout := tc.timeout
			if timeout == 0 {
				timeout = 5 * time.Second
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			o := ClientOptions{CAFile: "", Insecure: true}
			conn, err := Dial(ctx, tc.addr, o, nil)
			if err == nil {
				conn.Close()
				t.Fatal("handshake succeeded")
			}
			if got := Explain(err, o, tc.addr); got != tc.want {
				t.Errorf("Explain:\n got: %s\nwant: %s\n(error %v)", got, tc.want, err)
			}
		})
	}
}

// TestPlainClientToTLSPort: a plain MQTT client's CONNECT sent to a TLS
// port; OpenSSL answers with a TLS alert record, Go closes silently.
func TestPlainClientToTLSPort(t *testing.T) {
	p := probetest.NewPKI(t)
	osrv := probetest.StartOpenSSL(t, p.Dir, "-cert", "server1.crt", "-key", "server1.key")
	gsrv := probetest.StartTLS(t, serverConfig(t, p, "server1"), 0)
	plain := probetest.StartPlainMQTT(t, false)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, srv := range []string{osrv, gsrv} {
		reply, err := plainConnect(t, srv)
		msg, ok := ExplainPlainFailure(ctx, err, reply, srv)
		want := "MQTT: " + srv + " speaks TLS, not plain MQTT (it closed the connection on CONNECT and answers a TLS handshake) — add --cafile CA.crt (or --tls-use-os-certs), or connect to the plain MQTT port (usually 1883)"
		if !ok || msg != want {
			t.Errorf("got %q, %v (reply % x, err %v)\nwant %q", msg, ok, reply, err, want)
		}
	}
	msg, ok := ExplainPlainFailure(ctx, nil, []byte{0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x46}, "broker:1883")
	if want := "MQTT: broker:1883 speaks TLS, not plain MQTT (it answered CONNECT with a TLS record) — add --cafile CA.crt (or --tls-use-os-certs), or connect to the plain MQTT port (usually 1883)"; !ok || msg != want {
		t.Errorf("alert record: got %q, %v", msg, ok)
	}
	if msg, ok := ExplainPlainFailure(ctx, io.EOF, nil, plain); ok {
		t.Errorf("plain MQTT server called TLS: %q", msg)
	}
	// SpeaksTLS settles it for the client that got nothing back.
	if !SpeaksTLS(ctx, gsrv) || !SpeaksTLS(ctx, osrv) {
		t.Error("SpeaksTLS false for a TLS server")
	}
	if SpeaksTLS(ctx, plain) {
		t.Error("SpeaksTLS true for a plain MQTT server")
	}
	if ok, err := ProbePlainMQTT(ctx, plain); !ok {
		t.Errorf("ProbePlainMQTT(plain) = false, %v", err)
	}
}

// plainConnect sends a plain MQTT CONNECT and returns what came back.
func plainConnect(t *testing.T, addr string) ([]byte, error) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte{0x10, 0x10, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 30, 0, 4, 't', 'e', 's', 't'}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	return buf[:n], err
}

// TestExplainOpenSSLAlerts: the alerts OpenSSL (and so mosquitto) sends
// when it refuses a client certificate, which Go's server does not send.
func TestExplainOpenSSLAlerts(t *testing.T) {
	p := probetest.NewPKI(t)
	base := []string{"-cert", "server1.crt", "-key", "server1.key", "-CAfile", "ca1.crt", "-Verify", "1", "-verify_return_error"}
	srv12 := probetest.StartOpenSSL(t, p.Dir, append(base, "-tls1_2")...)
	srv13 := probetest.StartOpenSSL(t, p.Dir, append(base, "-tls1_3")...)
	ca1 := p.Path("ca1.crt")
	dev2, devexp := p.Path("device2.crt"), p.Path("devexp.crt")
	tests := []struct {
		name, addr string
		o          ClientOptions
		want       string
	}{
		{"no client certificate, TLS 1.2 (handshake failure)", srv12, ClientOptions{CAFile: ca1, ServerName: "mqtt.local"},
			"TLS: the server requires a client certificate — pass --cert and --key (or --cert FILE.p12 --cert-pass PASS) issued by CN=CA1"},
		{"no client certificate, TLS 1.3 (certificate required)", srv13, ClientOptions{CAFile: ca1, ServerName: "mqtt.local"},
			"TLS: the server requires a client certificate — pass --cert and --key (or --cert FILE.p12 --cert-pass PASS) issued by CN=CA1"},
		{"client certificate from an unknown CA", srv12, ClientOptions{CAFile: ca1, ServerName: "mqtt.local", CertFile: dev2, KeyFile: p.Path("device2.key")},
			"TLS: the server refused the client certificate " + dev2 + " (CN=device2, issued by CA2): the server does not know the CA that issued it (unknown CA) — the server accepts certificates issued by CN=CA1"},
		{"expired client certificate", srv12, ClientOptions{CAFile: ca1, ServerName: "mqtt.local", CertFile: devexp, KeyFile: p.Path("devexp.key")},
			"TLS: the server refused the client certificate " + devexp + " (CN=devexp, issued by CA1): the server says it is expired or not yet valid — the server accepts certificates issued by CN=CA1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			conn, err := Dial(ctx, tc.addr, tc.o, nil)
			if err == nil {
				// TLS 1.3: the refusal comes with the first read.
				conn.SetDeadline(time.Now().Add(5 * time.Second))
				conn.Write([]byte{0xc0, 0})
				_, err = conn.Read(make([]byte, 1))
				conn.Close()
			}
			if err == nil {
				t.Fatal("no error")
			}
			if got := Explain(err, tc.o, tc.addr); got != tc.want {
				t.Errorf("Explain:\n got: %s\nwant: %s\n(error %v)", got, tc.want, err)
			}
		})
	}
}

// TestClientKeys: PKCS#12 bundles, encrypted PKCS#8, legacy encrypted PEM,
// --capath and --tls-keylog, against a server that requires CA1 clients.
func TestClientKeys(t *testing.T) {
	p := probetest.NewPKI(t)
	srv := probetest.StartTLS(t, requireClientCert(t, p, serverConfig(t, p, "san"), 0), 0)
	capath := t.TempDir()
	data, _ := os.ReadFile(p.Path("ca1.crt"))
	os.WriteFile(capath+"/ca1.pem", data, 0o600)
	os.WriteFile(capath+"/notes.txt", []byte("not a certificate"), 0o600)
	keylog := t.TempDir() + "/keys.log"
	tests := []struct {
		name    string
		o       ClientOptions
		wantErr error
	}{
		{"PKCS#12 with --cert-pass", ClientOptions{CertFile: p.Path("device1.p12"), CertPass: probetest.Pass}, nil},
		{"encrypted PKCS#8 key", ClientOptions{CertFile: p.Path("device1.crt"), KeyFile: p.Path("device1-pkcs8.key"), CertPass: probetest.Pass}, nil},
		{"legacy encrypted PEM key", ClientOptions{CertFile: p.Path("device1.crt"), KeyFile: p.Path("device1-legacy.key"), CertPass: probetest.Pass}, nil},
		{"wrong password", ClientOptions{CertFile: p.Path("device1.crt"), KeyFile: p.Path("device1-pkcs8.key"), CertPass: "nope"}, pki.ErrWrongPassword},
		{"PKCS#12 without password", ClientOptions{CertFile: p.Path("device1.p12")}, pki.ErrPasswordRequired},
		{"key of another certificate", ClientOptions{CertFile: p.Path("device1.crt"), KeyFile: p.Path("device2.key")}, pki.ErrKeyMismatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.o
			o.CAPath = capath
			o.KeyLogFile = keylog
			_, err := connect(t, srv, o)
			if tc.wantErr == nil && err != nil {
				t.Fatalf("%v\n%s", err, Explain(err, o, srv))
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
		})
	}
	log, err := os.ReadFile(keylog)
	if err != nil || !strings.Contains(string(log), "CLIENT_HANDSHAKE_TRAFFIC_SECRET ") {
		t.Errorf("key log: %v %q", err, log)
	}
	if st, err := os.Stat(keylog); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("key log mode: %v %v", st.Mode(), err)
	}
}

// TestSeedsWithMosquitto runs the seeds' broker setups on Debian's
// mosquitto and connects with mamori's client configuration.
func TestSeedsWithMosquitto(t *testing.T) {
	p := probetest.NewPKI(t)
	ca1 := p.Path("ca1.crt")
	seed000 := probetest.StartMosquitto(t, "cafile "+ca1+"\ncertfile "+p.Path("server1.crt")+"\nkeyfile "+p.Path("server1.key")+"\ntls_version tlsv1.2")
	s1 := p.Dir + "/seed001/"
	seed001 := probetest.StartMosquitto(t, "cafile "+s1+"mqtt_ca.crt\ncertfile "+s1+"mqtt_srv.crt\nkeyfile "+s1+"mqtt_srv.key\ntls_version tlsv1.2")
	seed002 := probetest.StartMosquitto(t, "cafile "+ca1+"\ncertfile "+p.Path("server1.crt")+"\nkeyfile "+p.Path("server1.key")+
		"\nrequire_certificate true\nuse_identity_as_username true")
	cnWarn := CNWarning(p.Cert(t, "server1.crt")) + "\n"
	tests := []struct {
		name, addr string
		o          ClientOptions
		want, warn string
	}{
		{name: "seed 000 verification 1: CA1, --insecure, name mqtt.example.com", addr: seed000,
			o: ClientOptions{CAFile: ca1, ServerName: "mqtt.example.com", Insecure: true}},
		{name: "seed 000 without --insecure: stage 2 explained", addr: seed000,
			o:    ClientOptions{CAFile: ca1, ServerName: "mqtt.example.com"},
			want: "TLS: certificate is valid for mqtt.local, not mqtt.example.com — connect with --servername mqtt.local, or --insecure"},
		{name: "seed 000 with --servername mqtt.local: no --insecure needed", addr: seed000,
			o: ClientOptions{CAFile: ca1, ServerName: "mqtt.local"}, warn: cnWarn},
		{name: "seed 000 with the other CA", addr: seed000,
			o: ClientOptions{CAFile: p.Path("ca2.crt"), ServerName: "mqtt.local"},
			want: "TLS: the server's certificate (CN=mqtt.local, issued by CA1) is not signed by any CA in " + p.Path("ca2.crt") +
				" — pass CA1's certificate with --cafile (or, if the server chooses its certificate by SNI, ask for the other one with --servername)"},
		{name: "seed 001: CA and server share a subject, CA key from genrsa -des3", addr: seed001,
			o:    ClientOptions{CAFile: s1 + "mqtt_ca.crt", ServerName: "User-PC.local"},
			warn: "Warning: the server's certificate (CN=User-PC.local) has no DNS subjectAltName, so its CN was matched; CN-only certificates are deprecated (RFC 6125) — reissue it with a SAN (mamori ca issue server --dns User-PC.local)\n"},
		{name: "seed 002: client certificate as PKCS#12", addr: seed002,
			o: ClientOptions{CAFile: ca1, ServerName: "mqtt.local", CertFile: p.Path("device1.p12"), CertPass: probetest.Pass}, warn: cnWarn},
		{name: "seed 002: no client certificate", addr: seed002,
			o:    ClientOptions{CAFile: ca1, ServerName: "mqtt.local"},
			want: "TLS: the server requires a client certificate — pass --cert and --key (or --cert FILE.p12 --cert-pass PASS)", warn: cnWarn},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			warn, err := connect(t, tc.addr, tc.o)
			// Mosquitto over TLS 1.3 sometimes resets the socket before its
			// alert is read (the kernel discards unread data on close), and
			// the client then only sees a reset: that is the network losing
			// the server's answer, not a different answer, so try again.
			for try := 0; try < 3 && err != nil && errors.Is(err, syscall.ECONNRESET) &&
				tc.want != "" && Explain(err, tc.o, tc.addr) != tc.want; try++ {
				warn, err = connect(t, tc.addr, tc.o)
			}
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("%v\n%s", err, Explain(err, tc.o, tc.addr))
			case tc.want != "" && err == nil:
				t.Fatal("connection succeeded; want a failure")
			case tc.want != "":
				if got := Explain(err, tc.o, tc.addr); got != tc.want {
					t.Errorf("Explain:\n got: %s\nwant: %s\n(error %v)", got, tc.want, err)
				}
			}
			if warn != tc.warn {
				t.Errorf("warnings = %q, want %q", warn, tc.warn)
			}
		})
	}
}
