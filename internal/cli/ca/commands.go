package ca

import (
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/mamori-mqtt/mamori/internal/pki"
)

const dateFmt = "2006-01-02"

func (e *env) runInit(args []string) error {
	fs := e.flagSet("init", "[flags]")
	dir := fs.String("dir", "", "CA directory (created with mode 0700)")
	cn := fs.String("cn", "", `the CA's name (default "mamori CA (HOSTNAME)")`)
	keyType := keyTypeFlags(fs, "CA ", "ECDSA P-256")
	intermediate := fs.Bool("intermediate", false, "issue leaves from an intermediate CA signed by the root")
	days := fs.Int("days", pki.DefaultCADays, "validity of the root, in days")
	noPassword := fs.Bool("no-password", false, "store the CA key unencrypted (anyone who can read it can issue certificates)")
	pwFile := fs.String("password-file", "", "read the new CA passphrase from the first line of FILE")
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	kt, err := keyType()
	if err != nil {
		return err
	}
	if *noPassword && *pwFile != "" {
		return usagef("--no-password and --password-file exclude each other")
	}
	d, err := caDir(*dir)
	if err != nil {
		return err
	}
	opts := pki.InitOptions{CommonName: *cn, KeyType: kt, Intermediate: *intermediate, Days: *days, NoPassword: *noPassword}
	if !*noPassword {
		pw, err := e.caPassword(*pwFile, true)()
		if err != nil {
			return err
		}
		if len(pw) == 0 {
			return usagef("empty passphrase: give one, or --no-password to store the CA key unencrypted")
		}
		if len(pw) < 8 {
			return usagef("the passphrase is too short: use at least 8 characters")
		}
		opts.Password = pw
	}
	c, err := pki.Init(d, opts)
	if err != nil {
		return err
	}
	root := c.Root()
	fmt.Fprintf(e.stdout, "Created CA %q in %s\n", root.Subject.CommonName, d)
	fmt.Fprintf(e.stdout, "  root          %s  (%s, valid until %s)\n", c.Path(pki.RootCertFile), pki.KeyDescription(root.PublicKey), root.NotAfter.UTC().Format(dateFmt))
	fmt.Fprintf(e.stdout, "  root key      %s  (%s)\n", c.Path(pki.RootKeyFile), encState(c))
	if c.HasIntermediate() {
		fmt.Fprintf(e.stdout, "  intermediate  %s  (issues the certificates)\n", c.Path(pki.IntermediateCertFile))
		fmt.Fprintf(e.stdout, "  its key       %s  (%s)\n", c.Path(pki.IntermediateKeyFile), encState(c))
	}
	fmt.Fprintf(e.stdout, "  CRL           %s\n", c.Path(pki.CRLFile))
	fmt.Fprintf(e.stdout, "Give %s to clients and brokers as cafile.\n", c.Path(pki.RootCertFile))
	fmt.Fprintf(e.stdout, "Next: mamori ca issue server --dns HOSTNAME%s\n", dirHint(*dir))
	return nil
}

func encState(c *pki.CA) string {
	if c.Encrypted() {
		return "encrypted, mode 0600"
	}
	return "NOT encrypted, mode 0600"
}

func dirHint(dir string) string {
	if dir == "" {
		return ""
	}
	return " --dir " + dir
}

// sanFlags are the subjectAltName flags shared by issue and sign.
type sanFlags struct {
	dns, ips, emails, uris *[]string
	cn, name               *string
	days                   *int
	force                  *bool
}

func (e *env) addSANFlags(fs *pflag.FlagSet) sanFlags {
	return sanFlags{
		dns:    fs.StringSlice("dns", nil, "DNS name in the certificate (repeat, or comma-separate; *.example.com allowed)"),
		ips:    fs.StringSlice("ip", nil, "IP address in the certificate (repeat, or comma-separate)"),
		cn:     fs.String("cn", "", "subject common name (server: default the first name; client: the identity, required)"),
		emails: fs.StringSlice("email", nil, "e-mail address SAN (client certificates)"),
		uris:   fs.StringSlice("uri", nil, "URI SAN, e.g. spiffe://factory/sensor-1 or urn:dev:ops:1234"),
		name:   fs.String("name", "", "base name of the files in DIR/issued (default from the CN)"),
		days:   fs.Int("days", pki.DefaultLeafDays, "validity in days (825 is the most Apple clients accept for servers)"),
		force:  fs.Bool("force", false, "replace the files of a valid certificate with the same name (it stays valid until revoked)"),
	}
}

