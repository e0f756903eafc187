// Package pki is the small file-based certificate authority behind
// "mamori ca" and the broker's embedded local CA, together with the helpers
// that read the keys, certificates, CRLs and PKCS#12 bundles users bring
// (including those made by the openssl recipes of the seeds).
//
// The package does no flag parsing and prints nothing: every function
// returns values and errors, and internal/cli/ca turns them into output.
//
// A CA lives in one directory (mode 0700):
//
//	ca.crt             root certificate: what clients and brokers use as cafile
//	ca.key             root key, encrypted PKCS#8 unless created without a password
//	intermediate.crt   issuing certificate, when the CA was made with an intermediate
//	intermediate.key   its key
//	crl.pem            the latest CRL of the issuing CA (rewritten on every revoke)
//	index.json         issued certificates, their status, and the last CRL number
//	issued/NAME.crt    an issued certificate
//	issued/NAME-chain.crt  the certificate followed by the intermediate (never the root)
//	issued/NAME.key    its private key, unencrypted PKCS#8, mode 0600
//
// Every file is written atomically (temporary file, fsync, rename), so a
// crash or a concurrent reader never sees half a certificate.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// KeyType names an algorithm and size for generated keys.
type KeyType string

// The key types the CA can generate. ECDSA P-256 is the default: small,
// fast, and supported by every TLS stack an MQTT device is likely to run
// (OpenSSL, mbedTLS, wolfSSL, Java, .NET). RSA is there for the devices that
// still lack ECDSA; Ed25519 only where clients support it (OpenSSL 1.1.1+,
// Go; not mbedTLS or most browsers).
const (
	KeyECDSAP256 KeyType = "ecdsa-p256"
	KeyECDSAP384 KeyType = "ecdsa-p384"
	KeyRSA2048   KeyType = "rsa-2048"
	KeyRSA3072   KeyType = "rsa-3072"
	KeyRSA4096   KeyType = "rsa-4096"
	KeyEd25519   KeyType = "ed25519"
)

// DefaultKeyType is used when no key type is asked for.
const DefaultKeyType = KeyECDSAP256

// RSAKeyType returns the KeyType for an RSA key of the given size, or an
// error naming the sizes that are accepted.
func RSAKeyType(bits int) (KeyType, error) {
	switch bits {
	case 2048:
		return KeyRSA2048, nil
	case 3072:
		return KeyRSA3072, nil
	case 4096:
		return KeyRSA4096, nil
	}
	return "", fmt.Errorf("RSA key size %d not supported: use 2048, 3072 or 4096", bits)
}

// ParseKeyType parses the names used in index.json and on the command line.
func ParseKeyType(s string) (KeyType, error) {
	switch kt := KeyType(strings.ToLower(s)); kt {
	case KeyECDSAP256, KeyECDSAP384, KeyRSA2048, KeyRSA3072, KeyRSA4096, KeyEd25519:
		return kt, nil
	}
	return "", fmt.Errorf("unknown key type %q (want ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072, rsa-4096 or ed25519)", s)
}

// String returns a name for people, e.g. "ECDSA P-256".
func (kt KeyType) String() string {
	switch kt {
	case KeyECDSAP256:
		return "ECDSA P-256"
	case KeyECDSAP384:
		return "ECDSA P-384"
	case KeyRSA2048:
		return "RSA 2048"
	case KeyRSA3072:
		return "RSA 3072"
	case KeyRSA4096:
		return "RSA 4096"
	case KeyEd25519:
		return "Ed25519"
	}
	return string(kt)
}

// GenerateKey makes a new private key of the given type.
func GenerateKey(kt KeyType) (crypto.Signer, error) {
	switch kt {
	case "", KeyECDSAP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case KeyECDSAP384:
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case KeyRSA2048:
		return rsa.GenerateKey(rand.Reader, 2048)
	case KeyRSA3072:
		return rsa.GenerateKey(rand.Reader, 3072)
	case KeyRSA4096:
		return rsa.GenerateKey(rand.Reader, 4096)
	case KeyEd25519:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	}
	return nil, fmt.Errorf("unknown key type %q", kt)
}

// KeyDescription names the algorithm and size of a public key, e.g.
// "RSA 2048" or "ECDSA P-256".
func KeyDescription(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d", k.N.BitLen())
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case ed25519.PublicKey:
		return "Ed25519"
	case nil:
		return "unknown"
	}
	return fmt.Sprintf("%T", pub)
}

