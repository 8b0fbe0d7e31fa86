package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/syncstate"
)

// oddString returns a string built of what Postgres's array text form
// treats specially (quotes, backslashes, braces, commas, whitespace, the
// word NULL), multibyte characters and plain letters; when long may be,
// sometimes several kB (the key columns are indexed: their values fit
// a btree entry).
func oddString(r *rand.Rand, long bool) string {
	pieces := []string{`"`, `\`, `\\`, `\"`, `{`, `}`, `,`, ` `, "\t", "\n", "\r", "\v", "\f", `NULL`, `null`, `''`, `'`,
		`a`, `Z`, `0`, `ü`, `☃`, `𝄞`, `()`, `[]`, `=`, `$1`, `::text`}
	n := r.IntN(12)
	if long && r.IntN(10) == 0 {
		n = 2000 + r.IntN(4000) // several kB
	}
	var b strings.Builder
	for range n {
		b.WriteString(pieces[r.IntN(len(pieces))])
	}
	return b.String()
}

// Put sends its arrays in Postgres's text form, built by hand: any
// string made of what that form quotes or escapes, empty, NULL-like or
// long, comes back from Get as it was put, in every column, in one Put
// with many others.
func TestLinksPutTextFormRoundTripsAnyString(t *testing.T) {
	s, _ := openStore(t)
	ctx := context.Background()
	links := s.Links()
	r := rand.New(rand.NewPCG(1, 2))
	for round := range 8 {
		var put []syncstate.Link
		var refs []syncstate.LinkRef
		for i := range 40 {
			l := syncstate.Link{
				System:     "sys" + oddString(r, false),
				Object:     oddString(r, false),
				Table:      oddString(r, false),
				Key:        fmt.Sprintf("%d.%d", round, i) + oddString(r, false),
				ExternalID: fmt.Sprintf("ext%d.%d", round, i) + oddString(r, false),
				Version:    oddString(r, true),
				LSN:        cdc.LSN(r.IntN(1 << 20)), // below the server's WAL position: see TestLinkPositionFromAnotherClusterReadsAsNone
			}
			if r.IntN(2) == 0 {
				l.Base = map[string]any{oddString(r, false): oddString(r, true), "n": nil, "list": []any{oddString(r, true), true}}
			}
			l.Deleted = r.IntN(5) == 0
			put = append(put, l)
			refs = append(refs, syncstate.LinkRef{System: l.System, Object: l.Object, Table: l.Table, Key: l.Key})
		}
		if err := links.Put(ctx, put); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		got, err := links.Get(ctx, refs)
		if err != nil {
			t.Fatal(err)
		}
		for i, want := range put {
			g := got[refs[i]]
			if g == nil {
				t.Fatalf("round %d link %d (key %q): missing", round, i, want.Key)
			}
			if g.ExternalID != want.ExternalID || g.Version != want.Version || g.LSN != want.LSN || g.Deleted != want.Deleted {
				t.Fatalf("round %d link %d: got %+v, want %+v", round, i, *g, want)
			}
			if want.Deleted || want.Base == nil {
				continue
			}
			if len(g.Base) != len(want.Base) {
				t.Fatalf("round %d link %d: base %#v, want %#v", round, i, g.Base, want.Base)
			}
			for k, v := range want.Base {
				if fmt.Sprint(g.Base[k]) != fmt.Sprint(v) {
					t.Fatalf("round %d link %d: base[%q] = %#v, want %#v", round, i, k, g.Base[k], v)
				}
			}
		}
	}
}

// A NUL byte or invalid UTF-8, which text cannot hold, fails the Put,
// nothing written, instead of reaching the table changed. (In the base,
// JSON, invalid UTF-8 is replaced as encoding/json does; a NUL is
// refused by jsonb.)
func TestLinksPutRefusesWhatTextCannotHold(t *testing.T) {
	s, _ := openStore(t)
	ctx := context.Background()
	links := s.Links()
	for _, bad := range []string{"a\x00b", "a\xffb", "\xc3"} {
		for _, col := range []string{"key", "external id", "version", "base"} {
			if col == "base" && bad != "a\x00b" {
				continue // the base is JSON: invalid UTF-8 is replaced (U+FFFD), as encoding/json does
			}
			good := link(fmt.Sprintf(`{"id":"fine %q %s"}`, bad, col), fmt.Sprintf("fine %q %s", bad, col))
			l := link(`{"id":"bad"}`, "bad")
			switch col {
			case "key":
				l.Key = bad
			case "external id":
				l.ExternalID = bad
			case "version":
				l.Version = bad
			case "base":
				l.Base = map[string]any{"v": bad}
			}
			err := links.Put(ctx, []syncstate.Link{good, l})
			got, gerr := links.Get(ctx, []syncstate.LinkRef{ref(good.Key)})
			if gerr != nil {
				t.Fatal(gerr)
			}
			if err == nil {
				t.Errorf("%q in the %s: accepted", bad, col)
				continue
			}
			if len(got) != 0 {
				t.Errorf("%q in the %s: Put failed (%v) but wrote %d links", bad, col, err, len(got))
			}
		}
	}
}
