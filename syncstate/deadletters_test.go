package syncstate

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCutError(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, text string
		limit      int
		want       string
	}{
		{"short", "400 Bad Request", 64, "400 Bad Request"},
		{"exactly the limit", strings.Repeat("x", 64), 64, strings.Repeat("x", 64)},
		{"long", strings.Repeat("x", 100), 64, strings.Repeat("x", 64-len(" … [cut: 100 bytes in all]")) + " … [cut: 100 bytes in all]"},
		// The cut falls inside "é" (2 bytes): it goes back to its start.
		{"at a character", strings.Repeat("é", 50), 65, strings.Repeat("é", 18) + " … [cut: 100 bytes in all]"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := CutError(tt.text, tt.limit)
			if got != tt.want || len(got) > tt.limit || !utf8.ValidString(got) {
				t.Fatalf("CutError = %q (%d bytes), want %q", got, len(got), tt.want)
			}
		})
	}
}
