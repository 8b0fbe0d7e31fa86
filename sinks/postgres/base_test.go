package postgres

import (
	"encoding/json"
	"reflect"
	"testing"
)

// A link's base is written as encoding/json would write it: the same
// values once decoded, and an error for a value that is no JSON.
func TestEncodeBaseAsJSON(t *testing.T) {
	t.Parallel()
	base := map[string]any{
		"name": json.RawMessage(`"Ann <a&b>"`), "score": json.RawMessage(` 42 `), "none": json.RawMessage(nil),
		"obj": json.RawMessage(`{"b": [1, "x"], "a": null}`), "kept": "old \"value\"", "num": json.Number("1.50"),
		"nested": map[string]any{"k": []any{true, nil}}, `we"ird`: json.RawMessage(`"é\u0001"`),
	}
	got, err := encodeBase(base)
	if err != nil {
		t.Fatal(err)
	}
	want, err := json.Marshal(base)
	if err != nil {
		t.Fatal(err)
	}
	var a, b any
	if err := json.Unmarshal(got, &a); err != nil {
		t.Fatalf("%s: %v", got, err)
	}
	_ = json.Unmarshal(want, &b)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("encoded %s, encoding/json writes %s", got, want)
	}
	if _, err := encodeBase(map[string]any{"bad": json.RawMessage(`{"a":`)}); err == nil {
		t.Fatal("a value that is no JSON was encoded")
	}
}
