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
