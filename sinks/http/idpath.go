package http

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// extractID returns the string, number or boolean at path in a JSON
// body (a number as its literal text), or "". Like decoding the body's
// first value with encoding/json, it takes the last of duplicate keys and
// ignores what follows that value. It reads the body in place; a body it
// does not follow (an escaped key on the path, a malformed value) is
// decoded with encoding/json instead.
func extractID(body []byte, path []string) string {
	if len(path) == 0 || len(body) == 0 {
		return ""
	}
	if id, ok := scanID(body, path); ok {
		return id
	}
	return decodeID(body, path)
}

// scanID is extractID without decoding: ok is false when it cannot tell.
func scanID(body []byte, path []string) (id string, ok bool) {
	s := idScanner{b: body}
	start := s.space()
	end, found := s.find(path)
	if !s.ok || !json.Valid(body[start:end]) {
		return "", false
	}
	if !found.set {
		return "", true
	}
	v := body[found.start:found.end]
	switch v[0] {
	case '"':
		if bytes.IndexByte(v, '\\') >= 0 || !utf8.Valid(v) {
			var str string
			if json.Unmarshal(v, &str) != nil {
				return "", false
			}
			return str, true
		}
		return string(v[1 : len(v)-1]), true
	case 't', 'f':
		return strconv.FormatBool(v[0] == 't'), true
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return string(v), true
	}
	return "", true // null, an object or an array
}

// span is where a value lies in the body.
type span struct {
	start, end int
	set        bool
}

// idScanner walks a JSON value without decoding it. It relies on
// json.Valid over the value it walked to reject what it let through; ok
// turns false where it cannot find its way.
type idScanner struct {
	b  []byte
	i  int
	ok bool
}

func (s *idScanner) space() int {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\r', '\n':
			s.i++
		default:
			return s.i
		}
	}
	return s.i
}

// find walks the value at s.i and returns where it ends and the span of
// the value at path in it (not set when there is none).
func (s *idScanner) find(path []string) (end int, found span) {
	s.ok = true
	s.space()
	if s.i >= len(s.b) {
		s.ok = false
		return s.i, found
	}
	if len(path) == 0 {
		start := s.i
		s.skip()
		return s.i, span{start: start, end: s.i, set: true}
	}
	if s.b[s.i] != '{' {
		s.skip()
		return s.i, found
	}
	s.i++
	for s.ok {
		s.space()
		if s.i < len(s.b) && s.b[s.i] == '}' {
			s.i++
			return s.i, found
		}
		key, escaped := s.str()
		if !s.ok {
			break
		}
		if escaped || !utf8.Valid(key) {
			s.ok = false // decoded, such a key might spell the one on the path
			break
		}
		s.space()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			s.ok = false
			break
		}
		s.i++
		if string(key) == path[0] {
			// A later duplicate replaces it, as in a decoded map.
			_, found = s.find(path[1:])
		} else {
			s.space()
			s.skip()
		}
		s.space()
		if s.i < len(s.b) && s.b[s.i] == ',' {
			s.i++
		}
	}
	return s.i, found
}

// str reads the string at s.i and returns its raw contents, and whether
// they hold an escape.
func (s *idScanner) str() (raw []byte, escaped bool) {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		s.ok = false
		return nil, false
	}
	start := s.i + 1
	for i := start; i < len(s.b); i++ {
		switch s.b[i] {
		case '\\':
			escaped = true
			i++
		case '"':
			s.i = i + 1
			return s.b[start:i], escaped
		}
	}
	s.ok = false
	return nil, false
}

// skip passes over the value at s.i.
func (s *idScanner) skip() {
	if s.i >= len(s.b) {
		s.ok = false
		return
	}
	switch s.b[s.i] {
	case '"':
		s.str()
	case '{', '[':
		depth := 0
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case '"':
				if s.str(); !s.ok {
					return
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
			}
			s.i++
			if depth == 0 {
				return
			}
		}
		s.ok = false
	default:
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case ',', '}', ']', ' ', '\t', '\r', '\n':
				return
			}
			s.i++
		}
	}
}

// decodeID is extractID by decoding the body with encoding/json.
func decodeID(body []byte, path []string) string {
	var v any
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	if d.Decode(&v) != nil {
		return ""
	}
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		v = m[k]
	}
	switch v := v.(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	case bool:
		return strconv.FormatBool(v)
	}
	return ""
}
