package clientflags

import (
	"fmt"
	"strconv"

	"github.com/mamori-mqtt/mamori/internal/packet"
)

// propType is how a property's value is written on the command line.
type propType int

const (
	ptByte propType = iota
	ptU16
	ptU32
	ptVarint
	ptString
	ptBinary
	ptPair
)

// propInfo describes one MQTT 5 property for -D: its identifier, its value
// type and the packets ("commands") that may carry it.
type propInfo struct {
	id    int
	typ   propType
	cmds  []string
	check func(v int64) bool
}

var propNames = map[string]propInfo{
	"payload-format-indicator":          {packet.PropPayloadFormat, ptByte, []string{"publish", "will"}, nil},
	"message-expiry-interval":           {packet.PropMessageExpiry, ptU32, []string{"publish", "will"}, nil},
	"content-type":                      {packet.PropContentType, ptString, []string{"publish", "will"}, nil},
	"response-topic":                    {packet.PropResponseTopic, ptString, []string{"publish", "will"}, nil},
	"correlation-data":                  {packet.PropCorrelationData, ptBinary, []string{"publish", "will"}, nil},
	"subscription-identifier":           {packet.PropSubscriptionID, ptVarint, []string{"publish", "subscribe"}, nil},
	"session-expiry-interval":           {packet.PropSessionExpiry, ptU32, []string{"connect", "disconnect"}, nil},
	"assigned-client-identifier":        {packet.PropAssignedClientID, ptString, []string{"connack"}, nil},
	"server-keep-alive":                 {packet.PropServerKeepAlive, ptU16, []string{"connack"}, nil},
	"authentication-method":             {packet.PropAuthMethod, ptString, []string{"connect", "auth"}, nil},
	"authentication-data":               {packet.PropAuthData, ptBinary, []string{"connect", "auth"}, nil},
	"request-problem-information":       {packet.PropRequestProblemInfo, ptByte, []string{"connect"}, le1},
	"will-delay-interval":               {packet.PropWillDelay, ptU32, []string{"will"}, nil},
	"request-response-information":      {packet.PropRequestResponseInfo, ptByte, []string{"connect"}, le1},
	"response-information":              {packet.PropResponseInfo, ptString, []string{"connack"}, nil},
	"server-reference":                  {packet.PropServerReference, ptString, []string{"connack", "disconnect"}, nil},
	"reason-string":                     {packet.PropReasonString, ptString, []string{"disconnect"}, nil},
	"receive-maximum":                   {packet.PropReceiveMaximum, ptU16, []string{"connect"}, nonzero},
	"topic-alias-maximum":               {packet.PropTopicAliasMaximum, ptU16, []string{"connect"}, nil},
	"topic-alias":                       {packet.PropTopicAlias, ptU16, []string{"publish"}, nonzero},
	"maximum-qos":                       {packet.PropMaximumQoS, ptByte, []string{"connack"}, nil},
	"retain-available":                  {packet.PropRetainAvailable, ptByte, []string{"connack"}, nil},
	"user-property":                     {packet.PropUser, ptPair, []string{"connect", "publish", "will", "subscribe", "unsubscribe", "disconnect", "auth"}, nil},
	"maximum-packet-size":               {packet.PropMaximumPacketSize, ptU32, []string{"connect"}, nonzero},
	"wildcard-subscription-available":   {packet.PropWildcardSubAvailable, ptByte, []string{"connack"}, nil},
	"subscription-identifier-available": {packet.PropSubIDAvailable, ptByte, []string{"connack"}, nil},
	"shared-subscription-available":     {packet.PropSharedSubAvailable, ptByte, []string{"connack"}, nil},
}

func le1(v int64) bool     { return v <= 1 }
func nonzero(v int64) bool { return v != 0 }

// propCommands are the packet names -D accepts, in mosquitto's words.
var propCommands = map[string]bool{
	"connect": true, "publish": true, "subscribe": true, "unsubscribe": true,
	"disconnect": true, "will": true, "auth": true,
}

