package cdctest

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestStartPostgres(t *testing.T) {
	pg := StartPostgres(t)
	url := pg.CreateDB(t, "app")
	pg.Exec(t, "app", "CREATE TABLE t (id int primary key); INSERT INTO t VALUES (1),(2)")
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var walLevel string
	var n int
	if err := conn.QueryRow(ctx, "SELECT current_setting('wal_level'), (SELECT count(*) FROM t)").Scan(&walLevel, &n); err != nil {
		t.Fatal(err)
	}
	if walLevel != "logical" || n != 2 {
		t.Fatalf("wal_level=%q rows=%d, want logical and 2", walLevel, n)
	}
}
