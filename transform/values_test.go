package transform

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/cdcd-dev/cdcd/config"
)

// FuzzValueText holds valueText to decodeValue: the values of a row (the
// input split at 0x1f), added, sealed and decoded in turn, come back as
// decodeValue gives each, errors included.
func FuzzValueText(f *testing.F) {
	for _, s := range []string{
		"\"ada\"\x1f7\x1f-1.5e3\x1fnull\x1f\x1ftrue\x1f\"say \\\"hi\\\"\"\x1f{\"a\":[1,\"x\"]}\x1f\"\x1f\"\"\x1f01\x1f-",
		"\"bad \xff\"\x1f\"tab\t\"\x1f[]\x1f\"a\" \"b\"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		raws := bytes.Split(data, []byte{0x1f})
		var vt valueText
		for round := range 2 { // the second reuses vt's buffer
			for _, r := range raws {
				vt.add(r)
			}
			vt.seal()
			for _, r := range raws {
				want, wantErr := decodeValue(r)
				got, err := vt.decode(r)
				if (err != nil) != (wantErr != nil) || !reflect.DeepEqual(got, want) {
					t.Fatalf("round %d: decode(%q) = %#v, %v; decodeValue gives %#v, %v", round, r, got, err, want, wantErr)
				}
			}
		}
	})
}

// A record's fields stay as mapped when the mapper maps more changes.
func TestMappedFieldsOutliveTheNextMap(t *testing.T) {
	t.Parallel()
	m := mustNew(t, Spec{Map: map[string]config.Source{
		"email": col("email"), "id": col("id"), "note": col("note"), "phone": col("phone"), "missing": col("nope"),
		"name": ex(`after.first_name + " " + after.last_name`),
	}}, nil)
	ctx := context.Background()
	first, ok, err := m.Map(ctx, insert(contact))
	if !ok || err != nil {
		t.Fatal(ok, err)
	}
	want := `{"email":"ada@example.com","id":7,"name":"ada Lovelace","note":"say \"hi\"","phone":null}`
	for range 3 {
		other := row("id", `8`, "first_name", `"bob"`, "last_name", `"Other"`, "email", `"bob@example.org"`, "note", `"x"`, "phone", `"+1"`)
		if _, ok, err := m.Map(ctx, insert(other)); !ok || err != nil {
			t.Fatal(ok, err)
		}
	}
	if got, _ := json.Marshal(first.Fields); string(got) != want {
		t.Fatalf("first record's fields = %s, want %s", got, want)
	}
}
