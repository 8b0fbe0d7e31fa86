package pgwal

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/cdc/cdctest"
	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"
)

func testConfig(url string, tables ...string) Config {
	cfg := Config{URL: url, Slot: "cdcd", Publication: "cdcd", StatusInterval: 100 * time.Millisecond}
	for _, t := range tables {
		tt, _ := ParseTable(t)
		cfg.Tables = append(cfg.Tables, tt)
	}
	return cfg
}

// startReader runs a reader until the test ends. stop cancels it and
// returns Run's result; done delivers that result when Run ends on its own.
func startReader(t *testing.T, cfg Config, pub cdc.Publisher) (r *Reader, stop func() error, done <-chan error) {
	t.Helper()
	r, err := NewReader(cfg, pub, zerolog.New(zerolog.NewTestWriter(t)), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	result := make(chan error, 1)
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() {
			cancel()
			runErr = <-result
		})
		return runErr
	}
	go func() { result <- r.Run(ctx) }()
	t.Cleanup(func() { stop() })
	ended := make(chan error, 1)
	go func() {
		select {
		case err := <-result:
			result <- err // leave it for stop
			ended <- err
		case <-ctx.Done():
		}
	}()
	return r, stop, ended
}

func slotLSN(t *testing.T, url, slot string) cdc.LSN {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var s *string
	if err := conn.QueryRow(ctx, "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name=$1", slot).Scan(&s); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return 0
		}
		t.Fatal(err)
	}
	l, _ := cdc.ParseLSN(*s)
	return l
}

func TestReaderStreamsChangesAndConfirms(t *testing.T) {
	pg := cdctest.StartPostgres(t)
	url := pg.CreateDB(t, "app")
	pg.Exec(t, "app", `CREATE TABLE contacts (id int PRIMARY KEY, email text, n numeric(10,2))`)
	col := &cdctest.Collector{}
	r, _, _ := startReader(t, testConfig(url, "contacts"), col)
	cdctest.Eventually(t, 30*time.Second, "streaming", r.Streaming)

	pg.Exec(t, "app", `INSERT INTO contacts VALUES (1, 'a@x', 1.50), (2, 'b@x', NULL)`)
	pg.Exec(t, "app", `UPDATE contacts SET email = 'a2@x' WHERE id = 1`)
	pg.Exec(t, "app", `DELETE FROM contacts WHERE id = 2`)

	got := col.WaitFor(t, 30*time.Second, "4 events", func(es []cdc.Event) bool { return len(es) >= 4 })
	want := []struct {
		op    cdc.Op
		key   string
		after string
	}{
		{cdc.OpCreate, `{"id":1}`, `{"id":1,"email":"a@x","n":"1.50"}`},
		{cdc.OpCreate, `{"id":2}`, `{"id":2,"email":"b@x","n":null}`},
		{cdc.OpUpdate, `{"id":1}`, `{"id":1,"email":"a2@x","n":"1.50"}`},
		{cdc.OpDelete, `{"id":2}`, `null`},
	}
	for i, w := range want {
		e := got[i]
		if e.Op != w.op || string(cdc.AppendKey(nil, &e)) != w.key || string(rowJSON(e.After)) != w.after {
			t.Errorf("event %d: op=%c key=%s after=%s, want %c %s %s", i, e.Op, cdc.AppendKey(nil, &e), rowJSON(e.After), w.op, w.key, w.after)
		}
		if e.Schema != "public" || e.Table != "contacts" || e.Source != cdc.SourcePostgres {
			t.Errorf("event %d: %s.%s from %q", i, e.Schema, e.Table, e.Source)
		}
	}
	if got[0].Pos.CommitLSN != got[1].Pos.CommitLSN || got[0].Pos.Index != 0 || got[1].Pos.Index != 1 {
		t.Errorf("positions of one transaction: %v %v", got[0].Pos, got[1].Pos)
	}
	if !got[1].Pos.Less(got[2].Pos) || !got[2].Pos.Less(got[3].Pos) {
		t.Errorf("positions not in commit order: %v %v %v", got[1].Pos, got[2].Pos, got[3].Pos)
	}
	last := got[3].Pos.CommitLSN
	cdctest.Eventually(t, 10*time.Second, "slot confirmed past the last commit", func() bool {
		return slotLSN(t, url, "cdcd") > last
	})
}

