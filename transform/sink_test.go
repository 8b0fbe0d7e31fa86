package transform

import (
	"context"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/config"
)

type captureSink struct{ got []cdc.Event }

func (s *captureSink) Write(_ context.Context, events []cdc.Event) error {
	for _, e := range events {
		e.Before, e.After = append(cdc.Row(nil), e.Before...), append(cdc.Row(nil), e.After...)
		s.got = append(s.got, e)
	}
	return nil
}
func (s *captureSink) Close(context.Context) error { return nil }

// Regression: file and stdout pipelines wrote every change, with every
// column, whatever their ops, filter and columns said, truncates included.
func TestSelect(t *testing.T) {
	t.Parallel()
	m := mustNew(t, Spec{
		Ops: []string{config.OpCreate, config.OpDelete}, Filter: `op == "delete" || after.active`,
		Columns: config.Columns{Deny: []string{"password_hash", "id"}},
	}, nil)
	var out captureSink
	s := Select(&out, m, zerolog.New(zerolog.NewTestWriter(t)))
	events := []cdc.Event{
		*insert(row("id", "1", "email", `"a@x"`, "password_hash", `"h1"`, "active", "true")),
		*insert(row("id", "2", "email", `"b@x"`, "password_hash", `"h2"`, "active", "false")),
		*update(row("id", "1"), row("id", "1", "email", `"a2@x"`, "password_hash", `"h3"`, "active", "true")),
		{Op: cdc.OpTruncate, Schema: "public", Table: "contacts"},
		{Op: cdc.OpDelete, Schema: "public", Table: "contacts", Key: row("id", "1"),
			Before: row("id", "1", "email", `"a2@x"`, "password_hash", `"h3"`, "active", "true")},
		*insert(row("id", "3", "email", `"c@x"`, "password_hash", `"h4"`, "active", `"yes"`)), // the filter fails on it
	}
	events[0].Unchanged = []string{"password_hash"}
	if err := s.Write(context.Background(), events); err != nil {
		t.Fatal(err)
	}
	if len(out.got) != 2 {
		t.Fatalf("wrote %d changes, want the first insert and the delete: %+v", len(out.got), out.got)
	}
	ins, del := out.got[0], out.got[1]
	if ins.Op != cdc.OpCreate || len(ins.After) != 3 || ins.After[0].Name != "id" || ins.After[1].Name != "email" || ins.After[2].Name != "active" ||
		len(ins.Unchanged) != 0 || string(ins.Key[0].Value) != "1" {
		t.Errorf("insert written as %+v", ins)
	}
	if del.Op != cdc.OpDelete || len(del.Before) != 3 || del.Before[2].Name != "active" {
		t.Errorf("delete written as %+v", del)
	}
	// The events handed to Select are not changed: other routes share them.
	if len(events[0].After) != 4 || len(events[0].Unchanged) != 1 {
		t.Errorf("the bus's event changed: %+v", events[0])
	}
}

// A pipeline without a columns rule that takes every change of a batch
// hands the sink the batch as it came; one that leaves a change out hands
// it the others, in order.
func TestSelectPassesABatchTakenWhole(t *testing.T) {
	t.Parallel()
	m := mustNew(t, Spec{Ops: []string{config.OpCreate}}, nil)
	var out keepSink
	s := Select(&out, m, zerolog.Nop())
	events := []cdc.Event{*insert(row("id", "1")), *insert(row("id", "2")), *insert(row("id", "3"))}
	if err := s.Write(context.Background(), events); err != nil {
		t.Fatal(err)
	}
	if len(out.got) != 3 || out.first != &events[0] {
		t.Fatalf("a batch taken whole reached the sink as %d events, copied %v", len(out.got), out.first != &events[0])
	}
	for _, drop := range []int{0, 1, 2} {
		events := []cdc.Event{*insert(row("id", "1")), *insert(row("id", "2")), *insert(row("id", "3"))}
		events[drop].Op = cdc.OpDelete
		if err := s.Write(context.Background(), events); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range out.got {
			got = append(got, string(e.Key[0].Value))
		}
		want := []string{"1", "2", "3"}
		want = append(want[:drop:drop], want[drop+1:]...)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("delete %d left out: the sink got %v, want %v", drop, got, want)
		}
	}
}

// keepSink keeps a copy of the last batch it was handed, and where that
// batch began.
type keepSink struct {
	got   []cdc.Event
	first *cdc.Event
}

func (s *keepSink) Write(_ context.Context, events []cdc.Event) error {
	s.got, s.first = append([]cdc.Event(nil), events...), &events[0]
	return nil
}
func (s *keepSink) Close(context.Context) error { return nil }

// A lookup that fails is retried: Write fails and writes nothing.
func TestSelectLookupFailure(t *testing.T) {
	t.Parallel()
	m := mustNew(t, Spec{
		Filter:  "lookup.c.ok",
		Lookups: []*config.Lookup{{Name: "c", Table: "public.customers", Key: map[string]string{"id": "after.id"}, Columns: []string{"ok"}}},
	}, failingSource{})
	var out captureSink
	s := Select(&out, m, zerolog.Nop())
	if err := s.Write(context.Background(), []cdc.Event{*insert(row("id", "1"))}); err == nil || len(out.got) != 0 {
		t.Fatalf("Write = %v, wrote %d", err, len(out.got))
	}
}

type batchingSink struct{ captureSink }

func (*batchingSink) MaxBatch() int { return 8192 }

// The bus sizes a selected sink's batches by the sink it wraps.
func TestSelectKeepsTheSinksBatchSize(t *testing.T) {
	t.Parallel()
	m := mustNew(t, Spec{}, nil)
	if got := Select(&batchingSink{}, m, zerolog.Nop()).(cdc.Batcher).MaxBatch(); got != 8192 {
		t.Fatalf("MaxBatch of a selected batching sink: %d", got)
	}
	if got := Select(&captureSink{}, m, zerolog.Nop()).(cdc.Batcher).MaxBatch(); got != 0 {
		t.Fatalf("MaxBatch of a selected plain sink: %d, want 0 (the bus's)", got)
	}
}

// BenchmarkSelectChunk writes a backfill chunk's worth of changes through
// a pipeline that takes them all.
func BenchmarkSelectChunk(b *testing.B) {
	m, err := New(Spec{}, nil, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	s := Select(discardSink{}, m, zerolog.Nop())
	events := make([]cdc.Event, 10000)
	for i := range events {
		events[i] = *insert(row("id", "1", "name", `"x"`))
		events[i].Op = cdc.OpRead
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Write(context.Background(), events); err != nil {
			b.Fatal(err)
		}
	}
}

type discardSink struct{}

func (discardSink) Write(context.Context, []cdc.Event) error { return nil }
func (discardSink) Close(context.Context) error              { return nil }

type forgetfulSink struct{ captureSink }

func (*forgetfulSink) ForgetsEvents() bool { return true }

// The wrapper forgets its events as the sink it wraps does (cdc.Forgetful):
// what it copies, it clears.
func TestSelectForgetsAsItsSink(t *testing.T) {
	t.Parallel()
	m := mustNew(t, Spec{}, nil)
	if cdc.Forgets(Select(&captureSink{}, m, zerolog.Nop())) {
		t.Error("a sink that keeps its events is taken to forget them")
	}
	if !cdc.Forgets(Select(&forgetfulSink{}, m, zerolog.Nop())) {
		t.Error("a sink that forgets its events is taken to keep them")
	}
}
