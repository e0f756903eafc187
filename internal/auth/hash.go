package auth

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// HashType is a password hash algorithm of Mosquitto's password file.
type HashType int

// The hash types, numbered as Mosquitto numbers them in the file ($6$, $7$).
const (
	// SHA512 is "$6$salt$hash": one SHA-512 over password‖salt. Fast, so
	// weak against offline guessing; read for compatibility with files
	// made by Mosquitto 1.6 and earlier, written only on request (-H sha512).
	SHA512 HashType = 6
	// SHA512PBKDF2 is "$7$iterations$salt$hash": PBKDF2-HMAC-SHA512 with a
	// 64-byte output. Mosquitto 2.0's default and mamori's.
	SHA512PBKDF2 HashType = 7
	// Argon2id is the PHC string "$argon2id$v=19$m=…,t=…,p=…$salt$hash"
	// that Mosquitto 2.1 writes when built with libargon2.
	Argon2id HashType = 8
)

// DefaultIterations is the PBKDF2 iteration count "mamori passwd" writes
// when -I is not given. Mosquitto writes 101, which costs about 0.1 ms per
// guess; 20,000 costs about 12-14 ms per verification on one core of the
// 2-core machine mamori is developed on (BenchmarkVerify measures it),
// which an attacker pays per guess while the broker pays it once per
// distinct client credential thanks to Verifier's cache.
const DefaultIterations = 20000

// MaxIterations bounds the iteration count accepted from a file. A typo
// that adds zeros would otherwise make every CONNECT cost seconds of CPU.
const MaxIterations = 10_000_000

// Argon2id parameters written by NewHash: those of Mosquitto 2.1
// (t=1, m=46 MiB, p=1, 64-byte salt and hash), so both read each other's
// files. Limits on parsed parameters bound the memory one check can take.
const (
	argon2Time       = 1
	argon2MemoryKiB  = 47104
	argon2Threads    = 1
	argon2MaxMemory  = 1 << 20 // KiB, 1 GiB
	argon2MaxTime    = 64
	mosquittoHashLen = 64
	saltLenV2        = 12 // Mosquitto 2.0 salts, readable by 2.0 and 2.1
	saltLenV21       = 64 // Mosquitto 2.1 salts
)

// String returns the name used by mosquitto_passwd -H.
func (t HashType) String() string {
	switch t {
	case SHA512:
		return "sha512"
	case SHA512PBKDF2:
		return "sha512-pbkdf2"
	case Argon2id:
		return "argon2id"
	}
	return "HashType(" + strconv.Itoa(int(t)) + ")"
}

// ParseHashType maps a mosquitto_passwd -H name to its HashType.
func ParseHashType(name string) (HashType, error) {
	switch name {
	case "sha512":
		return SHA512, nil
	case "sha512-pbkdf2":
		return SHA512PBKDF2, nil
	case "argon2id":
		return Argon2id, nil
	}
	return 0, fmt.Errorf("unknown hash type %q", name)
}

// hash is one decoded password hash.
type hash struct {
	typ        HashType
	iterations int    // SHA512PBKDF2
	salt, sum  []byte // all types
	memory     uint32 // Argon2id, KiB
	time       uint32 // Argon2id
	threads    uint8  // Argon2id
}

// NewHash hashes password with a fresh random salt and returns the encoded
// form that follows "username:" in a password file. SHA512 and SHA512PBKDF2
// use a 12-byte salt, which Mosquitto 2.0 and 2.1 both read; iterations
// applies to SHA512PBKDF2 only (0 means DefaultIterations).
func NewHash(t HashType, password string, iterations int) (string, error) {
	if iterations == 0 {
		iterations = DefaultIterations
	}
	h := &hash{typ: t, iterations: iterations}
	switch t {
	case SHA512, SHA512PBKDF2:
		h.salt = make([]byte, saltLenV2)
	case Argon2id:
		h.salt = make([]byte, saltLenV21)
		h.time, h.memory, h.threads = argon2Time, argon2MemoryKiB, argon2Threads
	default:
		return "", fmt.Errorf("unknown hash type %v", t)
	}
	if t == SHA512PBKDF2 && (iterations < 1 || iterations > MaxIterations) {
		return "", fmt.Errorf("iterations %d out of range 1..%d", iterations, MaxIterations)
	}
	if _, err := rand.Read(h.salt); err != nil {
		return "", err
	}
	h.sum = h.compute(password, mosquittoHashLen)
	return h.encode(), nil
}

// ValidateHash reports why encoded (the text after "username:") is not a
// hash this package can verify, or nil. "mamori passwd -U" uses it to leave
// already-hashed lines alone. The error never quotes encoded.
func ValidateHash(encoded string) error {
	_, err := parseHash(encoded)
	return err
}

func (h *hash) encode() string {
	b64 := base64.StdEncoding.EncodeToString
	switch h.typ {
	case SHA512:
		return "$6$" + b64(h.salt) + "$" + b64(h.sum)
	case SHA512PBKDF2:
		return "$7$" + strconv.Itoa(h.iterations) + "$" + b64(h.salt) + "$" + b64(h.sum)
	default:
		raw := base64.RawStdEncoding.EncodeToString
		return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
			argon2.Version, h.memory, h.time, h.threads, raw(h.salt), raw(h.sum))
	}
}

// compute derives n bytes from password with h's parameters.
func (h *hash) compute(password string, n int) []byte {
	switch h.typ {
	case SHA512:
		d := sha512.New()
		d.Write([]byte(password))
		d.Write(h.salt)
		return d.Sum(nil)
	case SHA512PBKDF2:
		// Only fails for a key length the FIPS module refuses; 64 is fine.
		k, err := pbkdf2.Key(sha512.New, password, h.salt, h.iterations, n)
		if err != nil {
			return nil
		}
		return k
	default:
		return argon2.IDKey([]byte(password), h.salt, h.time, h.memory, h.threads, uint32(n))
	}
}