// keyTypeOf returns the KeyType that would generate a key like pub, so
// leaves default to the algorithm their CA uses.
func keyTypeOf(pub crypto.PublicKey) KeyType {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if kt, err := RSAKeyType(k.N.BitLen()); err == nil {
			return kt
		}
		return KeyRSA3072
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P384() {
			return KeyECDSAP384
		}
	case ed25519.PublicKey:
		return KeyEd25519
	}
	return KeyECDSAP256
}

// randomSerial returns a positive serial of up to 128 random bits.
// Unpredictable serials are what CA/Browser Forum rules require (at least 64
// bits of entropy) and they make collisions between CAs practically impossible.
func randomSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	for {
		n, err := rand.Int(rand.Reader, limit)
		if err != nil {
			return nil, fmt.Errorf("random serial: %w", err)
		}
		// Zero is not a valid serial (RFC 5280 4.1.2.2 wants a positive integer).
		if n.Sign() > 0 {
			return n, nil
		}
	}
}

// subjectKeyID derives a key identifier from the public key as RFC 7093
// method 1 does (leftmost 160 bits of SHA-256 of the subjectPublicKey bits).
// Go sets it for CA certificates only; leaves get one too so that tools
// which match keys and certificates by identifier (Windows, Java) can.
func subjectKeyID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	var spki struct {
		Algorithm asn1.RawValue
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &spki); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(spki.PublicKey.Bytes)
	return sum[:20], nil
}

// SerialHex formats a serial as lower-case hex without separators, the form
// used in index.json and accepted by "ca revoke".
func SerialHex(n *big.Int) string {
	return fmt.Sprintf("%x", n)
}

// colonHex formats bytes as upper-case hex pairs separated by colons, as
// openssl shows serials and fingerprints.
func colonHex(b []byte) string {
	var sb strings.Builder
	for i, c := range b {
		if i > 0 {
			sb.WriteByte(':')
		}
		fmt.Fprintf(&sb, "%02X", c)
	}
	return sb.String()
}

// WriteFileAtomic writes data to path so that readers see either the old
// file or the complete new one: it writes a temporary file in the same
// directory with the final permissions, syncs it, and renames it over path.
// Brokers watching a certificate file therefore never load half of it.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmpName := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmpName)
		}
	}()
	// CreateTemp makes the file 0600; set the wanted mode before any byte is
	// written so a key is never readable by others, even briefly.
	if err := tmp.Chmod(perm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmpName, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	ok = true
	// Sync the directory so the rename itself survives a power loss. Not
	// every platform can open a directory for syncing; that is not an error.
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// lockStale is how old a lock file may be before it is assumed to belong
// to a process that died; no CA operation takes anywhere near this long.
const lockStale = 10 * time.Minute

// lockDir takes an exclusive lock on a CA directory, so two "ca issue"
// commands (or a broker starting while an admin issues a certificate) cannot
// both read index.json and each write back their own version. A lock file
// created with O_EXCL works on every platform, unlike flock.
func lockDir(dir string) (unlock func(), err error) {
	path := filepath.Join(dir, ".lock")
	for attempt := 0; ; attempt++ {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err == nil {
			fmt.Fprintf(f, "%d\n", os.Getpid())
			f.Close()
			return func() { os.Remove(path) }, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("lock %s: %w", dir, err)
		}
		if fi, serr := os.Stat(path); serr == nil && time.Since(fi.ModTime()) > lockStale {
			os.Remove(path)
			continue
		}
		if attempt >= 50 {
			return nil, fmt.Errorf("CA directory %s is locked by another mamori process (remove %s if none is running)", dir, path)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// DataDir returns mamori's per-user data directory:
// $XDG_DATA_HOME/mamori, or ~/.local/share/mamori when XDG_DATA_HOME is
// unset (the XDG base directory default), also used on macOS for one rule
// everywhere. On Windows it is %LocalAppData%\mamori.
func DataDir() (string, error) {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "mamori"), nil
	}
	if d := os.Getenv("LocalAppData"); runtime.GOOS == "windows" && d != "" {
		return filepath.Join(d, "mamori"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("cannot find a data directory (set XDG_DATA_HOME or HOME): %w", err)
	}
	return filepath.Join(home, ".local", "share", "mamori"), nil
}

// DefaultCADir returns the CA directory used when --dir is not given:
// $MAMORI_CA_DIR, else DataDir()/ca.
func DefaultCADir() (string, error) {
	if d := os.Getenv("MAMORI_CA_DIR"); d != "" {
		return d, nil
	}
	d, err := DataDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "ca"), nil
}
