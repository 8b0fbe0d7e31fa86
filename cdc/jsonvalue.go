package cdc

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// DecodeValue decodes the first JSON value of raw as a json.Decoder with
// UseNumber does: numbers as json.Number, objects as map[string]any. A
// plain string, a number or a literal is decoded without a Decoder (a
// change's values are compared field by field, so this runs for every
// field of every change); anything else goes through one.
func DecodeValue(raw []byte) (any, error) {
	switch {
	case len(raw) == 0:
	case raw[0] == '"':
		if s, ok := plainString(raw); ok {
			return s, nil
		}
	case raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9':
		if isNumber(raw) {
			return json.Number(raw), nil
		}
	case string(raw) == "null":
		return nil, nil
	case string(raw) == "true":
		return true, nil
	case string(raw) == "false":
		return false, nil
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// plainString returns the text of a JSON string that is the whole of raw
// and needs no unescaping: no backslash, no control character, valid
// UTF-8.
func plainString(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[len(raw)-1] != '"' {
		return "", false
	}
	in := raw[1 : len(raw)-1]
	for _, c := range in {
		if c == '\\' || c == '"' || c < 0x20 {
			return "", false
		}
	}
	if !utf8.Valid(in) {
		return "", false
	}
	return string(in), true
}

// isNumber reports whether raw is exactly one JSON number.
func isNumber(raw []byte) bool {
	i := 0
	if raw[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(raw) && raw[i] >= '0' && raw[i] <= '9' {
			i++
			n++
		}
		return n
	}
	switch {
	case i < len(raw) && raw[i] == '0':
		i++
	case digits() == 0:
		return false
	}
	if i < len(raw) && raw[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(raw) && (raw[i] == 'e' || raw[i] == 'E') {
		i++
		if i < len(raw) && (raw[i] == '+' || raw[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(raw)
}
