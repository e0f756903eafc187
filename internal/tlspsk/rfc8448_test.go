package tlspsk

import (
	"bufio"
	"bytes"
	"crypto/ecdh"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"strings"
	"testing"
)

// loadVectors reads a "name: hex" file of testdata.
func loadVectors(t *testing.T, path string) map[string][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	vals := map[string]string{}
	var last string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#"):
		case line[0] == ' ' && last != "":
			vals[last] += strings.Join(strings.Fields(line), "")
		default:
			name, v, ok := strings.Cut(line, ":")
			if !ok {
				t.Fatalf("%s: bad line %q", path, line)
			}
			last = name
			vals[name] = strings.Join(strings.Fields(v), "")
		}
	}
	out := map[string][]byte{}
	for k, v := range vals {
		b, err := hex.DecodeString(v)
		if err != nil {
			t.Fatalf("%s: %s: %v", path, k, err)
		}
		out[k] = b
	}
	return out
}

// TestRFC8448Resumed replays RFC 8448 §4 (a PSK handshake with a binder)
// through the parser, key schedule and record layer.
func TestRFC8448Resumed(t *testing.T) {
	v := loadVectors(t, "testdata/rfc8448-resumed.txt")
	check := func(name string, got []byte) {
		t.Helper()
		want, ok := v[name]
		if !ok {
			t.Fatalf("vector %s missing", name)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s:\n got %x\nwant %x", name, got, want)
		}
	}
	su := suiteByID(TLS_AES_128_GCM_SHA256)
	h := su.hash

	ch, perr := parseClientHello(v["client_hello"])
	if perr != nil {
		t.Fatal(perr)
	}
	if len(ch.identities) != 1 || !ch.earlyData || ch.serverName != "server" || !ch.offersVersion(VersionTLS13) {
		t.Fatalf("parsed ClientHello: %+v", ch)
	}
	sched := newSchedule(h, v["psk"])
	check("early_secret", sched.early)
	binderHash := sha256.Sum256(v["client_hello"][:ch.bindersAt])
	check("binder_hash", binderHash[:])
	check("binder_key", sched.binderKey(false))
	check("binder_finished_key", finishedKey(h, sched.binderKey(false)))
	check("binder", sched.binder(false, binderHash[:]))
	check("binder", ch.binders[0])
	chHash := sha256.Sum256(v["client_hello"])
	early := deriveSecret(h, sched.early, "c e traffic", chHash[:])
	check("client_early_traffic", early)

	sh, perr := parseServerHello(v["server_hello"])
	if perr != nil {
		t.Fatal(perr)
	}
	if sh.pskSelected != 0 || sh.supportedVersion != VersionTLS13 || sh.keyShare.group != groupX25519 {
		t.Fatalf("parsed ServerHello: %+v", sh)
	}
	priv, err := ecdh.X25519().NewPrivateKey(v["server_x25519_private"])
	if err != nil {
		t.Fatal(err)
	}
	peer, err := ecdh.X25519().NewPublicKey(ch.keyShares[0].data)
	if err != nil {
		t.Fatal(err)
	}
	check("client_x25519_public", peer.Bytes())
	shared, err := priv.ECDH(peer)
	if err != nil {
		t.Fatal(err)
	}
	c := &Conn{tr: append(append([]byte{}, v["client_hello"]...), v["server_hello"]...)}
	sched.handshakeSecrets(shared, c.transcriptHash(h))
	check("handshake_secret", sched.handshake)
	check("client_handshake_traffic", sched.cHS)
	check("server_handshake_traffic", sched.sHS)
	key, iv := trafficKeys(su, sched.sHS)
	check("server_handshake_key", key)
	check("server_handshake_iv", iv)

	// The server's flight decrypts; its Finished verifies.
	var in halfConn
	if err := in.set13(su, append([]byte{}, sched.sHS...)); err != nil {
		t.Fatal(err)
	}
	rec := v["server_handshake_record"]
	typ, pt, perr := in.open(rec[:5], rec[5:])
	if perr != nil || typ != recordHandshake {
		t.Fatalf("server flight: type %d, %v", typ, perr)
	}
	eeLen := 4 + int(pt[1])<<16 | int(pt[2])<<8 | int(pt[3])
	ee, fin := pt[:eeLen], pt[eeLen:]
	if _, perr := parseEncryptedExtensions(ee); perr != nil {
		t.Fatal(perr)
	}
	c.tr = append(c.tr, ee...)
	finBody, perr := parseBody(fin, typeFinished, "Finished")
	if perr != nil {
		t.Fatal(perr)
	}
	if want := finishedMAC(h, sched.sHS, c.transcriptHash(h)); !bytes.Equal(finBody, want) {
		t.Fatalf("server Finished %x, computed %x", finBody, want)
	}
	c.tr = append(c.tr, fin...)
	sched.appSecrets(c.transcriptHash(h))
	check("client_application_traffic", sched.cAP)
	check("server_application_traffic", sched.sAP)
	key, iv = trafficKeys(su, sched.sAP)
	check("server_application_key", key)
	check("server_application_iv", iv)

	// The client's EndOfEarlyData (early key), Finished (handshake key)
	// and first application data (application key).
	var early0, hs, ap halfConn
	early0.set13(su, early)
	hs.set13(su, append([]byte{}, sched.cHS...))
	ap.set13(su, append([]byte{}, sched.cAP...))
	rec = bytes.Clone(v["client_early_data_record"])
	if typ, pt, perr = early0.open(rec[:5], rec[5:]); perr != nil || typ != recordApplicationData || len(pt) != 6 {
		t.Fatalf("0-RTT data: %d %x %v", typ, pt, perr)
	}
	rec = bytes.Clone(v["client_end_of_early_data_record"])
	if typ, pt, perr = early0.open(rec[:5], rec[5:]); perr != nil || typ != recordHandshake || !bytes.Equal(pt, []byte{typeEndOfEarlyData, 0, 0, 0}) {
		t.Fatalf("EndOfEarlyData: %d %x %v", typ, pt, perr)
	}
	c.tr = append(c.tr, pt...)
	rec = bytes.Clone(v["client_finished_record"])
	if typ, pt, perr = hs.open(rec[:5], rec[5:]); perr != nil || typ != recordHandshake {
		t.Fatalf("client Finished: %d %v", typ, perr)
	}
	finBody, perr = parseBody(pt, typeFinished, "Finished")
	if perr != nil {
		t.Fatal(perr)
	}
	if want := finishedMAC(h, sched.cHS, c.transcriptHash(h)); !bytes.Equal(finBody, want) {
		t.Fatalf("client Finished %x, computed %x", finBody, want)
	}
	rec = bytes.Clone(v["client_application_record"])
	if typ, pt, perr = ap.open(rec[:5], rec[5:]); perr != nil || typ != recordApplicationData || len(pt) != 50 {
		t.Fatalf("application data: %d %d bytes %v", typ, len(pt), perr)
	}
	for i, b := range pt {
		if int(b) != i {
			t.Fatalf("application data byte %d is %d", i, b)
		}
	}

	// The same record sealed by this package is the RFC's record.
	var out halfConn
	out.set13(su, append([]byte{}, sched.cAP...))
	sealed, err := out.seal(nil, recordApplicationData, pt)
	if err != nil || !bytes.Equal(sealed, v["client_application_record"]) {
		t.Fatalf("sealed %x, %v", sealed, err)
	}
}
