package jsonvalue

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// decoderObject is what DecodeObject must agree with.
func decoderObject(raw []byte) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var m map[string]any
	err := d.Decode(&m)
	return m, err
}

var decodeObjectSeeds = []string{
	`{}`, ` {"a": 1} `, `{"a":1}x`, `{"a": "b", "c": [1, 2.5e3, -0, null, true, false, {}, []], "d": {"e": "f"}}`,
	`{"email": "a@example.com", "score": 9007199254740993, "tags": ["x"]}`,
	`{"q": "say \"hi\"\n\t\\ \/ \b\f\r"}`, `{"u": "\u00e9"}`, `{"s": "\ud800"}`, "{\"bad\": \"\xff\"}", "{\"ctl\": \"\x01\"}",
	`{"a":1,"a":2}`, `{"a":01}`, `{"a":1.}`, `{"a":-}`, `{"a":1e}`, `{"a":truex}`, `{"a":nul}`, `{"a" 1}`, `{"a":1,}`,
	`{,}`, `{"a":[1,]}`, `{"a":[1 2]}`, `{"a":1`, `{"a"`, `{`, `null`, `[1]`, `"x"`, `1`, ``, ` `, "\t{\r\n}",
	`{"a":` + strings.Repeat("[", 70) + strings.Repeat("]", 70) + `}`,
}

func TestDecodeObjectAgreesWithDecoder(t *testing.T) {
	t.Parallel()
	for _, raw := range decodeObjectSeeds {
		want, wantErr := decoderObject([]byte(raw))
		got, err := DecodeObject([]byte(raw))
		if (err != nil) != (wantErr != nil) || !reflect.DeepEqual(got, want) {
			t.Errorf("DecodeObject(%q) = %#v, %v; the decoder gives %#v, %v", raw, got, err, want, wantErr)
		}
	}
}

// FuzzDecodeObject holds DecodeObject to a json.Decoder with UseNumber on
// any input: the same map, or an error for both.
func FuzzDecodeObject(f *testing.F) {
	for _, s := range decodeObjectSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		want, wantErr := decoderObject(raw)
		got, err := DecodeObject(raw)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("DecodeObject(%q) error %v; the decoder's %v", raw, err, wantErr)
		}
		if err == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("DecodeObject(%q) = %#v; the decoder gives %#v", raw, got, want)
		}
	})
}

// A link's base as Postgres returns jsonb.
var benchBase = []byte(`{"id": 42, "city": "Lyon", "email": "a42@example.com", "phone": "+33 4 72 00 00 42", "score": 9007199254740993, "active": true, "last_name": "Martin", "first_name": "Anne", "tags": ["vip", "fr"]}`)

func BenchmarkDecodeObject(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeObject(benchBase); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeObjectDecoder(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decoderObject(benchBase); err != nil {
			b.Fatal(err)
		}
	}
}
