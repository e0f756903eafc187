package broker

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/mamori-mqtt/mamori/internal/auth"
	"github.com/mamori-mqtt/mamori/internal/broker"
	"github.com/mamori-mqtt/mamori/internal/config"
	"github.com/mamori-mqtt/mamori/internal/packet"
)

// fileAuth applies a Mosquitto security block: allow_anonymous,
// password_file, acl_file, psk_file and clientid_prefixes. It is immutable:
// a reload (SIGHUP) builds a new one and swaps it in with SetAuth.
type fileAuth struct {
	allowAnon bool
	prefix    string // clientid_prefixes
	pw        *auth.PasswordFile
	acl       *auth.ACL
	psk       *auth.PSKFile
	// pskIdentity names the listeners whose user names are PSK
	// identities (psk_hint with use_identity_as_username).
	pskIdentity map[string]bool
	ver         *auth.Verifier
	thr         *auth.Throttle
}

var (
	_ broker.Auth        = (*fileAuth)(nil)
	_ broker.Revalidator = (*fileAuth)(nil)
)

// newFileAuth loads the files a security block names. ver and thr are
// shared by all listeners so that a cache and the failure counts do not
// depend on which port a client uses.
//
// An error names the option's line in the configuration and, for a
// malformed file, the file and line at fault, so a failed reload can say
// exactly what to fix.
func newFileAuth(sec *config.Security, allowAnon bool, prefix string, ver *auth.Verifier, thr *auth.Throttle) (*fileAuth, error) {
	a := &fileAuth{allowAnon: allowAnon, prefix: prefix, ver: ver, thr: thr}
	if sec.PasswordFile.IsSet() {
		pw, err := auth.LoadPasswordFile(sec.PasswordFile.Path)
		if err != nil {
			return nil, optionError(sec.PasswordFile.Pos, "password_file", err)
		}
		a.pw = pw
	}
	if sec.ACLFile.IsSet() {
		acl, err := auth.LoadACLFile(sec.ACLFile.Path)
		if err != nil {
			return nil, optionError(sec.ACLFile.Pos, "acl_file", err)
		}
		a.acl = acl
	}
	if sec.PSKFile.IsSet() {
		// The TLS layer uses the identities; loading the file here makes a
		// broken one fail the start or the reload like any other.
		psk, err := auth.LoadPSKFile(sec.PSKFile.Path)
		if err != nil {
			return nil, optionError(sec.PSKFile.Pos, "psk_file", err)
		}
		a.psk = psk
	}
	return a, nil
}

// optionError prefixes a file's load error with the configuration line that
// names the file, and the option unless the error already starts with it
// (the auth package names it when the file cannot be opened).
func optionError(pos config.Pos, option string, err error) error {
	if strings.HasPrefix(err.Error(), option+":") {
		return fmt.Errorf("%s: %w", pos, err)
	}
	return fmt.Errorf("%s: %s: %w", pos, option, err)
}

// Authenticate implements broker.Auth. As in Mosquitto 2.0, every refusal
// is "not authorised" (CONNACK 5, or 0x87 in MQTT 5), and a client whose
// identity comes from its certificate does not consult the password file.
func (a *fileAuth) Authenticate(ci *broker.ClientInfo, password []byte, hasPassword bool) packet.ReasonCode {
	if a.prefix != "" && !strings.HasPrefix(ci.ClientID, a.prefix) {
		// clientid_prefixes: Mosquitto refuses other ids as not authorised.
		return packet.ErrNotAuthorized
	}
	if ci.CertIdentity {
		return packet.Success
	}
	if ci.Anonymous {
		if a.allowAnon {
			return packet.Success
		}
		return packet.ErrNotAuthorized
	}
	if a.pw == nil {
		if a.allowAnon {
			return packet.Success
		}
		return packet.ErrNotAuthorized
	}
	addr := remoteAddr(ci.Remote)
	// Loopback clients are not throttled: they are local services (and
	// Mosquitto's own test suite, which makes dozens of deliberate failures
	// in a row, as Mosquitto has no throttle); a guesser on the network is.
	throttled := !addr.IsLoopback()
	if d := a.thr.Delay(addr); throttled && d > 0 {
		time.Sleep(d) // repeated failures from one address are slowed down
	}
	// A zero-length password never matches, as in Mosquitto (which reads
	// it as no password at all).
	if !hasPassword || len(password) == 0 || !a.ver.Check(a.pw, ci.Username, string(password)) {
		if throttled {
			a.thr.Failure(addr)
		}
		return packet.ErrNotAuthorized
	}
	a.thr.Success(addr)
	return packet.Success
}

// Revalidate implements broker.Revalidator: after a reload, would this
// client still be let in? As in Mosquitto, an anonymous client needs
// allow_anonymous, and a client with a user name needs that user to still
// be in the password file. The password itself is not re-verified: the
// broker does not keep it after CONNECT, so a changed password applies from
// the user's next connection.
func (a *fileAuth) Revalidate(ci *broker.ClientInfo) bool {
	if a.prefix != "" && !strings.HasPrefix(ci.ClientID, a.prefix) {
		return false
	}
	if ci.CertIdentity {
		if a.pskIdentity[ci.Listener] {
			// A PSK identity removed from psk_file loses its connections.
			return a.psk != nil && a.psk.Has(ci.Username)
		}
		// A certificate identity is re-checked by the TLS layer (CRLs).
		return true
	}
	if ci.Anonymous || a.pw == nil {
		return a.allowAnon
	}
	return a.pw.Has(ci.Username)
}

// Authorize implements broker.Auth.
func (a *fileAuth) Authorize(ci *broker.ClientInfo, topicName string, acc broker.Access) bool {
	if a.acl == nil {
		return true
	}
	var ac auth.Access
	switch acc {
	case broker.AccessRead:
		ac = auth.Read
	case broker.AccessWrite:
		ac = auth.Write
	default:
		ac = auth.Subscribe
	}
	return a.acl.Check(auth.Client{ID: ci.ClientID, Username: ci.Username, Anonymous: ci.Anonymous}, topicName, ac)
}

func remoteAddr(a net.Addr) netip.Addr {
	if a == nil {
		return netip.Addr{}
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}
