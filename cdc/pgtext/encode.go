// Package pgtext encodes Postgres text-format values as the JSON values
// cdcd's events carry. The capture reader encodes the values pgoutput
// sends with it, and the Postgres writer the local values it reads back
// (keys, compared columns), so that both give the same JSON for the same
// value.
package pgtext

import (
	"encoding/base64"
	"strings"

	"github.com/cdcd-dev/cdcd/cdc"
)

// The encoder turns text values into JSON, assuming the session that
// produced them pins client_encoding=UTF8, TimeZone=UTC, DateStyle=ISO,
// IntervalStyle=iso_8601, extra_float_digits=3 and bytea_output=hex. Text
// that does not fit its type's rule becomes a JSON string, so the output is
// always valid JSON.

// Kind is how a scalar value is encoded.
type Kind uint8

const (
	KindString      Kind = iota // JSON string of the text as sent (numeric, date, time, interval, enums, ...)
	KindInt                     // JSON number, whatever its size (as Debezium writes int8)
	KindFloat                   // JSON number; NaN and ±Infinity as strings
	KindBool                    // true/false
	KindJSON                    // a JSON string holding the JSON text (as Debezium's io.debezium.data.Json)
	KindTimestamp               // "2024-02-29T13:45:06.500000"
	KindTimestampTZ             // "2024-02-29T13:45:06.500000Z"
	KindBytea                   // base64 of the bytes
)

// Rule is how a column's values are encoded: a scalar kind, or an
// array (of any dimension) whose elements have that kind.
type Rule struct {
	Kind  Kind
	Array bool
	Delim byte // array element delimiter
}

// builtinType describes a built-in type and its array type.
type builtinType struct {
	oid, arrayOID uint32
	name          string // pg_type.typname
	kind          Kind
}

// builtinTypes lists the built-in types with a known array OID. Types not
// listed are encoded as strings.
var builtinTypes = [...]builtinType{
	{16, 1000, "bool", KindBool},
	{17, 1001, "bytea", KindBytea},
	{18, 1002, "char", KindString},
	{19, 1003, "name", KindString},
	{20, 1016, "int8", KindInt},
	{21, 1005, "int2", KindInt},
	{23, 1007, "int4", KindInt},
	{25, 1009, "text", KindString},
	{26, 1028, "oid", KindInt},
	{28, 1011, "xid", KindInt},
	{114, 199, "json", KindJSON},
	{142, 143, "xml", KindString},
	{600, 1017, "point", KindString},
	{601, 1018, "lseg", KindString},
	{602, 1019, "path", KindString},
	{603, 1020, "box", KindString},
	{604, 1027, "polygon", KindString},
	{628, 629, "line", KindString},
	{650, 651, "cidr", KindString},
	{700, 1021, "float4", KindFloat},
	{701, 1022, "float8", KindFloat},
	{718, 719, "circle", KindString},
	{774, 775, "macaddr8", KindString},
	{790, 791, "money", KindString},
	{829, 1040, "macaddr", KindString},
	{869, 1041, "inet", KindString},
	{1042, 1014, "bpchar", KindString},
	{1043, 1015, "varchar", KindString},
	{1082, 1182, "date", KindString},
	{1083, 1183, "time", KindString},
	{1114, 1115, "timestamp", KindTimestamp},
	{1184, 1185, "timestamptz", KindTimestampTZ},
	{1186, 1187, "interval", KindString},
	{1266, 1270, "timetz", KindString},
	{1560, 1561, "bit", KindString},
	{1562, 1563, "varbit", KindString},
	{1700, 1231, "numeric", KindString},
	{2950, 2951, "uuid", KindString},
	{3220, 3221, "pg_lsn", KindString},
	{3614, 3643, "tsvector", KindString},
	{3615, 3645, "tsquery", KindString},
	{3802, 3807, "jsonb", KindJSON},
	{3904, 3905, "int4range", KindString},
	{3906, 3907, "numrange", KindString},
	{3908, 3909, "tsrange", KindString},
	{3910, 3911, "tstzrange", KindString},
	{3912, 3913, "daterange", KindString},
	{3926, 3927, "int8range", KindString},
	{4072, 4073, "jsonpath", KindString},
}

func (t *builtinType) arrayRule() Rule {
	delim := byte(',')
	if t.name == "box" {
		delim = ';'
	}
	return Rule{Kind: t.kind, Array: true, Delim: delim}
}

// BuiltinRule returns the rule for a built-in type or array type OID.
func BuiltinRule(oid uint32) (Rule, bool) {
	for i := range builtinTypes {
		t := &builtinTypes[i]
		switch oid {
		case t.oid:
			return Rule{Kind: t.kind}, true
		case t.arrayOID:
			return t.arrayRule(), true
		}
	}
	return Rule{}, false
}

// TypeName returns the name of built-in type oid as pgoutput names it
// ("int4", or "_int4" for its array type).
func TypeName(oid uint32) (string, bool) {
	for i := range builtinTypes {
		switch t := &builtinTypes[i]; oid {
		case t.oid:
			return t.name, true
		case t.arrayOID:
			return "_" + t.name, true
		}
	}
	return "", false
}

// RuleByName returns the rule for a built-in type name as pgoutput's
// Type message names it ("int4", or "_int4" for its array type).
func RuleByName(name string) (Rule, bool) {
	elem, isArray := strings.CutPrefix(name, "_")
	for i := range builtinTypes {
		t := &builtinTypes[i]
		if t.name != elem {
			continue
		}
		if isArray {
			return t.arrayRule(), true
		}
		return Rule{Kind: t.kind}, true
	}
	return Rule{}, false
}

// Encoder appends JSON values. Its scratch space makes it unsafe for
// concurrent use.
type Encoder struct {
	scratch []byte
}

// Append appends the JSON encoding of text, a text-format value encoded
// by rule r.
func (e *Encoder) Append(dst []byte, r Rule, text []byte) []byte {
	if r.Array {
		return e.appendArray(dst, r.Kind, r.Delim, text)
	}
	return appendScalar(dst, r.Kind, text)
}

func appendScalar(dst []byte, k Kind, s []byte) []byte {
	switch k {
	case KindInt:
		if isJSONInt(s) {
			return append(dst, s...)
		}
	case KindFloat:
		if isJSONNumber(s) {
			return append(dst, s...)
		}
	case KindBool:
		if len(s) == 1 && s[0] == 't' {
			return append(dst, "true"...)
		}
		if len(s) == 1 && s[0] == 'f' {
			return append(dst, "false"...)
		}
	case KindTimestamp, KindTimestampTZ:
		return appendTimestamp(dst, s, k == KindTimestampTZ)
	case KindBytea:
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

// AppendJSON appends the JSON that events carry for text, a text-format
// value of the type typeOID (read in a session with the capture reader's
// settings: UTC, ISO dates). A type that is not built in is a JSON
// string. Tools that build keys of their own (the apply step's links) use
// it so that their keys equal the keys of captured events.
func AppendJSON(dst []byte, typeOID uint32, text []byte) []byte {
	r, ok := BuiltinRule(typeOID)
	if !ok {
		return cdc.AppendJSONString(dst, text)
	}
	var e Encoder
	return e.Append(dst, r, text)
}
