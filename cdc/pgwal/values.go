package pgwal

import (
	"encoding/base64"
	"strings"

	"github.com/cdcd-dev/cdcd/cdc"
)

// The value encoder turns pgoutput text values into JSON, assuming the
// walsender session pins client_encoding=UTF8, TimeZone=UTC, DateStyle=ISO,
// IntervalStyle=iso_8601, extra_float_digits=3 and bytea_output=hex. Text
// that does not fit its type's rule becomes a JSON string, so the output is
// always valid JSON.

// valueKind is how a scalar value is encoded.
type valueKind uint8

const (
	kindString      valueKind = iota // JSON string of the text as sent (numeric, date, time, interval, enums, ...)
	kindInt                          // JSON number, whatever its size (as Debezium writes int8)
	kindFloat                        // JSON number; NaN and ±Infinity as strings
	kindBool                         // true/false
	kindJSON                         // a JSON string holding the JSON text (as Debezium's io.debezium.data.Json)
	kindTimestamp                    // "2024-02-29T13:45:06.500000"
	kindTimestampTZ                  // "2024-02-29T13:45:06.500000Z"
	kindBytea                        // base64 of the bytes
)

// valueRule is how a column's values are encoded: a scalar kind, or an
// array (of any dimension) whose elements have that kind.
type valueRule struct {
	kind  valueKind
	array bool
	delim byte // array element delimiter
}

// builtinType describes a built-in type and its array type.
type builtinType struct {
	oid, arrayOID uint32
	name          string // pg_type.typname
	kind          valueKind
}

// builtinTypes lists the built-in types with a known array OID. Types not
// listed are encoded as strings.
var builtinTypes = [...]builtinType{
	{16, 1000, "bool", kindBool},
	{17, 1001, "bytea", kindBytea},
	{18, 1002, "char", kindString},
	{19, 1003, "name", kindString},
	{20, 1016, "int8", kindInt},
	{21, 1005, "int2", kindInt},
	{23, 1007, "int4", kindInt},
	{25, 1009, "text", kindString},
	{26, 1028, "oid", kindInt},
	{28, 1011, "xid", kindInt},
	{114, 199, "json", kindJSON},
	{142, 143, "xml", kindString},
	{600, 1017, "point", kindString},
	{601, 1018, "lseg", kindString},
	{602, 1019, "path", kindString},
	{603, 1020, "box", kindString},
	{604, 1027, "polygon", kindString},
	{628, 629, "line", kindString},
	{650, 651, "cidr", kindString},
	{700, 1021, "float4", kindFloat},
	{701, 1022, "float8", kindFloat},
	{718, 719, "circle", kindString},
	{774, 775, "macaddr8", kindString},
	{790, 791, "money", kindString},
	{829, 1040, "macaddr", kindString},
	{869, 1041, "inet", kindString},
	{1042, 1014, "bpchar", kindString},
	{1043, 1015, "varchar", kindString},
	{1082, 1182, "date", kindString},
	{1083, 1183, "time", kindString},
	{1114, 1115, "timestamp", kindTimestamp},
	{1184, 1185, "timestamptz", kindTimestampTZ},
	{1186, 1187, "interval", kindString},
	{1266, 1270, "timetz", kindString},
	{1560, 1561, "bit", kindString},
	{1562, 1563, "varbit", kindString},
	{1700, 1231, "numeric", kindString},
	{2950, 2951, "uuid", kindString},
	{3220, 3221, "pg_lsn", kindString},
	{3614, 3643, "tsvector", kindString},
	{3615, 3645, "tsquery", kindString},
	{3802, 3807, "jsonb", kindJSON},
	{3904, 3905, "int4range", kindString},
	{3906, 3907, "numrange", kindString},
	{3908, 3909, "tsrange", kindString},
	{3910, 3911, "tstzrange", kindString},
	{3912, 3913, "daterange", kindString},
	{3926, 3927, "int8range", kindString},
	{4072, 4073, "jsonpath", kindString},
}

func (t *builtinType) arrayRule() valueRule {
	delim := byte(',')
	if t.name == "box" {
		delim = ';'
	}
	return valueRule{kind: t.kind, array: true, delim: delim}
}

