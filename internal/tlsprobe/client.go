// Package tlsprobe is the engine behind "mamori tlscheck" and the TLS
// side of mamori's clients: it builds client TLS configurations the way
// OpenSSL and Mosquitto verify servers, and explains handshake failures in
// words a person can act on.
//
// Verification is done in two stages, as seed 000 describes them: stage 1
// checks that the chain leads to a trusted CA, stage 2 that the certificate
// is valid for the name asked for (DNS/IP SANs, or the CN of a certificate
// without DNS SAN). Go's own verification is switched off
// (InsecureSkipVerify) and replaced by VerifyConnection so that each stage
// fails with a typed *VerifyError that Explain turns into a sentence, and so
// that CN-only certificates, which Go rejects, are accepted as OpenSSL does.
package tlsprobe

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/mamori-mqtt/mamori/internal/pki"
)

// ClientOptions are the TLS flags of mosquitto_pub/sub plus mamori's own.
type ClientOptions struct {
	CAFile      string
	CAPath      string
	CertFile    string // PEM certificate, or a PKCS#12 bundle with no KeyFile
	KeyFile     string
	CertPass    string // passphrase for an encrypted key or a PKCS#12 bundle
	Insecure    bool   // skip the hostname check only; the chain is still verified
	ServerName  string // SNI and verification name, independent of the host dialled
	TLSVersion  string // tlsv1.2, tlsv1.3 (minimum)
	Ciphers     string // OpenSSL cipher names
	ALPN        []string
	UseOSCerts  bool
	KeyLogFile  string
	PSK         string // hex
	PSKIdentity string

	// Port is the port dialled. Like mosquitto's clients, port 8883 with no
	// CAFile, CAPath or PSK uses the system's trust store. When 0, the port
	// is taken from host when it is "host:port".
	Port int
}

// ErrPSKUnsupported is returned for --psk where a crypto/tls configuration
// is asked for: TLS-PSK connections are made by package tlspsk instead
// (see PSKConfig), which mamori pub, sub and rr use.
var ErrPSKUnsupported = errors.New("--psk: this command does not support TLS-PSK yet (mamori pub, sub and rr do); use certificates (--cafile) instead")

// ClientConfig builds the tls.Config for connecting to host with o.
// Warnings (such as a CN-only server certificate) are written to warn.
//
// host is the host dialled (mosquitto's -h), optionally with ":port". The
// name verified and sent as SNI is o.ServerName when set, else host. The
// returned configuration verifies the server in VerifyConnection; its
// failures are *VerifyError values for Explain.
func ClientConfig(o ClientOptions, host string, warn io.Writer) (*tls.Config, error) {
	cfg, _, _, err := buildConfig(o, host, warn, false)
	return cfg, err
}

// handshakeInfo records what one handshake revealed about the server,
// whether or not it succeeded: Explain and tlscheck need it to tell "the
// server wants a client certificate" from "no common cipher".
type handshakeInfo struct {
	mu            sync.Mutex
	certRequested bool
	acceptableCAs [][]byte
	sentCert      *x509.Certificate
	peerCerts     []*x509.Certificate
	state         *tls.ConnectionState
}

func (h *handshakeInfo) snapshot() handshakeInfo {
	h.mu.Lock()
	defer h.mu.Unlock()
	return handshakeInfo{certRequested: h.certRequested, acceptableCAs: h.acceptableCAs, sentCert: h.sentCert,
		peerCerts: h.peerCerts, state: h.state}
}

// splitHost separates "host:port" (or "[v6]:port"); a bare host is returned
// with port 0.
func splitHost(hostport string) (string, int) {
	if h, p, err := net.SplitHostPort(hostport); err == nil {
		n, _ := strconv.Atoi(p)
		return h, n
	}
	return strings.Trim(hostport, "[]"), 0
}

// verifyName is the name of stage 2: --servername, else the host dialled.
func (o ClientOptions) verifyName(host string) string {
	if o.ServerName != "" {
		return o.ServerName
	}
	h, _ := splitHost(host)
	return h
}

