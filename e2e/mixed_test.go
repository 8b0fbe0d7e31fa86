package e2e

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/cdcd-dev/cdcd/cdc"
)

const bulkRows = 200_000

const mixedSchema = `
CREATE TYPE mood AS ENUM ('sad', 'happy', 'very happy');
CREATE DOMAIN posint AS int4 CHECK (VALUE > 0);
CREATE TABLE small (id int PRIMARY KEY, n int NOT NULL, v text NOT NULL);
CREATE TABLE bulk (id int PRIMARY KEY, v text NOT NULL);
CREATE TABLE toasty (id int PRIMARY KEY, big text, n int);
ALTER TABLE toasty ALTER COLUMN big SET STORAGE EXTERNAL;
CREATE TABLE scratch (id int PRIMARY KEY);
`

// TestMixedWorkload streams many small transactions, one 200,000-row
// transaction, TOASTed values, a primary-key change, deletes, every common
// type, NULLs and a TRUNCATE
// through the cdcd binary, and checks each table's topic change by change.
func TestMixedWorkload(t *testing.T) {
	needsServers(t)
	t.Parallel()
	s := startStack(t, mixedSchema+typesSchema())
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	small := newSmallChanges(2000, 200)
	big1, big2 := randomText(10_000), randomText(12_000)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return execOn(gctx, s.url, q(fmt.Sprintf(`INSERT INTO bulk SELECT g, md5(g::text) FROM generate_series(1, %d) g`, bulkRows)))
	})
	g.Go(func() error {
		return execOn(gctx, s.url,
			q(small.sql),
			q(`INSERT INTO toasty VALUES (1, $1, 1), (2, NULL, 1)`, big1),
			q(`UPDATE toasty SET n = 2`),
			q(`UPDATE toasty SET big = $1 WHERE id = 1`, big2),
			q(`UPDATE toasty SET n = 3 WHERE id = 1`),
			q(`UPDATE toasty SET id = 3 WHERE id = 2`),
			q(`DELETE FROM toasty WHERE id = 3`),
			q(typesChanges()),
			q(`INSERT INTO scratch VALUES (1), (2), (3)`),
			q(`TRUNCATE scratch`))
	})
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	waitCaughtUp(t, s.url, 150*time.Second)
	s.cdcd.mustBeRunning("after catching up")
	brokers := s.kafka.Brokers()

	t.Run("small transactions", func(t *testing.T) {
		small.check(t, checkDelivery(t, readEvents(t, brokers, "cdcd.public.small")))
	})
	t.Run("toast", func(t *testing.T) {
		checkToast(t, checkDelivery(t, readEvents(t, brokers, "cdcd.public.toasty")), big1, big2)
	})
	t.Run("types", func(t *testing.T) {
		checkTypes(t, checkDelivery(t, readEvents(t, brokers, "cdcd.public.types")))
	})
	t.Run("truncate", func(t *testing.T) {
		checkTruncate(t, checkDelivery(t, readEvents(t, brokers, "cdcd.public.scratch")))
	})
	t.Run("read by kcat", func(t *testing.T) {
		for _, topic := range []string{"cdcd.public.small", "cdcd.public.types", "cdcd.public.toasty"} {
			checkSameAsKcat(t, brokers, topic)
		}
	})
	t.Run("200k-row transaction", func(t *testing.T) {
		checkBulk(t, checkDelivery(t, readTopic(t, brokers, "cdcd.public.bulk", false)))
	})
}

// stmt is one statement and its arguments; a statement without arguments
// may hold several, separated by semicolons.
type stmt struct {
	sql  string
	args []any
}

func q(sql string, args ...any) stmt { return stmt{sql, args} }

// execOn runs the statements in order on a new connection.
func execOn(ctx context.Context, url string, stmts ...stmt) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for i, st := range stmts {
		args := st.args
		if len(args) == 0 {
			args = []any{pgx.QueryExecModeSimpleProtocol}
		}
		if _, err := conn.Exec(ctx, st.sql, args...); err != nil {
			return fmt.Errorf("statement %d: %w", i, err)
		}
	}
	return nil
}

func randomText(n int) string {
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, n)
	for i := range b {
		b[i] = letters[rand.IntN(len(letters))]
	}
	return string(b)
}

