package pgtext

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
)

// TestAppendValue checks the encoding rule of every built-in type OID the
// decoder handles, with values in the format the pinned session emits.
func TestAppendValue(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("\x00\x01\xfe\xff\x7f", 40)
	longHex := `\x` + strings.Repeat("0001feff7f", 40)
	cases := []struct {
		oid       uint32
		text      string
		want      string
		wantUnder string // want, for names that need a hint
	}{
		// integers
		{21, "-32768", "-32768", ""},
		{23, "2147483647", "2147483647", ""},
		// int8 is a JSON number past 2^53 too, as Debezium writes it
		{20, "-9223372036854775808", "-9223372036854775808", ""},
		{20, "9223372036854775807", "9223372036854775807", ""},
		{20, "9007199254740992", "9007199254740992", ""},
		{20, "-9007199254740992", "-9007199254740992", ""},
		{20, "9007199254740993", "9007199254740993", ""},
		{20, "123456789012345", "123456789012345", ""},
		{26, "4294967295", "4294967295", ""},
		{23, "0", "0", ""},
		{23, "abc", `"abc"`, "not a number"},
		{23, "007", `"007"`, "leading zeros"},
		{23, "", `""`, "empty"},
		{23, "-", `"-"`, "sign only"},
		// numeric keeps its text, scale included
		{1700, "12345.678900", `"12345.678900"`, ""},
		{1700, "3.50", `"3.50"`, ""},
		{1700, "NaN", `"NaN"`, ""},
		{1700, "-Infinity", `"-Infinity"`, ""},
		// floats
		{700, "3.1415927", "3.1415927", ""},
		{701, "0.1", "0.1", ""},
		{701, "1e+300", "1e+300", ""},
		{701, "1.2345678901234568e+17", "1.2345678901234568e+17", ""},
		{701, "-0", "-0", ""},
		{701, "NaN", `"NaN"`, ""},
		{701, "Infinity", `"Infinity"`, ""},
		{701, "-Infinity", `"-Infinity"`, ""},
		{701, "1.", `"1."`, "not JSON"},
		{701, ".5", `".5"`, "not JSON"},
		// bool
		{16, "t", "true", ""},
		{16, "f", "false", ""},
		{16, "yes", `"yes"`, "not pgoutput's form"},
		// strings
		{25, "a\"b\\c\nd\t\u2028", `"a\"b\\c\nd\t\u2028"`, ""},
		{1043, "héllo", `"héllo"`, ""},
		{1042, "ab   ", `"ab   "`, "padding kept"},
		{19, "nm", `"nm"`, ""},
		{18, "q", `"q"`, ""},
		{2950, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", `"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"`, ""},
		{869, "192.168.1.5/24", `"192.168.1.5/24"`, ""},
		{650, "10.0.0.0/8", `"10.0.0.0/8"`, ""},
		{790, "$12.34", `"$12.34"`, ""},
		{829, "08:00:2b:01:02:03", `"08:00:2b:01:02:03"`, ""},
		{142, "<a>x</a>", `"<a>x</a>"`, ""},
		{600, "(1,2)", `"(1,2)"`, "unlisted scalar"},
		{99999, "whatever", `"whatever"`, "unknown OID"},
		// json and jsonb: a string holding the JSON text (Debezium's
		// io.debezium.data.Json), so 'null'::jsonb is "null", not SQL NULL
		{114, `{"b": 1,   "a": [1,2]}`, `"{\"b\": 1,   \"a\": [1,2]}"`, ""},
		{3802, `{"a": 3, "b": 1}`, `"{\"a\": 3, \"b\": 1}"`, ""},
		{3802, `null`, `"null"`, "JSON null is not SQL NULL"},
		{3802, `12345678901234567890123`, `"12345678901234567890123"`, "precision kept"},
		{114, `{"a":`, `"{\"a\":"`, "invalid JSON"},
		{114, "\"\xff\"", `"\"\ufffd\""`, "invalid UTF-8"},
		// dates and times pass through
		{1082, "2024-02-29", `"2024-02-29"`, ""},
		{1082, "infinity", `"infinity"`, ""},
		{1082, "0001-01-01 BC", `"0001-01-01 BC"`, ""},
		{1083, "13:45:06.123456", `"13:45:06.123456"`, ""},
		{1266, "13:45:06+05:30", `"13:45:06+05:30"`, ""},
		{1186, "P1Y2M3DT4H5M6.7S", `"P1Y2M3DT4H5M6.7S"`, ""},
		// timestamps
		{1114, "2024-02-29 13:45:06.5", `"2024-02-29T13:45:06.500000"`, ""},
		{1114, "2024-02-29 13:45:06", `"2024-02-29T13:45:06.000000"`, ""},
		{1114, "2024-02-29 13:45:06.123456", `"2024-02-29T13:45:06.123456"`, ""},
		{1114, "0044-03-15 00:00:00 BC", `"0044-03-15 00:00:00 BC"`, ""},
		{1114, "infinity", `"infinity"`, ""},
		{1114, "10000-01-01 00:00:00", `"10000-01-01 00:00:00"`, "five-digit year"},
		{1114, "2024-02-29 13:45:06.1234567", `"2024-02-29 13:45:06.1234567"`, "seven digits"},
		{1114, "2024-02-29 13:45:06+00", `"2024-02-29 13:45:06+00"`, "offset on timestamp"},
		{1184, "2024-02-29 13:45:06.5+00", `"2024-02-29T13:45:06.500000Z"`, ""},
		{1184, "2024-02-29 13:45:06.5+05:30", `"2024-02-29T08:15:06.500000Z"`, "non-UTC session"},
		{1184, "2024-01-01 00:00:00-01", `"2024-01-01T01:00:00.000000Z"`, ""},
		{1184, "1900-01-01 00:00:00+00:19:32", `"1899-12-31T23:40:28.000000Z"`, "LMT offset"},
		{1184, "-infinity", `"-infinity"`, ""},
		{1184, "2024-02-29 13:45:06+00", `"2024-02-29T13:45:06.000000Z"`, "UTC, no fraction: copied"},
		{1184, "2024-02-29 13:45:06.12+00", `"2024-02-29T13:45:06.120000Z"`, "UTC, two digits"},
		{1184, "2024-02-29 13:45:06.654321+00:00", `"2024-02-29T13:45:06.654321Z"`, "UTC, six digits"},
		{1184, "2024-13-29 13:45:06+00", `"2024-13-29 13:45:06+00"`, "month 13 in UTC"},
		{1184, "2024-02-29 13:4x:06+00", `"2024-02-29 13:4x:06+00"`, "not a digit in UTC"},
		{1184, "0000-01-01 00:00:00+00", `"0000-01-01T00:00:00.000000Z"`, "year 0 in UTC, as formatted before"},
		{1184, "0044-03-15 00:00:00+00 BC", `"0044-03-15 00:00:00+00 BC"`, ""},
		{1184, "2024-02-29 13:45:06.5", `"2024-02-29 13:45:06.5"`, "missing offset"},
		{1184, "2024-13-29 13:45:06+00", `"2024-13-29 13:45:06+00"`, "month 13"},
		// bytea
		{17, `\xdeadbeef`, `"3q2+7w=="`, ""},
		{17, `\x`, `""`, ""},
		{17, longHex, `"` + base64.StdEncoding.EncodeToString([]byte(long)) + `"`, "several chunks"},
		{17, `\xzz`, `"\\xzz"`, "bad hex"},
		{17, `\336\255`, `"\\336\\255"`, "escape format"},
		// arrays
		{1009, `{a,"b c",NULL,"d\"e","","NULL","x\\y","{z}"}`, `["a","b c",null,"d\"e","","NULL","x\\y","{z}"]`, ""},
		{1007, `{{1,2},{3,4}}`, `[[1,2],[3,4]]`, ""},
		{1007, `[0:1]={1,2}`, `[1,2]`, ""},
		{1007, `[1:1][0:1]={{1,NULL}}`, `[[1,null]]`, ""},
		{1007, `{}`, `[]`, ""},
		{1000, `{t,f,NULL}`, `[true,false,null]`, ""},
		{1005, `{1,-2}`, `[1,-2]`, ""},
		{1016, `{1,9223372036854775807}`, `[1,9223372036854775807]`, ""},
		{1015, `{"a b",c}`, `["a b","c"]`, ""},
		{1014, `{"ab  ",x}`, `["ab  ","x"]`, ""},
		{1231, `{1.50,NaN}`, `["1.50","NaN"]`, ""},
		{1021, `{1.5,NaN}`, `[1.5,"NaN"]`, ""},
		{1022, `{-Infinity,1e+300}`, `["-Infinity",1e+300]`, ""},
		{2951, `{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}`, `["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"]`, ""},
		{3807, `{"{\"a\": 1}","[1, 2]",NULL}`, `["{\"a\": 1}","[1, 2]",null]`, ""},
		{199, `{"{\"k\":\"v\\\\w\"}"}`, `["{\"k\":\"v\\\\w\"}"]`, ""},
		{1182, `{2024-02-29,infinity}`, `["2024-02-29","infinity"]`, ""},
		{1115, `{"2024-02-29 13:45:06.5",infinity}`, `["2024-02-29T13:45:06.500000","infinity"]`, ""},
		{1185, `{"2024-02-29 13:45:06.5+00"}`, `["2024-02-29T13:45:06.500000Z"]`, ""},
		{1001, `{"\\xdead",NULL}`, `["3q0=",null]`, ""},
		{1020, `{(1,1),(0,0);(2,2),(1,1)}`, `["(1,1),(0,0)","(2,2),(1,1)"]`, "box uses ;"},
		{1009, `{a\,b}`, `["a,b"]`, "escaped bare element"},
		{1009, `{null,Null}`, `[null,null]`, "NULL in any case"},
		// malformed arrays become strings
		{1007, `{1,2`, `"{1,2"`, ""},
		{1007, `{{1},`, `"{{1},"`, ""},
		{1007, `[0:1]{1}`, `"[0:1]{1}"`, ""},
		{1007, `{1,,2}`, `"{1,,2}"`, ""},
		{1007, `{1}}`, `"{1}}"`, ""},
		{1009, `{"a}`, `"{\"a}"`, ""},
		{1009, `{a\}`, `"{a\\}"`, ""},
		{1009, `{a"b}`, `"{a\"b}"`, ""},
		{1007, `{{{{{{{1}}}}}}}`, `"{{{{{{{1}}}}}}}"`, "seven dimensions"},
		{1007, `{{{{{{1}}}}}}`, `[[[[[[1]]]]]]`, "six dimensions"},
		{1007, ``, `""`, ""},
	}
	var enc Encoder
	for _, c := range cases {
		rule, ok := BuiltinRule(c.oid)
		if !ok {
			rule = Rule{Kind: KindString}
		}
		got := string(enc.Append([]byte("prefix"), rule, []byte(c.text)))
		if got != "prefix"+c.want {
			t.Errorf("oid %d %q (%s): got %s, want %s", c.oid, c.text, c.wantUnder, strings.TrimPrefix(got, "prefix"), c.want)
		}
		if !json.Valid([]byte(c.want)) {
			t.Errorf("oid %d %q: want %s is not valid JSON", c.oid, c.text, c.want)
		}
	}
}

func TestBuiltinRuleByName(t *testing.T) {
	t.Parallel()
	cases := map[string]Rule{
		"int4":        {Kind: KindInt},
		"_int4":       {Kind: KindInt, Array: true, Delim: ','},
		"timestamptz": {Kind: KindTimestampTZ},
		"jsonb":       {Kind: KindJSON},
		"numeric":     {Kind: KindString},
		"_box":        {Kind: KindString, Array: true, Delim: ';'},
	}
	for name, want := range cases {
		if got, ok := RuleByName(name); !ok || got != want {
			t.Errorf("%s: got %+v %v, want %+v", name, got, ok, want)
		}
	}
	if _, ok := RuleByName("mood"); ok {
		t.Error("mood resolved as a built-in type")
	}
}

func TestIsJSONInt(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]bool{
		"0": true, "-0": true, "1": true, "9007199254740992": true, "9007199254740993": true,
		"-9223372036854775808": true, "01": false, "+1": false, "1.0": false, "": false, "-": false,
	} {
		if got := isJSONInt([]byte(s)); got != want {
			t.Errorf("%q: got %v, want %v", s, got, want)
		}
	}
}
