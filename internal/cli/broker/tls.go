package broker

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"

	"github.com/mamori-mqtt/mamori/internal/broker"
	"github.com/mamori-mqtt/mamori/internal/config"
	"github.com/mamori-mqtt/mamori/internal/packet"
	"github.com/mamori-mqtt/mamori/internal/pki"
	"github.com/mamori-mqtt/mamori/internal/tlsconf"
)

// setupTLS builds the TLS layer of a listener and connects it to the
// broker: the user name from the client certificate (bl.Identity, when
// use_identity_as_username or use_subject_as_username is set), and the
// closing of connections whose certificate a new CRL revokes. It fetches
// crl_url once, then starts watching the files until ctx is done or the
// server is closed. The caller serves the listener through
// srv.NewListener(ln) (or srv.Config() for an http.Server), calls
// srv.Reload() on SIGHUP, srv.Apply(newListener) when a configuration
// reload changed the listener's TLS options, and srv.Close() at shutdown.
// info, when not empty, is printed to stdout (the local CA's path and a
// ready command line, in the no-configuration mode).
func setupTLS(ctx context.Context, l *config.Listener, cfg *config.Config, b *broker.Broker, bl *broker.Listener, log *slog.Logger) (srv *tlsconf.Server, info string, err error) {
	if l.AutoCert {
		if l, info, err = localCAListener(l); err != nil {
			return nil, "", err
		}
	}
	o := tlsconf.Options{Listener: l, ExpiryWarningDays: cfg.CertExpiryWarningDays, Log: log}
	if len(l.TLS.CRLURLs) > 0 {
		// A restart while a CRL server is down keeps its revocations.
		if dir, err := dataDir(); err == nil {
			o.CRLCacheDir = filepath.Join(dir, "crl")
		}
	}
	if l.Protocol == config.ProtocolWebSockets {
		o.NextProtos = []string{"http/1.1"}
	}
	if b != nil && bl != nil {
		o.Disconnect = func(match func(nc net.Conn, clientID string) bool) int {
			return b.DisconnectWhere(func(ci *broker.ClientInfo, nc net.Conn) bool {
				return ci.Listener == bl.Name && match(nc, ci.ClientID)
			}, packet.ErrNotAuthorized, "client certificate revoked")
		}
	}
	if srv, err = tlsconf.New(o); err != nil {
		return nil, "", err
	}
	if bl != nil {
		bl.Identity = srv.Identity()
	}
	srv.FetchCRLs()
	srv.Start(ctx)
	return srv, info, nil
}

// localCAListener gives the no-configuration TLS listener the certificate
// of the local CA, created in the data directory on first start.
func localCAListener(l *config.Listener) (*config.Listener, string, error) {
	dir, err := dataDir()
	if err != nil {
		return nil, "", err
	}
	loc, created, err := pki.EnsureLocal(filepath.Join(dir, "local-ca"))
	if err != nil {
		return nil, "", err
	}
	cp := *l
	cp.TLS.Certs = []config.CertKey{{
		CertFile: config.File{Path: loc.CertFile, Pos: l.Pos},
		KeyFile:  config.File{Path: loc.KeyFile, Pos: l.Pos},
	}}
	verb := "Using"
	if created {
		verb = "Created"
	}
	info := fmt.Sprintf("%s the local CA for TLS on %s: %s\nTry: mamori sub -h localhost -p %d --cafile %s -t '#' -v\n",
		verb, l.Addr(), loc.CAFile, l.Port, loc.CAFile)
	return &cp, info, nil
}

// dataDir is where the broker keeps its own files (the local CA).
func dataDir() (string, error) {
	if d := os.Getenv("MAMORI_DATA_DIR"); d != "" {
		return d, nil
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "mamori"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no data directory: set MAMORI_DATA_DIR: %w", err)
	}
	return filepath.Join(home, ".local", "share", "mamori"), nil
}
