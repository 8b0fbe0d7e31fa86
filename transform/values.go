package transform

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
)

// decodeValue decodes one encoded column value (see cdc.Field). Numbers
// become json.Number so that they stay exact; objects and arrays are
// decoded by encoding/json with UseNumber.
func decodeValue(raw json.RawMessage) (any, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	switch c := raw[0]; {
	case c == 'n':
		return nil, nil
	case c == 't':
		return true, nil
	case c == 'f':
		return false, nil
	case c == '"' || c == '-' || ('0' <= c && c <= '9'):
		if p, ok := plainText(raw); ok {
			if c == '"' {
				return string(p), nil
			}
			return json.Number(p), nil
		}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("decode column value: %w", err)
	}
	return v, nil
}

// plainText returns the text of a value that decodes to it as it is: a
// string without escapes (the text between its quotes) or a number.
func plainText(raw json.RawMessage) ([]byte, bool) {
	switch c := raw[0]; {
	case c == '"' && len(raw) >= 2 && raw[len(raw)-1] == '"' && bytes.IndexByte(raw[1:len(raw)-1], '\\') < 0:
		return raw[1 : len(raw)-1], true
	case c == '-' || ('0' <= c && c <= '9'):
		return raw, true
	}
	return nil, false
}

// valueText decodes the values of one record with the text of its plain
// strings and numbers copied once, into one string they share, rather
// than once each: add every value, then seal, then decode each in the
// order added.
type valueText struct {
	buf  []byte
	text string
	off  int
}

func (t *valueText) add(raw json.RawMessage) {
	if len(raw) > 0 {
		if p, ok := plainText(raw); ok {
			t.buf = append(t.buf, p...)
		}
	}
}

func (t *valueText) seal() {
	t.text, t.off, t.buf = string(t.buf), 0, t.buf[:0]
}

// decode decodes raw as decodeValue does; raw is the next value added.
func (t *valueText) decode(raw json.RawMessage) (any, error) {
	if len(raw) > 0 {
		if p, ok := plainText(raw); ok {
			s := t.text[t.off : t.off+len(p)]
			t.off += len(p)
			if raw[0] == '"' {
				return s, nil
			}
			return json.Number(s), nil
		}
	}
	return decodeValue(raw)
}

// exprValue converts a decoded value for expressions: a json.Number
// becomes an int when it is one, else a float64, so that arithmetic and
// comparisons work.
func exprValue(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return int(i)
		}
		if f, err := strconv.ParseFloat(string(x), 64); err == nil {
			return f
		}
		return string(x)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = exprValue(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = exprValue(e)
		}
		return out
	}
	return v
}

// fieldValue converts an expression's result to a Record field value:
// nil, string, bool, json.Number, float64, []any or map[string]any. Integers
// become json.Number, times RFC 3339 strings; other values go through
// encoding/json.
func fieldValue(v any) (any, error) {
	switch x := v.(type) {
	case nil, string, bool, json.Number:
		return v, nil
	case int:
		return json.Number(strconv.Itoa(x)), nil
	case int64:
		return json.Number(strconv.FormatInt(x, 10)), nil
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return nil, fmt.Errorf("result %v is not a finite number", x)
		}
		return x, nil
	case time.Time:
		return x.Format(time.RFC3339Nano), nil
	case time.Duration:
		return x.String(), nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			fv, err := fieldValue(e)
			if err != nil {
				return nil, err
			}
			out[k] = fv
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			fv, err := fieldValue(e)
			if err != nil {
				return nil, err
			}
			out[i] = fv
		}
		return out, nil
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return json.Number(strconv.FormatInt(rv.Int(), 10)), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return json.Number(strconv.FormatUint(rv.Uint(), 10)), nil
	case reflect.Float32:
		return rv.Float(), nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("result of type %T: %w", v, err)
	}
	return decodeValue(b)
}

// rowMap decodes the visible columns of a row into m for expressions,
// their text copied once through vt.
func rowMap(m map[string]any, r cdc.Row, visible func(string) bool, vt *valueText) error {
	for i := range r {
		if visible(r[i].Name) {
			vt.add(r[i].Value)
		}
	}
	vt.seal()
	for i := range r {
		if !visible(r[i].Name) {
			continue
		}
		v, err := vt.decode(r[i].Value)
		if err != nil {
			return fmt.Errorf("column %s: %w", r[i].Name, err)
		}
		m[r[i].Name] = exprValue(v)
	}
	return nil
}
