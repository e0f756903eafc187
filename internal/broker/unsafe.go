package broker

import "unsafe"

// stringBytes views s as bytes without copying; the result must not be
// modified. The codec only reads it while encoding.
func stringBytes(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

// bytesString views b as a string without copying. The string is valid only
// while b is unchanged: the read loop uses it for topic matching, which does
// not keep the name.
func bytesString(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}
