package transform

import (
	"context"
	"encoding/json"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/config"
)

// row builds a cdc.Row from name, encoded value pairs.
func row(kv ...string) cdc.Row {
	r := make(cdc.Row, 0, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		r = append(r, cdc.Field{Name: kv[i], Value: json.RawMessage(kv[i+1])})
	}
	return r
}

func insert(after cdc.Row) *cdc.Event {
	return &cdc.Event{Op: cdc.OpCreate, Schema: "public", Table: "contacts", Key: after[:1], After: after}
}

func update(before, after cdc.Row) *cdc.Event {
	return &cdc.Event{Op: cdc.OpUpdate, Schema: "public", Table: "contacts", Key: after[:1], Before: before, After: after}
}

func col(name string) config.Source { return config.ColumnSource(name) }
func cst(v any) config.Source       { return config.ConstSource(v) }
func ex(src string) config.Source   { return config.ExprSource(src) }

func mustNew(t testing.TB, spec Spec, src LookupSource) *Mapper {
	t.Helper()
	m, err := New(spec, src, zerolog.New(zerolog.NewTestWriter(t)))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return m
}

// countingSource is a LookupSource that counts the calls reaching it,
// over rows held in memory or a real source.
type countingSource struct {
	mu    sync.Mutex
	calls int
	rows  map[string]map[string]any // by the JSON of the key map
	next  LookupSource
}

func (s *countingSource) Lookup(ctx context.Context, table string, key map[string]any, columns []string) (map[string]any, error) {
	s.mu.Lock()
	s.calls++
	s.mu.Unlock()
	if s.next != nil {
		return s.next.Lookup(ctx, table, key, columns)
	}
	b, _ := json.Marshal(key)
	return s.rows[table+string(b)], nil
}

func (s *countingSource) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}
