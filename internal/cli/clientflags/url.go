package clientflags

import (
	"fmt"
	"strings"
)

// parseURL applies -L scheme://[user[:pass]@]host[:port]/topic. mosquitto
// 2.0 knows mqtt:// and mqtts://; mamori also takes ws:// and wss://.
func (c *Config) parseURL(u string) error {
	lower := strings.ToLower(u)
	var rest string
	switch {
	case strings.HasPrefix(lower, "mqtt://"):
		rest, c.Port = u[7:], 1883
	case strings.HasPrefix(lower, "mqtts://"):
		rest, c.Port = u[8:], 8883
		c.TLS.UseOSCerts = true
	case strings.HasPrefix(lower, "ws://"):
		rest, c.Port, c.WebSockets = u[5:], 1883, true
	case strings.HasPrefix(lower, "wss://"):
		rest, c.Port, c.WebSockets = u[6:], 8883, true
		c.TLS.UseOSCerts = true
	default:
		return argErr("Error: unsupported URL scheme.\n\n")
	}
	hostPart, topic, ok := strings.Cut(rest, "/")
	if !ok {
		return argErr("Error: Invalid URL for -L argument specified - topic missing.\n")
	}
	if err := c.addTopic(topic, "-L topic"); err != nil {
		return err
	}
	if userinfo, host, ok := strings.Cut(hostPart, "@"); ok {
		user, pass, hasPass := strings.Cut(userinfo, ":")
		c.Username = &user
		if hasPass {
			c.Password = &pass
		}
		hostPart = host
	}
	host, port, hasPort := strings.Cut(hostPart, ":")
	c.Host = host
	if hasPort {
		c.Port = atoi(port)
	}
	return nil
}

// parseProxy reads --proxy socks5h://[user[:pass]@]host[:port]; user and
// password may escape ':' '@' and '%' as %3A %40 %25.
func parseProxy(u string) (*ProxyURL, error) {
	const scheme = "socks5h://"
	if !strings.HasPrefix(u, scheme) {
		return nil, argErr(fmt.Sprintf("Error: Unsupported proxy protocol: %s\n", u))
	}
	rest := u[len(scheme):]
	p := &ProxyURL{Port: 1080}
	if userinfo, host, ok := strings.Cut(rest, "@"); ok {
		if userinfo == "" {
			return nil, argErr("Error: Invalid proxy.\n")
		}
		user, pass, _ := strings.Cut(userinfo, ":")
		var err1, err2 error
		p.Username, err1 = unescapeProxy(user)
		p.Password, err2 = unescapeProxy(pass)
		if err1 != nil || err2 != nil {
			return nil, argErr("Error: Invalid proxy.\n")
		}
		rest = host
	}
	host, port, hasPort := strings.Cut(rest, ":")
	if host == "" || strings.ContainsAny(host, "@:") {
		return nil, argErr("Error: Invalid proxy.\n")
	}
	p.Host = host
	if hasPort {
		p.Port = atoi(port)
		if p.Port < 1 || p.Port > 65535 {
			return nil, argErr(fmt.Sprintf("Error: Invalid proxy port %d\n", p.Port))
		}
	}
	return p, nil
}

func unescapeProxy(s string) (string, error) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", fmt.Errorf("bad escape")
		}
		switch strings.ToUpper(s[i+1 : i+3]) {
		case "25":
			b.WriteByte('%')
		case "3A":
			b.WriteByte(':')
		case "40":
			b.WriteByte('@')
		default:
			return "", fmt.Errorf("bad escape")
		}
		i += 2
	}
	return b.String(), nil
}
