package postgres

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/cdc/cdctest"
)

func TestWriter(t *testing.T) {
	pg := cdctest.StartPostgres(t)
	db := 0
	newDB := func(t *testing.T) string {
		db++
		name := "app" + strings.Repeat("x", db)
		url := pg.CreateDB(t, name)
		pg.Exec(t, name, contactsDDL)
		migrate(t, url)
		return url
	}

	t.Run("upsert creates then updates only the fields present", func(t *testing.T) {
		url := newDB(t)
		w := newWriter(t, "crm", testConfig(url))
		res := write(t, w, rec(cdc.OpCreate, 1, "e1", map[string]any{
			"email": "a@x", "name": "Ann", "phone": "123", "score": json.Number("7"),
			"attrs": map[string]any{"tier": "gold"},
		}))
		if res[0].Err != nil || res[0].Version != t0.Add(time.Second).Format(time.RFC3339Nano) {
			t.Fatalf("create: %+v", res[0])
		}
		write(t, w, rec(cdc.OpUpdate, 2, "e2", map[string]any{"email": "a@x", "name": "Anne"}))
		got := row(t, url, "a@x")
		want := map[string]string{"name": "Anne", "phone": "123", "score": "7", "attrs": `{"tier": "gold"}`, "deleted": "false"}
		if !equal(got, want) {
			t.Fatalf("row %v, want %v", got, want)
		}
		write(t, w, rec(cdc.OpUpdate, 3, "e3", map[string]any{"email": "a@x", "phone": nil, "score": 8.0}))
		if got := row(t, url, "a@x"); got["phone"] != "<nil>" || got["score"] != "8" || got["name"] != "Anne" {
			t.Fatalf("explicit null and float: %v", got)
		}
	})

	for _, tt := range []struct {
		policy string
		want   map[string]string // nil: no row
	}{
		{DeleteRow, nil},
		{DeleteSoft, map[string]string{"name": "Cy", "phone": "<nil>", "score": "<nil>", "attrs": "<nil>", "deleted": "true"}},
		{DeleteIgnore, map[string]string{"name": "Cy", "phone": "<nil>", "score": "<nil>", "attrs": "<nil>", "deleted": "false"}},
	} {
		t.Run("on_delete "+tt.policy, func(t *testing.T) {
			url := newDB(t)
			cfg := testConfig(url)
			cfg.OnDelete = tt.policy
			w := newWriter(t, "crm", cfg)
			write(t, w, rec(cdc.OpCreate, 1, "e1", map[string]any{"email": "c@x", "name": "Cy"}))
			res := write(t, w, rec(cdc.OpDelete, 2, "e2", map[string]any{"email": "c@x"}))
			if res[0].Err != nil {
				t.Fatal(res[0].Err)
			}
			if got := row(t, url, "c@x"); !equal(got, tt.want) {
				t.Fatalf("row %v, want %v", got, tt.want)
			}
		})
	}

	t.Run("stale and duplicate events are skipped", func(t *testing.T) {
		url := newDB(t)
		w := newWriter(t, "crm", testConfig(url))
		write(t, w, rec(cdc.OpCreate, 5, "e5", map[string]any{"email": "d@x", "name": "new"}))
		res := write(t, w,
			rec(cdc.OpUpdate, 4, "e4", map[string]any{"email": "d@x", "name": "older"}),
			rec(cdc.OpUpdate, 5, "e3", map[string]any{"email": "d@x", "name": "same time, lower id"}),
			rec(cdc.OpUpdate, 5, "e5", map[string]any{"email": "d@x", "name": "redelivered"}),
		)
		for i, r := range res {
			if r.Err != nil || r.Version != t0.Add(5*time.Second).Format(time.RFC3339Nano) {
				t.Errorf("result %d: %+v, want a skip reporting the applied version", i, r)
			}
		}
		write(t, w, rec(cdc.OpUpdate, 5, "e6", map[string]any{"email": "d@x", "name": "same time, higher id"}))
		if got := row(t, url, "d@x"); got["name"] != "same time, higher id" {
			t.Fatalf("name %q", got["name"])
		}
	})

	t.Run("tombstone blocks a late update until it expires", func(t *testing.T) {
		url := newDB(t)
		cfg := testConfig(url)
		cfg.TombstoneTTL = 2 * time.Second
		w := newWriter(t, "crm", cfg)
		write(t, w, rec(cdc.OpCreate, 1, "e1", map[string]any{"email": "e@x", "name": "Eve"}))
		write(t, w, rec(cdc.OpDelete, 3, "e3", map[string]any{"email": "e@x"}))
		write(t, w,
			rec(cdc.OpUpdate, 2, "e2", map[string]any{"email": "e@x", "name": "late"}),
			rec(cdc.OpUpdate, 4, "e4", map[string]any{"email": "e@x", "name": "after the delete"}),
			rec(cdc.OpCreate, 2, "e2c", map[string]any{"email": "e@x", "name": "late create"}),
		)
		if got := row(t, url, "e@x"); got != nil {
			t.Fatalf("deleted record resurrected: %v", got)
		}
		cdctest.Eventually(t, 30*time.Second, "the tombstone to expire", func() bool {
			write(t, w, rec(cdc.OpUpdate, 4, "e4", map[string]any{"email": "e@x", "name": "after the delete"}))
			return row(t, url, "e@x") != nil
		})
	})

	t.Run("a newer create passes a tombstone", func(t *testing.T) {
		url := newDB(t)
		w := newWriter(t, "crm", testConfig(url))
		write(t, w, rec(cdc.OpCreate, 1, "e1", map[string]any{"email": "f@x", "name": "F"}))
		write(t, w, rec(cdc.OpDelete, 2, "e2", map[string]any{"email": "f@x"}))
		write(t, w, rec(cdc.OpCreate, 3, "e3", map[string]any{"email": "f@x", "name": "again"}))
		if got := row(t, url, "f@x"); got["name"] != "again" {
			t.Fatalf("row %v", got)
		}
	})

	t.Run("refused records are permanent, the rest apply", func(t *testing.T) {
		url := newDB(t)
		w := newWriter(t, "crm", testConfig(url))
		pg.Exec(t, "app"+strings.Repeat("x", db), `ALTER TABLE contacts ADD CHECK (score >= 0)`)
		res := write(t, w,
			rec(cdc.OpCreate, 1, "e1", map[string]any{"email": "g@x", "score": -1}),
			rec(cdc.OpCreate, 1, "e2", map[string]any{"email": "h@x", "nope": "x"}),
			rec(cdc.OpCreate, 1, "e3", map[string]any{"email": "i@x", "score": "many"}),
			rec(cdc.OpCreate, 1, "e4", map[string]any{"name": "no email"}),
			rec(cdc.OpCreate, 1, "e5", map[string]any{"email": "j@x", "name": "ok"}),
		)
		for i, want := range []string{"contacts_score_check", `column "nope"`, "invalid input syntax", `match column "email"`} {
			if !cdc.IsPermanent(res[i].Err) || !strings.Contains(res[i].Err.Error(), want) {
				t.Errorf("result %d: %v, want a permanent error containing %q", i, res[i].Err, want)
			}
		}
		if res[4].Err != nil || row(t, url, "j@x")["name"] != "ok" {
			t.Fatalf("valid record of the batch: %v, row %v", res[4].Err, row(t, url, "j@x"))
		}
		if row(t, url, "g@x") != nil {
			t.Fatal("refused record applied")
		}
	})

	// Before migrations owned it, the writer made cdcd.apply_state itself,
	// at first without per-column stamps: the state an older cdcd kept
	// there still decides once cdcd's migrations ran over it.
	t.Run("state made by an older cdcd is kept", func(t *testing.T) {
		db++
		name := "app" + strings.Repeat("x", db)
		url := pg.CreateDB(t, name)
		pg.Exec(t, name, contactsDDL+`;
			INSERT INTO contacts (email, name) VALUES ('k@x', 'old');
			CREATE SCHEMA cdcd;
			CREATE TABLE cdcd.apply_state (system text NOT NULL, table_name text NOT NULL, key text NOT NULL,
				version timestamptz, event_id text NOT NULL DEFAULT '', deleted_at timestamptz,
				PRIMARY KEY (system, table_name, key));
			INSERT INTO cdcd.apply_state (system, table_name, key, version, event_id, deleted_at) VALUES
				('crm', 'public.contacts', '{"email":"k@x"}', '2026-01-02T03:04:10Z', 'e5', NULL),
				('crm', 'public.contacts', '{"email":"l@x"}', '2026-01-02T03:04:10Z', 'e5', now())`)
		migrate(t, url)
		w := newWriter(t, "crm", testConfig(url))
		res := write(t, w,
			rec(cdc.OpUpdate, 3, "e3", map[string]any{"email": "k@x", "name": "late"}),
			rec(cdc.OpUpdate, 9, "e9", map[string]any{"email": "l@x", "name": "after its delete"}),
		)
		if res[0].Err != nil || res[0].Version != t0.Add(5*time.Second).Format(time.RFC3339Nano) {
			t.Errorf("late update: %+v, want a skip reporting the version applied before", res[0])
		}
		if got := row(t, url, "k@x"); got["name"] != "old" {
			t.Fatalf("late update applied: %v", got)
		}
		if got := row(t, url, "l@x"); got != nil {
			t.Fatalf("record deleted before resurrected: %v", got)
		}
		write(t, w, rec(cdc.OpUpdate, 6, "e6", map[string]any{"email": "k@x", "name": "new"}))
		if got := row(t, url, "k@x"); got["name"] != "new" {
			t.Fatalf("newer update: %v", got)
		}
	})

	t.Run("connection failure is transient", func(t *testing.T) {
		cfg := testConfig("postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=2")
		w := newWriter(t, "crm", cfg)
		_, err := w.Write(context.Background(), nil)
		if err == nil || cdc.IsPermanent(err) {
			t.Fatalf("Write = %v, want a transient error", err)
		}
	})
}

func equal(a, b map[string]string) bool {
	if (a == nil) != (b == nil) || len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestConfigValidate(t *testing.T) {
	c := DefaultConfig()
	c.OnDelete = "purge"
	c.Table = "contacts"
	c.TombstoneTTL = 0
	err := c.Validate()
	for _, want := range []string{"url: required", `table: "contacts" is not schema.table`, "match: required", `on_delete: "purge"`, "tombstone_ttl"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate = %v, want %q", err, want)
		}
	}
	c = testConfig("postgres://u:secret@h/db?sslmode=bogus")
	if err := c.Validate(); err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("Validate of a bad url = %v", err)
	}
}
