package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/cdc/cdctest"
	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/delivery"
	"github.com/cdcd-dev/cdcd/echo"
	"github.com/cdcd-dev/cdcd/syncapi"
)

// crmMapper maps a CRM contact (email, firstname) to local columns.
type crmMapper struct{}

func (crmMapper) Map(_ context.Context, e *cdc.Event) (syncapi.Record, bool, error) {
	fields := map[string]any{}
	for _, f := range e.After {
		var v any
		if err := json.Unmarshal(f.Value, &v); err != nil {
			return syncapi.Record{}, false, err
		}
		switch f.Name {
		case "email":
			fields["email"] = v
		case "firstname":
			fields["name"] = v
		case "phone":
			fields["phone"] = v
		case "wait":
			fields["wait"] = v
		}
	}
	return syncapi.Record{Fields: fields}, true, nil
}

// crmRecord is the record the inbound pipeline makes of a CRM change.
func crmRecord(op cdc.Op, sec int, id, crmID string, partial bool, after ...string) syncapi.Record {
	e := &cdc.Event{Op: op, Source: "crm", Schema: "crm", Table: "contacts",
		Key:        cdc.Row{{Name: "id", Value: json.RawMessage(`"` + crmID + `"`)}},
		CommitTime: t0.Add(timeSec(sec)), DeliveryID: id, Partial: partial}
	for i := 0; i+1 < len(after); i += 2 {
		e.After = append(e.After, cdc.Field{Name: after[i], Value: json.RawMessage(after[i+1])})
	}
	r, _, _ := crmMapper{}.Map(context.Background(), e)
	r.Op, r.Object, r.Event, r.Key = op, "contacts", e, string(cdc.AppendKey(nil, e))
	return r
}

// fetcher serves CRM records from a map and keeps the ids of each call.
type fetcher struct {
	mu      sync.Mutex
	records map[string]cdc.Row
	calls   [][]string
	fail    error           // fails every call
	broken  map[string]bool // ids that cannot be read
}

func (f *fetcher) Fetch(_ context.Context, object string, ids, _ []string) (map[string]cdc.Row, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, slices.Clone(ids))
	if f.fail != nil {
		return nil, f.fail
	}
	out := map[string]cdc.Row{}
	var err error
	for _, id := range ids {
		if f.broken[id] {
			err = cdc.RetryAfter(fmt.Errorf("read %s %s: 502", object, id), 0)
			continue
		}
		if r, ok := f.records[id]; ok {
			out[id] = r
		}
	}
	return out, err
}

