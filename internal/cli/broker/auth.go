package broker

import (
	"net"
	"net/netip"
	"time"

	"github.com/mamori-mqtt/mamori/internal/auth"
	"github.com/mamori-mqtt/mamori/internal/broker"
	"github.com/mamori-mqtt/mamori/internal/config"
	"github.com/mamori-mqtt/mamori/internal/packet"
)

// fileAuth applies a Mosquitto security block: allow_anonymous,
// password_file and acl_file.
type fileAuth struct {
	allowAnon bool
	pw        *auth.PasswordFile
	acl       *auth.ACL
	ver       *auth.Verifier
	thr       *auth.Throttle
}

var _ broker.Auth = (*fileAuth)(nil)

// newFileAuth loads the files a security block names. ver and thr are
// shared by all listeners so that a cache and the failure counts do not
// depend on which port a client uses.
func newFileAuth(sec *config.Security, allowAnon bool, ver *auth.Verifier, thr *auth.Throttle) (*fileAuth, error) {
	a := &fileAuth{allowAnon: allowAnon, ver: ver, thr: thr}
	if sec.PasswordFile.IsSet() {
		pw, err := auth.LoadPasswordFile(sec.PasswordFile.Path)
		if err != nil {
			return nil, err
		}
		a.pw = pw
	}
	if sec.ACLFile.IsSet() {
		acl, err := auth.LoadACLFile(sec.ACLFile.Path)
		if err != nil {
			return nil, err
		}
		a.acl = acl
	}
	return a, nil
}

// Authenticate implements broker.Auth. As in Mosquitto 2.0, every refusal
// is "not authorised" (CONNACK 5, or 0x87 in MQTT 5), and a client whose
// identity comes from its certificate does not consult the password file.
func (a *fileAuth) Authenticate(ci *broker.ClientInfo, password []byte, hasPassword bool) packet.ReasonCode {
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
	if d := a.thr.Delay(addr); d > 0 {
		time.Sleep(d) // repeated failures from one address are slowed down
	}
	if !hasPassword || !a.ver.Check(a.pw, ci.Username, string(password)) {
		a.thr.Failure(addr)
		return packet.ErrNotAuthorized
	}
	a.thr.Success(addr)
	return packet.Success
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
