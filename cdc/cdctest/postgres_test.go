package cdctest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

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

// A server whose test process ends without Destroy (killed by a timeout,
// a fuzzing worker stopped) is stopped and removed soon after.
func TestPostgresDoesNotOutliveItsProcess(t *testing.T) {
	if os.Getenv("CDCTEST_ORPHAN") == "1" {
		p, err := NewPostgres()
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Printf("dir %s port %d\n", p.Dir(), p.Port)
		os.Exit(0) // no Destroy
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestPostgresDoesNotOutliveItsProcess$")
	cmd.Env = append(os.Environ(), "CDCTEST_ORPHAN=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v: %s", err, out)
	}
	var dir string
	var port int
	if _, err := fmt.Sscanf(string(out), "dir %s port %d", &dir, &port); err != nil {
		t.Fatalf("child printed %q", out)
	}
	Eventually(t, 30*time.Second, "the orphaned server to stop and its files to go", func() bool {
		_, statErr := os.Stat(dir)
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			conn.Close()
		}
		return err != nil && os.IsNotExist(statErr)
	})
}
