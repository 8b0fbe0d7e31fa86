package pgtext

import (
	"encoding/json"
	"testing"
)

// FuzzAppendValue checks that any text under any rule encodes to valid
// JSON.
func FuzzAppendValue(f *testing.F) {
	for _, s := range []string{"1", "-9223372036854775808", "NaN", "t", `{"a":1}`, "2024-02-29 13:45:06.5+00",
		`\xdead`, `{a,"b c",NULL}`, `[0:1]={{1,2},{3,4}}`, `{"{\"a\": 1}"}`, `{(1,1),(0,0);(2,2),(1,1)}`} {
		for kind := range uint8(KindBytea) + 1 {
			f.Add(kind, false, s)
			f.Add(kind, true, s)
		}
	}
	var enc Encoder
	f.Fuzz(func(t *testing.T, kind uint8, array bool, text string) {
		r := Rule{Kind: Kind(kind % (uint8(KindBytea) + 1)), Array: array, Delim: ','}
		if kind&0x80 != 0 {
			r.Delim = ';'
		}
		if out := enc.Append(nil, r, []byte(text)); !json.Valid(out) {
			t.Fatalf("rule %+v text %q: invalid JSON %s", r, text, out)
		}
	})
}