// verify reports in constant time (for a given hash) whether password
// matches.
func (h *hash) verify(password string) bool {
	got := h.compute(password, len(h.sum))
	return len(got) == len(h.sum) && subtle.ConstantTimeCompare(got, h.sum) == 1
}

var errNotHash = errors.New("not a password hash (run \"mamori passwd -U\" to hash plain-text passwords)")

// parseHash decodes the password field of a password file. Its errors
// describe the defect without quoting the field.
func parseHash(s string) (*hash, error) {
	switch {
	case strings.HasPrefix(s, "$6$"):
		parts := strings.Split(s[3:], "$")
		if len(parts) != 2 {
			return nil, errors.New("$6$ hash must be $6$salt$hash")
		}
		h := &hash{typ: SHA512}
		var err error
		if h.salt, h.sum, err = decodeSaltSum(parts[0], parts[1]); err != nil {
			return nil, fmt.Errorf("$6$ hash: %w", err)
		}
		return h, nil
	case strings.HasPrefix(s, "$7$"):
		parts := strings.Split(s[3:], "$")
		if len(parts) != 3 {
			return nil, errors.New("$7$ hash must be $7$iterations$salt$hash")
		}
		it, err := parseDecimal(parts[0])
		if err != nil || it < 1 || it > MaxIterations {
			return nil, fmt.Errorf("$7$ hash: iteration count must be a number from 1 to %d", MaxIterations)
		}
		h := &hash{typ: SHA512PBKDF2, iterations: it}
		if h.salt, h.sum, err = decodeSaltSum(parts[1], parts[2]); err != nil {
			return nil, fmt.Errorf("$7$ hash: %w", err)
		}
		return h, nil
	case strings.HasPrefix(s, "$argon2id$"):
		return parseArgon2id(s)
	case strings.HasPrefix(s, "$"):
		return nil, errors.New("unknown hash type (want $6$, $7$ or $argon2id$)")
	}
	return nil, errNotHash
}

func decodeSaltSum(salt64, sum64 string) (salt, sum []byte, err error) {
	salt, err = base64.StdEncoding.DecodeString(salt64)
	if err != nil || (len(salt) != saltLenV2 && len(salt) != saltLenV21) {
		return nil, nil, fmt.Errorf("salt must be %d or %d bytes of base64", saltLenV2, saltLenV21)
	}
	sum, err = base64.StdEncoding.DecodeString(sum64)
	if err != nil || len(sum) != mosquittoHashLen {
		return nil, nil, fmt.Errorf("hash must be %d bytes of base64", mosquittoHashLen)
	}
	return salt, sum, nil
}

// parseDecimal accepts only ASCII digits: atoi-style leniency ("101abc")
// would hide a damaged line.
func parseDecimal(s string) (int, error) {
	if s == "" || len(s) > 10 {
		return 0, errors.New("bad number")
	}
	n := 0
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, errors.New("bad number")
		}
		n = n*10 + int(c-'0')
	}
	return n, nil
}

// parseArgon2id decodes the PHC string format libargon2 writes:
// $argon2id$v=19$m=M,t=T,p=P$salt$hash, base64 without padding.
func parseArgon2id(s string) (*hash, error) {
	parts := strings.Split(s, "$")
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, hash
	if len(parts) != 6 {
		return nil, errors.New("$argon2id$ hash must be $argon2id$v=19$m=M,t=T,p=P$salt$hash")
	}
	if parts[2] != "v=19" {
		return nil, errors.New("$argon2id$ hash: only version 19 (v=19) is supported")
	}
	h := &hash{typ: Argon2id}
	params := strings.Split(parts[3], ",")
	if len(params) != 3 {
		return nil, errors.New("$argon2id$ hash: parameters must be m=M,t=T,p=P")
	}
	var vals [3]int
	for i, key := range []string{"m=", "t=", "p="} {
		v, ok := strings.CutPrefix(params[i], key)
		n, err := parseDecimal(v)
		if !ok || err != nil {
			return nil, errors.New("$argon2id$ hash: parameters must be m=M,t=T,p=P")
		}
		vals[i] = n
	}
	switch {
	case vals[1] < 1 || vals[1] > argon2MaxTime:
		return nil, fmt.Errorf("$argon2id$ hash: t must be from 1 to %d", argon2MaxTime)
	case vals[2] < 1 || vals[2] > 255:
		return nil, errors.New("$argon2id$ hash: p must be from 1 to 255")
	case vals[0] < 8*vals[2] || vals[0] > argon2MaxMemory:
		return nil, fmt.Errorf("$argon2id$ hash: m must be from 8*p to %d KiB", argon2MaxMemory)
	}
	h.memory, h.time, h.threads = uint32(vals[0]), uint32(vals[1]), uint8(vals[2])
	var err error
	if h.salt, err = base64.RawStdEncoding.DecodeString(parts[4]); err != nil || len(h.salt) < 8 {
		return nil, errors.New("$argon2id$ hash: salt must be at least 8 bytes of unpadded base64")
	}
	if h.sum, err = base64.RawStdEncoding.DecodeString(parts[5]); err != nil || len(h.sum) < 4 || len(h.sum) > 1024 {
		return nil, errors.New("$argon2id$ hash: hash must be 4 to 1024 bytes of unpadded base64")
	}
	return h, nil
}
