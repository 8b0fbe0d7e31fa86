package store

import (
	"context"
	"testing"

	"github.com/cdcd-dev/cdcd/syncstate"
)

func TestPendingCreates(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t)
	ctx := context.Background()
	p := s.PendingCreates()
	a := syncstate.LinkRef{System: "crm", Object: "contacts", Table: "public.contacts", Key: `{"id":1}`}
	b := syncstate.LinkRef{System: "crm", Object: "contacts", Table: "public.contacts", Key: `{"id":2}`}
	other := syncstate.LinkRef{System: "erp", Object: "contacts", Table: "public.contacts", Key: `{"id":1}`}
	if err := p.Begin(ctx, []syncstate.LinkRef{a, b}); err != nil {
		t.Fatal(err)
	}
	if err := p.Begin(ctx, []syncstate.LinkRef{a}); err != nil {
		t.Fatalf("begin again: %v", err)
	}
	got, err := p.Pending(ctx, []syncstate.LinkRef{a, b, other})
	if err != nil || len(got) != 2 || !got[a] || !got[b] {
		t.Fatalf("pending %v, %v; want a and b", got, err)
	}
	if err := p.Settle(ctx, []syncstate.LinkRef{a, other}); err != nil {
		t.Fatal(err)
	}
	got, err = p.Pending(ctx, []syncstate.LinkRef{a, b})
	if err != nil || len(got) != 1 || !got[b] {
		t.Fatalf("after settling a: %v, %v; want b", got, err)
	}
}
