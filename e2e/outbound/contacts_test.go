package outbound

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdcd-dev/cdcd/vendortest/hubspot"
)

func createContacts(t *testing.T, url string) {
	t.Helper()
	execSQL(t, url, `CREATE TABLE contacts (
		id         int PRIMARY KEY,
		email      text NOT NULL UNIQUE,
		first_name text,
		last_name  text,
		phone      text,
		rev        int  NOT NULL DEFAULT 0,
		stage      text NOT NULL DEFAULT 'lead'
	)`)
}

func execSQL(t *testing.T, url, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("exec: %v", err)
	}
}

// contact is a row of the contacts table.
type contact struct {
	id                        int
	email, first, last, phone string
	rev                       int
	stage                     string
}

// props are the HubSpot properties the pipeline maps the row to.
func (c contact) props() map[string]string {
	return map[string]string{"email": c.email, "firstname": c.first, "lastname": c.last,
		"phone": c.phone, "rev": strconv.Itoa(c.rev), "lifecyclestage": c.stage}
}

// workload changes the contacts table, one change per transaction, and
// remembers what it did.
type workload struct {
	t       *testing.T
	conn    *pgx.Conn
	rng     *rand.Rand
	ids     []int          // live contacts, in insert order
	deleted map[string]int // email of each deleted contact → its id
	changes int            // committed changes, one event each
	// pace, when set, is called after every paceEvery changes: it holds the
	// workload back so that changes reach the vendor in many calls.
	pace      func()
	paceEvery int
}

func newWorkload(t *testing.T, url string) *workload {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	seed := uint64(time.Now().UnixNano())
	t.Logf("workload seed %d", seed)
	return &workload{t: t, conn: conn, rng: rand.New(rand.NewPCG(seed, seed)), deleted: map[string]int{}}
}

func (w *workload) exec(sql string, args ...any) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tag, err := w.conn.Exec(ctx, sql, args...)
	if err != nil || tag.RowsAffected() != 1 {
		w.t.Fatalf("workload: %v (%d rows)", err, tag.RowsAffected())
	}
	w.changes++
	if w.pace != nil && w.changes%w.paceEvery == 0 {
		w.pace()
	}
}

func emailOf(id int) string { return fmt.Sprintf("c%05d@example.com", id) }

// insert adds contacts first..first+n-1 with the given stage.
func (w *workload) insert(first, n int, stage string) {
	w.t.Helper()
	for id := first; id < first+n; id++ {
		w.exec(`INSERT INTO contacts (id, email, first_name, last_name, phone, stage) VALUES ($1, $2, $3, $4, $5, $6)`,
			id, emailOf(id), fmt.Sprintf("F%d", id), fmt.Sprintf("L%d", id), fmt.Sprintf("+1555%07d", id), stage)
		w.ids = append(w.ids, id)
	}
}

// update changes one contact: new names or phone, and the next rev.
func (w *workload) update(id int) {
	w.t.Helper()
	switch w.rng.IntN(3) {
	case 0:
		w.exec(`UPDATE contacts SET first_name = $2, rev = rev + 1 WHERE id = $1`, id, fmt.Sprintf("F%d-%d", id, w.rng.IntN(1e6)))
	case 1:
		w.exec(`UPDATE contacts SET last_name = $2, rev = rev + 1 WHERE id = $1`, id, fmt.Sprintf("L%d-%d", id, w.rng.IntN(1e6)))
	default:
		w.exec(`UPDATE contacts SET phone = $2, rev = rev + 1 WHERE id = $1`, id, fmt.Sprintf("+1666%07d", w.rng.IntN(1e7)))
	}
}

// updateRounds makes rounds passes over a random share of the contacts,
// updating each picked one; every contact is updated in a separate
// transaction from its others.
func (w *workload) updateRounds(rounds int, share float64) {
	w.t.Helper()
	for range rounds {
		for _, id := range w.ids {
			if w.rng.Float64() < share {
				w.update(id)
			}
		}
	}
}

// remove deletes contacts.
func (w *workload) remove(ids []int) {
	w.t.Helper()
	for _, id := range ids {
		w.exec(`DELETE FROM contacts WHERE id = $1`, id)
		w.deleted[emailOf(id)] = id
	}
	live := w.ids[:0]
	for _, id := range w.ids {
		if _, gone := w.deleted[emailOf(id)]; !gone {
			live = append(live, id)
		}
	}
	w.ids = live
}