func TestReaderConfirmsOnlyAcknowledgedAndResumes(t *testing.T) {
	pg := cdctest.StartPostgres(t)
	url := pg.CreateDB(t, "app")
	pg.Exec(t, "app", `CREATE TABLE t (id int PRIMARY KEY)`)
	col := &cdctest.Collector{Hold: true}
	r, stop, _ := startReader(t, testConfig(url, "t"), col)
	cdctest.Eventually(t, 30*time.Second, "streaming", r.Streaming)
	before := slotLSN(t, url, "cdcd")
	pg.Exec(t, "app", `INSERT INTO t VALUES (1)`)
	col.WaitFor(t, 30*time.Second, "the insert", func(es []cdc.Event) bool { return len(es) == 1 })
	// Unacknowledged: the slot must not move past the transaction, even
	// after several status intervals and keepalives.
	pg.Exec(t, "app", `SELECT pg_switch_wal()`)
	waitStatusUpdates(t, url, 3)
	if got := slotLSN(t, url, "cdcd"); got > col.Events()[0].Pos.CommitLSN {
		t.Fatalf("slot confirmed %v past the unacknowledged commit at %v (was %v)", got, col.Events()[0].Pos.CommitLSN, before)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	// A new reader gets the unconfirmed transaction again, with the same id.
	col2 := &cdctest.Collector{}
	startReader(t, testConfig(url, "t"), col2)
	got := col2.WaitFor(t, 30*time.Second, "the re-sent insert", func(es []cdc.Event) bool { return len(es) >= 1 })
	if got[0].ID() != col.Events()[0].ID() {
		t.Fatalf("re-sent event id %s, want %s", got[0].ID(), col.Events()[0].ID())
	}
	pg.Exec(t, "app", `INSERT INTO t VALUES (2)`)
	got = col2.WaitFor(t, 30*time.Second, "the next insert", func(es []cdc.Event) bool { return len(es) >= 2 })
	if len(got) != 2 {
		t.Fatalf("got %d events, want 2", len(got))
	}
}

func TestReaderIdleSlotAdvances(t *testing.T) {
	pg := cdctest.StartPostgres(t)
	url := pg.CreateDB(t, "app")
	pg.CreateDB(t, "other")
	pg.Exec(t, "app", `CREATE TABLE t (id int PRIMARY KEY)`)
	pg.Exec(t, "other", `CREATE TABLE busy (id int)`)
	cfg := testConfig(url, "t")
	cfg.Heartbeat = time.Second
	r, _, _ := startReader(t, cfg, &cdctest.Collector{})
	cdctest.Eventually(t, 30*time.Second, "streaming", r.Streaming)
	start := slotLSN(t, url, "cdcd")
	pg.Exec(t, "other", `INSERT INTO busy SELECT generate_series(1, 10000)`)
	cdctest.Eventually(t, 30*time.Second, "the idle slot to follow WAL written by another database", func() bool {
		return slotLSN(t, url, "cdcd") > start+100_000
	})
}

func TestReaderSetupErrors(t *testing.T) {
	pg := cdctest.StartPostgres(t)
	url := pg.CreateDB(t, "app")
	pg.Exec(t, "app", `CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY);
		CREATE PUBLICATION other FOR TABLE a;
		CREATE ROLE plain LOGIN`)
	plainURL := strings.Replace(url, "postgres@", "plain@", 1)
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"missing table", testConfig(url, "public.nope"), "table public.nope does not exist"},
		{"publication covers other tables", func() Config { c := testConfig(url, "a", "b"); c.Publication = "other"; return c }(),
			`publication "other" covers [public.a] but postgres.tables lists [public.a, public.b]`},
		{"no replication privilege", testConfig(plainURL, "a"), `ALTER ROLE "plain" REPLICATION`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, done := startReader(t, tt.cfg, &cdctest.Collector{})
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("Run = %v, want an error containing %q", err, tt.want)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("Run kept retrying a problem only the operator can fix")
			}
		})
	}
}

func TestReaderRefusesWalLevelReplica(t *testing.T) {
	pg := cdctest.StartPostgres(t, "wal_level = replica")
	url := pg.CreateDB(t, "app")
	_, _, done := startReader(t, testConfig(url), &cdctest.Collector{})
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), `wal_level is "replica"; set wal_level=logical`) {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run kept retrying wal_level=replica")
	}
}

// waitStatusUpdates waits until the server has received n more standby
// status updates from cdcd, so that a position it must not confirm had every
// chance to be.
func waitStatusUpdates(t *testing.T, url string, n int) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var last time.Time
	seen := -1
	cdctest.Eventually(t, 30*time.Second, "status updates", func() bool {
		var reply time.Time
		if err := conn.QueryRow(ctx, "SELECT reply_time FROM pg_stat_replication WHERE application_name = 'cdcd'").Scan(&reply); err != nil {
			return false
		}
		if !reply.Equal(last) {
			last = reply
			seen++
		}
		return seen >= n
	})
}

