package httpapi

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	s := New(t, Options{})
	send := func(body string) (int, string, string) {
		req, _ := http.NewRequest("POST", s.URL+"/orders", strings.NewReader(body))
		req.Header.Set("Idempotency-Key", "k1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header.Get("Idempotent-Replayed")
	}
	st1, b1, _ := send(`{"sku":"a"}`)
	st2, b2, replayed := send(`{"sku":"a"}`)
	if st1 != 201 || st2 != 201 || b1 != b2 || replayed != "true" {
		t.Fatalf("replay: %d %s / %d %s %q", st1, b1, st2, b2, replayed)
	}
	if st, _, _ := send(`{"sku":"b"}`); st != http.StatusUnprocessableEntity {
		t.Fatalf("key reused with another body: %d, want 422", st)
	}
	if s.Effects() != 1 || len(s.Resources()) != 1 {
		t.Fatalf("effects %d, resources %v", s.Effects(), s.Resources())
	}
}
