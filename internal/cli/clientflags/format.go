package clientflags

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/mamori-mqtt/mamori/internal/client"
	"github.com/mamori-mqtt/mamori/internal/packet"
)

// maxField bounds a -F field width or precision. mosquitto_sub takes any
// number (and overflows C's int); a width of billions would have the
// printer build that much padding for every message.
const maxField = 1 << 16

// fieldDigit appends digit d to a field width or precision, saturating
// just past maxField so that long digit strings cannot overflow.
func fieldDigit(v int, d byte) int {
	return min(v*10+int(d-'0'), maxField+1)
}

// CheckFormat validates a -F format string as mosquitto does before
// connecting, with its messages.
func CheckFormat(f string) error {
	n := len(f)
	incomplete := argErr("Error: Incomplete format specifier.\n")
	for i := 0; i < n; i++ {
		switch f[i] {
		case '%':
			if i == n-1 {
				return incomplete
			}
			if f[i+1] == '0' || f[i+1] == '-' {
				i++
				if i == n-1 {
					return incomplete
				}
			}
			width, prec := 0, 0
			for f[i+1] >= '0' && f[i+1] <= '9' {
				i++
				width = fieldDigit(width, f[i])
				if i == n-1 {
					return incomplete
				}
			}
			if f[i+1] == '.' {
				i++
				if i == n-1 {
					return incomplete
				}
				for f[i+1] >= '0' && f[i+1] <= '9' {
					i++
					prec = fieldDigit(prec, f[i])
					if i == n-1 {
						return incomplete
					}
				}
			}
			if width > maxField || prec > maxField {
				return argErr(fmt.Sprintf("Error: Field width or precision over %d in format.\n", maxField))
			}
			switch f[i+1] {
			case '%', 'A', 'C', 'D', 'E', 'F', 'I', 'l', 'm', 'P', 'p', 'q', 'R', 'S', 'r', 't', 'j', 'J', 'U', 'x', 'X':
			default:
				return argErr(fmt.Sprintf("Error: Invalid format specifier '%c'.\n", f[i+1]))
			}
			i++
		case '@':
			if i == n-1 {
				return incomplete
			}
			i++
		case '\\':
			if i == n-1 {
				return argErr("Error: Incomplete escape specifier.\n")
			}
			switch f[i+1] {
			case '\\', '0', 'a', 'e', 'n', 'r', 't', 'v':
			default:
				return argErr(fmt.Sprintf("Error: Invalid escape specifier '%c'.\n", f[i+1]))
			}
			i++
		}
	}
	return nil
}

// Printer writes received messages the way mosquitto_sub does: with -F,
// -v, -N, --pretty and --random-filter.
type Printer struct {
	Format       string
	Verbose      bool
	EOL          bool
	Pretty       bool
	RandomFilter int // per 10,000; 10,000 prints everything
	Now          func() time.Time
	Errors       io.Writer // "not valid JSON" and similar, unless quiet
}

// NewPrinter returns the Printer the flags describe.
func (c *Config) NewPrinter(stderr io.Writer) *Printer {
	p := &Printer{Format: c.Format, Verbose: c.Verbose, EOL: c.EOL, Pretty: c.Pretty,
		RandomFilter: c.RandomFilter, Now: time.Now, Errors: stderr}
	if c.Quiet {
		p.Errors = io.Discard
	}
	return p
}

// Print appends the output for m to buf and returns it.
func (p *Printer) Print(buf []byte, m *client.Message) []byte {
	if p.RandomFilter > 0 && p.RandomFilter < 10000 && rand.IntN(10000) >= p.RandomFilter {
		return buf
	}
	switch {
	case p.Format != "":
		buf = p.formatted(buf, m)
	case p.Verbose:
		if len(m.Payload) > 0 {
			buf = append(buf, m.Topic...)
			buf = append(buf, ' ')
			buf = append(buf, m.Payload...)
			if p.EOL {
				buf = append(buf, '\n')
			}
		} else if p.EOL {
			buf = append(buf, m.Topic...)
			buf = append(buf, " (null)\n"...)
		}
	default:
		if len(m.Payload) > 0 {
			buf = append(buf, m.Payload...)
			if p.EOL {
				buf = append(buf, '\n')
			}
		}
	}
	return buf
}

