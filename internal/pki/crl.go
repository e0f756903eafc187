package pki

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Revocation reasons of RFC 5280 5.3.1 that "ca revoke" accepts.
// certificateHold and removeFromCRL are left out: a hold needs an
// "unrevoke", which this CA deliberately does not have.
var reasons = []struct {
	code int
	name string
}{
	{0, "unspecified"},
	{1, "keyCompromise"},
	{2, "cACompromise"},
	{3, "affiliationChanged"},
	{4, "superseded"},
	{5, "cessationOfOperation"},
	{9, "privilegeWithdrawn"},
}

// ParseReason maps a reason name to its RFC 5280 code. Case, '-' and '_'
// are ignored, so "key-compromise" and "keyCompromise" are the same.
func ParseReason(s string) (int, error) {
	norm := func(s string) string {
		return strings.ToLower(strings.NewReplacer("-", "", "_", "", " ", "").Replace(s))
	}
	if s == "" {
		return 0, nil
	}
	var names []string
	for _, r := range reasons {
		if norm(r.name) == norm(s) {
			return r.code, nil
		}
		names = append(names, r.name)
	}
	return 0, fmt.Errorf("unknown revocation reason %q (want one of %s)", s, strings.Join(names, ", "))
}

// ReasonName returns the RFC 5280 name of a reason code.
func ReasonName(code int) string {
	for _, r := range reasons {
		if r.code == code {
			return r.name
		}
	}
	switch code {
	case 6:
		return "certificateHold"
	case 8:
		return "removeFromCRL"
	case 10:
		return "aACompromise"
	}
	return fmt.Sprintf("reason %d", code)
}

// Revoke marks the certificate with that serial or name as revoked. It does
// not write a CRL; call WriteCRL after it (the CLI does). It unlocks the CA
// key first all the same: a revocation without a signed CRL protects
// nobody, so a wrong passphrase must stop it before anything changes.
func (c *CA) Revoke(selector string, reason int) (Record, error) {
	if reason < 0 || ReasonName(reason) == fmt.Sprintf("reason %d", reason) {
		return Record{}, fmt.Errorf("invalid revocation reason %d", reason)
	}
	if _, err := c.unlockKey(); err != nil {
		return Record{}, err
	}
	var rec Record
	err := c.update(func(idx *index) error {
		i, err := find(idx, selector, false)
		if err != nil {
			return err
		}
		r := &idx.Certificates[i]
		if r.Status == StatusRevoked {
			return fmt.Errorf("serial %s (%s) was already revoked on %s", r.Serial, r.Name, r.RevokedAt.Format(time.DateOnly))
		}
		t := c.now().UTC().Truncate(time.Second)
		r.Status = StatusRevoked
		r.RevokedAt = &t
		r.Reason = ReasonName(reason)
		rec = *r
		return nil
	})
	return rec, err
}

// CRLResult describes a CRL that was written.
type CRLResult struct {
	PEM        []byte
	Number     *big.Int
	ThisUpdate time.Time
	NextUpdate time.Time
	Revoked    int    // entries in the CRL
	File       string // DIR/crl.pem
}

// WriteCRL signs a new CRL of every revoked certificate, with nextUpdate
// validity from now (DefaultCRLDays when zero), writes it to crl.pem and
// returns it. Each CRL gets a larger number than any before it.
func (c *CA) WriteCRL(validity time.Duration) (*CRLResult, error) {
	if validity <= 0 {
		validity = DefaultCRLDays * 24 * time.Hour
	}
	if _, err := c.unlockKey(); err != nil {
		return nil, err
	}
	openLegacyDir(c.dir)
	var res *CRLResult
	err := c.update(func(idx *index) error {
		var err error
		res, err = c.writeCRL(idx, validity)
		return err
	})
	return res, err
}

// writeCRL signs and writes a CRL from idx; the caller holds the lock and
// saves idx (whose CRLNumber it advances).
func (c *CA) writeCRL(idx *index, validity time.Duration) (*CRLResult, error) {
	signer, err := c.unlockKey()
	if err != nil {
		return nil, err
	}
	path := filepath.Join(c.dir, CRLFile)
	// The number must grow even if index.json was restored from a backup
	// older than the CRL already published: take the larger of the two.
	number := big.NewInt(idx.CRLNumber)
	if old, err := LoadCRL(path); err == nil && old.Number != nil && old.Number.Cmp(number) > 0 {
		number.Set(old.Number)
	}
	number.Add(number, big.NewInt(1))
	if !number.IsInt64() {
		return nil, fmt.Errorf("CRL number %s overflows", number)
	}

	now := c.now().UTC().Truncate(time.Second)
	tmpl := &x509.RevocationList{
		Number:     number,
		ThisUpdate: now,
		NextUpdate: now.Add(validity),
	}
	var entries []x509.RevocationListEntry
	for _, r := range idx.Certificates {
		if r.Status != StatusRevoked {
			continue
		}
		serial, ok := new(big.Int).SetString(r.Serial, 16)
		if !ok {
			return nil, fmt.Errorf("index: bad serial %q", r.Serial)
		}
		code, _ := ParseReason(r.Reason)
		at := now
		if r.RevokedAt != nil {
			at = *r.RevokedAt
		}
		entries = append(entries, x509.RevocationListEntry{SerialNumber: serial, RevocationTime: at, ReasonCode: code})
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].RevocationTime.Before(entries[j].RevocationTime) })
	tmpl.RevokedCertificateEntries = entries
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, c.issuer, signer)
	if err != nil {
		return nil, fmt.Errorf("sign CRL: %w", err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
	if err := WriteFileAtomic(path, data, 0o644); err != nil {
		return nil, err
	}
	idx.CRLNumber = number.Int64()
	return &CRLResult{
		PEM:        data,
		Number:     number,
		ThisUpdate: tmpl.ThisUpdate,
		NextUpdate: tmpl.NextUpdate,
		Revoked:    len(entries),
		File:       path,
	}, nil
}

// openLegacyDir makes a CA directory (or its issued/) that an earlier
// version created with mode 0700 searchable (0755), as Init now makes it:
// a broker that drops to its own user could not re-read crl.pem there, so
// revocations written by this CA never took effect. Only the exact mode
// 0700 is changed, so a directory someone chose to restrict otherwise is
// left alone; keys and index.json are 0600 on their own.
func openLegacyDir(dir string) {
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() && fi.Mode().Perm() == 0o700 {
		_ = os.Chmod(dir, 0o755)
	}
}