// request builds an IssueRequest from the flags.
func (s sanFlags) request(kind pki.CertKind) (pki.IssueRequest, error) {
	req := pki.IssueRequest{
		Kind:           kind,
		Name:           *s.name,
		CommonName:     *s.cn,
		DNSNames:       *s.dns,
		EmailAddresses: *s.emails,
		Days:           *s.days,
		Force:          *s.force,
	}
	for _, v := range *s.ips {
		ip := net.ParseIP(strings.TrimSpace(v))
		if ip == nil {
			return req, usagef("--ip %q is not an IP address", v)
		}
		req.IPAddresses = append(req.IPAddresses, ip)
	}
	for _, v := range *s.uris {
		u, err := url.Parse(v)
		if err != nil || u.Scheme == "" {
			return req, usagef("--uri %q is not an absolute URI", v)
		}
		req.URIs = append(req.URIs, u)
	}
	if kind == pki.ServerCert && len(req.EmailAddresses) > 0 {
		return req, usagef("--email is for client certificates")
	}
	return req, nil
}

func (e *env) runIssue(args []string) error {
	fs := e.flagSet("issue", "server|client [flags]")
	dir := fs.String("dir", "", "CA directory")
	sf := e.addSANFlags(fs)
	keyType := keyTypeFlags(fs, "", "the CA's key type")
	pwFile := fs.String("password-file", "", "read the CA passphrase from the first line of FILE")
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	kind := pki.CertKind(pos[0])
	if kind != pki.ServerCert && kind != pki.ClientCert {
		return usagef("issue what? %q: use issue server or issue client", pos[0])
	}
	req, err := sf.request(kind)
	if err != nil {
		return err
	}
	if req.KeyType, err = keyType(); err != nil {
		return err
	}
	c, err := e.openCA(*dir, *pwFile)
	if err != nil {
		return err
	}
	iss, err := c.Issue(req)
	if err != nil {
		return err
	}
	e.printIssued(c, iss)
	return nil
}

func (e *env) printIssued(c *pki.CA, iss *pki.Issued) {
	r := iss.Record
	fmt.Fprintf(e.stdout, "Issued %s certificate %q: %s\n", r.Kind, r.Name, r.Subject)
	fmt.Fprintf(e.stdout, "  SANs      %s\n", strings.Join(r.SANs, ", "))
	fmt.Fprintf(e.stdout, "  serial    %s\n", r.Serial)
	fmt.Fprintf(e.stdout, "  valid     until %s (%d days), %s\n", r.NotAfter.Format(dateFmt), int(math.Round(time.Until(r.NotAfter).Hours()/24)), r.Key)
	fmt.Fprintf(e.stdout, "  cert      %s\n", iss.CertFile)
	fmt.Fprintf(e.stdout, "  chain     %s\n", iss.ChainFile)
	if iss.KeyFile != "" {
		fmt.Fprintf(e.stdout, "  key       %s (mode 0600)\n", iss.KeyFile)
	}
	ca := c.Path(pki.RootCertFile)
	key := iss.KeyFile
	if key == "" {
		key = "DEVICE-KEY"
	}
	switch r.Kind {
	case pki.ServerCert:
		fmt.Fprintf(e.stdout, "For mosquitto.conf:\n  cafile %s\n  certfile %s\n  keyfile %s\n", ca, iss.ChainFile, key)
		if iss.KeyFile != "" {
			// The broker reloads the key as the user it drops to.
			fmt.Fprintf(e.stdout, "A broker started as root runs as its `user` (mosquitto by default) and re-reads the key as that user:\n  chgrp mosquitto %s && chmod 0640 %s\n", key, key)
		}
	case pki.ClientCert:
		fmt.Fprintf(e.stdout, "For clients: --cafile %s --cert %s --key %s\n", ca, iss.ChainFile, key)
	}
}