// buildConfig is ClientConfig with the verifier and the per-handshake record
// exposed. With probe set, VerifyConnection records the server's chain and
// never fails, so that tlscheck can report on a server that would not verify.
func buildConfig(o ClientOptions, host string, warn io.Writer, probe bool) (*tls.Config, *verifier, *handshakeInfo, error) {
	if o.PSK != "" || o.PSKIdentity != "" {
		return nil, nil, nil, ErrPSKUnsupported
	}
	_, port := splitHost(host)
	if o.Port == 0 {
		o.Port = port
	}
	name := o.verifyName(host)
	roots, rootsName, err := loadRoots(o)
	if err != nil {
		return nil, nil, nil, err
	}
	minVer, old, err := ParseTLSVersion(o.TLSVersion)
	if err != nil {
		return nil, nil, nil, err
	}
	if old && warn != nil {
		fmt.Fprintf(warn, "Warning: --tls-version %s allows %s, which is obsolete and insecure (RFC 8996)\n", o.TLSVersion, VersionName(minVer))
	}
	var suites []uint16
	if o.Ciphers != "" {
		if suites, err = ParseCiphers(o.Ciphers); err != nil {
			return nil, nil, nil, err
		}
	}
	var cert *tls.Certificate
	switch {
	case o.CertFile != "":
		c, err := pki.LoadKeyPair(o.CertFile, o.KeyFile, []byte(o.CertPass))
		if err != nil {
			return nil, nil, nil, fmt.Errorf("--cert %s: %w", o.CertFile, err)
		}
		cert = &c
	case o.KeyFile != "":
		return nil, nil, nil, fmt.Errorf("--key %s given without --cert", o.KeyFile)
	}
	var keyLog io.Writer
	if o.KeyLogFile != "" {
		kl, err := newKeyLog(o.KeyLogFile)
		if err != nil {
			return nil, nil, nil, err
		}
		keyLog = kl
	}

	v := &verifier{roots: roots, rootsName: rootsName, name: name, insecure: o.Insecure, warn: warn}
	info := &handshakeInfo{}
	cfg := &tls.Config{
		ServerName: name, // Go sends it as SNI unless it is an IP address (RFC 6066 §3)
		// Go's verification ignores the CN and cannot say which stage
		// failed; VerifyConnection below does both stages itself and also
		// runs on resumed sessions.
		InsecureSkipVerify: true,
		MinVersion:         minVer,
		CipherSuites:       suites,
		NextProtos:         o.ALPN,
		KeyLogWriter:       keyLog,
		Renegotiation:      tls.RenegotiateNever,
	}
	cfg.GetClientCertificate = func(req *tls.CertificateRequestInfo) (*tls.Certificate, error) {
		info.mu.Lock()
		defer info.mu.Unlock()
		info.certRequested = true
		info.acceptableCAs = req.AcceptableCAs
		if cert == nil {
			return &tls.Certificate{}, nil
		}
		info.sentCert = cert.Leaf
		// Sent even when the server's list of acceptable CAs does not name
		// its issuer, as OpenSSL does: the server's refusal then says why,
		// where Go's default would silently send nothing.
		return cert, nil
	}
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		info.mu.Lock()
		info.peerCerts = cs.PeerCertificates
		info.state = &cs
		info.mu.Unlock()
		if probe {
			return nil
		}
		return v.verifyConnection(cs)
	}
	return cfg, v, info, nil
}

// verifyConnection runs stage 1 then stage 2 on a handshake's certificates.
func (v *verifier) verifyConnection(cs tls.ConnectionState) error {
	if _, err := v.verifyChain(cs.PeerCertificates); err != nil {
		return err
	}
	if v.insecure {
		return nil
	}
	byCN, err := v.verifyName(cs.PeerCertificates[0])
	if err != nil {
		return err
	}
	if byCN {
		v.warnCN(cs.PeerCertificates[0])
	}
	return nil
}

// loadRoots builds the trust store of stage 1 and the words that name it in
// messages ("ca2.crt", "the system's trust store").
func loadRoots(o ClientOptions) (*x509.CertPool, string, error) {
	// mosquitto_pub/sub: port 8883 and no CA of one's own means the OS
	// store, as with --tls-use-os-certs.
	useOS := o.UseOSCerts || (o.Port == 8883 && o.CAFile == "" && o.CAPath == "")
	var pool *x509.CertPool
	var names []string
	if useOS || (o.CAFile == "" && o.CAPath == "") {
		sys, err := x509.SystemCertPool()
		if err != nil {
			return nil, "", fmt.Errorf("--tls-use-os-certs: %w", err)
		}
		pool = sys
	} else {
		pool = x509.NewCertPool()
	}
	if o.CAFile != "" {
		certs, err := pki.LoadCertificates(o.CAFile)
		if err != nil {
			return nil, "", fmt.Errorf("--cafile %s: %w", o.CAFile, err)
		}
		for _, c := range certs {
			pool.AddCert(c)
		}
		names = append(names, o.CAFile)
	}
	if o.CAPath != "" {
		n, err := addCAPath(pool, o.CAPath)
		if err != nil {
			return nil, "", err
		}
		if n == 0 {
			return nil, "", fmt.Errorf("--capath %s: no CA certificate found in the directory", o.CAPath)
		}
		names = append(names, "the CAs in "+o.CAPath)
	}
	if useOS || len(names) == 0 {
		names = append(names, "the system's trust store")
	}
	return pool, strings.Join(names, " or "), nil
}

// addCAPath adds every certificate found in the regular files of dir, the
// way OpenSSL's -CApath is used in practice. OpenSSL itself looks only at
// hashed names (made by c_rehash); reading every file means the directory
// works without that step. Files that hold no certificate (CRLs, keys,
// READMEs) are skipped.
func addCAPath(pool *x509.CertPool, dir string) (int, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("--capath: %w", err)
	}
	n := 0
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		st, err := os.Stat(p) // follows the symbolic links c_rehash makes
		if err != nil || !st.Mode().IsRegular() {
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		certs, err := pki.ParseCertificates(data)
		if err != nil {
			continue
		}
		for _, c := range certs {
			pool.AddCert(c)
			n++
		}
	}
	return n, nil
}

// keyLog appends NSS key log lines (for Wireshark) to a file. It opens the
// file for each write so that no descriptor outlives the configuration,
// which has no Close; a handshake writes only a few lines.
type keyLog struct {
	mu   sync.Mutex
	path string
}

func newKeyLog(path string) (*keyLog, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("--tls-keylog: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("--tls-keylog: %w", err)
	}
	return &keyLog{path: path}, nil
}

// Write implements io.Writer for tls.Config.KeyLogWriter.
func (k *keyLog) Write(p []byte) (int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	f, err := os.OpenFile(k.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return 0, err
	}
	n, err := f.Write(p)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return n, err
}
