package cdc

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// DecodeValue agrees with a json.Decoder using UseNumber, fast path or not.
func TestDecodeValueAgreesWithDecoder(t *testing.T) {
	for _, raw := range []string{
		`"plain"`, `""`, `"with \"quote\""`, `"tab\t"`, "\"bad \xff utf8\"", `"é"`, `"unterminated`,
		`0`, `-0`, `12`, `-12.50`, `1e10`, `1E-3`, `01`, `1.`, `-`, `.5`, `1e`, `123456789012345678901234567890`,
		`null`, `true`, `false`, `nul`, `{"a":1}`, `[1,"x"]`, ` "space"`, `"a" "b"`, `1 2`, ``,
	} {
		want, wantErr := func() (any, error) {
			d := json.NewDecoder(bytes.NewReader([]byte(raw)))
			d.UseNumber()
			var v any
			err := d.Decode(&v)
			return v, err
		}()
		got, err := DecodeValue([]byte(raw))
		if (err != nil) != (wantErr != nil) || !reflect.DeepEqual(got, want) {
			t.Errorf("DecodeValue(%q) = %#v, %v; the decoder gives %#v, %v", raw, got, err, want, wantErr)
		}
	}
}

// FuzzDecodeValue holds DecodeValue to a json.Decoder with UseNumber on
// any input: the same value (numbers as their exact text, strings with
// escapes and invalid UTF-8 as the Decoder reads them) or an error for both.
func FuzzDecodeValue(f *testing.F) {
	for _, s := range []string{
		`"plain"`, `"esc\u00e9\n"`, "\"nul\x00\"", "\"bad \xff\"", "\"\xed\xa0\x80\"", `"\ud800"`,
		`-0`, `1e400`, `-12.50e+07`, `123456789012345678901234567890`, `0.1000000000000000055511151231257827`,
		`01`, `1.`, `+1`, `null`, `true`, `false`, `nul`, `{"a":[1,"x"]}`, ` 1`, `1 `, `"a"x`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		var want any
		wantErr := d.Decode(&want)
		got, err := DecodeValue(raw)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("DecodeValue(%q) error %v; the decoder's %v", raw, err, wantErr)
		}
		if err == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("DecodeValue(%q) = %#v; the decoder gives %#v", raw, got, want)
		}
	})
}
