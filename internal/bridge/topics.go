package bridge

import (
	"strings"

	"github.com/mamori-mqtt/mamori/internal/config"
	"github.com/mamori-mqtt/mamori/internal/topic"
)

// Topic mapping, as Mosquitto's bridge does it: a topic line's filter is
// prefix + pattern on each side; a message matched on one side loses that
// side's prefix and gets the other side's. The first matching line of the
// configuration decides, in file order.

// outbound maps a local topic name to the remote one and the QoS of the
// topic line that matched; ok is false when no out/both line matches.
func outbound(topics []config.BridgeTopic, name string) (remote string, qos byte, ok bool) {
	for _, t := range topics {
		if t.Direction == config.BridgeIn {
			continue
		}
		if !topic.Match(t.LocalFilter(), name) || !strings.HasPrefix(name, t.LocalPrefix) {
			continue
		}
		return t.RemotePrefix + name[len(t.LocalPrefix):], t.QoS, true
	}
	return "", 0, false
}

// inbound maps a remote topic name to the local one; ok is false when no
// in/both line matches.
func inbound(topics []config.BridgeTopic, name string) (local string, qos byte, ok bool) {
	for _, t := range topics {
		if t.Direction == config.BridgeOut {
			continue
		}
		if !topic.Match(t.RemoteFilter(), name) || !strings.HasPrefix(name, t.RemotePrefix) {
			continue
		}
		return t.LocalPrefix + name[len(t.RemotePrefix):], t.QoS, true
	}
	return "", 0, false
}
