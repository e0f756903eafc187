// Package tlscheck implements the "mamori tlscheck" command: connect to an
// MQTT-over-TLS endpoint and explain what it presents and whether it
// verifies, in the two stages of seed 000 — what "openssl s_client" and
// "openssl verify" tell, made readable, plus an MQTT CONNECT/CONNACK.
package tlscheck

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/mamori-mqtt/mamori/internal/tlsprobe"
)

// Exit statuses: 0 only when everything verifies.
const (
	exitOK       = 0
	exitFailed   = 1 // the endpoint does not verify, or the connection failed
	exitUsage    = 2 // bad flags, or a local file (CA, certificate, key) unusable
	defaultPort  = "8883"
	usageCommand = "Usage: mamori tlscheck HOST[:PORT] [--cafile F] [--servername N] [--cert F --key F] [--json]"
)

// Run executes the command with args (without the command name) and returns
// the process exit code.
func Run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return run(context.Background(), args, stdout, stderr)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("tlscheck", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		o        tlsprobe.ClientOptions
		co       tlsprobe.CheckOptions
		asJSON   bool
		help     bool
		noMQTT   bool
		timeout  time.Duration
		warnDays int
	)
	fs.StringVar(&o.CAFile, "cafile", "", "CA certificate(s) to verify the server against (PEM or DER)")
	fs.StringVar(&o.CAPath, "capath", "", "directory of CA certificates")
	fs.StringVar(&o.CertFile, "cert", "", "client certificate (PEM, or a PKCS#12 bundle with --cert-pass)")
	fs.StringVar(&o.KeyFile, "key", "", "client private key (PEM, possibly encrypted)")
	fs.StringVar(&o.CertPass, "cert-pass", "", "passphrase of an encrypted --key or of a PKCS#12 --cert")
	fs.StringVar(&o.ServerName, "servername", "", "name sent as SNI and verified in stage 2 (default: HOST)")
	fs.BoolVar(&o.Insecure, "insecure", false, "skip stage 2 (the host name); the chain is still verified")
	fs.StringVar(&o.TLSVersion, "tls-version", "", "minimum TLS version: tlsv1.3, tlsv1.2 (default), tlsv1.1, tlsv1")
	fs.StringVar(&o.Ciphers, "ciphers", "", "OpenSSL cipher names for TLS 1.2, separated by ':'")
	fs.StringSliceVar(&o.ALPN, "tls-alpn", nil, "ALPN protocol to offer (repeatable), e.g. mqtt")
	fs.BoolVar(&o.UseOSCerts, "tls-use-os-certs", false, "trust the system's CA certificates")
	fs.StringVar(&o.KeyLogFile, "tls-keylog", "", "append TLS secrets to FILE (NSS key log format, for Wireshark)")
	fs.StringVarP(&co.MQTT.Username, "username", "u", "", "MQTT username for CONNECT (sent only if the server verifies)")
	fs.StringVarP(&co.MQTT.Password, "pw", "P", "", "MQTT password for CONNECT (sent only if the server verifies)")
	fs.StringVarP(&co.MQTT.ClientID, "id", "i", "", "MQTT client id (default mamori-tlscheck-RANDOM)")
	fs.BoolVar(&noMQTT, "no-mqtt", false, "skip the MQTT CONNECT/CONNACK step")
	fs.DurationVar(&timeout, "timeout", 10*time.Second, "time allowed for the whole check")
	fs.IntVar(&warnDays, "warn-days", 30, "flag certificates that expire within this many days")
	fs.BoolVar(&asJSON, "json", false, "print the report as JSON")
	fs.BoolVar(&help, "help", false, "show this help")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), usageCommand)
		fmt.Fprintln(fs.Output())
		fmt.Fprintln(fs.Output(), "Connects, shows the TLS version, cipher, ALPN and certificate chain, verifies")
		fmt.Fprintln(fs.Output(), "stage 1 (chain) and stage 2 (name), and sends an MQTT CONNECT. PORT defaults")
		fmt.Fprintln(fs.Output(), "to 8883. Exit status: 0 everything verifies, 1 it does not, 2 usage error.")
		fmt.Fprintln(fs.Output())
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if help {
		fs.SetOutput(stdout)
		fs.Usage()
		return exitOK
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, usageCommand)
		return exitUsage
	}
	addr := withPort(fs.Arg(0))
	co.SkipMQTT = noMQTT
	co.Timeout = timeout
	co.ExpiryWarningDays = warnDays

	r, err := tlsprobe.Check(ctx, addr, o, co)
	if err != nil {
		fmt.Fprintln(stderr, "mamori tlscheck: "+err.Error())
		return exitUsage
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			fmt.Fprintln(stderr, "mamori tlscheck:", err)
			return exitFailed
		}
	} else {
		printReport(stdout, r, o)
	}
	if !r.OK {
		return exitFailed
	}
	return exitOK
}

