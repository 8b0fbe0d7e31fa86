package postgres

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/cdc/cdctest"
	"github.com/cdcd-dev/cdcd/delivery"
	"github.com/cdcd-dev/cdcd/delivery/deliverytest"
	"github.com/cdcd-dev/cdcd/syncapi"
)

// lockedDB is a database with contacts a@x (name A) and b@x (name B),
// whose sessions get settings (ALTER DATABASE ... SET), and a session in
// a transaction that holds b@x's row locked; the test ends it.
func lockedDB(t *testing.T, pg *cdctest.Postgres, name, settings string) (string, pgx.Tx) {
	t.Helper()
	ctx := context.Background()
	url := pg.CreateDB(t, name)
	pg.Exec(t, name, contactsDDL)
	migrate(t, url)
	pg.Exec(t, name, `INSERT INTO contacts (email, name) VALUES ('a@x', 'A'), ('b@x', 'B')`)
	if settings != "" {
		pg.Exec(t, name, `ALTER DATABASE `+name+` SET `+settings)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	// The holder never detects a deadlock itself: the writer does.
	if _, err := conn.Exec(ctx, `SET deadlock_timeout = '10min'`); err != nil {
		t.Fatal(err)
	}
	holder, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := holder.Exec(ctx, `UPDATE contacts SET phone = 'held' WHERE email = 'b@x'`); err != nil {
		t.Fatal(err)
	}
	return url, holder
}

// waitForLockWait waits until a session of url's database waits for a
// lock.
func waitForLockWait(t *testing.T, url string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	cdctest.Eventually(t, 30*time.Second, "a session waiting for a lock", func() bool {
		var n int
		err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n)
		return err == nil && n > 0
	})
}

// Regression test: a deadlock, a lock timeout or a statement timeout met
// by a record's statement failed that record alone, as if its data were
// at fault (and a run's statement had every record of the run applied one
// by one first): the record was retried on its own, counting its tries,
// and dead-lettered once they ran out, for the server's trouble. Such an
// error is the server's: it fails the whole Write, nothing applied,
// marked cdc.Transient, and the batch applies once it is gone.
func TestTransientServerErrorsFailTheWholeBatch(t *testing.T) {
	pg := cdctest.StartPostgres(t)
	ctx := context.Background()
	updateA := rec(cdc.OpUpdate, 2, "u-a", map[string]any{"email": "a@x", "name": "A2"})
	for _, tt := range []struct {
		name     string
		settings string
		records  []syncapi.Record
		deadlock bool // the holder then waits for the row the writer locked
	}{
		{
			name:     "deadlock",
			settings: `deadlock_timeout = '2s'`,
			records:  []syncapi.Record{updateA, rec(cdc.OpDelete, 2, "d-b", map[string]any{"email": "b@x"})},
			deadlock: true,
		},
		{
			name:     "lock timeout in a run",
			settings: `lock_timeout = '200ms'`,
			records:  []syncapi.Record{updateA, rec(cdc.OpUpdate, 2, "u-b", map[string]any{"email": "b@x", "name": "B2"})},
		},
		{
			name:     "statement timeout",
			settings: `statement_timeout = '1s'`,
			records:  []syncapi.Record{updateA, rec(cdc.OpDelete, 2, "d-b", map[string]any{"email": "b@x"})},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			db := map[string]string{"deadlock": "deadlock", "lock timeout in a run": "locktimeout", "statement timeout": "stmttimeout"}[tt.name]
			url, holder := lockedDB(t, pg, db, tt.settings)
			w := newWriter(t, "crm", testConfig(url))
			type outcome struct {
				res []syncapi.Result
				err error
			}
			wrote := make(chan outcome, 1)
			go func() {
				res, err := w.Write(ctx, tt.records)
				wrote <- outcome{res, err}
			}()
			held := make(chan error, 1)
			if tt.deadlock {
				waitForLockWait(t, url)
				go func() {
					_, err := holder.Exec(ctx, `UPDATE contacts SET phone = 'held' WHERE email = 'a@x'`)
					held <- err
				}()
			}
			var got outcome
			select {
			case got = <-wrote:
			case <-time.After(60 * time.Second):
				t.Fatal("Write did not return")
			}
			if got.err == nil {
				errs := make([]error, len(got.res))
				for i, r := range got.res {
					errs[i] = r.Err
				}
				t.Fatalf("Write: no error, results' errors %v; want the whole call failed, transient", errs)
			}
			if !cdc.IsTransient(got.err) || cdc.IsPermanent(got.err) {
				t.Fatalf("Write: %v, not marked transient", got.err)
			}
			if tt.deadlock {
				if err := <-held; err != nil {
					t.Fatalf("the holder was the deadlock's victim: %v", err)
				}
			}
			if err := holder.Rollback(ctx); err != nil {
				t.Fatal(err)
			}
			if r := row(t, url, "a@x"); r["name"] != "A" {
				t.Fatalf("a@x after the failed Write: %v, want it untouched", r)
			}
			// The server's trouble gone, the same batch applies.
			for i, r := range write(t, w, tt.records...) {
				if r.Err != nil {
					t.Fatalf("record %d on the retry: %v", i, r.Err)
				}
			}
			if r := row(t, url, "a@x"); r["name"] != "A2" {
				t.Fatalf("a@x after the retry: %v", r)
			}
		})
	}
}

