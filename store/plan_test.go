package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/syncstate"
	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"
)

// seqScans lists the tables that the plan of sql with args reads whole.
func seqScans(t *testing.T, url, sql string, args ...any) []string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var plan []struct{ Plan json.RawMessage }
	if err := conn.QueryRow(ctx, "EXPLAIN (FORMAT JSON) "+sql, args...).Scan(&plan); err != nil {
		t.Fatalf("explain: %v", err)
	}
	type node struct {
		NodeType string `json:"Node Type"`
		Relation string `json:"Relation Name"`
		Plans    []json.RawMessage
	}
	var out []string
	var walk func(json.RawMessage)
	walk = func(b json.RawMessage) {
		var n node
		if err := json.Unmarshal(b, &n); err != nil {
			t.Fatal(err)
		}
		if n.NodeType == "Seq Scan" {
			out = append(out, n.Relation)
		}
		for _, p := range n.Plans {
			walk(p)
		}
	}
	walk(plan[0].Plan)
	return out
}

// Regression: reading a batch's links or pending creates joined the batch
// with the whole table once the planner knew the batch's size (a custom
// plan): a hash of every link, built for each batch of refs, at 20,000
// links 16 ms for 500 refs against 1.3 ms by the primary key, and growing
// with the table.
func TestBatchReadsUseTheKey(t *testing.T) {
	t.Parallel()
	_, url := openStore(t)
	execSQL(t, url, `INSERT INTO cdcd.links (system, object, local_table, local_key, external_id, base)
		SELECT 'crm', 'contacts', 'public.contacts', format('{"id":%s}', i), i::text, format('{"id":%s}', i)::jsonb
		FROM generate_series(1, 20000) i;
		INSERT INTO cdcd.pending_creates (system, object, local_table, local_key)
		SELECT 'crm', 'contacts', 'public.contacts', format('{"id":%s}', i) FROM generate_series(1, 20000) i;
		ANALYZE cdcd.links; ANALYZE cdcd.pending_creates`)
	n := 1000
	sys, obj, tbl, key := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	for i := range n {
		sys[i], obj[i], tbl[i], key[i] = "crm", "contacts", "public.contacts", fmt.Sprintf(`{"id":%d}`, 3*i+1)
	}
	for _, q := range []struct{ name, sql, table string }{
		{"links", getLinks, "links"},
		{"pending creates", pendingOf, "pending_creates"},
	} {
		for _, scanned := range seqScans(t, url, q.sql, sys, obj, tbl, key) {
			if scanned == q.table {
				t.Errorf("reading %d %s scans every row of cdcd.%s", n, q.name, q.table)
			}
		}
	}
}

// On a database whose collation is not bytewise (ICU en-US here), the
// links' keys compare bytewise (migration 0167), a batch's links are still
// read and written by their indexes, and a batch's keys in an order the
// locale sorts otherwise ("B" before "a" bytewise) round-trip.
func TestLinksOnALocaleDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, newDB(t))
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("store_icu_%d", time.Now().UnixNano())
	_, err = conn.Exec(ctx, "CREATE DATABASE "+name+" TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C'")
	url := strings.Replace(conn.Config().ConnString(), "/"+conn.Config().Database+"?", "/"+name+"?", 1)
	conn.Close(ctx)
	if err != nil {
		t.Skipf("this server makes no ICU database: %v", err)
	}
	s, err := Open(ctx, url, zerolog.New(zerolog.NewTestWriter(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n := queryInt(t, url, `SELECT count(*) FROM information_schema.columns WHERE table_schema = 'cdcd' AND table_name = 'links'
		AND column_name IN ('system', 'object', 'local_table', 'local_key', 'external_id') AND collation_name = 'C'`); n != 5 {
		t.Errorf("%d of the links' 5 key columns compare bytewise", n)
	}
	batch := []syncstate.Link{link(`{"id":"a"}`, "a1"), link(`{"id":"B"}`, "B1")}
	batch[0].Base = map[string]any{"n": json.Number("1")}
	if err := s.Links().Put(ctx, batch); err != nil {
		t.Fatal(err)
	}
	got, err := s.Links().Get(ctx, []syncstate.LinkRef{ref(`{"id":"a"}`), ref(`{"id":"B"}`), ref(`{"id":"b"}`)})
	if err != nil || len(got) != 2 || got[ref(`{"id":"a"}`)].ExternalID != "a1" || got[ref(`{"id":"B"}`)].ExternalID != "B1" {
		t.Fatalf("links read back: %v, %v", got, err)
	}
	execSQL(t, url, `INSERT INTO cdcd.links (system, object, local_table, local_key, external_id)
		SELECT 'hubspot', 'contacts', 'public.contacts', format('{"id":%s}', i), i::text FROM generate_series(1, 20000) i;
		ANALYZE cdcd.links`)
	n := 1000
	sys, obj, tbl, key := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	for i := range n {
		sys[i], obj[i], tbl[i], key[i] = "hubspot", "contacts", "public.contacts", fmt.Sprintf(`{"id":%d}`, 3*i+1)
	}
	if scans := seqScans(t, url, getLinks, sys, obj, tbl, key); slices.Contains(scans, "links") {
		t.Errorf("reading %d links scans every link", n)
	}
}
