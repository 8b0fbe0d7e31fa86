package applystate

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc/cdctest"
	"github.com/cdcd-dev/cdcd/store"
)

// The states of a system's records: saved and read back in a transaction,
// a tombstone refusing changes for its TTL and forgotten after it, and
// those of another system or table apart.
func TestRecords(t *testing.T) {
	pg := cdctest.StartPostgres(t)
	url := pg.CreateDB(t, "app")
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := Require(ctx, conn); err == nil {
		t.Fatal("Require before the migrations: no error")
	}
	st, err := store.Open(ctx, url, zerolog.New(zerolog.NewTestWriter(t)))
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	if err := Require(ctx, conn); err != nil {
		t.Fatal(err)
	}

	crm := Records{System: "crm", Table: "public.contacts", TTL: time.Hour}
	shop := Records{System: "shop", Table: "public.contacts", TTL: time.Hour}
	inTx := func(fn func(tx pgx.Tx) error) {
		t.Helper()
		if err := pgx.BeginFunc(ctx, conn, fn); err != nil {
			t.Fatal(err)
		}
	}
	live := State{}.With(at(5, "e5"), true, map[string]any{"name": "x"}, false)
	inTx(func(tx pgx.Tx) error {
		if err := crm.Save(ctx, tx, "1", live, false); err != nil {
			return err
		}
		return crm.Save(ctx, tx, "2", State{}.With(at(6, "e6"), true, nil, true), true)
	})
	inTx(func(tx pgx.Tx) error {
		got, err := crm.Load(ctx, tx, "1")
		if err != nil {
			return err
		}
		if !got.Exists || got.Tombstoned || !got.Version.Equal(live.Version) || got.EventID != "e5" || got.Fields["name"] != live.Fields["name"] {
			t.Errorf("live record: %+v, want %+v", got, live)
		}
		if got, err = crm.Load(ctx, tx, "2"); err != nil || !got.Tombstoned {
			t.Errorf("deleted record: %+v, %v; want a tombstone", got, err)
		}
		if got, err = shop.Load(ctx, tx, "1"); err != nil || got.Exists {
			t.Errorf("another system's record 1: %+v, %v; want none", got, err)
		}
		return nil
	})
	// Past the TTL, a tombstone is no state, and pruning removes it alone.
	if _, err := conn.Exec(ctx, `UPDATE cdcd.apply_state SET deleted_at = now() - interval '2 hours' WHERE key = '2'`); err != nil {
		t.Fatal(err)
	}
	inTx(func(tx pgx.Tx) error {
		if got, err := crm.Load(ctx, tx, "2"); err != nil || got.Exists {
			t.Errorf("expired tombstone: %+v, %v; want no state", got, err)
		}
		return nil
	})
	if n, err := crm.Prune(ctx, conn); err != nil || n != 1 {
		t.Fatalf("prune: %d, %v; want the expired tombstone", n, err)
	}
	var keys []string
	rows, _ := conn.Query(ctx, `SELECT key FROM cdcd.apply_state ORDER BY key`)
	if keys, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil || len(keys) != 1 || keys[0] != "1" {
		t.Fatalf("after pruning: keys %v, %v; want only the live record's", keys, err)
	}
}

// A state's update adds no index entries (HOT): the writer updates a
// record's state with every change it applies, a round of changes
// updating every state of a page in one statement.
func TestStateUpdatesAddNoIndexEntries(t *testing.T) {
	pg := cdctest.StartPostgres(t)
	url := pg.CreateDB(t, "app")
	ctx := context.Background()
	st, err := store.Open(ctx, url, zerolog.New(zerolog.NewTestWriter(t)))
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	crm := Records{System: "crm", Table: "public.contacts", TTL: time.Hour}
	keys := make([]string, 200)
	save := func(sec int, event string) {
		t.Helper()
		states := make([]State, len(keys))
		for i := range keys {
			keys[i] = fmt.Sprintf(`{"id":"%d"}`, 1000+i)
			states[i] = State{}.With(at(sec, event), true, map[string]any{"email": "x", "name": "y", "city": "z"}, false)
		}
		if err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error { return crm.SaveMany(ctx, tx, keys, states) }); err != nil {
			t.Fatal(err)
		}
	}
	save(1, "e1")
	var updated, hot int64
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		states := make([]State, len(keys))
		for i := range keys {
			states[i] = State{}.With(at(2, "e2"), true, map[string]any{"email": "x", "name": "y", "city": "z"}, false)
		}
		if err := crm.SaveMany(ctx, tx, keys, states); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables
			WHERE schemaname = 'cdcd' AND relname = 'apply_state'`).Scan(&updated, &hot)
	})
	if err != nil {
		t.Fatal(err)
	}
	if updated != int64(len(keys)) || hot != updated {
		t.Fatalf("%d of %d state updates were HOT, want all %d", hot, updated, len(keys))
	}
	var got State
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) (err error) {
		got, err = crm.Load(ctx, tx, keys[7])
		return err
	})
	if err != nil || got.EventID != "e2" {
		t.Fatalf("state after the update: %+v, %v", got, err)
	}
}