func (p *Printer) formatted(buf []byte, m *client.Message) []byte {
	f := p.Format
	n := len(f)
	var now time.Time
	clock := func() time.Time {
		if now.IsZero() {
			now = p.Now()
		}
		return now
	}
	for i := 0; i < n; i++ {
		switch f[i] {
		case '%':
			align, pad, width, prec := byte(0), byte(' '), 0, -1
			if i < n-1 {
				i++
				if f[i] == '-' {
					align = '-'
					if i < n-1 {
						i++
					}
				}
				if f[i] == '0' {
					pad = '0'
					if i < n-1 {
						i++
					}
				}
				for i < n-1 && f[i] >= '0' && f[i] <= '9' {
					width = min(fieldDigit(width, f[i]), maxField)
					i++
				}
				if f[i] == '.' && i < n-1 {
					i++
					prec = 0
					for i < n-1 && f[i] >= '0' && f[i] <= '9' {
						prec = min(fieldDigit(prec, f[i]), maxField)
						i++
					}
				}
				buf = p.percent(buf, m, f[i], align, pad, width, prec, clock)
			}
		case '@':
			if i < n-1 {
				i++
				if f[i] == '@' {
					buf = append(buf, '@')
				} else if f[i] == 'N' {
					buf = fmt.Appendf(buf, "%09d", clock().Nanosecond())
				} else {
					buf = strftime(buf, f[i], clock())
				}
			}
		case '\\':
			if i < n-1 {
				i++
				if c, ok := escapes[f[i]]; ok {
					buf = append(buf, c)
				}
			}
		default:
			buf = append(buf, f[i])
		}
	}
	if p.EOL {
		buf = append(buf, '\n')
	}
	return buf
}

var escapes = map[byte]byte{'\\': '\\', '0': 0, 'a': '\a', 'e': 0x1b, 'n': '\n', 'r': '\r', 't': '\t', 'v': '\v'}

func (p *Printer) percent(buf []byte, m *client.Message, c, align, pad byte, width, prec int, clock func() time.Time) []byte {
	props := &m.Props
	switch c {
	case '%':
		buf = append(buf, '%')
	case 'A':
		buf = intOrBlank(buf, props.Present(packet.PropTopicAlias), int64(props.TopicAlias), align, pad, width)
	case 'C':
		if props.Present(packet.PropContentType) {
			buf = fmtStr(buf, props.ContentType, align, width, prec)
		} else {
			buf = blank(buf, ' ', width)
		}
	case 'D':
		if props.Present(packet.PropCorrelationData) {
			buf = append(buf, props.CorrelationData...)
		}
	case 'E':
		buf = intOrBlank(buf, props.Present(packet.PropMessageExpiry), int64(int32(props.MessageExpiry)), align, pad, width)
	case 'F':
		buf = intOrBlank(buf, props.Present(packet.PropPayloadFormat), int64(props.PayloadFormat), align, pad, width)
	case 'I':
		buf = fmtStr(buf, []byte(clock().Format("2006-01-02T15:04:05-0700")), align, width, prec)
	case 'j', 'J':
		var err error
		buf, err = p.json(buf, m, clock(), c == 'j')
		if err != nil {
			fmt.Fprintf(p.Errors, "Error: Message payload is not valid JSON on topic %s.\n", m.Topic)
		}
	case 'l':
		buf = fmtInt(buf, int64(len(m.Payload)), align, pad, width)
	case 'm':
		buf = fmtInt(buf, int64(m.PacketID), align, pad, width)
	case 'P':
		for i, kv := range props.UserPairs() {
			if i > 0 {
				buf = append(buf, ' ')
			}
			buf = append(buf, kv[0]...)
			buf = append(buf, ':')
			buf = append(buf, kv[1]...)
		}
	case 'p':
		buf = payload(buf, m.Payload, 0, align, pad, width)
	case 'q':
		buf = append(buf, '0'+m.QoS)
	case 'R':
		if props.Present(packet.PropResponseTopic) {
			buf = fmtStr(buf, props.ResponseTopic, align, width, prec)
		}
	case 'r':
		if m.Retain {
			buf = append(buf, '1')
		} else {
			buf = append(buf, '0')
		}
	case 'S':
		has := props.Present(packet.PropSubscriptionID) && len(props.SubscriptionIDs) > 0
		var id int64
		if has {
			id = int64(props.SubscriptionIDs[0])
		}
		buf = intOrBlank(buf, has, id, align, pad, width)
	case 't':
		buf = fmtStr(buf, []byte(m.Topic), align, width, prec)
	case 'U':
		t := clock()
		buf = fmt.Appendf(buf, "%d.%09d", t.Unix(), t.Nanosecond())
	case 'x':
		buf = payload(buf, m.Payload, 1, align, pad, width)
	case 'X':
		buf = payload(buf, m.Payload, 2, align, pad, width)
	}
	return buf
}

