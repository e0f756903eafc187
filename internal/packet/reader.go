package packet

import "io"

// Reader frames packets out of a byte stream. It keeps one buffer per
// connection that starts small, grows only as far as the packet being read
// needs (never past the size limit, which is checked from the fixed header
// before any growth), and can be released while the connection is idle, so
// that an idle connection holds little memory.
//
// The read loop calls Fill once and then Next until it reports no complete
// packet: every packet that one read returned is handled before the next
// system call.
type Reader struct {
	src     io.Reader
	buf     []byte
	r, w    int // unread data is buf[r:w]
	MaxSize int // largest packet accepted; 0 means MaxRemaining+5
	// PubrelDup accepts PUBREL with the DUP flag set (first byte 0x6A),
	// which MQTT 3.1 clients send when they resend a PUBREL; it is read as
	// a plain PUBREL.
	PubrelDup bool
	minSize   int
}

// Sizes of the read buffer: a connection starts with initialBuf bytes and a
// buffer that filled on a read doubles, up to maxReadBuf, so a busy publisher
// gets large reads (fewer system calls) while a quiet one stays small.
const (
	initialBuf = 512
	maxReadBuf = 64 << 10
)

// NewReader returns a Reader over src.
func NewReader(src io.Reader, maxSize int) *Reader {
	return &Reader{src: src, MaxSize: maxSize, minSize: initialBuf}
}

// Buffered is the number of unread bytes held.
func (r *Reader) Buffered() int { return r.w - r.r }

// Fill reads from the source once. It makes room first: unread bytes move to
// the front, and the buffer grows when the packet at its start is larger than
// the buffer (up to MaxSize) or when the previous read filled it.
func (r *Reader) Fill() error {
	need := 0
	if h, ok, err := ParseHeader(r.buf[r.r:r.w], r.limit()); err != nil {
		return err
	} else if ok {
		need = h.Size()
	}
	if r.r == r.w {
		r.r, r.w = 0, 0
	}
	if r.buf == nil {
		r.buf = make([]byte, r.minSize)
	}
	if need > len(r.buf) || (r.r == 0 && r.w == len(r.buf)) {
		size := min(len(r.buf)*2, maxReadBuf)
		switch {
		case need <= size:
		case need <= maxReadBuf:
			size = need
		case r.w-r.r >= len(r.buf)/2:
			// A packet larger than maxReadBuf gets its buffer by doubling
			// as its bytes arrive, not at once: a header claiming 256 MiB
			// costs nothing until the bytes come, so a client cannot make
			// the broker hold more than about twice what it sent.
			size = min(need, len(r.buf)*2)
		}
		if size > len(r.buf) {
			nb := make([]byte, size)
			r.w = copy(nb, r.buf[r.r:r.w])
			r.r = 0
			r.buf = nb
		}
	}
	if r.r > 0 && (len(r.buf)-r.w < len(r.buf)/4 || need > len(r.buf)-r.r) {
		r.w = copy(r.buf, r.buf[r.r:r.w])
		r.r = 0
	}
	n, err := r.src.Read(r.buf[r.w:])
	r.w += n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

func (r *Reader) limit() int {
	if r.MaxSize > 0 {
		return r.MaxSize
	}
	return MaxRemaining + 5
}

// Next returns the next complete packet in the buffer. body aliases the
// buffer and is valid until the next call to Fill or Release. ok is false
// when no complete packet is buffered.
func (r *Reader) Next() (h Header, body []byte, ok bool, err error) {
	if r.PubrelDup && r.r < r.w && r.buf[r.r] == 0x6A {
		r.buf[r.r] = 0x62
	}
	h, ok, err = ParseHeader(r.buf[r.r:r.w], r.limit())
	if err != nil || !ok || r.w-r.r < h.Size() {
		return h, nil, false, err
	}
	body = r.buf[r.r+h.Len : r.r+h.Size() : r.r+h.Size()]
	r.r += h.Size()
	return h, body, true, nil
}

// ReadPacket returns the next complete packet, reading from the source as
// often as it takes: for clients, which block on one connection. body is
// valid until the next call.
func (r *Reader) ReadPacket() (Header, []byte, error) {
	for {
		h, body, ok, err := r.Next()
		if err != nil || ok {
			return h, body, err
		}
		if err := r.Fill(); err != nil {
			return h, nil, err
		}
	}
}

// Release drops the buffer when it holds no unread data, so a connection
// that has gone quiet does not keep a large buffer; the next Fill allocates
// a small one again.
func (r *Reader) Release() {
	if r.r == r.w {
		r.buf = nil
		r.r, r.w = 0, 0
	}
}

// Cap is the current buffer capacity (for tests and metrics).
func (r *Reader) Cap() int { return len(r.buf) }