// rows reads the table, by email.
func rows(ctx context.Context, url string) (map[string]contact, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rs, err := conn.Query(ctx, `SELECT id, email, coalesce(first_name, ''), coalesce(last_name, ''), coalesce(phone, ''), rev, stage FROM contacts`)
	if err != nil {
		return nil, err
	}
	out := map[string]contact{}
	for rs.Next() {
		var c contact
		if err := rs.Scan(&c.id, &c.email, &c.first, &c.last, &c.phone, &c.rev, &c.stage); err != nil {
			return nil, err
		}
		out[strings.ToLower(c.email)] = c
	}
	return out, rs.Err()
}

// mismatches compares the double's contacts with the table: every row has
// exactly one live record whose mapped properties equal the row's, every
// deleted contact has none live and an archived one, and no other record
// is live. Problems name contact ids, never values.
func mismatches(table map[string]contact, deleted map[string]int, hub *hubspot.Server) []string {
	live := map[string][]hubspot.Object{}
	archived := map[string]int{}
	for _, o := range hub.Objects("contacts") {
		email := strings.ToLower(o.Properties["email"])
		if o.Archived {
			archived[email]++
			continue
		}
		live[email] = append(live[email], o)
	}
	var out []string
	for email, c := range table {
		objs := live[email]
		if len(objs) != 1 {
			out = append(out, fmt.Sprintf("contact %d: %d live records", c.id, len(objs)))
			continue
		}
		for k, want := range c.props() {
			if objs[0].Properties[k] != want {
				out = append(out, fmt.Sprintf("contact %d (record %s): property %s differs", c.id, objs[0].ID, k))
			}
		}
	}
	for email, id := range deleted {
		if len(live[email]) > 0 || archived[email] == 0 {
			out = append(out, fmt.Sprintf("deleted contact %d: %d live, %d archived records", id, len(live[email]), archived[email]))
		}
	}
	for email, objs := range live {
		if _, ok := table[email]; !ok {
			if _, gone := deleted[email]; !gone {
				out = append(out, fmt.Sprintf("record %s is live but matches no contact", objs[0].ID))
			}
		}
	}
	return out
}

// waitConverged polls until the double matches the table, leaving out the
// contacts in skip, and fails with the remaining differences at the
// deadline.
func waitConverged(t *testing.T, url string, deleted map[string]int, hub *hubspot.Server, timeout time.Duration, skip ...int) {
	t.Helper()
	poll(t, timeout, 200*time.Millisecond, func() error {
		table, err := rows(context.Background(), url)
		if err != nil {
			t.Fatalf("read contacts: %v", err)
		}
		for _, id := range skip {
			delete(table, emailOf(id))
		}
		if bad := mismatches(table, deleted, hub); len(bad) > 0 {
			return fmt.Errorf("the double does not match the table: %d differences, first: %s",
				len(bad), strings.Join(bad[:min(len(bad), 10)], "; "))
		}
		return nil
	})
}

// checkCreatedOnce fails the test if a contact was created more than once
// in the double, or one of want was never created.
func checkCreatedOnce(t *testing.T, hub *hubspot.Server, want []int) {
	t.Helper()
	creates := map[string]int{}
	for _, w := range hub.Writes() {
		if w.Type == "contacts" && w.Op == "create" {
			creates[strings.ToLower(w.Properties["email"])]++
		}
	}
	for email, n := range creates {
		if n != 1 {
			t.Errorf("contact %d was created %d times", idOf(email), n)
		}
	}
	for _, id := range want {
		if creates[emailOf(id)] == 0 {
			t.Errorf("contact %d was never created", id)
		}
	}
}

// idOf is the contact id in an email made by emailOf; -1 for others.
func idOf(email string) int {
	var id int
	if _, err := fmt.Sscanf(email, "c%d@example.com", &id); err != nil {
		return -1
	}
	return id
}

// checkOrder fails the test if a record's write history sets an older rev
// after a newer one.
func checkOrder(t *testing.T, hub *hubspot.Server) {
	t.Helper()
	last := map[string]int{}
	for _, w := range hub.Writes() {
		v, ok := w.Properties["rev"]
		if w.Type != "contacts" || !ok {
			continue
		}
		rev, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("record %s: write %d set rev to a non-number", w.ID, w.Seq)
		}
		if prev, seen := last[w.ID]; seen && rev < prev {
			t.Errorf("record %s: write %d set rev %d after rev %d", w.ID, w.Seq, rev, prev)
		}
		last[w.ID] = rev
	}
}