// withPort adds the MQTT-over-TLS port to a bare host or IP address.
func withPort(s string) string {
	if _, _, err := net.SplitHostPort(s); err == nil {
		return s
	}
	return net.JoinHostPort(strings.Trim(s, "[]"), defaultPort)
}

// printReport writes the human form of the report.
func printReport(w io.Writer, r *tlsprobe.Report, o tlsprobe.ClientOptions) {
	sni := r.SNI
	if sni == "" {
		sni = "none (an IP address is never sent as SNI)"
	}
	fmt.Fprintf(w, "Connecting to %s — SNI: %s; verifying name: %s\n", r.Address, sni, r.ServerName)
	for _, warning := range r.Warnings {
		fmt.Fprintln(w, warning)
	}
	if !r.Connected {
		fmt.Fprintln(w, r.Explanation)
		return
	}
	if r.Handshake {
		alpn := r.ALPN
		if alpn == "" {
			alpn = "none"
		}
		cipher := r.CipherSuite
		if r.CipherOpenSSL != r.CipherSuite {
			cipher += " (" + r.CipherOpenSSL + ")"
		}
		fmt.Fprintf(w, "TLS:          %s, %s, ALPN %s\n", r.TLSVersion, cipher, alpn)
	}
	printChain(w, r.Chain)
	if len(r.Chain) > 0 {
		printStages(w, r)
	}
	printClientCert(w, r.ClientCert)
	if r.Error != "" {
		fmt.Fprintf(w, "Handshake:    FAILED (%s)\n", r.Error)
		fmt.Fprintln(w, r.Explanation)
		fmt.Fprintln(w, "Result:       FAILED")
		return
	}
	printMQTT(w, r.MQTT)
	if r.OK {
		fmt.Fprintln(w, "Result:       OK — everything verifies")
	} else {
		fmt.Fprintln(w, "Result:       FAILED")
	}
}

func printChain(w io.Writer, chain []tlsprobe.CertInfo) {
	if len(chain) == 0 {
		return
	}
	fmt.Fprintf(w, "Certificate chain presented (%d):\n", len(chain))
	for i, c := range chain {
		fmt.Fprintf(w, "  %d subject   %s\n", i, c.Subject)
		sans := append(append([]string{}, c.DNSNames...), c.IPAddresses...)
		switch {
		case len(sans) > 0:
			fmt.Fprintf(w, "    SANs      %s\n", strings.Join(sans, ", "))
		case !c.IsCA:
			fmt.Fprintf(w, "    SANs      none (a CN-only, X.509 v%d certificate)\n", c.Version)
		}
		issuer := c.Issuer
		if c.SelfSigned {
			issuer += " (self-signed)"
		}
		fmt.Fprintf(w, "    issuer    %s\n", issuer)
		fmt.Fprintf(w, "    valid     %s to %s\n", c.NotBefore.UTC().Format(time.DateTime), c.NotAfter.UTC().Format(time.DateTime+" MST"))
		ca := ""
		if c.IsCA {
			ca = ", CA"
		}
		fmt.Fprintf(w, "    key       %s, %s%s\n", c.KeyType, c.SignatureAlgorithm, ca)
		fmt.Fprintf(w, "    serial    %s\n", c.Serial)
	}
}