func TestInbound(t *testing.T) {
	pg := cdctest.StartPostgres(t)
	n := 0
	setup := func(t *testing.T, in Inbound) (*Writer, string) {
		n++
		name := fmt.Sprintf("in%d", n)
		url := pg.CreateDB(t, name)
		pg.Exec(t, name, contactsDDL)
		migrate(t, url)
		w, err := New("crm", testConfig(url), in, config.Env{Log: zerolog.New(zerolog.NewTestWriter(t))})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { w.Close(context.Background()) })
		return w, url
	}
	linkOf := func(t *testing.T, url, crmID string) (key, base string) {
		t.Helper()
		conn, err := pgx.Connect(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		err = conn.QueryRow(context.Background(), `SELECT local_key, base::text FROM cdcd.links
			WHERE system = 'crm' AND object = 'contacts' AND external_id = $1`, crmID).Scan(&key, &base)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			t.Fatal(err)
		}
		return key, base
	}

	// Each change is judged on its own: a user's change followed, in the
	// same batch, by an echo of cdcd's own write must not be folded into
	// the echo and dropped with it.
	t.Run("changes of one record are never coalesced", func(t *testing.T) {
		w, url := setup(t, Inbound{OwnWrite: func(h string) bool { return h == "INTEGRATION/7" }})
		if ec, ok := any(w).(syncapi.EveryChange); !ok || !ec.EveryChange() {
			t.Fatal("the writer lets the pipeline coalesce")
		}
		p, err := delivery.NewPipeline(delivery.PipelineConfig{Name: "crm-to-contacts", System: "public.contacts", Object: "contacts", Coalesce: true},
			crmMapper{}, w, delivery.Stores{}, zerolog.Nop(), nil)
		if err != nil {
			t.Fatal(err)
		}
		event := func(id, hint string, after ...string) cdc.Event {
			e := crmRecord(cdc.OpUpdate, 1, id, "512", false, after...).Event
			e.OriginHint = hint
			return *e
		}
		err = p.Write(context.Background(), []cdc.Event{
			event("u1", "CRM_UI", "email", `"a@x"`, "firstname", `"Genuine"`),
			event("u2", "INTEGRATION/7", "email", `"a@x"`),
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := row(t, url, "a@x"); got == nil || got["name"] != "Genuine" {
			t.Fatalf("the user's change was lost with the echo after it: row %v", got)
		}
	})

	t.Run("a linked record takes partial changes without its match column", func(t *testing.T) {
		w, url := setup(t, Inbound{})
		write(t, w, crmRecord(cdc.OpCreate, 1, "d1", "512", false, "email", `"a@x"`, "firstname", `"Ann"`))
		if key, base := linkOf(t, url, "512"); key != `{"id":1}` || base != `{"email": "a@x", "firstname": "Ann"}` {
			t.Fatalf("link key %s base %s", key, base)
		}
		res := write(t, w, crmRecord(cdc.OpUpdate, 2, "d2", "512", true, "firstname", `"Anne"`))
		if res[0].Err != nil || row(t, url, "a@x")["name"] != "Anne" {
			t.Fatalf("partial update: %v, row %v", res[0].Err, row(t, url, "a@x"))
		}
		if _, base := linkOf(t, url, "512"); base != `{"email": "a@x", "firstname": "Anne"}` {
			t.Fatalf("base after the partial update: %s", base)
		}
		// The email changes on the CRM side: the link still finds the row.
		write(t, w, crmRecord(cdc.OpUpdate, 3, "d3", "512", true, "email", `"ann@x"`))
		if got := row(t, url, "ann@x"); got == nil || got["name"] != "Anne" {
			t.Fatalf("email change moved the record: %v", got)
		}
		write(t, w, crmRecord(cdc.OpDelete, 4, "d4", "512", false))
		if row(t, url, "ann@x") != nil {
			t.Fatal("delete of a linked record left the row")
		}
		if key, _ := linkOf(t, url, "512"); key != "" {
			t.Fatalf("link kept after the record was deleted: %s", key)
		}
	})

	// Regression: HubSpot sends one webhook per changed property and does
	// not order them. The firstname edit's webhook, late, came after the
	// one of a later phone edit and was dropped as older than the record:
	// HubSpot kept the new name, the local row the old one, and nothing
	// recorded why. An older change is stale only in the fields a later
	// change carried.
	t.Run("a late change of one field applies after a later change of another", func(t *testing.T) {
		w, url := setup(t, Inbound{})
		write(t, w, crmRecord(cdc.OpCreate, 1, "d1", "512", false, "email", `"a@x"`, "firstname", `"Ada"`, "phone", `"1"`))
		write(t, w, crmRecord(cdc.OpUpdate, 4, "d4", "512", true, "phone", `"2"`))
		write(t, w, crmRecord(cdc.OpUpdate, 3, "d3", "512", true, "firstname", `"Bea"`))
		if got := row(t, url, "a@x"); got["name"] != "Bea" || got["phone"] != "2" {
			t.Fatalf("after the late firstname change: %v, want Bea and phone 2", got)
		}
		// The link keeps the version of the later change: HubSpot's
		// record is known as of then.
		var version string
		conn, err := pgx.Connect(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		if err := conn.QueryRow(context.Background(), `SELECT version FROM cdcd.links WHERE external_id = '512'`).Scan(&version); err != nil {
			t.Fatal(err)
		}
		if want := t0.Add(timeSec(4)).Format(time.RFC3339Nano); version != want {
			t.Fatalf("link version %s, want %s", version, want)
		}
		// Older still, and of a field a later change carried: stale.
		res := write(t, w, crmRecord(cdc.OpUpdate, 2, "d2", "512", true, "firstname", `"Cy"`, "phone", `"0"`))
		if got := row(t, url, "a@x"); res[0].Err != nil || got["name"] != "Bea" || got["phone"] != "2" {
			t.Fatalf("an older change overwrote later ones: %v (%v)", got, res[0].Err)
		}
		// A full change older than the phone's carries the name it had.
		write(t, w, crmRecord(cdc.OpUpdate, 3, "d3b", "512", false, "email", `"a@x"`, "firstname", `"Di"`, "phone", `"9"`))
		if got := row(t, url, "a@x"); got["name"] != "Di" || got["phone"] != "2" {
			t.Fatalf("after an older full change: %v, want Di and phone 2", got)
		}
	})

	t.Run("echoes of cdcd's own writes change nothing and are counted by layer", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		counter, err := echo.NewCounter(reg)
		if err != nil {
			t.Fatal(err)
		}
		w, url := setup(t, Inbound{Echoes: counter,
			OwnWrite: func(h string) bool { return h == "INTEGRATION/7" }})
		write(t, w, crmRecord(cdc.OpCreate, 1, "d1", "9", false, "email", `"b@x"`, "firstname", `"Bo"`))
		pg.Exec(t, "in"+fmt.Sprint(n), `UPDATE contacts SET name = 'local edit' WHERE email = 'b@x'`)

		// Same values as the base: nothing new.
		write(t, w, crmRecord(cdc.OpUpdate, 2, "d2", "9", true, "firstname", `"Bo"`))
		// cdcd wrote "Bob" then "Bobby" (another process may have: the
		// writes are shared); the late webhook for "Bob" is known.
		pg.Exec(t, "in"+fmt.Sprint(n), `INSERT INTO cdcd.recent_writes (system, object, external_id, fields)
			VALUES ('crm', 'contacts', '9', '{"firstname": "Bob"}'), ('crm', 'contacts', '9', '{"firstname": "Bobby"}')`)
		write(t, w, crmRecord(cdc.OpUpdate, 3, "d3", "9", true, "firstname", `"Bob"`))
		// The vendor says cdcd's own client made it, and the change holds
		// nothing else: it is not even read back.
		hinted := crmRecord(cdc.OpUpdate, 4, "d4", "9", true)
		hinted.Event.OriginHint, hinted.Event.Refetch = "INTEGRATION/7", true
		write(t, w, hinted)
		if got := row(t, url, "b@x")["name"]; got != "local edit" {
			t.Fatalf("an echo was applied: name %q", got)
		}
		for layer, want := range map[string]float64{echo.LayerBase: 1, echo.LayerRecent: 1, echo.LayerHint: 1} {
			if got := echoes(t, reg, layer); got != want {
				t.Errorf("layer %s: %v echoes, want %v", layer, got, want)
			}
		}
		// A real change still applies.
		write(t, w, crmRecord(cdc.OpUpdate, 5, "d5", "9", true, "firstname", `"Beatrice"`))
		if got := row(t, url, "b@x")["name"]; got != "Beatrice" {
			t.Fatalf("a real change was dropped: name %q", got)
		}
		// Regression: a value a trigger or flow set in the transaction of
		// cdcd's write carries cdcd's hint; it was dropped with the echo.
		automated := crmRecord(cdc.OpUpdate, 6, "d6", "9", true, "firstname", `"Set by a flow"`)
		automated.Event.OriginHint = "INTEGRATION/7"
		write(t, w, automated)
		if got := row(t, url, "b@x")["name"]; got != "Set by a flow" {
			t.Fatalf("a value automation set under cdcd's hint was dropped: name %q", got)
		}
	})

	t.Run("refetch reads the record back and maps it", func(t *testing.T) {
		f := &fetcher{records: map[string]cdc.Row{
			"77": {{Name: "email", Value: json.RawMessage(`"c@x"`)}, {Name: "firstname", Value: json.RawMessage(`"Cy"`)}},
		}}
		w, url := setup(t, Inbound{Fetcher: f, Mapper: crmMapper{}})
		created := crmRecord(cdc.OpCreate, 1, "d1", "77", false)
		created.Event.Refetch = true
		// A partial change of an unlinked record without its email is read back too.
		partial := crmRecord(cdc.OpUpdate, 2, "d2", "78", true, "firstname", `"Di"`)
		res := write(t, w, created, partial)
		if res[0].Err != nil || row(t, url, "c@x")["name"] != "Cy" {
			t.Fatalf("refetched create: %v, row %v", res[0].Err, row(t, url, "c@x"))
		}
		if res[1].Err != nil || fmt.Sprint(f.calls) != "[[77 78]]" {
			t.Fatalf("record gone from the system: %v after fetches %v, want a skip after one call for both", res[1].Err, f.calls)
		}
		// Linked now: a partial change needs no fetch.
		write(t, w, crmRecord(cdc.OpUpdate, 3, "d3", "77", true, "firstname", `"Cyd"`))
		if len(f.calls) != 1 || row(t, url, "c@x")["name"] != "Cyd" {
			t.Fatalf("fetches %v, row %v", f.calls, row(t, url, "c@x"))
		}
		f.fail = cdc.RetryAfter(fmt.Errorf("503"), 0)
		again := crmRecord(cdc.OpCreate, 4, "d4", "77", false)
		again.Event.Refetch = true
		res, err := w.Write(context.Background(), []syncapi.Record{again})
		if err != nil || res[0].Err == nil || cdc.IsPermanent(res[0].Err) {
			t.Fatalf("vendor outage during a refetch: %v, %v; want a transient error for the record", err, res)
		}
	})

	// Regression: every echo was read back, one GET each, before the echo
	// check, and one failed read failed the whole batch.
	t.Run("read-back is driven by need and a failed read fails only its record", func(t *testing.T) {
		f := &fetcher{records: map[string]cdc.Row{
			"1": {{Name: "email", Value: json.RawMessage(`"one@x"`)}, {Name: "firstname", Value: json.RawMessage(`"One"`)}},
			"2": {{Name: "email", Value: json.RawMessage(`"two@x"`)}, {Name: "firstname", Value: json.RawMessage(`"Two"`)}},
			"3": {{Name: "email", Value: json.RawMessage(`"three@x"`)}, {Name: "firstname", Value: json.RawMessage(`"Three"`)}},
		}, broken: map[string]bool{"2": true}}
		w, url := setup(t, Inbound{Fetcher: f, Mapper: crmMapper{}, OwnWrite: func(h string) bool { return h == "INTEGRATION/7" }})
		write(t, w, crmRecord(cdc.OpCreate, 5, "d0", "3", false, "email", `"three@x"`, "firstname", `"Three"`))
		refetch := func(sec int, id, crmID, hint string) syncapi.Record {
			r := crmRecord(cdc.OpCreate, sec, id, crmID, false)
			r.Event.Refetch, r.Event.OriginHint = true, hint
			return r
		}
		res := write(t, w,
			refetch(1, "d1", "1", "CRM_UI"),
			refetch(1, "d2", "2", "CRM_UI"),
			refetch(1, "d3", "9", "INTEGRATION/7"), // cdcd's own creation: an echo
			refetch(4, "d4", "3", ""),              // as of a time the link knows
		)
		if fmt.Sprint(f.calls) != "[[1 2]]" {
			t.Fatalf("fetches %v, want one call for records 1 and 2", f.calls)
		}
		if res[0].Err != nil || row(t, url, "one@x")["name"] != "One" {
			t.Fatalf("record 1: %v, row %v", res[0].Err, row(t, url, "one@x"))
		}
		if res[1].Err == nil || cdc.IsPermanent(res[1].Err) {
			t.Fatalf("record 2: %v, want a transient error of its own", res[1].Err)
		}
		if res[2].Err != nil || res[3].Err != nil {
			t.Fatalf("echo and stale records: %v, %v", res[2].Err, res[3].Err)
		}
	})

	t.Run("without a fetcher a change that names only the record is permanent", func(t *testing.T) {
		w, _ := setup(t, Inbound{})
		r := crmRecord(cdc.OpCreate, 1, "d1", "5", false)
		r.Event.Refetch = true
		res := write(t, w, r)
		if !cdc.IsPermanent(res[0].Err) {
			t.Fatalf("result %v, want a permanent error", res[0].Err)
		}
	})
}

// echoes reads cdcd_echoes_suppressed_total for a layer.
func echoes(t *testing.T, reg *prometheus.Registry, layer string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "layer" && l.GetValue() == layer {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func timeSec(n int) time.Duration { return time.Duration(n) * time.Second }
