// Package clip bounds text kept from outside: error messages of vendors
// and of failed deliveries.
package clip

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Line returns s as valid UTF-8 on one line, cut to at most n bytes.
func Line(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
