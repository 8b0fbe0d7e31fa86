package store

import (
	"context"
	"os"
	"testing"

	"github.com/cdcd-dev/cdcd/cdc/cdctest"
	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"
)

// One server for the package; each test gets its own database.
var pg cdctest.Shared

func TestMain(m *testing.M) {
	code := m.Run()
	pg.Destroy()
	os.Exit(code)
}

// newDB returns the URL of a new, empty database.
func newDB(t testing.TB) string {
	t.Helper()
	return pg.DB(t, "store")
}

// openStore opens a Store on a new database.
func openStore(t testing.TB) (*Store, string) {
	t.Helper()
	url := newDB(t)
	s, err := Open(context.Background(), url, zerolog.New(zerolog.NewTestWriter(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, url
}

// queryInt runs a query returning one integer on a separate connection.
func queryInt(t testing.TB, url, sql string, args ...any) int64 {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int64
	if err := conn.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func execSQL(t testing.TB, url, sql string, args ...any) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}
