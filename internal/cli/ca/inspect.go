package ca

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/mamori-mqtt/mamori/internal/pki"
)

func (e *env) runInspect(args []string) error {
	fs := e.flagSet("inspect", "FILE [flags]\n\nExplains any certificate, chain, private key (encrypted or not), CSR, CRL or\nPKCS#12 bundle, PEM or DER (FILE \"-\" reads standard input). Exits 1 when\n--key matches none of the certificates.")
	asJSON := fs.Bool("json", false, "print JSON")
	password := fs.String("password", "", "password of an encrypted key or PKCS#12 bundle")
	pwFile := fs.String("password-file", "", "read that password from the first line of FILE")
	keyFile := fs.String("key", "", "private key to check against the certificates")
	caFile := fs.String("ca", "", "CA certificate(s) to verify the certificates and CRLs against")
	// Accepted so "mamori ca --dir D inspect F" works like every other
	// subcommand; inspect reads only the file it is given.
	fs.String("dir", "", "ignored")
	_ = fs.MarkHidden("dir")
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	name := pos[0]
	var data []byte
	if name == "-" {
		data, err = io.ReadAll(e.stdin)
	} else {
		data, err = os.ReadFile(name)
	}
	if err != nil {
		return err
	}
	opts := pki.InspectOptions{Password: []byte(*password)}
	if *pwFile != "" {
		if opts.Password, err = readPasswordFile(*pwFile); err != nil {
			return err
		}
	}
	if *keyFile != "" {
		if opts.Key, err = pki.LoadPrivateKey(*keyFile, opts.Password); err != nil {
			return err
		}
		opts.KeySource = *keyFile
	}
	if *caFile != "" {
		if opts.Roots, err = pki.LoadCertificates(*caFile); err != nil {
			return err
		}
	}
	rep, err := pki.Inspect(data, opts)
	if err != nil {
		var pe *pki.PasswordError
		if errors.As(err, &pe) {
			pe.File = name
			if pe.Missing {
				return fmt.Errorf("%w (give --password)", pe)
			}
		}
		return err
	}
	if *asJSON {
		out := struct {
			File string `json:"file"`
			*pki.Report
		}{name, rep}
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return err
		}
	} else {
		renderReport(e.stdout, name, rep, time.Now())
	}
	if opts.Key != nil && !keyMatchedAny(rep) {
		if !*asJSON {
			fmt.Fprintf(e.stderr, "%s: key does not match certificate\n", *keyFile)
		}
		return exitCode{exitError}
	}
	return nil
}

func keyMatchedAny(r *pki.Report) bool {
	for _, c := range r.Certificates {
		if c.KeyMatches != nil && *c.KeyMatches {
			return true
		}
	}
	return false
}