func printStages(w io.Writer, r *tlsprobe.Report) {
	if r.Stage1.OK {
		fmt.Fprintf(w, "Stage 1:      OK — chain %s verifies against %s\n", strings.Join(r.Stage1.VerifiedChain, " → "), r.Stage1.Against)
	} else {
		fmt.Fprintf(w, "Stage 1:      FAILED — %s\n", r.Stage1.Explanation)
	}
	switch {
	case r.Stage2.Skipped && r.Stage2.OK:
		fmt.Fprintf(w, "Stage 2:      skipped (--insecure); the certificate would match %s anyway\n", r.Stage2.Against)
	case r.Stage2.Skipped:
		fmt.Fprintf(w, "Stage 2:      skipped (--insecure); the certificate is valid for %s, not %s\n", strings.Join(r.Stage2.ValidFor, ", "), r.Stage2.Against)
	case r.Stage2.OK:
		by := map[string]string{"dns-san": "a DNS SAN", "ip-san": "an IP SAN", "cn": "the CN (no DNS SAN)"}[r.Stage2.MatchedBy]
		fmt.Fprintf(w, "Stage 2:      OK — %s matches %s\n", r.Stage2.Against, by)
	default:
		fmt.Fprintf(w, "Stage 2:      FAILED — %s\n", r.Stage2.Explanation)
	}
	e := r.Expiry
	switch {
	case e.Expired || e.NotYetValid:
		fmt.Fprintln(w, "Expiry:       FAILED — a certificate of the chain is outside its validity period (see stage 1)")
	case e.Soon:
		fmt.Fprintf(w, "Expiry:       WARNING — %s expires %s (within the warning period)\n", e.FirstToExpire, e.FirstNotAfter.UTC().Format(time.DateOnly))
	default:
		fmt.Fprintf(w, "Expiry:       OK — the server's certificate expires %s (%d days)\n", e.NotAfter.UTC().Format(time.DateOnly), e.DaysLeft)
	}
	switch {
	case !r.OCSP.Stapled:
		fmt.Fprintln(w, "OCSP staple:  none")
	case r.OCSP.Error != "":
		fmt.Fprintf(w, "OCSP staple:  unreadable (%s)\n", r.OCSP.Error)
	default:
		fmt.Fprintf(w, "OCSP staple:  %s\n", r.OCSP.Status)
	}
}

func printClientCert(w io.Writer, c tlsprobe.ClientCertInfo) {
	switch {
	case !c.Requested:
		fmt.Fprintln(w, "Client cert:  not requested by the server")
	default:
		cas := "any CA (the server named none)"
		if len(c.AcceptableCAs) > 0 {
			cas = strings.Join(c.AcceptableCAs, "; ")
		}
		sent := "none sent"
		if c.Sent {
			sent = "sent " + c.Subject
		}
		fmt.Fprintf(w, "Client cert:  requested, issued by %s — %s\n", cas, sent)
	}
}

func printMQTT(w io.Writer, m tlsprobe.MQTTResult) {
	switch {
	case !m.Attempted:
		fmt.Fprintln(w, "MQTT:         not tried (--no-mqtt)")
	case m.Connack:
		extra := ""
		if m.CredentialsWithheld {
			extra = " (credentials withheld: the server did not verify)"
		}
		fmt.Fprintf(w, "MQTT:         CONNACK %d, %s%s\n", m.ReturnCode, m.Reason, extra)
	default:
		fmt.Fprintf(w, "MQTT:         FAILED — %s\n", m.Explanation)
	}
}
