package tlspsk

import (
	"encoding/hex"
	"fmt"
)

// NSS key log labels
// (https://firefox-source-docs.mozilla.org/security/nss/legacy/key_log_format/).
const (
	keyLogClientHS = "CLIENT_HANDSHAKE_TRAFFIC_SECRET"
	keyLogServerHS = "SERVER_HANDSHAKE_TRAFFIC_SECRET"
	keyLogClientAP = "CLIENT_TRAFFIC_SECRET_0"
	keyLogServerAP = "SERVER_TRAFFIC_SECRET_0"
	keyLogTLS12    = "CLIENT_RANDOM"
)

// keyLog writes one line of the key log, if one is configured. Write
// errors are ignored: the log is a debugging aid.
func (c *Conn) keyLog(label string, secret []byte) {
	if c.cfg.KeyLogWriter == nil {
		return
	}
	fmt.Fprintf(c.cfg.KeyLogWriter, "%s %s %s\n", label, hex.EncodeToString(c.clientRandom), hex.EncodeToString(secret))
}