func blank(buf []byte, pad byte, width int) []byte {
	for range width {
		buf = append(buf, pad)
	}
	return buf
}

func intOrBlank(buf []byte, ok bool, v int64, align, pad byte, width int) []byte {
	if !ok {
		return blank(buf, pad, width)
	}
	return fmtInt(buf, v, align, pad, width)
}

// fmtInt is printf's %d, %-Nd, %0Nd and %Nd.
func fmtInt(buf []byte, v int64, align, pad byte, width int) []byte {
	switch {
	case width == 0:
		return strconv.AppendInt(buf, v, 10)
	case align == '-':
		return fmt.Appendf(buf, "%-*d", width, v)
	case pad == '0':
		return fmt.Appendf(buf, "%0*d", width, v)
	}
	return fmt.Appendf(buf, "%*d", width, v)
}

// fmtStr is printf's %s with width and precision counted in bytes, as C
// counts them (Go's fmt counts runes).
func fmtStr(buf, s []byte, align byte, width, prec int) []byte {
	if prec >= 0 && len(s) > prec {
		s = s[:prec]
	}
	padn := width - len(s)
	if align != '-' {
		buf = blank(buf, ' ', padn)
	}
	buf = append(buf, s...)
	if align == '-' {
		buf = blank(buf, ' ', padn)
	}
	return buf
}

// payload writes the payload raw (hex 0), as lower- (1) or upper-case hex
// (2), padded to width. It keeps mosquitto's quirks: with a width, a hex
// payload is cut to width/2 bytes, and "%-p" without a width is followed by
// as many spaces as the payload is long.
func payload(buf, p []byte, hex int, align, pad byte, width int) []byte {
	n := len(p)
	var padn int
	if width > 0 {
		if n > width {
			n = width
		}
		if hex > 0 {
			n /= 2
			padn = width - n*2
		} else {
			padn = width - n
		}
	} else {
		padn = width - n
	}
	if align != '-' {
		buf = blank(buf, pad, padn)
	}
	switch hex {
	case 0:
		buf = append(buf, p[:n]...)
	case 1:
		for _, b := range p[:n] {
			buf = append(buf, "0123456789abcdef"[b>>4], "0123456789abcdef"[b&15])
		}
	default:
		for _, b := range p[:n] {
			buf = append(buf, "0123456789ABCDEF"[b>>4], "0123456789ABCDEF"[b&15])
		}
	}
	if align == '-' {
		if padn < 0 {
			padn = -padn
		}
		buf = blank(buf, ' ', padn)
	}
	return buf
}

