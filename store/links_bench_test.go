package store

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/cdcd-dev/cdcd/syncstate"
)

// BenchmarkLinksGet reads a batch of 100 links with bases like a
// contact's, as a pipeline does before delivering the batch.
func BenchmarkLinksGet(b *testing.B) {
	s, _ := openStore(b)
	ctx := context.Background()
	const n = 100
	links, refs := make([]syncstate.Link, n), make([]syncstate.LinkRef, n)
	for i := range links {
		key := fmt.Sprintf(`{"id":%d}`, i)
		links[i] = link(key, fmt.Sprint(900+i))
		links[i].Base = map[string]any{"id": json.Number(fmt.Sprint(i)), "email": fmt.Sprintf("a%d@example.com", i),
			"first_name": "Anne", "last_name": "Martin", "city": "Lyon", "score": json.Number("9007199254740993"), "active": true}
		refs[i] = ref(key)
	}
	if err := s.Links().Put(ctx, links); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		got, err := s.Links().Get(ctx, refs)
		if err != nil || len(got) != n {
			b.Fatal(len(got), err)
		}
	}
}
