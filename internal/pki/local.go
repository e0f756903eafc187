package pki

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Local is the broker's embedded CA and its server certificate, used for
// the TLS listener on 127.0.0.1:8883 when the broker runs without -c.
type Local struct {
	Dir      string    // the CA directory
	CAFile   string    // the root certificate: what clients pass as --cafile
	CertFile string    // the server certificate chain, for certfile
	KeyFile  string    // the server key (unencrypted, 0600), for keyfile
	CRLFile  string    // the CA's CRL
	NotAfter time.Time // expiry of the server certificate
	Renewed  bool      // this call (re)issued the server certificate
}

// localServerName is the file name and CN of the local server certificate.
const localServerName = "localhost"

// LocalRenewBefore is how close to expiry the local server certificate may
// get before EnsureLocal issues a new one.
const LocalRenewBefore = 30 * 24 * time.Hour

// EnsureLocal makes sure dir holds a local CA and a server certificate for
// localhost, 127.0.0.1 and ::1, and returns their paths; created reports
// that the CA was made by this call. The CA key is not encrypted: the broker
// must start unattended, and the directory (mode 0700) is its protection.
// Later calls reuse the CA and re-issue the server certificate when it is
// missing, damaged, or expires within LocalRenewBefore.
func EnsureLocal(dir string) (Local, bool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Local{}, false, fmt.Errorf("local CA: %w", err)
	}
	// The directory holds an unencrypted CA key: nobody else may read it,
	// whatever umask or earlier tool created the directory.
	if err := os.Chmod(dir, 0o700); err != nil {
		return Local{}, false, fmt.Errorf("local CA: %w", err)
	}
	created := false
	ca, err := Open(dir, OpenOptions{})
	if errors.Is(err, ErrNoCA) {
		ca, err = Init(dir, InitOptions{
			CommonName: defaultCAName("mamori local CA"),
			NoPassword: true,
		})
		created = true
		if errors.Is(err, ErrCAExists) {
			// Another process created it between our Open and Init.
			ca, err = Open(dir, OpenOptions{})
			created = false
		}
	}
	if err != nil {
		return Local{}, false, fmt.Errorf("local CA in %s: %w", dir, err)
	}
	now := ca.now()
	if ca.Root().NotAfter.Sub(now) < LocalRenewBefore {
		return Local{}, false, fmt.Errorf("local CA in %s expires on %s: remove the directory to let mamori create a new one (clients must then trust the new %s)",
			dir, ca.Root().NotAfter.Format(time.DateOnly), RootCertFile)
	}
	l := Local{
		Dir:      dir,
		CAFile:   filepath.Join(dir, RootCertFile),
		CertFile: filepath.Join(dir, IssuedDir, localServerName+"-chain.crt"),
		KeyFile:  filepath.Join(dir, IssuedDir, localServerName+".key"),
		CRLFile:  filepath.Join(dir, CRLFile),
	}
	if notAfter, ok := localCertUsable(l, ca.Issuer(), now); ok {
		l.NotAfter = notAfter
		return l, created, nil
	}
	issued, err := ca.Issue(IssueRequest{
		Kind:        ServerCert,
		Name:        localServerName,
		CommonName:  localServerName,
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		Force:       true,
	})
	if err != nil {
		return Local{}, created, fmt.Errorf("local CA in %s: issue server certificate: %w", dir, err)
	}
	l.NotAfter, l.Renewed = issued.Certificate.NotAfter, true
	return l, created, nil
}

// localCertUsable reports whether the existing local server certificate
// loads, matches its key, was signed by this CA, names every loopback
// address and has more than LocalRenewBefore left.
func localCertUsable(l Local, issuer *x509.Certificate, now time.Time) (time.Time, bool) {
	kp, err := LoadKeyPair(l.CertFile, l.KeyFile, nil)
	if err != nil {
		return time.Time{}, false
	}
	leaf := kp.Leaf
	if leaf.CheckSignatureFrom(issuer) != nil {
		return time.Time{}, false
	}
	if leaf.NotAfter.Sub(now) < LocalRenewBefore || now.Before(leaf.NotBefore) {
		return time.Time{}, false
	}
	if !slices.Contains(leaf.DNSNames, "localhost") {
		return time.Time{}, false
	}
	for _, want := range []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback} {
		if !slices.ContainsFunc(leaf.IPAddresses, want.Equal) {
			return time.Time{}, false
		}
	}
	return leaf.NotAfter, true
}
