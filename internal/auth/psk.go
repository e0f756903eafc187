package auth

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
)

// PSKFile is a loaded Mosquitto psk_file: "identity:hexkey" lines. With
// use_identity_as_username the PSK identity becomes Client.Username and
// meets the same ACL as password users. Immutable, safe for concurrent use.
type PSKFile struct {
	path string
	keys map[string][]byte
}

// LoadPSKFile reads and parses a psk_file.
func LoadPSKFile(path string) (*PSKFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("psk_file: %w", err)
	}
	return ParsePSKFile(path, data)
}

// ParsePSKFile parses the contents of a psk_file; name is used in errors,
// which never include a key. Blank lines and '#' comments are ignored.
//
// The key is decoded the way Mosquitto and mosquitto_pub decode it (via an
// OpenSSL BIGNUM), so leading zero bytes are dropped: "00ab" is the
// one-byte key 0xab. Doing the same keeps mamori interoperable with
// existing Mosquitto clients and files.
func ParsePSKFile(name string, data []byte) (*PSKFile, error) {
	p := &PSKFile{path: name, keys: make(map[string][]byte)}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 2*maxFieldLen+16)
	lineNo := 0
	for sc.Scan() {
		lineNo++
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		perr := func(format string, args ...any) error {
			return &ParseError{File: name, Line: lineNo, Msg: fmt.Sprintf(format, args...)}
		}
		id, key, ok := strings.Cut(line, ":")
		id, key = strings.TrimSpace(id), strings.TrimSpace(key)
		switch {
		case !ok:
			return nil, perr("expected identity:hexkey, found no ':'")
		case id == "":
			return nil, perr("empty identity")
		case key == "":
			return nil, perr("identity %q: empty key", id)
		}
		if len(key)%2 == 1 {
			key = "0" + key
		}
		k, err := hex.DecodeString(key)
		if err != nil {
			return nil, perr("identity %q: key is not hexadecimal", id)
		}
		// Leading zero bytes are part of the key: Mosquitto 2.0 keeps them
		// (and so do OpenSSL's and GnuTLS's clients).
		if len(bytes.TrimLeft(k, "\x00")) == 0 {
			return nil, perr("identity %q: key is zero", id)
		}
		if _, dup := p.keys[id]; dup {
			return nil, perr("identity %q is defined twice", id)
		}
		p.keys[id] = k
	}
	if err := sc.Err(); err != nil {
		return nil, &ParseError{File: name, Line: lineNo + 1, Msg: err.Error()}
	}
	return p, nil
}

// Key returns the key for identity.
func (p *PSKFile) Key(identity string) ([]byte, bool) {
	k, ok := p.keys[identity]
	return k, ok
}

// Has reports whether identity is in the file (used on reload to
// disconnect removed identities).
func (p *PSKFile) Has(identity string) bool {
	_, ok := p.keys[identity]
	return ok
}

// Zero overwrites every key, for when the file is replaced: keys do not
// stay in memory after a reload. The PSKFile must not be used afterwards
// for keys (Has still answers).
func (p *PSKFile) Zero() {
	for _, k := range p.keys {
		clear(k)
	}
}
