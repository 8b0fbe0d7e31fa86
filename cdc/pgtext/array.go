package pgtext

import "github.com/cdcd-dev/cdcd/cdc"

// maxArrayDims is Postgres's MAXDIM; deeper nesting is malformed.
const maxArrayDims = 6

// appendArray appends a Postgres array literal ("{a,\"b c\",NULL}",
// "{{1,2},{3,4}}", "[0:1]={1,2}") as a JSON array, nested per dimension,
// each element encoded by kind and unquoted NULL as null. A malformed
// literal becomes a JSON string.
func (e *Encoder) appendArray(dst []byte, kind Kind, delim byte, s []byte) []byte {
	start := len(dst)
	body := s
	if len(body) > 0 && body[0] == '[' {
		eq := 0
		for eq < len(body) && body[eq] != '=' {
			eq++
		}
		if eq == len(body) {
			return cdc.AppendJSONString(dst, s)
		}
		body = body[eq+1:]
	}
	dst, rest, ok := e.appendArrayLevel(dst, kind, delim, body, 1)
	if !ok || len(rest) != 0 {
		return cdc.AppendJSONString(dst[:start], s)
	}
	return dst
}

// appendArrayLevel appends the "{...}" at the start of s and returns what
// follows it.
func (e *Encoder) appendArrayLevel(dst []byte, kind Kind, delim byte, s []byte, depth int) ([]byte, []byte, bool) {
	if len(s) == 0 || s[0] != '{' || depth > maxArrayDims {
		return dst, s, false
	}
	s = s[1:]
	dst = append(dst, '[')
	if len(s) > 0 && s[0] == '}' {
		return append(dst, ']'), s[1:], true
	}
	for first := true; ; first = false {
		if !first {
			dst = append(dst, ',')
		}
		if len(s) == 0 {
			return dst, s, false
		}
		var ok bool
		switch s[0] {
		case '{':
			dst, s, ok = e.appendArrayLevel(dst, kind, delim, s, depth+1)
		case '"':
			dst, s, ok = e.appendQuotedElement(dst, kind, s)
		default:
			dst, s, ok = e.appendBareElement(dst, kind, delim, s)
		}
		if !ok || len(s) == 0 {
			return dst, s, false
		}
		switch s[0] {
		case '}':
			return append(dst, ']'), s[1:], true
		case delim:
			s = s[1:]
		default:
			return dst, s, false
		}
	}
}

// appendQuotedElement appends the quoted element at the start of s, in
// which a backslash escapes the next byte.
func (e *Encoder) appendQuotedElement(dst []byte, kind Kind, s []byte) ([]byte, []byte, bool) {
	e.scratch = e.scratch[:0]
	for i := 1; i < len(s); i++ {
		switch c := s[i]; c {
		case '"':
			return appendScalar(dst, kind, e.scratch), s[i+1:], true
		case '\\':
			i++
			if i == len(s) {
				return dst, s, false
			}
			e.scratch = append(e.scratch, s[i])
		default:
			e.scratch = append(e.scratch, c)
		}
	}
	return dst, s, false
}

// appendBareElement appends the unquoted element at the start of s, which
// ends at the delimiter or '}'. An unquoted NULL (any case) is null.
func (e *Encoder) appendBareElement(dst []byte, kind Kind, delim byte, s []byte) ([]byte, []byte, bool) {
	escaped := false
	i := 0
	for ; i < len(s) && s[i] != delim && s[i] != '}'; i++ {
		switch s[i] {
		case '{', '"':
			return dst, s, false
		case '\\':
			escaped = true
			i++
		}
	}
	if i > len(s) {
		return dst, s, false
	}
	elem := s[:i]
	if len(elem) == 0 {
		return dst, s, false
	}
	if !escaped {
		if len(elem) == 4 && (elem[0]|0x20) == 'n' && (elem[1]|0x20) == 'u' && (elem[2]|0x20) == 'l' && (elem[3]|0x20) == 'l' {
			return append(dst, "null"...), s[i:], true
		}
		return appendScalar(dst, kind, elem), s[i:], true
	}
	e.scratch = e.scratch[:0]
	for j := 0; j < len(elem); j++ {
		if elem[j] == '\\' {
			j++
			if j == len(elem) {
				return dst, s, false
			}
		}
		e.scratch = append(e.scratch, elem[j])
	}
	return appendScalar(dst, kind, e.scratch), s[i:], true
}