func rowJSON(r cdc.Row) []byte {
	e := cdc.Event{Key: r}
	return cdc.AppendKey(nil, &e)
}

func TestReaderStandsByWhileSlotBusyThenTakesOver(t *testing.T) {
	pg := cdctest.StartPostgres(t)
	url := pg.CreateDB(t, "app")
	pg.Exec(t, "app", `CREATE TABLE t (id int PRIMARY KEY)`)
	first, stopFirst, _ := startReader(t, testConfig(url, "t"), &cdctest.Collector{})
	cdctest.Eventually(t, 30*time.Second, "first reader streaming", first.Streaming)

	col := &cdctest.Collector{}
	second, _, ended := startReader(t, testConfig(url, "t"), col)
	pg.Exec(t, "app", `INSERT INTO t VALUES (1)`)
	waitStatusUpdates(t, url, 2)
	if second.Streaming() {
		t.Fatal("second reader streams from a slot the first one holds")
	}
	select {
	case err := <-ended:
		t.Fatalf("standby gave up: %v", err)
	default:
	}

	// Stand by long enough that a growing backoff would have reached
	// several seconds, then the active reader goes away: the standby must
	// take over within seconds, not after its next backoff.
	cdctest.Eventually(t, 60*time.Second, "five standby checks", func() bool { return second.standbyChecks.Load() >= 5 })
	if err := stopFirst(); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	cdctest.Eventually(t, 60*time.Second, "standby taking over", second.Streaming)
	if took := time.Since(stopped); took > 5*time.Second {
		t.Errorf("the standby took over %v after the active reader stopped, want within 5s", took.Round(time.Millisecond))
	}
	pg.Exec(t, "app", `INSERT INTO t VALUES (2)`)
	col.WaitFor(t, 30*time.Second, "the change after take-over", func(es []cdc.Event) bool {
		return len(es) > 0 && string(cdc.AppendKey(nil, &es[len(es)-1])) == `{"id":2}`
	})
}

func TestReaderNeverCapturesCdcdsOwnSchema(t *testing.T) {
	pg := cdctest.StartPostgres(t)
	url := pg.CreateDB(t, "app")
	pg.Exec(t, "app", `CREATE TABLE t (id int PRIMARY KEY); CREATE SCHEMA cdcd; CREATE TABLE cdcd.links (k text PRIMARY KEY)`)
	col := &cdctest.Collector{}
	r, _, _ := startReader(t, testConfig(url), col) // all tables
	cdctest.Eventually(t, 30*time.Second, "streaming", r.Streaming)
	pg.Exec(t, "app", `INSERT INTO cdcd.links VALUES ('a'); INSERT INTO t VALUES (1); INSERT INTO cdcd.links VALUES ('b')`)
	pg.Exec(t, "app", `BEGIN; INSERT INTO cdcd.links VALUES ('c'); INSERT INTO t VALUES (2); COMMIT`)
	got := col.WaitFor(t, 30*time.Second, "the two changes of public.t", func(es []cdc.Event) bool { return len(es) >= 2 })
	for _, e := range got {
		if e.Schema != "public" {
			t.Fatalf("captured %s.%s", e.Schema, e.Table)
		}
	}
	last := got[len(got)-1].Pos.CommitLSN
	cdctest.Eventually(t, 10*time.Second, "the slot confirmed past the mixed transaction", func() bool {
		return slotLSN(t, url, "cdcd") > last
	})
}

// A table of cdcd's schema named in the config (cdcd.conflicts, to alert
// on conflicts) is captured.
func TestReaderCapturesConfiguredStateTables(t *testing.T) {
	pg := cdctest.StartPostgres(t)
	url := pg.CreateDB(t, "app")
	pg.Exec(t, "app", `CREATE SCHEMA cdcd; CREATE TABLE cdcd.links (k text PRIMARY KEY); CREATE TABLE cdcd.conflicts (id int PRIMARY KEY)`)
	col := &cdctest.Collector{}
	cfg := testConfig(url)
	cfg.Tables = []Table{{Schema: "cdcd", Name: "conflicts"}}
	cfg.Publication = "cdcd_state"
	r, _, _ := startReader(t, cfg, col)
	cdctest.Eventually(t, 30*time.Second, "streaming", r.Streaming)
	pg.Exec(t, "app", `INSERT INTO cdcd.links VALUES ('a'); INSERT INTO cdcd.conflicts VALUES (7)`)
	got := col.WaitFor(t, 30*time.Second, "the conflict", func(es []cdc.Event) bool { return len(es) >= 1 })
	if len(got) != 1 || got[0].Schema != "cdcd" || got[0].Table != "conflicts" {
		t.Fatalf("captured %+v", got)
	}
}
