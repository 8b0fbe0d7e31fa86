package http

import (
	"strings"
	"testing"
)

func TestExtractID(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		body, path, want string
	}{
		{`{"id":"abc"}`, "id", "abc"},
		{` {"id": 123} `, "id", "123"},
		{`{"id":-1.5e3}`, "id", "-1.5e3"},
		{`{"id":true}`, "id", "true"},
		{`{"id":null}`, "id", ""},
		{`{"id":{"a":1}}`, "id", ""},
		{`{"id":[1]}`, "id", ""},
		{`{"x":{"id":"no"},"id":"yes"}`, "id", "yes"},
		{`{"id":"first","id":"last"}`, "id", "last"},
		{`{"data":{"id":"n1"}}`, "data.id", "n1"},
		{`{"data":{"id":"n1"},"data":{"other":1}}`, "data.id", ""},
		{`{"data":"x"}`, "data.id", ""},
		{`{"id":"a\"b\u00e9"}`, "id", `a"bé`},
		{`{"i\u0064":"escaped key"}`, "id", "escaped key"},
		{`{"id":"1"} trailing`, "id", "1"},
		{`{"id":"1"`, "id", ""},
		{`{"id":01}`, "id", ""},
		{`[{"id":"1"}]`, "id", ""},
		{`"id"`, "id", ""},
		{``, "id", ""},
		{`{"id":"1"}`, "", ""},
	} {
		var path []string
		if c.path != "" {
			path = strings.Split(c.path, ".")
		}
		if got := extractID([]byte(c.body), path); got != c.want {
			t.Errorf("extractID(%s, %q) = %q, want %q", c.body, c.path, got, c.want)
		}
	}
}

// FuzzExtractID checks that reading the id in place finds what decoding
// the body finds.
func FuzzExtractID(f *testing.F) {
	for _, s := range []string{`{"id":"abc"}`, `{"data":{"id":12}}`, `{"id":"a\"b","id":true}`, `{"x":[{"id":1}],"id":null}`, "{\"id\":\"\xff\"}"} {
		f.Add([]byte(s), "id")
		f.Add([]byte(s), "data.id")
	}
	f.Fuzz(func(t *testing.T, body []byte, path string) {
		p := strings.Split(path, ".")
		if got, want := extractID(body, p), decodeID(body, p); got != want {
			t.Fatalf("extractID(%q, %q) = %q, decoding gives %q", body, path, got, want)
		}
	})
}
