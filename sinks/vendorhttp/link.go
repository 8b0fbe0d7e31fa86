package vendorhttp

import (
	"net/http"
	"slices"
	"strings"
)

// NextLink returns the target of the rel="next" link of a response's Link
// headers (RFC 8288), as written: relative or absolute; "" when there is
// none. A target may hold commas and semicolons (?fields=id,name), and a
// quoted parameter commas too: links are split where a target ends, not
// at every comma.
func NextLink(h http.Header) string {
	for _, v := range h.Values("Link") {
		for v != "" {
			var target, params string
			target, params, v = nextLinkValue(v)
			if target == "" {
				break // not a link-value: nothing after it can be read
			}
			for _, p := range splitParams(params) {
				k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
				if strings.EqualFold(strings.TrimSpace(k), "rel") && slices.Contains(strings.Fields(strings.Trim(strings.TrimSpace(val), `"`)), "next") {
					return target
				}
			}
		}
	}
	return ""
}

// nextLinkValue reads the first link-value of v, `<target>; params`,
// and returns its target, its params and what follows its comma.
func nextLinkValue(v string) (target, params, rest string) {
	v = strings.TrimLeft(v, " \t,")
	if !strings.HasPrefix(v, "<") {
		return "", "", ""
	}
	end := strings.IndexByte(v, '>')
	if end < 0 {
		return "", "", ""
	}
	target, v = v[1:end], v[end+1:]
	if i := indexUnquoted(v, ','); i >= 0 {
		return target, v[:i], v[i+1:]
	}
	return target, v, ""
}

// splitParams splits a link-value's params at the semicolons outside
// quotes.
func splitParams(s string) []string {
	var out []string
	for {
		i := indexUnquoted(s, ';')
		if i < 0 {
			return append(out, s)
		}
		out = append(out, s[:i])
		s = s[i+1:]
	}
}

// indexUnquoted returns the index of the first c of s outside a quoted
// string (where a backslash escapes the next byte), or -1.
func indexUnquoted(s string, c byte) int {
	quoted := false
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '"':
			quoted = !quoted
		case s[i] == '\\' && quoted:
			i++
		case s[i] == c && !quoted:
			return i
		}
	}
	return -1
}
