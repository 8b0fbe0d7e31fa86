package jsonvalue

import (
	"bytes"
	"encoding/json"
	"testing"
)

// decodeAll decodes data the way cdcd decodes column values: numbers as
// json.Number.
func decodeAll(t testing.TB, data []byte) (any, bool) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var v any
	if d.Decode(&v) != nil {
		return nil, false
	}
	return v, true
}

func TestMarshalMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	values := []any{
		nil, true, false, "", "plain", "quote \" backslash \\ tab \t newline \n nul \x00 bell \a",
		"<b>&amp;</b>", "line\u2028para\u2029", "bad \xff utf-8 \xc3", "émoji 🙂",
		json.Number("0"), json.Number("-12.5e+3"), json.Number(""), 7, int64(-8), 1.5,
		map[string]any{"b": 1, "a": []any{"x", nil, map[string]any{}}, "<": json.Number("2")},
		[]any{}, map[string]any(nil), []any(nil),
		struct{ A int }{3}, // not a decoded value: through encoding/json
	}
	for _, v := range values {
		want, wantErr := json.Marshal(v)
		got, err := Marshal(v)
		if (err != nil) != (wantErr != nil) || !bytes.Equal(got, want) {
			t.Errorf("Marshal(%#v) = %s, %v; encoding/json gives %s, %v", v, got, err, want, wantErr)
		}
	}
	if _, err := Marshal(json.Number("1x")); err == nil {
		t.Error(`Marshal(json.Number("1x")) took an invalid number`)
	}
}

func FuzzMarshal(f *testing.F) {
	for _, s := range []string{`{"a":"<x>","b":[1,2.5e3,null,true],"c":{"d":"\u2028"}}`, `"\ud800"`, `-0.0e-0`, `[]`} {
		f.Add([]byte(s), s)
	}
	f.Fuzz(func(t *testing.T, data []byte, s string) {
		for _, v := range []any{s, json.Number(s), map[string]any{s: s}} {
			want, wantErr := json.Marshal(v)
			got, err := Marshal(v)
			if (err != nil) != (wantErr != nil) || !bytes.Equal(got, want) {
				t.Fatalf("Marshal(%#v) = %s, %v; encoding/json gives %s, %v", v, got, err, want, wantErr)
			}
		}
		v, ok := decodeAll(t, data)
		if !ok {
			return
		}
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("encoding/json cannot encode what it decoded: %v", err)
		}
		got, err := Marshal(v)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("Marshal(%s) = %s, %v; encoding/json gives %s", data, got, err, want)
		}
	})
}

func BenchmarkMarshalRow(b *testing.B) {
	row := map[string]any{"id": json.Number("1"), "name": "item 1", "sku": "SKU-000001", "qty": json.Number("1"),
		"price": json.Number("1.5"), "active": true, "updated_at": "2026-12-01T12:00:00.000000Z", "note": "a note about item 1"}
	b.Run("jsonvalue", func(b *testing.B) {
		for b.Loop() {
			_, _ = Marshal(row)
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		for b.Loop() {
			_, _ = json.Marshal(row)
		}
	})
}