// builtinRule returns the rule for a built-in type or array type OID.
func builtinRule(oid uint32) (valueRule, bool) {
	for i := range builtinTypes {
		t := &builtinTypes[i]
		switch oid {
		case t.oid:
			return valueRule{kind: t.kind}, true
		case t.arrayOID:
			return t.arrayRule(), true
		}
	}
	return valueRule{}, false
}

// builtinRuleByName returns the rule for a built-in type name as pgoutput's
// Type message names it ("int4", or "_int4" for its array type).
func builtinRuleByName(name string) (valueRule, bool) {
	elem, isArray := strings.CutPrefix(name, "_")
	for i := range builtinTypes {
		t := &builtinTypes[i]
		if t.name != elem {
			continue
		}
		if isArray {
			return t.arrayRule(), true
		}
		return valueRule{kind: t.kind}, true
	}
	return valueRule{}, false
}

// valueEncoder appends JSON values. Its scratch space makes it unsafe for
// concurrent use.
type valueEncoder struct {
	scratch []byte
}

// appendValue appends the JSON encoding of text, a text-format value
// encoded by rule r.
func (e *valueEncoder) appendValue(dst []byte, r valueRule, text []byte) []byte {
	if r.array {
		return e.appendArray(dst, r.kind, r.delim, text)
	}
	return appendScalar(dst, r.kind, text)
}

func appendScalar(dst []byte, k valueKind, s []byte) []byte {
	switch k {
	case kindInt:
		if isJSONInt(s) {
			return append(dst, s...)
		}
	case kindFloat:
		if isJSONNumber(s) {
			return append(dst, s...)
		}
	case kindBool:
		if len(s) == 1 && s[0] == 't' {
			return append(dst, "true"...)
		}
		if len(s) == 1 && s[0] == 'f' {
			return append(dst, "false"...)
		}
	case kindTimestamp, kindTimestampTZ:
		return appendTimestamp(dst, s, k == kindTimestampTZ)
	case kindBytea:
		return appendBytea(dst, s)
	}
	return cdc.AppendJSONString(dst, s)
}

// isJSONInt reports whether s is a canonical decimal integer. Integers
// are JSON numbers whatever their size, as Debezium writes int8: a reader
// that holds numbers in doubles (JavaScript) must parse them exactly
// itself past 2^53 (see docs/events.md).
func isJSONInt(s []byte) bool {
	if len(s) > 0 && s[0] == '-' {
		s = s[1:]
	}
	if len(s) == 0 || (s[0] == '0' && len(s) > 1) {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// isJSONNumber reports whether s follows the JSON number grammar.
func isJSONNumber(s []byte) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		i = skipDigits(s, i)
	default:
		return false
	}
	if i < len(s) && s[i] == '.' {
		j := skipDigits(s, i+1)
		if j == i+1 {
			return false
		}
		i = j
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		j := skipDigits(s, i)
		if j == i {
			return false
		}
		i = j
	}
	return i == len(s)
}

func skipDigits(s []byte, i int) int {
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i
}

// appendBytea turns hex output ("\x0aff") into a base64 JSON string.
func appendBytea(dst, s []byte) []byte {
	if len(s) < 2 || s[0] != '\\' || s[1] != 'x' || len(s)%2 != 0 {
		return cdc.AppendJSONString(dst, s)
	}
	start := len(dst)
	dst = append(dst, '"')
	var chunk [48]byte // a multiple of 3: padding only after the last chunk
	hex := s[2:]
	for len(hex) > 0 {
		n := 0
		for ; n < len(chunk) && len(hex) > 0; n++ {
			hi, lo := unhex(hex[0]), unhex(hex[1])
			if hi > 15 || lo > 15 {
				return cdc.AppendJSONString(dst[:start], s)
			}
			chunk[n] = hi<<4 | lo
			hex = hex[2:]
		}
		dst = base64.StdEncoding.AppendEncode(dst, chunk[:n])
	}
	return append(dst, '"')
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10
	}
	return 255
}

// AppendValueJSON appends the JSON that events carry for text, a
// text-format value of the type typeOID (read in a session with the
// reader's settings: UTC, ISO dates). A type that is not built in is a JSON
// string. Tools that build keys of their own (the apply step's links) use
// it so that their keys equal the keys of captured events.
func AppendValueJSON(dst []byte, typeOID uint32, text []byte) []byte {
	r, ok := builtinRule(typeOID)
	if !ok {
		return cdc.AppendJSONString(dst, text)
	}
	var e valueEncoder
	return e.appendValue(dst, r, text)
}
