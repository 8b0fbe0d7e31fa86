package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/store"
	"github.com/cdcd-dev/cdcd/syncapi"
)

const contactsDDL = `CREATE TABLE contacts (
	id serial PRIMARY KEY,
	email text NOT NULL UNIQUE,
	name text,
	phone text,
	score int,
	attrs jsonb,
	deleted_at timestamptz
)`

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func newWriter(t *testing.T, name string, cfg *Config) *Writer {
	t.Helper()
	w, err := New(name, cfg, Inbound{}, config.Env{Log: zerolog.New(zerolog.NewTestWriter(t))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close(context.Background()) })
	return w
}

func testConfig(url string) *Config {
	c := DefaultConfig()
	c.URL = url
	c.Table = "public.contacts"
	c.Match = []string{"email"}
	return c
}

// rec is an inbound record whose event occurred at t0 plus sec seconds.
func rec(op cdc.Op, sec int, id string, fields map[string]any) syncapi.Record {
	return syncapi.Record{
		Op:     op,
		Object: "contacts",
		Event:  &cdc.Event{Op: op, Source: "crm", CommitTime: t0.Add(time.Duration(sec) * time.Second), DeliveryID: id},
		Fields: fields,
	}
}

// write writes records and fails the test on a call error.
func write(t *testing.T, w *Writer, records ...syncapi.Record) []syncapi.Result {
	t.Helper()
	res, err := w.Write(context.Background(), records)
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	if len(res) != len(records) {
		t.Fatalf("got %d results for %d records", len(res), len(records))
	}
	return res
}

// row returns the contact's columns as text ("<nil>" for NULL), or nil if
// there is no row.
func row(t testing.TB, url, email string) map[string]string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT name, phone, score::text, attrs::text, (deleted_at IS NOT NULL)::text
		FROM contacts WHERE email = $1`, email)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (map[string]string, error) {
		vals := make([]*string, 5)
		if err := r.Scan(&vals[0], &vals[1], &vals[2], &vals[3], &vals[4]); err != nil {
			return nil, err
		}
		m := map[string]string{}
		for i, k := range []string{"name", "phone", "score", "attrs", "deleted"} {
			m[k] = "<nil>"
			if vals[i] != nil {
				m[k] = *vals[i]
			}
		}
		return m, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) == 0 {
		return nil
	}
	return got[0]
}

// migrate applies cdcd's migrations to the database at url, as cdcd does
// when it starts: they make schema cdcd, the state table and the links.
func migrate(t testing.TB, url string) {
	t.Helper()
	st, err := store.Open(context.Background(), url, zerolog.New(zerolog.NewTestWriter(t)))
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
}