// A pipeline into the table retries a batch that meets the server's
// trouble (here a lock held past lock_timeout) for as long as it lasts,
// however many tries that takes, and dead-letters nothing for it.
func TestPipelineOutlastsALockWithoutDeadLetters(t *testing.T) {
	pg := cdctest.StartPostgres(t)
	ctx := context.Background()
	url, holder := lockedDB(t, pg, "outlast", `lock_timeout = '50ms'`)
	w := newWriter(t, "crm", testConfig(url))
	dead := deliverytest.NewDeadLetters()
	counted := &countingWriter{Writer: w}
	p, err := delivery.NewPipeline(delivery.PipelineConfig{
		Name: "crm-to-contacts", System: "public.contacts", Object: "contacts",
		MaxAttempts: 2, MinBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond,
	}, crmMapper{}, counted, delivery.Stores{DeadLetters: dead}, zerolog.New(zerolog.NewTestWriter(t)), nil)
	if err != nil {
		t.Fatal(err)
	}
	events := []cdc.Event{
		*crmRecord(cdc.OpUpdate, 2, "u-a", "1", false, "email", `"a@x"`, "firstname", `"A2"`).Event,
		*crmRecord(cdc.OpUpdate, 2, "u-b", "2", false, "email", `"b@x"`, "firstname", `"B2"`).Event,
	}
	delivered := make(chan error, 1)
	go func() { delivered <- p.Write(ctx, events) }()
	cdctest.Eventually(t, 30*time.Second, "five failed tries, or the pipeline giving up", func() bool {
		return counted.failures() >= 5 || len(delivered) > 0
	})
	if err := holder.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-delivered:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the pipeline did not deliver once the lock was released")
	}
	if n := len(dead.Letters()); n != 0 {
		t.Fatalf("%d dead letters for a lock held a while, want none", n)
	}
	if a, b := row(t, url, "a@x"), row(t, url, "b@x"); a["name"] != "A2" || b["name"] != "B2" {
		t.Fatalf("rows %v and %v, want A2 and B2", a, b)
	}
}

// countingWriter counts the Writes and records that failed.
type countingWriter struct {
	*Writer
	mu     sync.Mutex
	failed int
}

func (c *countingWriter) Write(ctx context.Context, records []syncapi.Record) ([]syncapi.Result, error) {
	res, err := c.Writer.Write(ctx, records)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.failed++
	}
	for _, r := range res {
		if r.Err != nil {
			c.failed++
		}
	}
	return res, err
}

func (c *countingWriter) failures() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.failed
}

// Which errors are the server's trouble, failing the whole Write, and
// which fail their record alone.
func TestTransientTellsTheServersTroubleFromTheRecords(t *testing.T) {
	t.Parallel()
	pgErr := func(code, severity string) error {
		return fmt.Errorf("apply public.contacts: %w", &pgconn.PgError{Code: code, Severity: severity})
	}
	for _, tt := range []struct {
		name string
		err  error
		want bool
	}{
		{"serialization failure", pgErr("40001", "ERROR"), true},
		{"deadlock", pgErr("40P01", "ERROR"), true},
		{"lock not available", pgErr("55P03", "ERROR"), true},
		{"statement timeout", pgErr("57014", "ERROR"), true},
		{"admin shutdown", pgErr("57P01", "FATAL"), true},
		{"cannot connect now", pgErr("57P03", "FATAL"), true},
		{"too many connections", pgErr("53300", "FATAL"), true},
		{"read-only transaction", pgErr("25006", "ERROR"), true},
		{"connection failure", pgErr("08006", "FATAL"), true},
		{"protocol violation, connection gone", pgErr("08P01", "FATAL"), true},
		{"connection reset", fmt.Errorf("commit: %w", &net.OpError{Op: "read", Err: syscall.ECONNRESET}), true},
		{"unexpected EOF", fmt.Errorf("begin: %w", io.ErrUnexpectedEOF), true},
		{"conn closed", fmt.Errorf("savepoint: %w", pgconn.ErrConnClosed), true},
		{"unique violation", pgErr("23505", "ERROR"), false},
		{"bad value", pgErr("22P02", "ERROR"), false},
		{"protocol violation, session goes on", pgErr("08P01", "ERROR"), false},
		{"a trigger's exception", pgErr("P0001", "ERROR"), false},
		{"bad password", pgErr("28P01", "FATAL"), false},
		{"read back from the system", readError{fmt.Errorf("read: %w", io.ErrUnexpectedEOF)}, false},
		{"runs share a row", errOneByOne, false},
	} {
		if got := transient(tt.err); got != tt.want {
			t.Errorf("%s: transient = %v, want %v", tt.name, got, tt.want)
		}
	}
}
