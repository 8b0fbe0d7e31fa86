package jsonvalue

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// maxFastDepth bounds the nesting DecodeObject reads itself; deeper
// documents go to encoding/json, which has its own limit.
const maxFastDepth = 64

// DecodeObject decodes the JSON object at the start of raw as a
// json.Decoder with UseNumber decodes it into a nil map[string]any: the
// same values (numbers as json.Number, objects as map[string]any, arrays
// as []any), the same error for the same input, data after the object
// ignored. `null` yields a nil map.
//
// Objects whose strings need no \u escape and hold valid UTF-8 are read
// without encoding/json, the text copied once: the strings share that
// copy. Anything else goes through a json.Decoder.
func DecodeObject(raw []byte) (map[string]any, error) {
	i := skipSpace(raw, 0)
	if i < len(raw) && raw[i] == '{' {
		d := decoder{raw: raw}
		if v, _, ok := d.object(i, 0); ok {
			return v, nil
		}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	return m, nil
}

// decoder reads a JSON value from raw strictly: ok false for anything it
// does not take (an error, or a string it leaves to encoding/json).
type decoder struct {
	raw  []byte
	text string // raw as a string, made once the first string is read
	buf  []byte // an unescaped string
}

func skipSpace(raw []byte, i int) int {
	for i < len(raw) && (raw[i] == ' ' || raw[i] == '\t' || raw[i] == '\n' || raw[i] == '\r') {
		i++
	}
	return i
}

// value reads the value at raw[i] (no space before it) and returns the
// index after it.
func (d *decoder) value(i, depth int) (any, int, bool) {
	if i >= len(d.raw) {
		return nil, 0, false
	}
	switch c := d.raw[i]; {
	case c == '{':
		m, j, ok := d.object(i, depth+1)
		return m, j, ok
	case c == '[':
		return d.array(i, depth+1)
	case c == '"':
		s, j, ok := d.str(i)
		return s, j, ok
	case c == '-' || c >= '0' && c <= '9':
		j := i
		for j < len(d.raw) && isNumberByte(d.raw[j]) {
			j++
		}
		if n := d.sub(i, j); isNumber(n) {
			return json.Number(n), j, true
		}
		return nil, 0, false
	case bytes.HasPrefix(d.raw[i:], []byte("true")):
		return true, i + 4, true
	case bytes.HasPrefix(d.raw[i:], []byte("false")):
		return false, i + 5, true
	case bytes.HasPrefix(d.raw[i:], []byte("null")):
		return nil, i + 4, true
	}
	return nil, 0, false
}

func isNumberByte(c byte) bool {
	return c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'
}

// after checks that what follows a member or element at raw[i] may
// follow it (space, ',', or close), so that "truex" or "1x" is refused.
func (d *decoder) after(i int, close byte) (int, bool) {
	i = skipSpace(d.raw, i)
	if i >= len(d.raw) || d.raw[i] != ',' && d.raw[i] != close {
		return 0, false
	}
	return i, true
}

func (d *decoder) object(i, depth int) (map[string]any, int, bool) {
	if depth > maxFastDepth {
		return nil, 0, false
	}
	m := make(map[string]any)
	i = skipSpace(d.raw, i+1)
	if i < len(d.raw) && d.raw[i] == '}' {
		return m, i + 1, true
	}
	for {
		if i >= len(d.raw) || d.raw[i] != '"' {
			return nil, 0, false
		}
		k, j, ok := d.str(i)
		if !ok {
			return nil, 0, false
		}
		j = skipSpace(d.raw, j)
		if j >= len(d.raw) || d.raw[j] != ':' {
			return nil, 0, false
		}
		v, j, ok := d.value(skipSpace(d.raw, j+1), depth)
		if !ok {
			return nil, 0, false
		}
		m[k] = v
		if j, ok = d.after(j, '}'); !ok {
			return nil, 0, false
		}
		if d.raw[j] == '}' {
			return m, j + 1, true
		}
		i = skipSpace(d.raw, j+1)
	}
}

func (d *decoder) array(i, depth int) (any, int, bool) {
	if depth > maxFastDepth {
		return nil, 0, false
	}
	a := []any{}
	i = skipSpace(d.raw, i+1)
	if i < len(d.raw) && d.raw[i] == ']' {
		return a, i + 1, true
	}
	for {
		v, j, ok := d.value(i, depth)
		if !ok {
			return nil, 0, false
		}
		a = append(a, v)
		if j, ok = d.after(j, ']'); !ok {
			return nil, 0, false
		}
		if d.raw[j] == ']' {
			return a, j + 1, true
		}
		i = skipSpace(d.raw, j+1)
	}
}

// str reads the string at raw[i] ('"'). A string without escapes is a
// part of the shared copy of raw; one with the short escapes (\" \\ \/
// \b \f \n \r \t) is unescaped into a string of its own. \u escapes,
// control characters and invalid UTF-8 are left to encoding/json.
func (d *decoder) str(i int) (string, int, bool) {
	j := i + 1
	escaped := false
	for ; j < len(d.raw); j++ {
		c := d.raw[j]
		switch {
		case c == '"':
			if !utf8.Valid(d.raw[i+1 : j]) {
				return "", 0, false
			}
			if !escaped {
				return d.sub(i+1, j), j + 1, true
			}
			return d.unescape(d.raw[i+1 : j]), j + 1, true
		case c < 0x20:
			return "", 0, false
		case c == '\\':
			if j+1 >= len(d.raw) {
				return "", 0, false
			}
			switch d.raw[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			default:
				return "", 0, false
			}
			escaped = true
			j++
		}
	}
	return "", 0, false
}

// unescape returns s, a string's text checked by str, unescaped.
func (d *decoder) unescape(s []byte) string {
	d.buf = d.buf[:0]
	for k := 0; k < len(s); k++ {
		c := s[k]
		if c == '\\' {
			k++
			switch c = s[k]; c {
			case 'b':
				c = '\b'
			case 'f':
				c = '\f'
			case 'n':
				c = '\n'
			case 'r':
				c = '\r'
			case 't':
				c = '\t'
			}
		}
		d.buf = append(d.buf, c)
	}
	return string(d.buf)
}

// sub returns raw[i:j] as a part of the one copy of raw made as a string.
func (d *decoder) sub(i, j int) string {
	if d.text == "" {
		d.text = string(d.raw)
	}
	return d.text[i:j]
}