// smallChanges is a script of single-row transactions on a set of keys and
// what each key's events must be, in order.
type smallChanges struct {
	sql  string
	want map[string][]string // per key, "op before after" of each change
	n    int
}

func newSmallChanges(n, keys int) *smallChanges {
	rng := rand.New(rand.NewPCG(7, 7))
	s := &smallChanges{want: map[string][]string{}, n: n}
	exists := map[int]bool{}
	var sql strings.Builder
	for i := range n {
		k := rng.IntN(keys)
		key := keyJSON(k)
		v := fmt.Sprintf("v%d", i)
		after := fmt.Sprintf(`{"id":%d,"n":%d,"v":%q}`, k, i, v)
		switch {
		case !exists[k]:
			exists[k] = true
			fmt.Fprintf(&sql, "BEGIN; INSERT INTO small VALUES (%d, %d, '%s'); COMMIT;\n", k, i, v)
			s.want[key] = append(s.want[key], "c null "+after)
		case rng.IntN(4) == 0:
			exists[k] = false
			fmt.Fprintf(&sql, "BEGIN; DELETE FROM small WHERE id = %d; COMMIT;\n", k)
			s.want[key] = append(s.want[key], "d "+key+" null")
		default:
			fmt.Fprintf(&sql, "BEGIN; UPDATE small SET n = %d, v = '%s' WHERE id = %d; COMMIT;\n", i, v, k)
			s.want[key] = append(s.want[key], "u null "+after)
		}
	}
	s.sql = sql.String()
	return s
}

func (s *smallChanges) check(t *testing.T, d *delivered) {
	if len(d.byID) != s.n {
		t.Errorf("%d distinct events, want %d", len(d.byID), s.n)
	}
	commits := map[string]bool{}
	for _, e := range d.byID {
		if e.pos.Index != 0 || commits[e.pos.CommitLSN.String()] {
			t.Errorf("event %s: each single-row transaction must have its own commit lsn and index 0", e.id)
		}
		commits[e.pos.CommitLSN.String()] = true
	}
	for key, want := range s.want {
		got := d.perKey[key]
		if len(got) != len(want) {
			t.Errorf("key %s: %d events, want %d", key, len(got), len(want))
			continue
		}
		for i, e := range got {
			if line := e.op + " " + rowJSON(e.before) + " " + rowJSON(e.after); line != want[i] {
				t.Errorf("key %s: event %d (%s, op %s) differs from the change committed (op %s)", key, i, e.id, e.op, want[i][:1])
			}
		}
	}
}

// rowJSON re-encodes a decoded row in column order id, n, v, as cdcd
// writes the small table's rows.
func rowJSON(r map[string]json.RawMessage) string {
	if r == nil {
		return "null"
	}
	var parts []string
	for _, c := range []string{"id", "n", "v"} {
		if v, ok := r[c]; ok {
			parts = append(parts, strconv.Quote(c)+":"+string(v))
		}
	}
	if len(parts) != len(r) {
		return "<unexpected columns>"
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// checkBulk expects one insert for each row of the 200,000-row
// transaction, byte for byte, all with the transaction's commit lsn and
// distinct indexes.
func checkBulk(t *testing.T, d *delivered) {
	if len(d.byID) != bulkRows {
		t.Fatalf("%d distinct events, want %d", len(d.byID), bulkRows)
	}
	seen := make([]bool, bulkRows+1)
	var commit cdc.LSN
	for _, e := range d.byID {
		id, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(e.key, `{"id":`), "}"))
		if err != nil || id < 1 || id > bulkRows || seen[id] {
			t.Fatalf("event %s: key missing, out of range or repeated", e.id)
		}
		seen[id] = true
		sum := md5.Sum([]byte(strconv.Itoa(id)))
		after := `{"id":` + strconv.Itoa(id) + `,"v":"` + hex.EncodeToString(sum[:]) + `"}`
		if e.op != "c" || string(e.beforeRaw) != "null" || string(e.afterRaw) != after || e.key != keyJSON(id) || int(e.pos.Index) >= bulkRows {
			t.Fatalf("event %s does not match row %d", e.id, id)
		}
		if commit == 0 {
			commit = e.pos.CommitLSN
		} else if e.pos.CommitLSN != commit {
			t.Fatalf("event %s: commit lsn differs from %v within one transaction", e.id, commit)
		}
	}
}
