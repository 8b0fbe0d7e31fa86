package threeway

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/conflict"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func raw(s string) json.RawMessage { return json.RawMessage(s) }

func config(patched bool) *Config {
	return &Config{
		Pipeline: "crm-to-contacts",
		Policy:   conflict.Policy{Rules: []conflict.Rule{{Kind: conflict.KindMerge}, {Kind: conflict.KindManual}}},
		Columns:  map[string]string{"firstname": "first_name", "phone": "phone"},
		Patched:  patched,
	}
}

// heldOnce is a Held that counts its calls.
func heldOnce(row cdc.Row, err error, calls *int) Held {
	return func(context.Context) (cdc.Row, error) {
		*calls++
		return row, err
	}
}

func TestCompare(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	base := map[string]any{"firstname": "Ada", "phone": "1", "email": "a@x"}

	t.Run("fields changed on one side each merge", func(t *testing.T) {
		r := Record{Remote: conflict.Values{"firstname": raw(`"Augusta"`)}, RemoteAt: t0,
			Local: conflict.Values{"firstname": raw(`"Ada"`), "phone": raw(`"2"`)}, Base: base}
		in, d, err := config(false).Compare(ctx, "crm", r, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(d.Conflicts) != 0 || string(d.ToLocal["firstname"]) != `"Augusta"` || string(d.ToRemote["phone"]) != `"2"` {
			t.Fatalf("decision %+v", d)
		}
		if _, ok := in.Base["email"]; ok || !slices.Equal(in.Fields, []string{"firstname", "phone"}) {
			t.Fatalf("input compares more than the mapped columns: %+v", in)
		}
	})

	t.Run("a field changed on both sides conflicts", func(t *testing.T) {
		r := Record{Remote: conflict.Values{"phone": raw(`"3"`)}, Local: conflict.Values{"phone": raw(`"2"`)}, Base: base}
		_, d, err := config(false).Compare(ctx, "crm", r, nil)
		if err != nil || !slices.Equal(d.Conflicts, []string{"phone"}) || d.Resolved() {
			t.Fatalf("decision %+v, %v; want phone pending", d, err)
		}
	})

	// A change made before cdcd's last write reached the system was
	// overwritten by it: its fields' base is unknown, so both sides
	// changed them.
	late := Record{Remote: conflict.Values{"firstname": raw(`"Augusta"`)}, RemoteAt: t0,
		Local: conflict.Values{"firstname": raw(`"Ada"`)}, Base: base, Synced: t0.Add(time.Minute)}
	t.Run("an overwritten change conflicts", func(t *testing.T) {
		_, d, err := config(false).Compare(ctx, "crm", late, nil)
		if err != nil || !slices.Equal(d.Conflicts, []string{"firstname"}) {
			t.Fatalf("decision %+v, %v; want firstname in conflict", d, err)
		}
	})
	t.Run("with patches, a change the write did not carry survives", func(t *testing.T) {
		calls := 0
		_, d, err := config(true).Compare(ctx, "crm", late, heldOnce(cdc.Row{{Name: "firstname", Value: raw(`"Augusta"`)}}, nil, &calls))
		if err != nil || len(d.Conflicts) != 0 || string(d.ToLocal["firstname"]) != `"Augusta"` || calls != 1 {
			t.Fatalf("decision %+v, %v, %d reads; want Augusta applied after one read", d, err, calls)
		}
	})
	t.Run("with patches, a change the system no longer holds conflicts", func(t *testing.T) {
		calls := 0
		_, d, err := config(true).Compare(ctx, "crm", late, heldOnce(nil, nil, &calls)) // gone
		if err != nil || !slices.Equal(d.Conflicts, []string{"firstname"}) {
			t.Fatalf("decision %+v, %v; want firstname in conflict", d, err)
		}
	})
	t.Run("with patches and no way to read, the change survives", func(t *testing.T) {
		_, d, err := config(true).Compare(ctx, "crm", late, nil)
		if err != nil || len(d.Conflicts) != 0 {
			t.Fatalf("decision %+v, %v", d, err)
		}
	})
	t.Run("a failed read fails the comparison", func(t *testing.T) {
		calls := 0
		boom := errors.New("boom")
		if _, _, err := config(true).Compare(ctx, "crm", late, heldOnce(nil, boom, &calls)); !errors.Is(err, boom) {
			t.Fatalf("err %v, want the read's", err)
		}
	})
	t.Run("a change newer than the sync reads nothing", func(t *testing.T) {
		calls := 0
		r := late
		r.RemoteAt = t0.Add(2 * time.Minute)
		if _, d, err := config(true).Compare(ctx, "crm", r, heldOnce(nil, nil, &calls)); err != nil || calls != 0 || len(d.Conflicts) != 0 {
			t.Fatalf("decision %+v, %v, %d reads", d, err, calls)
		}
	})
}

func TestLocalChangesAndResolution(t *testing.T) {
	t.Parallel()
	c := config(false)
	d := conflict.Decision{
		ToLocal:   conflict.Values{"firstname": raw(`"Augusta"`)},
		Conflicts: []string{"phone"},
		Result:    conflict.Values{"phone": raw(`"3"`), "firstname": raw(`"Augusta"`)},
	}
	fields := map[string]any{"first_name": "Augusta", "phone": "9", "source": "crm"}
	got := c.LocalChanges(fields, d)
	if len(got) != 2 || got["first_name"] != "Augusta" || got["source"] != "crm" {
		t.Fatalf("local changes %v: want first_name and the column not compared", got)
	}
	got = c.Resolution(fields, d)
	if len(got) != 3 || got["phone"] != "3" {
		t.Fatalf("resolution %v: want the decided phone too", got)
	}
}
