package clientflags

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mamori-mqtt/mamori/internal/client"
	"github.com/mamori-mqtt/mamori/internal/packet"
)

func TestFormat(t *testing.T) {
	now := time.Date(2024, 5, 6, 21, 48, 0, 123456789, time.UTC)
	m := &client.Message{Topic: "a/b", Payload: []byte(`he said "hi"\`), QoS: 1, Retain: true, PacketID: 7}
	v5 := &client.Message{Topic: "t", Payload: []byte("x"), QoS: 0}
	v5.Props.Set(packet.PropContentType)
	v5.Props.ContentType = []byte("text/plain")
	v5.Props.Set(packet.PropMessageExpiry)
	v5.Props.MessageExpiry = 99
	v5.Props.AddUser("k1", "v1")
	v5.Props.AddUser("k2", "v2")
	cases := []struct {
		name, format string
		msg          *client.Message
		want         string
	}{
		{"topic and payload", "%t %p", m, "a/b he said \"hi\"\\\n"},
		{"widths", "%t|%10t|%-10t|%.2t|%5.2t|%-5.2tX", m, "a/b|       a/b|a/b       |a/|   a/|a/   X\n"},
		{"fields", "%q %r %m %l", m, "1 1 7 13\n"},
		{"hex", "%x %X", &client.Message{Topic: "t", Payload: []byte{0xab, 0x01}}, "ab01 AB01\n"},
		{"hex width cuts", "%10x|%-10X|", m, "6865207361|6865207361|\n"},
		{"payload pad", "%010p|%-20p|%3p", &client.Message{Topic: "t", Payload: []byte("abc")}, "0000000abc|abc                 |abc\n"},
		{"minus without width", "%-p|", &client.Message{Topic: "t", Payload: []byte("abc")}, "abc   |\n"},
		{"escapes", `%%\t\n\\\e\a\0\v\r`, m, "%\t\n\\\x1b\a\x00\v\r\n"},
		{"time", "@Y-@m-@d @H:@M:@S @N @@ %I %U", m, "2024-05-06 21:48:00 123456789 @ 2024-05-06T21:48:00+0000 1715032080.123456789\n"},
		{"props", "%A|%C|%D|%E|%F|%P|%R|%S|%5A|%05E|%-5E|", v5, "|text/plain||99||k1:v1 k2:v2|||     |00099|99   |\n"},
		{"json", "%j", m, `{"tst":"2024-05-06T21:48:00.123456Z+0000","topic":"a/b","qos":1,"retain":1,"payloadlen":13,"mid":7,"payload":"he said \"hi\"\\"}` + "\n"},
		{"json props", "%j", v5, `{"tst":"2024-05-06T21:48:00.123456Z+0000","topic":"t","qos":0,"retain":0,"payloadlen":1,"properties":{"user-properties":{"k1":"v1","k2":"v2"},"content-type":"text/plain","message-expiry-interval":99},"payload":"x"}` + "\n"},
		{"json payload", "%J", &client.Message{Topic: "t", Payload: []byte(`{ "a" : [1, 2] }`)}, `{"tst":"2024-05-06T21:48:00.123456Z+0000","topic":"t","qos":0,"retain":0,"payloadlen":16,"payload":{"a":[1,2]}}` + "\n"},
		{"json null payload", "%j", &client.Message{Topic: "t"}, `{"tst":"2024-05-06T21:48:00.123456Z+0000","topic":"t","qos":0,"retain":0,"payloadlen":0,"payload":null}` + "\n"},
		{"json control chars", "%j", &client.Message{Topic: "t", Payload: []byte("a\x01b\tc\xc3\xa9")}, `{"tst":"2024-05-06T21:48:00.123456Z+0000","topic":"t","qos":0,"retain":0,"payloadlen":7,"payload":"a\u0001b\tcé"}` + "\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := CheckFormat(tc.format); err != nil {
				t.Fatalf("CheckFormat(%q): %v", tc.format, err)
			}
			p := &Printer{Format: tc.format, EOL: true, RandomFilter: 10000, Now: func() time.Time { return now }}
			if got := string(p.Print(nil, tc.msg)); got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestPretty(t *testing.T) {
	got := string(prettyJSON(nil, []byte(`{"a":1,"b":{"c":"x,y","d":[1,2]},"e":{}}`)))
	want := "{\n\t\"a\":\t1,\n\t\"b\":\t{\n\t\t\"c\":\t\"x,y\",\n\t\t\"d\":\t[1, 2]\n\t},\n\t\"e\":\t{\n\t}\n}"
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func TestCheckFormatErrors(t *testing.T) {
	cases := map[string]string{
		"%":    "Error: Incomplete format specifier.\n",
		"%-":   "Error: Incomplete format specifier.\n",
		"%10":  "Error: Incomplete format specifier.\n",
		"%.":   "Error: Incomplete format specifier.\n",
		"%z":   "Error: Invalid format specifier 'z'.\n",
		"@":    "Error: Incomplete format specifier.\n",
		`\`:    "Error: Incomplete escape specifier.\n",
		`\q`:   "Error: Invalid escape specifier 'q'.\n",
		"%5.3": "Error: Incomplete format specifier.\n",
		// Found by FuzzFormat: the printer built the padding and was
		// killed for want of memory.
		"%100000000000000000000000000000p": "Error: Field width or precision over 65536 in format.\n",
		"%.65537t":                         "Error: Field width or precision over 65536 in format.\n",
	}
	for f, want := range cases {
		err := CheckFormat(f)
		var ae *ArgError
		if !errors.As(err, &ae) || ae.Msg != want {
			t.Errorf("CheckFormat(%q) = %v, want %q", f, err, want)
		}
	}
}

// A format that skipped CheckFormat still cannot ask for more padding than
// maxField.
func TestPrintBoundsFieldWidth(t *testing.T) {
	p := &Printer{Format: "%99999999999999999999999999t", Errors: &strings.Builder{}}
	if out := p.Print(nil, &client.Message{Topic: "a"}); len(out) != maxField {
		t.Fatalf("printed %d bytes, want the width bounded at %d", len(out), maxField)
	}
}

func TestURL(t *testing.T) {
	cases := []struct {
		name, url   string
		kind        Kind
		host, topic string
		port        int
		user, pass  string
		tls, ws     bool
		err         string
	}{
		{"plain", "mqtt://example.com/a/b", Pub, "example.com", "a/b", 1883, "", "", false, false, ""},
		{"tls with port", "mqtts://u:p@h:8884/t", Pub, "h", "t", 8884, "u", "p", true, false, ""},
		{"user only", "MQTT://u@h/t", Sub, "h", "t", 1883, "u", "", false, false, ""},
		{"websocket", "ws://h:9001/t/#", Sub, "h", "t/#", 9001, "", "", false, true, ""},
		{"secure websocket", "wss://h/t", Pub, "h", "t", 8883, "", "", true, true, ""},
		{"bad scheme", "http://h/t", Pub, "", "", 0, "", "", false, false, "Error: unsupported URL scheme.\n\n"},
		{"no topic", "mqtt://h", Pub, "", "", 0, "", "", false, false, "Error: Invalid URL for -L argument specified - topic missing.\n"},
		{"wildcard publish", "mqtt://h/a/+", Pub, "", "", 0, "", "", false, false, "Error: Invalid publish topic 'a/+', does it contain '+' or '#'?\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"-L", tc.url}
			if tc.kind == Pub {
				args = append(args, "-m", "x")
			}
			c, err := Parse(tc.kind, args)
			if tc.err != "" {
				var ae *ArgError
				if !errors.As(err, &ae) || ae.Msg != tc.err {
					t.Fatalf("got %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			topic := c.Topic
			if tc.kind == Sub {
				topic = c.Topics[0]
			}
			user, pass := "", ""
			if c.Username != nil {
				user = *c.Username
			}
			if c.Password != nil {
				pass = *c.Password
			}
			if c.Host != tc.host || topic != tc.topic || c.EffectivePort() != tc.port || user != tc.user ||
				pass != tc.pass || c.UsesTLS() != tc.tls || c.WebSockets != tc.ws {
				t.Errorf("got host %q topic %q port %d user %q pass %q tls %v ws %v", c.Host, topic,
					c.EffectivePort(), user, pass, c.UsesTLS(), c.WebSockets)
			}
		})
	}
}

func TestProxyURL(t *testing.T) {
	p, err := parseProxy("socks5h://us%3Aer:p%40ss@proxy.local:1081")
	if err != nil || p.Username != "us:er" || p.Password != "p@ss" || p.Host != "proxy.local" || p.Port != 1081 {
		t.Fatalf("got %+v, %v", p, err)
	}
	if p, err := parseProxy("socks5h://h"); err != nil || p.Port != 1080 {
		t.Fatalf("default port: %+v %v", p, err)
	}
	for _, bad := range []string{"http://h", "socks5h://", "socks5h://h:0", "socks5h://u:p@h:x:y"} {
		if _, err := parseProxy(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestParseProperties(t *testing.T) {
	c, err := Parse(Pub, []string{"-t", "a", "-m", "-D", "-D", "publish", "user-property", "k", "v",
		"--property", "connect", "session-expiry-interval", "30", "-i", "x"})
	if err != nil {
		t.Fatal(err)
	}
	if string(c.Message) != "-D" || c.Version != packet.V5 {
		t.Errorf("message %q version %v", c.Message, c.Version)
	}
	if got := c.PublishProps.UserPairs(); len(got) != 1 || got[0] != [2]string{"k", "v"} {
		t.Errorf("user properties %v", got)
	}
	if !c.ConnectProps.Present(packet.PropSessionExpiry) || c.ConnectProps.SessionExpiry != 30 {
		t.Errorf("session expiry %v", c.ConnectProps.SessionExpiry)
	}
	for _, args := range [][]string{
		{"-t", "a", "-D", "publish", "user-property", "k"},
		{"-t", "a", "-D", "nope", "content-type", "x"},
		{"-t", "a", "-D", "connect", "topic-alias", "1"},
	} {
		if _, err := Parse(Pub, args); err == nil || !strings.HasPrefix(err.Error(), "Error") {
			t.Errorf("%v: %v", args, err)
		}
	}
}

func FuzzFormat(f *testing.F) {
	for _, s := range []string{"%t %p", "%-10.3t", "%010x", "@Y@N@@", `\n\t\e`, "%j%J", "%5A|%05E", "%-", "%"} {
		f.Add(s, []byte("payload"))
	}
	m := &client.Message{Topic: "a/b", QoS: 2, PacketID: 3}
	m.Props.AddUser("k", "v")
	now := time.Unix(0, 0)
	f.Fuzz(func(t *testing.T, format string, payload []byte) {
		m.Payload = payload
		p := &Printer{Format: format, EOL: true, Pretty: len(payload)%2 == 0, Now: func() time.Time { return now },
			Errors: &strings.Builder{}}
		// A format that passes CheckFormat, or not, must never panic when
		// printed: the printer is also reached by formats read from files.
		CheckFormat(format)
		p.Print(nil, m)
	})
}