// addProperty applies "-D cmd name value [value2]". rest holds what
// follows -D; it returns how many of those arguments were used.
func (c *Config) addProperty(rest []string) (int, error) {
	if len(rest) < 3 {
		return 0, argErr("Error: --property argument given but not enough arguments specified.\n\n")
	}
	cmd, name, value := rest[0], rest[1], rest[2]
	if !propCommands[cmd] {
		return 0, argErr("Error: Invalid command given in --property argument.\n\n")
	}
	info, ok := propNames[name]
	if !ok {
		return 0, argErr("Error: Invalid property name given in --property argument.\n\n")
	}
	allowed := false
	for _, c := range info.cmds {
		if c == cmd {
			allowed = true
		}
	}
	if !allowed {
		if cmd == "auth" {
			return 0, argErr(fmt.Sprintf("Error: %s property not supported for %s in --property argument.\n\n", name, cmd))
		}
		return 0, argErr(fmt.Sprintf("Error: %s property not allowed for %s in --property argument.\n\n", name, cmd))
	}
	used := 3
	p := c.propsFor(cmd)
	if info.typ == ptPair {
		if len(rest) < 4 {
			return 0, argErr("Error: --property argument given but not enough arguments specified.\n\n")
		}
		p.AddUser(value, rest[3])
		return 4, nil
	}
	if p.Present(info.id) && info.id != packet.PropSubscriptionID {
		c.dupProp = append(c.dupProp, cmd)
	}
	p.Set(info.id)
	switch info.typ {
	case ptByte, ptU16, ptU32, ptVarint:
		v := atol(value)
		max := map[propType]int64{ptByte: 255, ptU16: 65535, ptU32: 4294967295, ptVarint: 268435455}[info.typ]
		if v < 0 || v > max {
			return 0, argErr(fmt.Sprintf("Error: Property value (%d) out of range for property %s.\n\n", v, name))
		}
		if info.check != nil && !info.check(v) {
			c.badProp = append(c.badProp, cmd)
		}
		setNumber(p, info.id, v)
	case ptString:
		setString(p, info.id, []byte(value))
	case ptBinary:
		setString(p, info.id, []byte(value))
	}
	if cmd == "publish" && info.id == packet.PropTopicAlias {
		c.topicAlias = true
	}
	return used, nil
}

func (c *Config) propsFor(cmd string) *packet.Properties {
	switch cmd {
	case "connect":
		return &c.ConnectProps
	case "publish":
		return &c.PublishProps
	case "subscribe":
		return &c.SubscribeProps
	case "unsubscribe":
		return &c.UnsubscribeProps
	case "disconnect":
		return &c.DisconnectProps
	case "will":
		return &c.WillProps
	}
	return &c.AuthProps
}

func setNumber(p *packet.Properties, id int, v int64) {
	switch id {
	case packet.PropPayloadFormat:
		p.PayloadFormat = byte(v)
	case packet.PropMessageExpiry:
		p.MessageExpiry = uint32(v)
	case packet.PropSubscriptionID:
		p.SubscriptionIDs = append(p.SubscriptionIDs, uint32(v))
	case packet.PropSessionExpiry:
		p.SessionExpiry = uint32(v)
	case packet.PropServerKeepAlive:
		p.ServerKeepAlive = uint16(v)
	case packet.PropRequestProblemInfo:
		p.RequestProblemInfo = byte(v)
	case packet.PropWillDelay:
		p.WillDelay = uint32(v)
	case packet.PropRequestResponseInfo:
		p.RequestResponseInfo = byte(v)
	case packet.PropReceiveMaximum:
		p.ReceiveMaximum = uint16(v)
	case packet.PropTopicAliasMaximum:
		p.TopicAliasMaximum = uint16(v)
	case packet.PropTopicAlias:
		p.TopicAlias = uint16(v)
	case packet.PropMaximumQoS:
		p.MaximumQoS = byte(v)
	case packet.PropRetainAvailable:
		p.RetainAvailable = byte(v)
	case packet.PropMaximumPacketSize:
		p.MaximumPacketSize = uint32(v)
	case packet.PropWildcardSubAvailable:
		p.WildcardSubAvailable = byte(v)
	case packet.PropSubIDAvailable:
		p.SubIDAvailable = byte(v)
	case packet.PropSharedSubAvailable:
		p.SharedSubAvailable = byte(v)
	}
}

func setString(p *packet.Properties, id int, v []byte) {
	switch id {
	case packet.PropContentType:
		p.ContentType = v
	case packet.PropResponseTopic:
		p.ResponseTopic = v
	case packet.PropCorrelationData:
		p.CorrelationData = v
	case packet.PropAssignedClientID:
		p.AssignedClientID = v
	case packet.PropAuthMethod:
		p.AuthMethod = v
	case packet.PropAuthData:
		p.AuthData = v
	case packet.PropResponseInfo:
		p.ResponseInfo = v
	case packet.PropServerReference:
		p.ServerReference = v
	case packet.PropReasonString:
		p.ReasonString = v
	}
}

// atol reads a leading decimal integer as C's atol does: leading spaces and
// a sign, then digits, and 0 when there are none. mosquitto parses most
// numeric arguments this way, so "-q 1x" is QoS 1.
func atol(s string) int64 {
	i := 0
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n') {
		i++
	}
	j := i
	if j < len(s) && (s[j] == '-' || s[j] == '+') {
		j++
	}
	for j < len(s) && s[j] >= '0' && s[j] <= '9' {
		j++
	}
	v, err := strconv.ParseInt(s[i:j], 10, 64)
	if err != nil {
		return 0
	}
	return v
}

// atoi is atol truncated to a C int, as mosquitto's atoi calls are.
func atoi(s string) int { return int(int32(atol(s))) }
