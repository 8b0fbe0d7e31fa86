package transform

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm/runtime"
)

// functions are the helpers expressions may call. Each passes nil through
// (a NULL stays NULL) unless documented otherwise in doc.go.
func functions() []expr.Option {
	return []expr.Option{
		expr.Function("lower", strFunc("lower", strings.ToLower), new(func(any) any)),
		expr.Function("upper", strFunc("upper", strings.ToUpper), new(func(any) any)),
		expr.Function("trim", strFunc("trim", strings.TrimSpace), new(func(any) any)),
		expr.Function("concat", concat, new(func(...any) string)),
		expr.Function("coalesce", coalesce, new(func(...any) any)),
		expr.Function("now", func(...any) (any, error) { return time.Now().UTC(), nil }, new(func() time.Time)),
		expr.Function("format_time", formatTime, new(func(any, string) any)),
		expr.Function("number", func(p ...any) (any, error) { return toNumber(p[0]) }, new(func(any) any)),
		expr.Function("string", func(p ...any) (any, error) { return toString(p[0]) }, new(func(any) any)),
		expr.Function("json", toJSON, new(func(any) string)),
		expr.Function(fnLess, compare(runtime.Less), new(func(any, any) bool)),
		expr.Function(fnLessEq, compare(runtime.LessOrEqual), new(func(any, any) bool)),
		expr.Function(fnMore, compare(runtime.More), new(func(any, any) bool)),
		expr.Function(fnMoreEq, compare(runtime.MoreOrEqual), new(func(any, any) bool)),
	}
}

func strFunc(name string, f func(string) string) func(...any) (any, error) {
	return func(p ...any) (any, error) {
		switch s := p[0].(type) {
		case nil:
			return nil, nil
		case string:
			return f(s), nil
		}
		return nil, fmt.Errorf("%s: expected a string, got %T (convert with string(...))", name, p[0])
	}
}

func concat(p ...any) (any, error) {
	var b strings.Builder
	for _, v := range p {
		s, err := toString(v)
		if err != nil {
			return nil, fmt.Errorf("concat: %w", err)
		}
		if s != nil {
			b.WriteString(s.(string))
		}
	}
	return b.String(), nil
}

func coalesce(p ...any) (any, error) {
	for _, v := range p {
		if !runtime.IsNil(v) {
			return v, nil
		}
	}
	return nil, nil
}

// formatTime formats a time (a time.Time or an RFC 3339 string) with a Go
// layout or one of the names unix, unix_ms, rfc3339 and date.
func formatTime(p ...any) (any, error) {
	var t time.Time
	switch v := p[0].(type) {
	case nil:
		return nil, nil
	case time.Time:
		t = v
	case string:
		var err error
		if t, err = time.Parse(time.RFC3339Nano, v); err != nil {
			return nil, fmt.Errorf("format_time: %q is not an RFC 3339 time", v)
		}
	default:
		return nil, fmt.Errorf("format_time: expected a time, got %T", p[0])
	}
	switch layout := p[1].(string); layout {
	case "unix":
		return int(t.Unix()), nil
	case "unix_ms":
		return int(t.UnixMilli()), nil
	case "rfc3339":
		return t.Format(time.RFC3339Nano), nil
	case "date":
		return t.Format(time.DateOnly), nil
	default:
		return t.Format(layout), nil
	}
}

// toNumber converts to an int when the value is a whole number that fits,
// else to a float64.
func toNumber(v any) (any, error) {
	switch x := v.(type) {
	case nil, int, float64:
		return v, nil
	case json.Number:
		return parseNumber(string(x))
	case string:
		return parseNumber(strings.TrimSpace(x))
	}
	switch f, ok := asFloat(v); {
	case ok && f == math.Trunc(f) && math.Abs(f) < 1<<53:
		return int(f), nil
	case ok:
		return f, nil
	}
	return nil, fmt.Errorf("number: cannot convert %T to a number", v)
}

func parseNumber(s string) (any, error) {
	if i, err := strconv.Atoi(s); err == nil {
		return i, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return nil, fmt.Errorf("number: %q is not a number", s)
	}
	return f, nil
}

func toString(v any) (any, error) {
	switch x := v.(type) {
	case nil, string:
		return v, nil
	case int:
		return strconv.Itoa(x), nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case bool:
		return strconv.FormatBool(x), nil
	case json.Number:
		return string(x), nil
	case time.Time:
		return x.Format(time.RFC3339Nano), nil
	}
	fv, err := fieldValue(v)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(fv)
	return string(b), err
}

func toJSON(p ...any) (any, error) {
	fv, err := fieldValue(p[0])
	if err != nil {
		return nil, fmt.Errorf("json: %w", err)
	}
	b, err := json.Marshal(fv)
	if err != nil {
		return nil, fmt.Errorf("json: %w", err)
	}
	return string(b), nil
}

// Names of the ordering comparisons that nil-safe patching calls.
const (
	fnLess   = "_lt"
	fnLessEq = "_le"
	fnMore   = "_gt"
	fnMoreEq = "_ge"
)

// compare makes an ordering comparison nil-safe: it is false when either
// side is nil, as in SQL. A number compared with a string that holds a
// number (a numeric column) compares as numbers.
func compare(op func(a, b any) bool) func(...any) (any, error) {
	return func(p ...any) (res any, err error) {
		a, b := p[0], p[1]
		if runtime.IsNil(a) || runtime.IsNil(b) {
			return false, nil
		}
		a, b = numericPair(a, b)
		defer func() {
			if r := recover(); r != nil {
				res, err = nil, fmt.Errorf("cannot compare %T with %T (convert with number(...) or string(...))", a, b)
			}
		}()
		return op(a, b), nil
	}
}

func numericPair(a, b any) (any, any) {
	as, aStr := a.(string)
	bs, bStr := b.(string)
	switch {
	case aStr && !bStr && isNumber(b):
		if n, err := parseNumber(as); err == nil {
			return n, b
		}
	case bStr && !aStr && isNumber(a):
		if n, err := parseNumber(bs); err == nil {
			return a, n
		}
	}
	return a, b
}

func isNumber(v any) bool {
	_, ok := asFloat(v)
	return ok
}

// asFloat converts a value of a Go numeric type.
func asFloat(v any) (float64, bool) {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return float64(rv.Int()), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return float64(rv.Uint()), true
	case reflect.Float32, reflect.Float64:
		return rv.Float(), true
	}
	return 0, false
}
