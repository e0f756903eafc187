package tlspsk

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"testing/cryptotest"
	"time"
)

// Transcripts recorded from OpenSSL: openssl s_client -psk talked to this
// package's server while crypto randomness was fixed
// (cryptotest.SetGlobalRandom), and wrote its secrets with -keylogfile.
// Replaying OpenSSL's bytes to the server must give the same server bytes
// and the same secrets OpenSSL logged: OpenSSL's key schedule and ours
// agree. MAMORI_RECORD_TRANSCRIPTS=1 records them again (needed if Go
// changes the stream cryptotest produces).

var transcriptCases = []struct {
	name string
	args []string
}{
	{"tls13", []string{"-tls1_3"}},
	{"tls12-ecdhe-psk-chacha20", []string{"-tls1_2", "-cipher", "ECDHE-PSK-CHACHA20-POLY1305"}},
	{"tls12-psk-aes128-gcm", []string{"-tls1_2", "-cipher", "PSK-AES128-GCM-SHA256"}},
}

const (
	transcriptKeyHex = "5eed5eed5eed5eed5eed5eed5eed5eed"
	transcriptID     = "recorded-device"
)

func transcriptServerConfig(keyLog io.Writer) *Config {
	key, _ := hex.DecodeString(transcriptKeyHex)
	return &Config{Hint: "recorded-hint", KeyLogWriter: keyLog,
		GetKey: keyLookup(map[string][]byte{transcriptID: key})}
}

// serveTranscript runs the server side: handshake, a greeting, then
// reading until the client closes.
func serveTranscript(c net.Conn, keyLog io.Writer) error {
	sc := Server(c, transcriptServerConfig(keyLog))
	if err := sc.Handshake(); err != nil {
		return err
	}
	if _, err := sc.Write([]byte("hello " + sc.Identity() + "\n")); err != nil {
		return err
	}
	_, err := io.Copy(io.Discard, sc)
	return err
}

// teeConn records what is read and written.
type teeConn struct {
	net.Conn
	in, out bytes.Buffer
}

func (c *teeConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.in.Write(p[:n])
	return n, err
}

func (c *teeConn) Write(p []byte) (int, error) {
	c.out.Write(p)
	return c.Conn.Write(p)
}

func TestRecordOpenSSLTranscripts(t *testing.T) {
	if os.Getenv("MAMORI_RECORD_TRANSCRIPTS") == "" {
		t.Skip("set MAMORI_RECORD_TRANSCRIPTS=1 to record the OpenSSL transcripts again")
	}
	for _, tc := range transcriptCases {
		t.Run(tc.name, func(t *testing.T) {
			cryptotest.SetGlobalRandom(t, 1)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			keyLogFile := filepath.Join(t.TempDir(), "keylog")
			cmd := exec.Command("openssl", append([]string{"s_client", "-connect", ln.Addr().String(), "-psk", transcriptKeyHex,
				"-psk_identity", transcriptID, "-keylogfile", keyLogFile}, tc.args...)...)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
			c, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			c.SetDeadline(time.Now().Add(20 * time.Second))
			tee := &teeConn{Conn: c}
			if err := serveTranscript(tee, io.Discard); err != nil {
				t.Fatal(err)
			}
			c.Close()
			cmd.Wait()
			kl, err := os.ReadFile(keyLogFile)
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			fmt.Fprintf(&b, "# openssl s_client %s against tlspsk's server, randomness seeded with 1.\n", strings.Join(tc.args, " "))
			fmt.Fprintf(&b, "client_bytes: %x\nserver_bytes: %x\n", tee.in.Bytes(), tee.out.Bytes())
			for _, line := range strings.Split(strings.TrimSpace(string(kl)), "\n") {
				if f := strings.Fields(line); len(f) == 3 && !strings.HasPrefix(line, "#") {
					fmt.Fprintf(&b, "keylog_%s: %s%s\n", f[0], f[1], f[2])
				}
			}
			if err := os.WriteFile("testdata/openssl-"+tc.name+".txt", []byte(b.String()), 0o644); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestOpenSSLTranscripts replays the recorded transcripts.
func TestOpenSSLTranscripts(t *testing.T) {
	for _, tc := range transcriptCases {
		t.Run(tc.name, func(t *testing.T) {
			v := loadVectors(t, "testdata/openssl-"+tc.name+".txt")
			cryptotest.SetGlobalRandom(t, 1)
			sc := &scriptConn{r: bytes.NewReader(v["client_bytes"])}
			var keyLog lockedBuffer
			if err := serveTranscript(sc, &keyLog); err != nil {
				t.Fatalf("replay: %v", err)
			}
			if !bytes.Equal(sc.written.Bytes(), v["server_bytes"]) {
				t.Errorf("the server's bytes differ from the recording")
			}
			var ours, theirs []string
			for _, line := range strings.Split(strings.TrimSpace(keyLog.String()), "\n") {
				f := strings.Fields(line)
				ours = append(ours, f[0]+" "+f[1]+f[2])
			}
			for k, val := range v {
				if label, ok := strings.CutPrefix(k, "keylog_"); ok {
					theirs = append(theirs, label+" "+hex.EncodeToString(val))
				}
			}
			sort.Strings(ours)
			sort.Strings(theirs)
			// OpenSSL also logs EXPORTER_SECRET, which this package does
			// not derive; every secret we log must be one OpenSSL logged.
			for _, l := range ours {
				if !containsString(theirs, l) {
					t.Errorf("secret not in OpenSSL's key log: %s", strings.Fields(l)[0])
				}
			}
			if len(ours) == 0 {
				t.Fatal("no secrets logged")
			}
		})
	}
}

func containsString(list []string, s string) bool {
	for _, l := range list {
		if l == s {
			return true
		}
	}
	return false
}
