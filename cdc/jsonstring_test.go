package cdc

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
	"unicode/utf8"
)

// appendJSONStringByByte is AppendJSONString as it was before it skipped
// eight plain bytes at a time: the reference it must match.
func appendJSONStringByByte(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

func plainByte(c byte) bool { return c >= 0x20 && c < utf8.RuneSelf && c != '"' && c != '\\' }

// plain8 is true exactly when each of the eight bytes is plain: every byte
// value in every position, among plain bytes, and random words.
func TestPlain8(t *testing.T) {
	check := func(b [8]byte) {
		want := true
		for _, c := range b {
			want = want && plainByte(c)
		}
		if got := plain8(binary.LittleEndian.Uint64(b[:])); got != want {
			t.Fatalf("plain8(%q) = %v", b[:], got)
		}
	}
	for pos := range 8 {
		for v := range 256 {
			for _, fill := range []byte{'a', ' ', '~', '!', '#', '[', ']', 0x7f} {
				var b [8]byte
				for i := range b {
					b[i] = fill
				}
				b[pos] = byte(v)
				check(b)
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 1_000_000 {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], r.Uint64())
		for i := range b {
			if r.IntN(2) == 0 { // mostly plain, the case that matters
				b[i] = byte(0x20 + r.IntN(0x60))
			}
		}
		check(b)
	}
}

func FuzzAppendJSONStringMatchesByByte(f *testing.F) {
	for _, s := range []string{"", "plain text longer than eight", "user123@example.com\"x", "0123456\x7f\x80abcdefgh", "abcdefg\u2028hijklmnop\xff", "\\\\\\\\\\\\\\\\\\"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want := appendJSONStringByByte([]byte("x"), s)
		if got := AppendJSONString([]byte("x"), s); string(got) != string(want) {
			t.Fatalf("%q: got %s, want %s", s, got, want)
		}
		if got := AppendJSONString([]byte("x"), []byte(s)); string(got) != string(want) {
			t.Fatalf("%q as bytes: got %s, want %s", s, got, want)
		}
	})
}

func BenchmarkAppendJSONString(b *testing.B) {
	var buf []byte
	for _, s := range []string{"city", "Item number 123456", "user123456@example.com", "a longer text value of some sixty bytes, as a description has"} {
		b.Run(s[:4], func(b *testing.B) {
			for b.Loop() {
				buf = AppendJSONString(buf[:0], s)
			}
		})
		b.Run(s[:4]+"-byByte", func(b *testing.B) {
			for b.Loop() {
				buf = appendJSONStringByByte(buf[:0], s)
			}
		})
	}
}
