package delivery_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/cdc/cdctest"
	"github.com/cdcd-dev/cdcd/delivery"
	"github.com/cdcd-dev/cdcd/store"
	"github.com/cdcd-dev/cdcd/syncstate"
)

// versionWriter answers each record with an external id and the version
// versions holds for its key.
type versionWriter struct{ versions map[string]string }

func (w versionWriter) Write(_ context.Context, recs []delivery.Record) ([]delivery.Result, error) {
	out := make([]delivery.Result, len(recs))
	for i, r := range recs {
		out[i] = delivery.Result{ExternalID: "ext-" + r.Key, Version: w.versions[r.Key]}
	}
	return out, nil
}

func (versionWriter) MaxBatch() int { return 10 }

func (versionWriter) Close(context.Context) error { return nil }

// A version the system answers that text cannot hold (a NUL, invalid
// UTF-8) is not stored: the record is linked without one, as to a
// system that reports none, and the other records of its group are
// linked with theirs. Stored, it failed the group's links in Postgres
// at every try: the pipeline's Write never returned.
func TestVersionTextCannotHoldIsNotStored(t *testing.T) {
	pg := cdctest.StartPostgres(t)
	ctx := context.Background()
	st, err := store.Open(ctx, pg.CreateDB(t, "versions"), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	events := []cdc.Event{ev(1, 0, 1, cdc.OpCreate, "a=1"), ev(1, 1, 2, cdc.OpCreate, "a=2"), ev(1, 2, 3, cdc.OpCreate, "a=3")}
	keys := make([]string, len(events))
	for i := range events {
		keys[i] = string(cdc.AppendKey(nil, &events[i]))
	}
	w := versionWriter{versions: map[string]string{keys[0]: "2026-01-02T03:04:05Z", keys[1]: "2026\x00", keys[2]: "v\xff"}}
	p, err := delivery.NewPipeline(delivery.PipelineConfig{Name: "contacts-to-crm", System: "crm", Object: "contacts",
		MaxAttempts: 2, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond},
		&mapper{}, w, delivery.Stores{Links: st.Links(), DeadLetters: st.DeadLetters(), Audit: st.Audit(), Tx: st.InTx},
		zerolog.New(zerolog.NewTestWriter(t)), nil)
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := p.Write(wctx, events); err != nil {
		t.Fatalf("Write: %v", err)
	}
	refs := make([]syncstate.LinkRef, len(keys))
	for i, k := range keys {
		refs[i] = syncstate.LinkRef{System: "crm", Object: "contacts", Table: "public.contacts", Key: k}
	}
	got, err := st.Links().Get(ctx, refs)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"2026-01-02T03:04:05Z", "", ""} {
		l := got[refs[i]]
		if l == nil || l.ExternalID != "ext-"+keys[i] || l.Version != want {
			t.Errorf("record %d: link %s, want ext-%s version %q", i, fmt.Sprint(l), keys[i], want)
		}
	}
}