// renderReport prints a report for people: one block per object, one line
// per fact, warnings marked with "!".
func renderReport(w io.Writer, name string, r *pki.Report, now time.Time) {
	var parts []string
	if n := len(r.Certificates); n > 0 {
		parts = append(parts, plural(n, "certificate"))
	}
	if n := len(r.Keys); n > 0 {
		parts = append(parts, plural(n, "key"))
	}
	if n := len(r.Requests); n > 0 {
		parts = append(parts, plural(n, "certificate request"))
	}
	if n := len(r.CRLs); n > 0 {
		parts = append(parts, plural(n, "CRL"))
	}
	fmt.Fprintf(w, "%s: %s, %s\n", name, r.Format, strings.Join(parts, ", "))
	if p := r.PKCS12; p != nil {
		line(w, "encryption", strings.Join(p.Encryption, "; "))
		line(w, "MAC", p.MAC)
		if p.Legacy {
			warn(w, "legacy PKCS#12 encryption (SHA-1 PBE); export again without --legacy unless old Windows or Java need it")
		}
		if strings.Contains(strings.Join(p.Encryption, ";"), "RC2") {
			warn(w, "RC2 encryption: OpenSSL 3 reads it only with -legacy")
		}
	}
	for i, c := range r.Certificates {
		fmt.Fprintf(w, "\nCertificate %d: %s\n", i+1, c.Subject)
		line(w, "issuer", c.Issuer+selfSigned(c.SelfSigned))
		line(w, "serial", c.Serial)
		line(w, "valid", fmt.Sprintf("%s to %s (%s)", c.NotBefore.UTC().Format(dateFmt), c.NotAfter.UTC().Format(dateFmt), daysText(c)))
		line(w, "key", c.Key+", signed with "+c.SignatureAlgorithm)
		if len(c.SANs) > 0 {
			line(w, "SANs", strings.Join(c.SANs, ", "))
		}
		usage := strings.Join(c.KeyUsage, ", ")
		if len(c.ExtKeyUsage) > 0 {
			if usage != "" {
				usage += "; "
			}
			usage += "extended: " + strings.Join(c.ExtKeyUsage, ", ")
		}
		if usage != "" {
			line(w, "usage", usage)
		}
		if c.IsCA {
			ca := "yes"
			if c.PathLen != nil {
				ca += fmt.Sprintf(" (path length %d)", *c.PathLen)
			}
			line(w, "CA", ca)
		}
		if c.Version != 3 {
			line(w, "version", fmt.Sprintf("X.509 v%d", c.Version))
		}
		if len(c.CRLURLs) > 0 {
			line(w, "CRL", strings.Join(c.CRLURLs, ", "))
		}
		if len(c.OCSPURLs) > 0 {
			line(w, "OCSP", strings.Join(c.OCSPURLs, ", "))
		}
		line(w, "SHA-256", c.SHA256)
		if c.KeyMatches != nil {
			line(w, "key match", yesNo(*c.KeyMatches, "the key is this certificate's", "no key given belongs to this certificate"))
		}
		if c.Verified != nil {
			line(w, "verified", yesNo(*c.Verified, "chains to a trusted CA", c.VerifyError))
		}
		for _, m := range c.Warnings {
			warn(w, m)
		}
	}
	for i, k := range r.Keys {
		title := "Private key"
		if k.Public {
			title = "Public key"
		}
		from := ""
		if k.Source != "" {
			from = " (from " + k.Source + ")"
		}
		fmt.Fprintf(w, "\n%s %d%s: %s\n", title, i+1, from, k.Key)
		if k.Format != "—" {
			line(w, "format", k.Format)
		}
		if k.Encrypted {
			enc := "yes"
			if k.Encryption != "" {
				enc += ", " + k.Encryption
			}
			if !k.Decrypted {
				enc += " (not decrypted: give --password)"
			}
			line(w, "encrypted", enc)
		}
		if k.SHA256 != "" {
			line(w, "pubkey SHA-256", k.SHA256)
		}
		if k.Certificate != "" {
			line(w, "certificate", k.Certificate)
		}
		for _, m := range k.Warnings {
			warn(w, m)
		}
	}
	for i, q := range r.Requests {
		fmt.Fprintf(w, "\nCertificate request %d: %s\n", i+1, q.Subject)
		line(w, "key", q.Key+", signed with "+q.SignatureAlgorithm)
		if len(q.SANs) > 0 {
			line(w, "SANs", strings.Join(q.SANs, ", "))
		}
		line(w, "signature", yesNo(q.SignatureValid, "valid (the requester holds the key)", "INVALID"))
		for _, m := range q.Warnings {
			warn(w, m)
		}
	}
	for i, c := range r.CRLs {
		fmt.Fprintf(w, "\nCRL %d: issued by %s\n", i+1, c.Issuer)
		if c.Number != "" {
			line(w, "number", c.Number)
		}
		next := "none"
		if !c.NextUpdate.IsZero() {
			next = fmt.Sprintf("%s (%s)", c.NextUpdate.UTC().Format(dateFmt), inDays(c.DaysToNextUpdate))
		}
		line(w, "updated", c.ThisUpdate.UTC().Format(dateFmt)+", next update "+next)
		line(w, "signature", c.SignatureAlgorithm)
		if c.SignedBy != "" {
			line(w, "signed by", c.SignedBy)
		}
		line(w, "revoked", fmt.Sprintf("%d", len(c.Revoked)))
		for _, rv := range c.Revoked {
			fmt.Fprintf(w, "    %s  %s  %s\n", rv.Serial, rv.Time.UTC().Format(dateFmt), rv.Reason)
		}
		for _, m := range c.Warnings {
			warn(w, m)
		}
	}
	if len(r.Notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range r.Notes {
			fmt.Fprintf(w, "Note: %s\n", n)
		}
	}
}

func line(w io.Writer, label, value string) {
	fmt.Fprintf(w, "  %-15s %s\n", label, value)
}

func warn(w io.Writer, msg string) {
	fmt.Fprintf(w, "  ! %s\n", msg)
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func selfSigned(b bool) string {
	if b {
		return " (self-signed)"
	}
	return ""
}

func yesNo(ok bool, yes, no string) string {
	if ok {
		return "yes, " + yes
	}
	return "NO, " + no
}

func daysText(c pki.CertInfo) string {
	switch c.Status {
	case "expired":
		return fmt.Sprintf("EXPIRED %d days ago", -c.DaysLeft)
	case "not yet valid":
		return "NOT YET VALID"
	}
	return fmt.Sprintf("%d days left", c.DaysLeft)
}

func inDays(d int) string {
	if d < 0 {
		return fmt.Sprintf("PASSED %d days ago", -d)
	}
	return fmt.Sprintf("in %d days", d)
}
