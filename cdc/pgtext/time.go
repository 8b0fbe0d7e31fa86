package pgtext

import (
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
)

// appendTimestamp turns ISO DateStyle output ("2024-02-29 13:45:06.5", with
// an offset such as "+00" or "+05:30" when tz) into an RFC 3339 string with
// six fraction digits, in UTC with a "Z" when tz. Values RFC 3339 cannot
// hold (infinity, BC, years past 9999) are passed through as strings.
func appendTimestamp(dst, s []byte, tz bool) []byte {
	var f [6]int // year, month, day, hour, minute, second
	ok := len(s) >= 19 && s[4] == '-' && s[7] == '-' && s[10] == ' ' && s[13] == ':' && s[16] == ':'
	for i, pos := range [6]int{0, 5, 8, 11, 14, 17} {
		width := 2
		if i == 0 {
			width = 4
		}
		var d bool
		f[i], d = digits(s, pos, width)
		ok = ok && d
	}
	if !ok || f[1] < 1 || f[1] > 12 || f[2] < 1 || f[2] > 31 || f[3] > 23 || f[4] > 59 || f[5] > 59 {
		return cdc.AppendJSONString(dst, s)
	}
	i, micros := 19, 0
	if i < len(s) && s[i] == '.' {
		j := skipDigits(s, i+1)
		if j == i+1 || j > i+7 {
			return cdc.AppendJSONString(dst, s)
		}
		for k := i + 1; k < i+7; k++ {
			micros *= 10
			if k < j {
				micros += int(s[k] - '0')
			}
		}
		i = j
	}
	offset := 0
	if tz {
		var good bool
		offset, good = parseOffset(s[i:])
		if !good {
			return cdc.AppendJSONString(dst, s)
		}
	} else if i != len(s) {
		return cdc.AppendJSONString(dst, s)
	}
	if offset == 0 {
		// The fields are in UTC as read, each checked digit by digit:
		// copy them rather than format them again.
		dst = append(dst, '"')
		dst = append(dst, s[:10]...)
		dst = append(dst, 'T')
		dst = append(dst, s[11:19]...)
		dst = append(dst, '.')
		frac := 0
		if i > 19 {
			frac = i - 20
			dst = append(dst, s[20:i]...)
		}
		dst = append(dst, "000000"[frac:]...)
		if tz {
			dst = append(dst, 'Z')
		}
		return append(dst, '"')
	}
	t := time.Date(f[0], time.Month(f[1]), f[2], f[3], f[4], f[5], 0, time.UTC).Add(-time.Duration(offset) * time.Second)
	y, mo, d := t.Date()
	if y < 1 || y > 9999 {
		return cdc.AppendJSONString(dst, s)
	}
	f = [6]int{y, int(mo), d, t.Hour(), t.Minute(), t.Second()}
	dst = append(dst, '"')
	dst = appendDigits(dst, f[0], 4)
	dst = append(dst, '-')
	dst = appendDigits(dst, f[1], 2)
	dst = append(dst, '-')
	dst = appendDigits(dst, f[2], 2)
	dst = append(dst, 'T')
	dst = appendDigits(dst, f[3], 2)
	dst = append(dst, ':')
	dst = appendDigits(dst, f[4], 2)
	dst = append(dst, ':')
	dst = appendDigits(dst, f[5], 2)
	dst = append(dst, '.')
	dst = appendDigits(dst, micros, 6)
	if tz {
		dst = append(dst, 'Z')
	}
	return append(dst, '"')
}

// parseOffset parses a whole UTC offset "+HH", "+HH:MM" or "+HH:MM:SS" into
// seconds east of UTC.
func parseOffset(s []byte) (int, bool) {
	if len(s) != 3 && len(s) != 6 && len(s) != 9 || (s[0] != '+' && s[0] != '-') {
		return 0, false
	}
	secs := 0
	for i, mul := 1, 3600; i < len(s); i, mul = i+3, mul/60 {
		if i > 1 && s[i-1] != ':' {
			return 0, false
		}
		v, ok := digits(s, i, 2)
		if !ok || v > 59 {
			return 0, false
		}
		secs += v * mul
	}
	if s[0] == '-' {
		secs = -secs
	}
	return secs, true
}

// digits parses the n decimal digits at s[i:].
func digits(s []byte, i, n int) (int, bool) {
	if i+n > len(s) {
		return 0, false
	}
	v := 0
	for _, c := range s[i : i+n] {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, true
}

// appendDigits appends v zero-padded to width digits.
func appendDigits(dst []byte, v, width int) []byte {
	var b [8]byte
	for i := width - 1; i >= 0; i-- {
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return append(dst, b[:width]...)
}