func (e *env) runSign(args []string) error {
	fs := e.flagSet("sign", "CSR [flags]")
	dir := fs.String("dir", "", "CA directory")
	kind := fs.String("kind", "client", "server or client (devices making their own keys are usually clients)")
	sf := e.addSANFlags(fs)
	out := fs.String("out", "", "also write the certificate chain to FILE")
	pwFile := fs.String("password-file", "", "read the CA passphrase from the first line of FILE")
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	k := pki.CertKind(*kind)
	if k != pki.ServerCert && k != pki.ClientCert {
		return usagef("--kind %q: use server or client", *kind)
	}
	req, err := sf.request(k)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(pos[0])
	if err != nil {
		return err
	}
	csr, err := pki.ParseCSR(data)
	if err != nil {
		return fmt.Errorf("%s: %w", pos[0], err)
	}
	c, err := e.openCA(*dir, *pwFile)
	if err != nil {
		return err
	}
	iss, err := c.SignCSR(csr, req)
	if err != nil {
		return err
	}
	if *out != "" {
		if err := pki.WriteFileAtomic(*out, pki.EncodeCertificatesPEM(iss.Chain...), 0o644); err != nil {
			return err
		}
	}
	e.printIssued(c, iss)
	if *out != "" {
		fmt.Fprintf(e.stdout, "Chain also written to %s\n", *out)
	}
	return nil
}

func (e *env) runRevoke(args []string) error {
	fs := e.flagSet("revoke", "SERIAL|NAME [flags]")
	dir := fs.String("dir", "", "CA directory")
	reason := fs.String("reason", "unspecified", "keyCompromise, cACompromise, affiliationChanged, superseded, cessationOfOperation, privilegeWithdrawn or unspecified")
	crlDays := fs.Int("crl-days", pki.DefaultCRLDays, "nextUpdate of the new CRL, in days")
	pwFile := fs.String("password-file", "", "read the CA passphrase from the first line of FILE")
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	code, err := pki.ParseReason(*reason)
	if err != nil {
		return usageError{err.Error()}
	}
	c, err := e.openCA(*dir, *pwFile)
	if err != nil {
		return err
	}
	rec, err := c.Revoke(pos[0], code)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Revoked %q (serial %s, %s), reason %s\n", rec.Name, rec.Serial, rec.Subject, rec.Reason)
	res, err := c.WriteCRL(time.Duration(*crlDays) * 24 * time.Hour)
	if err != nil {
		return fmt.Errorf("the certificate is marked revoked, but the CRL could not be written (run mamori ca crl): %w", err)
	}
	e.printCRL(res)
	return nil
}

func (e *env) runCRL(args []string) error {
	fs := e.flagSet("crl", "[flags]")
	dir := fs.String("dir", "", "CA directory")
	out := fs.String("out", "", "also write the CRL to FILE (it is always written to DIR/crl.pem)")
	days := fs.Int("days", pki.DefaultCRLDays, "nextUpdate, in days from now")
	pwFile := fs.String("password-file", "", "read the CA passphrase from the first line of FILE")
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	if *days <= 0 {
		return usagef("--days must be positive")
	}
	c, err := e.openCA(*dir, *pwFile)
	if err != nil {
		return err
	}
	res, err := c.WriteCRL(time.Duration(*days) * 24 * time.Hour)
	if err != nil {
		return err
	}
	if *out != "" {
		if err := pki.WriteFileAtomic(*out, res.PEM, 0o644); err != nil {
			return err
		}
	}
	e.printCRL(res)
	if *out != "" {
		fmt.Fprintf(e.stdout, "Also written to %s\n", *out)
	}
	return nil
}

func (e *env) printCRL(res *pki.CRLResult) {
	fmt.Fprintf(e.stdout, "CRL number %s written to %s: %d revoked, next update %s\n",
		res.Number, res.File, res.Revoked, res.NextUpdate.Format(dateFmt))
	fmt.Fprintln(e.stdout, "Publish a new one before then: Mosquitto rejects every client once a CRL is past its next update (mamori reloads crlfile by itself).")
}

