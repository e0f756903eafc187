package bridge

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"

	"github.com/mamori-mqtt/mamori/internal/config"
	"github.com/mamori-mqtt/mamori/internal/tlsprobe"
)

// dialer opens the byte stream to one remote address, with TLS when the
// bridge has bridge_cafile or bridge_capath.
type dialer struct {
	tls  *tlsprobe.ClientOptions
	bind string
	warn io.Writer
}

// logWriter turns tlsprobe's warnings (e.g. a CN-only certificate) into
// log lines.
type logWriter struct {
	log  *slog.Logger
	name string
}

func (w logWriter) Write(p []byte) (int, error) {
	w.log.Warn("Bridge " + w.name + ": " + strings.TrimSpace(string(p)))
	return len(p), nil
}

func newDialer(c *config.Bridge, log *slog.Logger) (dialer, error) {
	d := dialer{bind: c.BindAddress, warn: logWriter{log, c.Name}}
	t := &c.TLS
	if !t.Enabled() {
		return d, nil
	}
	o := &tlsprobe.ClientOptions{
		CAFile:     t.CAFile.Path,
		CAPath:     t.CAPath.Path,
		CertFile:   t.CertFile.Path,
		KeyFile:    t.KeyFile.Path,
		CertPass:   t.KeyPassword,
		Insecure:   t.Insecure,
		ServerName: t.ServerName,
		TLSVersion: t.Version.Text,
		UseOSCerts: t.UseOSCerts,
	}
	if t.ALPN != "" {
		o.ALPN = []string{t.ALPN}
	}
	// Build once now, so that an unreadable CA, certificate or key stops
	// the broker at start with the option's position.
	if _, err := tlsprobe.ClientConfig(*o, c.Addresses[0].String(), io.Discard); err != nil {
		pos := t.CAFile.Pos
		for _, f := range []config.File{t.CertFile, t.KeyFile, t.CAPath} {
			if f.IsSet() && strings.Contains(err.Error(), f.Path) {
				pos = f.Pos
			}
		}
		return d, fmt.Errorf("%s: bridge %s: %s", pos, c.Name, flagsToOptions.Replace(err.Error()))
	}
	d.tls = o
	return d, nil
}

// flagsToOptions turns the command-line flags that tlsprobe's explanations
// suggest into the bridge options that do the same.
var flagsToOptions = strings.NewReplacer(
	"--cafile", "bridge_cafile", "--capath", "bridge_capath", "--cert-pass", "bridge_keyfile_password",
	"--cert", "bridge_certfile", "--key", "bridge_keyfile", "--servername", "bridge_servername",
	"--insecure", "bridge_insecure true", "--tls-version", "bridge_tls_version", "--tls-alpn", "bridge_alpn",
	"--tls-use-os-certs", "bridge_tls_use_os_certs true")

// explain is tlsprobe's explanation of a TLS failure, in bridge options.
func explain(err error, o tlsprobe.ClientOptions, hostport string) error {
	msg := flagsToOptions.Replace(tlsprobe.Explain(err, o, hostport))
	return errors.New(strings.ReplaceAll(msg, "connect with bridge_", "set bridge_"))
}

// open connects to addr; a TLS failure is explained in words.
func (d dialer) open(ctx context.Context, addr config.BridgeAddress) (net.Conn, error) {
	nd := &net.Dialer{}
	if d.bind != "" {
		nd.LocalAddr = &net.TCPAddr{IP: net.ParseIP(d.bind)}
	}
	hostport := addr.String()
	if d.tls == nil {
		return nd.DialContext(ctx, "tcp", hostport)
	}
	o := *d.tls
	o.Port = addr.Port
	if d.bind == "" {
		conn, err := tlsprobe.Dial(ctx, hostport, o, d.warn)
		if err != nil {
			return nil, explain(err, o, hostport)
		}
		return conn, nil
	}
	cfg, err := tlsprobe.ClientConfig(o, hostport, d.warn)
	if err != nil {
		return nil, err
	}
	raw, err := nd.DialContext(ctx, "tcp", hostport)
	if err != nil {
		return nil, err
	}
	tc := tls.Client(raw, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, explain(err, o, hostport)
	}
	return tc, nil
}
