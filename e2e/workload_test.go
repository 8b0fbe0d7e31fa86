package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cdcd-dev/cdcd/cdc/cdctest"
)

// workloadTable is the table the background workload writes.
const workloadTable = `CREATE TABLE acct (id int PRIMARY KEY, n bigint NOT NULL, v text NOT NULL)`

// workload runs small transactions (one to three changes each) on a fixed
// set of keys of table acct, one after another on one connection, and
// records every change whose transaction committed.
type workload struct {
	keys int
	rng  *rand.Rand
	seq  int64
	rows map[int]row // the table as the committed changes left it
	// committed holds the committed changes in commit order.
	committed []change
	// txns counts committed transactions; it may be read while running.
	txns atomic.Int64
}

type row struct {
	n int64
	v string
}

// change is one committed change: its transaction id and index within the
// transaction place it in the WAL and so name its event.
type change struct {
	xid   uint32
	index uint32
	op    string
	key   int
	row   row // the new values; zero for a delete
}

func newWorkload(keys int) *workload {
	return &workload{keys: keys, rng: rand.New(rand.NewPCG(1, uint64(keys))), rows: map[int]row{}}
}

// start runs transactions on url in the background until the returned stop
// is called; stop fails the test if a transaction failed. Only one run may
// be going at a time.
func (w *workload) start(t *testing.T, url string) (stop func()) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgconn.Connect(ctx, url)
	if err != nil {
		t.Fatalf("workload connect: %v", err)
	}
	quit, result := make(chan struct{}), make(chan error, 1)
	go func() {
		defer conn.Close(context.Background())
		tick := time.NewTicker(2 * time.Millisecond) // at most 500 transactions/s
		defer tick.Stop()
		for {
			select {
			case <-quit:
				result <- nil
				return
			case <-tick.C:
			}
			if err := w.txn(conn); err != nil {
				result <- err
				return
			}
		}
	}()
	return func() {
		t.Helper()
		close(quit)
		if err := <-result; err != nil {
			t.Fatalf("workload transaction: %v", err)
		}
	}
}

// txn runs one transaction in a single round trip and records its changes
// once COMMIT succeeded.
func (w *workload) txn(conn *pgconn.PgConn) error {
	var sql strings.Builder
	sql.WriteString("BEGIN; SELECT pg_current_xact_id()::text;")
	rows := map[int]row{} // this transaction's changes; a zero row is deleted
	exists := func(k int) bool {
		if r, ok := rows[k]; ok {
			return r != row{}
		}
		_, ok := w.rows[k]
		return ok
	}
	var changes []change
	for i := range 1 + w.rng.IntN(3) {
		k := w.rng.IntN(w.keys)
		w.seq++
		c := change{index: uint32(i), key: k, row: row{n: w.seq, v: w.randText()}}
		switch {
		case !exists(k):
			c.op = "c"
			fmt.Fprintf(&sql, "INSERT INTO acct VALUES (%d, %d, '%s');", k, c.row.n, c.row.v)
		case w.rng.IntN(5) == 0:
			c.op, c.row = "d", row{}
			fmt.Fprintf(&sql, "DELETE FROM acct WHERE id = %d;", k)
		default:
			c.op = "u"
			fmt.Fprintf(&sql, "UPDATE acct SET n = %d, v = '%s' WHERE id = %d;", c.row.n, c.row.v, k)
		}
		rows[k] = c.row
		changes = append(changes, c)
	}
	sql.WriteString("COMMIT")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	results, err := conn.Exec(ctx, sql.String()).ReadAll()
	if err != nil {
		return err
	}
	xid, err := strconv.ParseUint(string(results[1].Rows[0][0]), 10, 64)
	if err != nil {
		return fmt.Errorf("transaction id: %w", err)
	}
	for _, c := range changes {
		c.xid = uint32(xid) // the epoch-free xid the WAL carries
		if c.op == "d" {
			delete(w.rows, c.key)
		} else {
			w.rows[c.key] = c.row
		}
		w.committed = append(w.committed, c)
	}
	w.txns.Add(1)
	return nil
}

