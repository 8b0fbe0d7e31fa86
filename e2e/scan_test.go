package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"testing"

	"github.com/cdcd-dev/cdcd/cdc"
)

// A small JSON scanner for reading envelopes back: encoding/json's
// reflection makes decoding a 200,000-event topic take tens of seconds
// under the race detector. It keeps every value's bytes exactly as cdcd
// wrote them.

var errBadJSON = errors.New("malformed JSON")

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// valueEnd returns the index just past the JSON value starting at b[i].
func valueEnd(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, errBadJSON
	}
	switch b[i] {
	case '"':
		for j := i + 1; j < len(b); j++ {
			switch b[j] {
			case '\\':
				j++
			case '"':
				return j + 1, nil
			}
		}
		return 0, errBadJSON
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end, err := valueEnd(b, j)
				if err != nil {
					return 0, err
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1, nil
				}
			}
		}
		return 0, errBadJSON
	}
	j := i
	for j < len(b) && bytes.IndexByte([]byte(",}] \t\n\r"), b[j]) < 0 {
		j++
	}
	if j == i {
		return 0, errBadJSON
	}
	return j, nil
}

// members calls fn with each member of the JSON object b, in order.
func members(b []byte, fn func(key string, val []byte) error) error {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return errBadJSON
	}
	if i = skipSpace(b, i+1); i < len(b) && b[i] == '}' {
		return nil
	}
	for {
		end, err := valueEnd(b, i)
		if err != nil || b[i] != '"' {
			return errBadJSON
		}
		key, err := unquote(b[i:end])
		if err != nil {
			return err
		}
		if i = skipSpace(b, end); i >= len(b) || b[i] != ':' {
			return errBadJSON
		}
		i = skipSpace(b, i+1)
		if end, err = valueEnd(b, i); err != nil {
			return err
		}
		if err := fn(key, b[i:end]); err != nil {
			return err
		}
		if i = skipSpace(b, end); i >= len(b) {
			return errBadJSON
		}
		switch b[i] {
		case '}':
			return nil
		case ',':
			i = skipSpace(b, i+1)
		default:
			return errBadJSON
		}
	}
}

func unquote(s []byte) (string, error) {
	if len(s) < 2 || s[0] != '"' {
		return "", errBadJSON
	}
	if bytes.IndexByte(s, '\\') < 0 {
		return string(s[1 : len(s)-1]), nil
	}
	var v string
	err := json.Unmarshal(s, &v)
	return v, err
}

// rowOf decodes a row: an object of column values, or null (nil).
func rowOf(b []byte) (map[string]json.RawMessage, error) {
	if string(b) == "null" {
		return nil, nil
	}
	row := map[string]json.RawMessage{}
	err := members(b, func(k string, v []byte) error {
		row[k] = v
		return nil
	})
	return row, err
}

// parseEnvelope fills e from an envelope cdcd wrote. Without rows, it
// keeps before and after as bytes only.
func parseEnvelope(value []byte, e *event, rows bool) error {
	return members(value, func(k string, v []byte) error {
		var err error
		switch k {
		case "before":
			e.beforeRaw = v
			if rows {
				e.before, err = rowOf(v)
			}
		case "after":
			e.afterRaw = v
			if rows {
				e.after, err = rowOf(v)
			}
		case "op":
			e.op, err = unquote(v)
		case "unchanged":
			err = json.Unmarshal(v, &e.unchanged)
		case "source":
			err = members(v, func(k string, v []byte) error {
				var err error
				var n uint64
				switch k {
				case "txId":
					n, err = strconv.ParseUint(string(v), 10, 32)
					e.txID = uint32(n)
				case "lsn":
					n, err = strconv.ParseUint(string(v), 10, 64)
					e.pos.CommitLSN = cdc.LSN(n)
				case "index":
					n, err = strconv.ParseUint(string(v), 10, 32)
					e.pos.Index = uint32(n)
				case "table":
					e.table, err = unquote(v)
				}
				return err
			})
		}
		return err
	})
}

// stable is an envelope without its top-level ts_ms, the time cdcd
// processed the event, which differs between re-sends.
func stable(value []byte) []byte {
	var out []byte
	err := members(value, func(k string, v []byte) error {
		if k != "ts_ms" {
			out = strconv.AppendQuote(out, k)
			out = append(append(out, ':'), v...)
			out = append(out, ',')
		}
		return nil
	})
	if err != nil {
		return nil
	}
	return out
}

// TestParseEnvelope checks the scanner against encoding/json on an
// envelope with nested, escaped and spaced values.
func TestParseEnvelope(t *testing.T) {
	value := []byte(`{"before":{"id":1},"after":{"id":1,"j":{"b": 1,   "a": [1,"}]"]},"t":"say \"hi\"\n{","e":""},` +
		`"source":{"version":"dev","connector":"postgresql","name":"cdcd","ts_ms":1,"snapshot":"false","db":"app","schema":"public",` +
		`"table":"t\u00e9","txId":745,"lsn":23456789,"index":3,"origin":null},"op":"u","ts_ms":2,"unchanged":["big","x\"y"]}`)
	var e event
	if err := parseEnvelope(value, &e, true); err != nil {
		t.Fatal(err)
	}
	var want struct {
		Before, After map[string]json.RawMessage
		Op            string
		Unchanged     []string
	}
	if err := json.Unmarshal(value, &want); err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal([]any{e.before, e.after, e.op, e.unchanged})
	exp, _ := json.Marshal([]any{want.Before, want.After, want.Op, want.Unchanged})
	if !bytes.Equal(got, exp) || string(e.after["j"]) != `{"b": 1,   "a": [1,"}]"]}` {
		t.Errorf("parsed %s\nwant   %s", got, exp)
	}
	if e.table != "té" || e.txID != 745 || e.pos != (cdc.Position{CommitLSN: 23456789, Index: 3}) {
		t.Errorf("source: table %q txId %d pos %v", e.table, e.txID, e.pos)
	}
	other := bytes.Replace(value, []byte(`"ts_ms":2`), []byte(`"ts_ms":99`), 1)
	if s := stable(value); s == nil || !bytes.Equal(s, stable(other)) || bytes.Equal(s, stable(bytes.Replace(value, []byte(`"op":"u"`), []byte(`"op":"c"`), 1))) {
		t.Errorf("stable ignores more or less than the top-level ts_ms")
	}
	for _, bad := range []string{``, `{`, `{"a":}`, `{"a":1,}`, `{"a" 1}`, `[1]`, `{"a":"x}`} {
		if err := parseEnvelope([]byte(bad), &event{}, true); err == nil {
			t.Errorf("%q parsed without error", bad)
		}
	}
}