// json writes the %j (escaped payload) or %J (payload is JSON) object, in
// the shape and key order mosquitto_sub prints with cJSON.
func (p *Printer) json(buf []byte, m *client.Message, t time.Time, escaped bool) ([]byte, error) {
	var payloadJSON []byte
	if !escaped && len(m.Payload) > 0 {
		if !json.Valid(m.Payload) {
			return buf, fmt.Errorf("payload is not JSON")
		}
		var b bytes.Buffer
		json.Compact(&b, m.Payload)
		payloadJSON = b.Bytes()
	}
	var o []byte
	ts := t.Format("2006-01-02T15:04:05.000000Z-0700")
	o = append(o, `{"tst":`...)
	o = cString(o, []byte(ts))
	o = append(o, `,"topic":`...)
	o = cString(o, []byte(m.Topic))
	o = fmt.Appendf(o, `,"qos":%d,"retain":%d,"payloadlen":%d`, m.QoS, b2i(m.Retain), len(m.Payload))
	if m.QoS > 0 {
		o = fmt.Appendf(o, `,"mid":%d`, m.PacketID)
	}
	if pr := &m.Props; pr.Has != 0 || len(pr.User) > 0 {
		o = append(o, `,"properties":{`...)
		first := true
		key := func(k string) {
			if !first {
				o = append(o, ',')
			}
			first = false
			o = cString(o, []byte(k))
			o = append(o, ':')
		}
		// The order mosquitto's broker sends them in.
		if pr.Present(packet.PropSubscriptionID) {
			for _, id := range pr.SubscriptionIDs {
				key("subscription-identifier")
				o = strconv.AppendUint(o, uint64(id), 10)
			}
		}
		if pr.Present(packet.PropTopicAlias) {
			key("topic-alias")
			o = strconv.AppendUint(o, uint64(pr.TopicAlias), 10)
		}
		if len(pr.User) > 0 {
			key("user-properties")
			o = append(o, '{')
			for i, kv := range pr.UserPairs() {
				if i > 0 {
					o = append(o, ',')
				}
				o = cString(o, []byte(kv[0]))
				o = append(o, ':')
				o = cString(o, []byte(kv[1]))
			}
			o = append(o, '}')
		}
		if pr.Present(packet.PropContentType) {
			key("content-type")
			o = cString(o, pr.ContentType)
		}
		if pr.Present(packet.PropResponseTopic) {
			key("response-topic")
			o = cString(o, pr.ResponseTopic)
		}
		if pr.Present(packet.PropCorrelationData) {
			key("correlation-data")
			o = cString(o, pr.CorrelationData)
		}
		if pr.Present(packet.PropPayloadFormat) {
			key("payload-format-indicator")
			o = strconv.AppendUint(o, uint64(pr.PayloadFormat), 10)
		}
		if pr.Present(packet.PropMessageExpiry) {
			key("message-expiry-interval")
			o = strconv.AppendUint(o, uint64(pr.MessageExpiry), 10)
		}
		o = append(o, '}')
	}
	o = append(o, `,"payload":`...)
	switch {
	case len(m.Payload) == 0:
		o = append(o, "null"...)
	case escaped:
		o = cString(o, m.Payload)
	default:
		o = append(o, payloadJSON...)
	}
	o = append(o, '}')
	if p.Pretty {
		return prettyJSON(buf, o), nil
	}
	return append(buf, o...), nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// cString writes s as cJSON does: it stops at a NUL byte (the payload is a
// C string to it), escapes quotes, backslashes and control characters, and
// passes every other byte through.
func cString(buf, s []byte) []byte {
	if i := bytes.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	buf = append(buf, '"')
	for _, c := range s {
		switch c {
		case '"':
			buf = append(buf, '\\', '"')
		case '\\':
			buf = append(buf, '\\', '\\')
		case '\b':
			buf = append(buf, '\\', 'b')
		case '\f':
			buf = append(buf, '\\', 'f')
		case '\n':
			buf = append(buf, '\\', 'n')
		case '\r':
			buf = append(buf, '\\', 'r')
		case '\t':
			buf = append(buf, '\\', 't')
		default:
			if c < 0x20 {
				buf = fmt.Appendf(buf, `\u%04x`, c)
			} else {
				buf = append(buf, c)
			}
		}
	}
	return append(buf, '"')
}

// prettyJSON re-indents compact JSON as cJSON_Print does: one member per
// line indented with tabs, a tab after each colon, arrays on one line.
func prettyJSON(buf, in []byte) []byte {
	depth := 0
	var stack []byte
	inStr := false
	for i := 0; i < len(in); i++ {
		c := in[i]
		if inStr {
			buf = append(buf, c)
			if c == '\\' && i+1 < len(in) {
				i++
				buf = append(buf, in[i])
			} else if c == '"' {
				inStr = false
			}
			continue
		}
		switch c {
		case '"':
			inStr = true
			buf = append(buf, c)
		case '{':
			stack = append(stack, '{')
			if i+1 < len(in) && in[i+1] == '}' {
				buf = append(buf, "{\n"...)
				buf = tabs(buf, depth)
				buf = append(buf, '}')
				stack = stack[:len(stack)-1]
				i++
				continue
			}
			depth++
			buf = append(buf, "{\n"...)
			buf = tabs(buf, depth)
		case '}':
			depth--
			stack = stack[:len(stack)-1]
			buf = append(buf, '\n')
			buf = tabs(buf, depth)
			buf = append(buf, '}')
		case '[':
			stack = append(stack, '[')
			buf = append(buf, c)
		case ']':
			stack = stack[:len(stack)-1]
			buf = append(buf, c)
		case ':':
			buf = append(buf, ':', '\t')
		case ',':
			if len(stack) > 0 && stack[len(stack)-1] == '[' {
				buf = append(buf, ", "...)
			} else {
				buf = append(buf, ",\n"...)
				buf = tabs(buf, depth)
			}
		default:
			buf = append(buf, c)
		}
	}
	return buf
}

func tabs(buf []byte, n int) []byte {
	for range n {
		buf = append(buf, '\t')
	}
	return buf
}

// strftime appends one strftime conversion of t.
func strftime(buf []byte, c byte, t time.Time) []byte {
	var layout string
	switch c {
	case 'a':
		layout = "Mon"
	case 'A':
		layout = "Monday"
	case 'b', 'h':
		layout = "Jan"
	case 'B':
		layout = "January"
	case 'c':
		layout = "Mon Jan _2 15:04:05 2006"
	case 'C':
		return fmt.Appendf(buf, "%02d", t.Year()/100)
	case 'd':
		layout = "02"
	case 'D', 'x':
		layout = "01/02/06"
	case 'e':
		layout = "_2"
	case 'F':
		layout = "2006-01-02"
	case 'H':
		layout = "15"
	case 'I':
		layout = "03"
	case 'j':
		return fmt.Appendf(buf, "%03d", t.YearDay())
	case 'k':
		return fmt.Appendf(buf, "%2d", t.Hour())
	case 'l':
		h := t.Hour() % 12
		if h == 0 {
			h = 12
		}
		return fmt.Appendf(buf, "%2d", h)
	case 'm':
		layout = "01"
	case 'M':
		layout = "04"
	case 'n':
		return append(buf, '\n')
	case 'p':
		layout = "PM"
	case 'r':
		layout = "03:04:05 PM"
	case 'R':
		layout = "15:04"
	case 's':
		return strconv.AppendInt(buf, t.Unix(), 10)
	case 'S':
		layout = "05"
	case 't':
		return append(buf, '\t')
	case 'T', 'X':
		layout = "15:04:05"
	case 'u':
		wd := int(t.Weekday())
		if wd == 0 {
			wd = 7
		}
		return strconv.AppendInt(buf, int64(wd), 10)
	case 'w':
		return strconv.AppendInt(buf, int64(t.Weekday()), 10)
	case 'V':
		_, w := t.ISOWeek()
		return fmt.Appendf(buf, "%02d", w)
	case 'G':
		y, _ := t.ISOWeek()
		return strconv.AppendInt(buf, int64(y), 10)
	case 'y':
		layout = "06"
	case 'Y':
		layout = "2006"
	case 'z':
		layout = "-0700"
	case 'Z':
		layout = "MST"
	case '%':
		return append(buf, '%')
	default:
		return append(buf, '%', c)
	}
	return t.AppendFormat(buf, layout)
}