// waitTxns waits until n more transactions have committed.
func (w *workload) waitTxns(t *testing.T, n int64) {
	t.Helper()
	target := w.txns.Load() + n
	cdctest.Eventually(t, 60*time.Second, fmt.Sprintf("%d workload transactions", n), func() bool {
		return w.txns.Load() >= target
	})
}

func (w *workload) randText() string {
	b := make([]byte, 8+w.rng.IntN(16))
	for i := range b {
		b[i] = 'a' + byte(w.rng.IntN(26))
	}
	return string(b)
}

func keyJSON(k int) string { return fmt.Sprintf(`{"id":%d}`, k) }

// verify asserts that the topic holds every committed change exactly as
// made, nothing else, each key's changes in commit order, and that each
// key's last record matches its final row in Postgres. d comes from
// checkDelivery, which also checked re-sends and first-occurrence order.
func (w *workload) verify(t *testing.T, d *delivered, url string) {
	t.Helper()
	type place struct{ xid, index uint32 }
	byPlace := make(map[place]*event, len(d.byID))
	for _, e := range d.byID {
		byPlace[place{e.txID, e.pos.Index}] = e
	}
	missing := 0
	want := map[string][]string{} // per key, event ids in commit order
	for _, c := range w.committed {
		e, ok := byPlace[place{c.xid, c.index}]
		if !ok {
			if missing++; missing <= 5 {
				t.Errorf("committed change %d of transaction %d (key %d, op %s) is not in Kafka", c.index, c.xid, c.key, c.op)
			}
			continue
		}
		want[e.key] = append(want[e.key], e.id)
		if e.op != c.op || e.key != keyJSON(c.key) || !matchesChange(e, c) {
			t.Errorf("event %s does not match committed change %d of transaction %d (key %d, op %s)", e.id, c.index, c.xid, c.key, c.op)
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d committed changes are not in Kafka", missing, len(w.committed))
	}
	if len(d.byID) != len(w.committed) {
		t.Fatalf("Kafka holds %d distinct events, the workload committed %d changes", len(d.byID), len(w.committed))
	}
	for key, ids := range want {
		got := d.perKey[key]
		if len(got) != len(ids) {
			t.Fatalf("key %s: %d distinct events, %d committed changes", key, len(got), len(ids))
		}
		for i := range ids {
			if got[i].id != ids[i] {
				t.Fatalf("key %s: change %d arrived first as %s, committed as %s", key, i, got[i].id, ids[i])
			}
		}
	}
	w.verifyFinalRows(t, d, url)
}

func matchesChange(e *event, c change) bool {
	if c.op == "d" {
		return e.after == nil && len(e.before) == 1 && string(e.before["id"]) == strconv.Itoa(c.key)
	}
	v, _ := json.Marshal(c.row.v)
	return e.before == nil && len(e.after) == 3 && string(e.after["id"]) == strconv.Itoa(c.key) &&
		string(e.after["n"]) == strconv.FormatInt(c.row.n, 10) && string(e.after["v"]) == string(v)
}

// verifyFinalRows compares each key's last record with the row Postgres
// holds now (and the workload's own account of it).
func (w *workload) verifyFinalRows(t *testing.T, d *delivered, url string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	final := map[int]row{}
	rs, _ := conn.Query(ctx, "SELECT id, n, v FROM acct")
	var id int
	var r row
	if _, err := pgx.ForEachRow(rs, []any{&id, &r.n, &r.v}, func() error { final[id] = r; return nil }); err != nil {
		t.Fatalf("read acct: %v", err)
	}
	if len(final) != len(w.rows) {
		t.Fatalf("acct holds %d rows, the workload left %d", len(final), len(w.rows))
	}
	for k := range w.keys {
		last, touched := d.last[keyJSON(k)]
		r, exists := final[k]
		switch {
		case exists && r != w.rows[k]:
			t.Errorf("key %d: row differs from what the workload committed", k)
		case exists && (!touched || !matchesChange(last, change{op: last.op, key: k, row: r}) || last.op == "d"):
			t.Errorf("key %d: last record does not match the final row", k)
		case !exists && touched && last.op != "d":
			t.Errorf("key %d: row is deleted but the last record is %s (op %s)", k, last.id, last.op)
		}
	}
}
