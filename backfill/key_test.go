package backfill

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/cdc/cdctest"
	"github.com/cdcd-dev/cdcd/cdc/pgwal"
)

// keyTap records the key of every change the stream hands the merger.
type keyTap struct {
	mu   sync.Mutex
	keys map[string][]string // table → keys, in stream order
}

func (k *keyTap) Gate([]byte) <-chan struct{} { return nil }

func (k *keyTap) Change(e *cdc.Event) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.keys[e.Table] = append(k.keys[e.Table], keyString(e.Key))
	if e.Before != nil {
		if old := keyOf(e.Before, e.Key); old != "" {
			k.keys[e.Table] = append(k.keys[e.Table], "old:"+old)
		}
	}
}

func (k *keyTap) Watermark(_ []byte, _ cdc.Acker, out []cdc.Event) []cdc.Event { return out }

func (k *keyTap) of(table string) []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]string(nil), k.keys[table]...)
}

// A chunk drops a row when the stream changed its key, and sinks key rows
// read and changes alike: that holds only if a row read and the stream's
// change of it have the same key (keyString), whatever the key's types,
// its columns' order and the table's replica identity.
func TestChunkRowKeyIsTheStreamsKey(t *testing.T) {
	url := pg.DB(t, "keys")
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	cases := []struct{ name, cols, pk, row, extra string }{
		{"k_int", "id int", "id", "42", ""},
		{"k_bigint", "id bigint", "id", "-9007199254740993", ""},
		{"k_text", "id text", "id", `E'it''s \\ "q" \n \t \u00e9 \u0001 end'`, ""},
		{"k_composite", "a int, b text", "a, b", "7, 'x,y'", ""},
		{"k_composite_rev", "a int, b text", "b, a", "7, 'x'", ""},
		{"k_apart", "a int, m int, b text", "a, b", "7, 0, 'x'", ""},
		{"k_second", "m int, id int", "id", "0, 8", ""},
		{"k_numeric", "id numeric(12,2)", "id", "1.50", ""},
		{"k_numeric_free", "id numeric", "id", "1.500000000000000000001", ""},
		{"k_float", "id float8", "id", "0.1", ""},
		{"k_timestamptz", "id timestamptz", "id", "'2024-03-01 12:34:56.789+02'", ""},
		{"k_timestamp", "id timestamp", "id", "'2024-03-01 12:34:56.789'", ""},
		{"k_date", "id date", "id", "'2024-03-01'", ""},
		{"k_uuid", "id uuid", "id", "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'", ""},
		{"k_bytea", "id bytea", "id", `'\x00ff10'`, ""},
		{"k_char", "id char(5)", "id", "'ab'", ""},
		{"k_bool_int", "a bool, b int", "a, b", "true, 1", ""},
		{"k_inet", "id inet", "id", "'10.0.0.1/8'", ""},
		{"k_interval", "id interval", "id", "'1 day 2 hours'", ""},
		{"k_enum", "id mood", "id", "'ok'", "CREATE TYPE mood AS ENUM ('ok', 'sad')"},
		{"k_domain", "id posint", "id", "5", "CREATE DOMAIN posint AS int CHECK (VALUE > 0)"},
		{"k_array", "id int[]", "id", "'{1,2}'", ""},
		{"k_full", "id int", "id", "9", "ALTER TABLE k_full REPLICA IDENTITY FULL"},
		{"k_full_rev", "a int, b text", "b, a", "7, 'x'", "ALTER TABLE k_full_rev REPLICA IDENTITY FULL"},
		{"k_index", "id int, u int NOT NULL UNIQUE", "id", "3, 30", "ALTER TABLE k_index REPLICA IDENTITY USING INDEX k_index_u_key"},
	}
	var tables []pgwal.Table
	for _, c := range cases {
		if c.extra != "" && !strings.HasPrefix(c.extra, "ALTER") {
			if _, err := pool.Exec(ctx, c.extra); err != nil {
				t.Fatalf("%s: %v", c.extra, err)
			}
		}
		if _, err := pool.Exec(ctx, fmt.Sprintf(`CREATE TABLE public.%s (%s, v int, PRIMARY KEY (%s))`, c.name, c.cols, c.pk)); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if strings.HasPrefix(c.extra, "ALTER") {
			if _, err := pool.Exec(ctx, c.extra); err != nil {
				t.Fatalf("%s: %v", c.extra, err)
			}
		}
		if _, err := pool.Exec(ctx, fmt.Sprintf(`INSERT INTO public.%s VALUES (%s, 0)`, c.name, c.row)); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		tables = append(tables, pgwal.Table{Schema: "public", Name: c.name})
	}
	tap := &keyTap{keys: map[string][]string{}}
	log := zerolog.New(zerolog.NewTestWriter(t))
	reader, err := pgwal.NewReader(pgwal.Config{URL: url, Slot: slotName(url), Publication: "cdcd", Tables: tables,
		StatusInterval: 200 * time.Millisecond, Snapshots: tap}, &cdctest.Collector{}, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = reader.Run(rctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		_, _ = pool.Exec(context.Background(), `SELECT pg_drop_replication_slot($1)`, slotName(url))
	})
	cdctest.Eventually(t, 20*time.Second, "the reader to stream", reader.Streaming)

	conn, err := pgwal.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, c := range cases {
		if _, err := pool.Exec(ctx, fmt.Sprintf(`UPDATE public.%s SET v = 1`, c.name)); err != nil {
			t.Fatal(err)
		}
		tb, err := describe(ctx, conn, pgwal.Table{Schema: "public", Name: c.name})
		if err != nil {
			t.Fatal(err)
		}
		cr, err := readChunk(ctx, conn, tb, "", nil, "", 10, 0, nil, nil)
		if err != nil || len(cr.events) != 1 {
			t.Fatalf("%s: read %d rows: %v", c.name, len(cr.events), err)
		}
		read := keyString(cr.events[0].Key)
		for _, f := range cr.events[0].Key {
			if v, ok := cr.events[0].After.Get(f.Name); !ok || string(v) != string(f.Value) {
				t.Errorf("%s: key column %s is %s, %s in the row", c.name, f.Name, f.Value, v)
			}
		}
		cdctest.Eventually(t, 10*time.Second, c.name+"'s update to stream", func() bool { return len(tap.of(c.name)) > 0 })
		if got := tap.of(c.name); got[0] != read {
			t.Errorf("%s: the stream keys the row %q, a chunk %q", c.name, got[0], read)
		}
	}
}