func (e *env) runList(args []string) error {
	fs := e.flagSet("list", "[flags]")
	dir := fs.String("dir", "", "CA directory")
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	c, err := e.openCA(*dir, "")
	if err != nil {
		return err
	}
	now := time.Now()
	recs := c.Records()
	if *asJSON {
		type item struct {
			pki.Record
			State    pki.Status `json:"state"`
			DaysLeft int        `json:"days_left"`
		}
		items := make([]item, 0, len(recs))
		for _, r := range recs {
			items = append(items, item{Record: r, State: r.State(now), DaysLeft: daysLeft(now, r.NotAfter)})
		}
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(items)
	}
	root := c.Root()
	fmt.Fprintf(e.stdout, "CA %s in %s, root valid until %s; CRL number %d\n", root.Subject, c.Dir(), root.NotAfter.UTC().Format(dateFmt), c.CRLNumber())
	if len(recs) == 0 {
		fmt.Fprintln(e.stdout, "No certificates issued yet.")
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STATUS\tEXPIRES\tDAYS\tSERIAL\tKIND\tNAME\tSUBJECT")
	for _, r := range recs {
		status := string(r.State(now))
		if r.Status == pki.StatusRevoked {
			status += " (" + r.Reason + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", status, r.NotAfter.Format(dateFmt), daysLeft(now, r.NotAfter), r.Serial, r.Kind, r.Name, r.Subject)
	}
	return tw.Flush()
}

func daysLeft(now, t time.Time) int {
	d := t.Sub(now).Hours() / 24
	if d < 0 {
		return int(d) - 1
	}
	return int(d)
}

func (e *env) runExport(args []string) error {
	fs := e.flagSet("export", "NAME|SERIAL --p12 [flags]")
	dir := fs.String("dir", "", "CA directory")
	p12 := fs.Bool("p12", false, "write a PKCS#12 (.p12/.pfx) bundle: certificate, key, intermediate and root")
	out := fs.String("out", "", "output file (default DIR/issued/NAME.p12)")
	password := fs.String("password", "", "bundle password (empty allowed when given explicitly)")
	pwFile := fs.String("password-file", "", "read the bundle password from the first line of FILE")
	legacy := fs.Bool("legacy", false, "3DES/SHA-1 encryption for Windows before 10 1709/Server 2019, Java before 8u301, OpenSSL 1.0 (default: AES-256, PBKDF2, SHA-256)")
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if !*p12 {
		return usagef("choose the format: --p12 (the only one so far; the PEM files are already in DIR/issued)")
	}
	var pw []byte
	switch {
	case fs.Changed("password"):
		pw = []byte(*password)
	case *pwFile != "":
		if pw, err = readPasswordFile(*pwFile); err != nil {
			return err
		}
	default:
		if pw, err = e.readSecret("PKCS#12 password", true); err != nil {
			return err
		}
	}
	c, err := e.openCA(*dir, "")
	if err != nil {
		return err
	}
	data, rec, err := c.ExportPKCS12(pos[0], pki.ExportOptions{Password: string(pw), Legacy: *legacy})
	if err != nil {
		return err
	}
	path := *out
	if path == "" {
		path = filepath.Join(c.Dir(), pki.IssuedDir, rec.Name+".p12")
	}
	// The bundle holds the private key: same protection as the key file.
	if err := pki.WriteFileAtomic(path, data, 0o600); err != nil {
		return err
	}
	enc := "AES-256-CBC, PBKDF2-HMAC-SHA256, SHA-256 MAC"
	if *legacy {
		enc = "legacy 3DES, SHA-1 MAC"
	}
	fmt.Fprintf(e.stdout, "Wrote %s (mode 0600): %s with key and CA chain, %s\n", path, rec.Subject, enc)
	if len(pw) == 0 {
		fmt.Fprintln(e.stderr, "Warning: the bundle has an empty password; anyone who gets the file gets the key.")
	}
	return nil
}
