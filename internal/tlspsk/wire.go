package tlspsk

// reader reads TLS presentation-language fields from a byte slice. Every
// read checks the remaining length first; on a short read it records the
// failure, returns zero values and keeps failing, so a parser checks ok()
// once at the end. Slices it returns alias the input: nothing is copied
// or allocated.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) ok() bool { return !r.bad }

// done reports whether the input was consumed exactly and without error.
func (r *reader) done() bool { return !r.bad && len(r.b) == 0 }

func (r *reader) bytes(n int) []byte {
	if r.bad || n < 0 || n > len(r.b) {
		r.bad = true
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u8() uint8 {
	v := r.bytes(1)
	if v == nil {
		return 0
	}
	return v[0]
}

func (r *reader) u16() uint16 {
	v := r.bytes(2)
	if v == nil {
		return 0
	}
	return uint16(v[0])<<8 | uint16(v[1])
}

func (r *reader) u24() int {
	v := r.bytes(3)
	if v == nil {
		return 0
	}
	return int(v[0])<<16 | int(v[1])<<8 | int(v[2])
}

func (r *reader) u32() uint32 {
	v := r.bytes(4)
	if v == nil {
		return 0
	}
	return uint32(v[0])<<24 | uint32(v[1])<<16 | uint32(v[2])<<8 | uint32(v[3])
}

// vec8 and vec16 read a vector with a 1- or 2-byte length.
func (r *reader) vec8() []byte  { return r.bytes(int(r.u8())) }
func (r *reader) vec16() []byte { return r.bytes(int(r.u16())) }

// builder appends TLS fields to a byte slice.
type builder struct{ b []byte }

func (b *builder) u8(v uint8)     { b.b = append(b.b, v) }
func (b *builder) u16(v uint16)   { b.b = append(b.b, byte(v>>8), byte(v)) }
func (b *builder) u24(v int)      { b.b = append(b.b, byte(v>>16), byte(v>>8), byte(v)) }
func (b *builder) u32(v uint32)   { b.b = append(b.b, byte(v>>24), byte(v>>16), byte(v>>8), byte(v)) }
func (b *builder) raw(v []byte)   { b.b = append(b.b, v...) }
func (b *builder) vec8(v []byte)  { b.u8(uint8(len(v))); b.raw(v) }
func (b *builder) vec16(v []byte) { b.u16(uint16(len(v))); b.raw(v) }
func (b *builder) vec24(v []byte) { b.u24(len(v)); b.raw(v) }
func (b *builder) bytes() []byte  { return b.b }
func (b *builder) len() int       { return len(b.b) }
func (b *builder) patch16(at int) { n := len(b.b) - at - 2; b.b[at], b.b[at+1] = byte(n>>8), byte(n) }
func (b *builder) patch24(at int) {
	n := len(b.b) - at - 3
	b.b[at], b.b[at+1], b.b[at+2] = byte(n>>16), byte(n>>8), byte(n)
}
func (b *builder) open16() int   { at := len(b.b); b.u16(0); return at }
func (b *builder) open24() int   { at := len(b.b); b.u24(0); return at }
func (b *builder) open8() int    { at := len(b.b); b.u8(0); return at }
func (b *builder) patch8(at int) { b.b[at] = byte(len(b.b) - at - 1) }
