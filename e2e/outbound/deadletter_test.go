package outbound

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdcd-dev/cdcd/cdc/cdctest"
	"github.com/cdcd-dev/cdcd/vendortest/hubspot"
)

// letter is a dead letter as `cdcd dlq list --json` and `dlq show --json`
// print it.
type letter struct {
	ID       int64           `json:"id"`
	Pipeline string          `json:"pipeline"`
	Key      string          `json:"key"`
	Op       string          `json:"op"`
	Status   string          `json:"status"`
	Attempts int             `json:"attempts"`
	Error    string          `json:"error"`
	Record   json.RawMessage `json:"record"`
}

// TestDeadLettersReplayAfterTheCauseIsFixed: records the vendor refuses
// for good are dead-lettered with the vendor's message while the rest is
// delivered and the slot moves past them all; once the vendor accepts them,
// `cdcd dlq replay --pipeline P --all` makes the running daemon deliver
// them.
func TestDeadLettersReplayAfterTheCauseIsFixed(t *testing.T) {
	t.Parallel()
	d := newDeployment(t, false, hubspot.Options{})
	const refused = "evangelist"
	d.hub.SetOptions("contacts", "lifecyclestage", "lead", "customer")
	d.start("all")

	w := newWorkload(t, d.url)
	w.insert(1, 40, "lead")
	w.insert(41, 5, refused)
	w.insert(46, 40, "customer")
	bad := []int{41, 42, 43, 44, 45}
	for _, id := range w.ids {
		if !slices.Contains(bad, id) && id%2 == 0 {
			w.update(id)
			w.update(id)
		}
	}
	waitCaughtUp(t, d.url, d.name, 30*time.Second)
	waitConverged(t, d.url, nil, d.hub, 30*time.Second, bad...)

	var letters []letter
	cdctest.Eventually(t, 10*time.Second, "5 dead letters", func() bool {
		letters = nil
		mustJSON(t, d.cli("dlq", "list", "--pipeline", pipelineName, "--json"), &letters)
		return len(letters) == len(bad)
	})
	var keys []string
	for _, l := range letters {
		keys = append(keys, l.Key)
		if l.Status != "dead" || l.Op != "c" || l.Attempts != 1 || !strings.Contains(l.Error, "VALIDATION_ERROR") ||
			!strings.Contains(l.Error, refused+" was not one of the allowed options") {
			t.Errorf("dead letter %d: status %s, op %s, %d attempts, error without the vendor's message: %q",
				l.ID, l.Status, l.Op, l.Attempts, l.Error)
		}
	}
	slices.Sort(keys)
	var want []string
	for _, id := range bad {
		want = append(want, fmt.Sprintf(`{"id":%d}`, id))
	}
	if !slices.Equal(keys, want) {
		t.Fatalf("dead letters for keys %v, want %v", keys, want)
	}
	var shown letter
	mustJSON(t, d.cli("dlq", "show", strconv.FormatInt(letters[0].ID, 10), "--json"), &shown)
	var rec map[string]any
	if err := json.Unmarshal(shown.Record, &rec); err != nil || shown.Error != letters[0].Error ||
		rec["lifecyclestage"] != refused || rec["email"] != emailOf(idOfKey(t, shown.Key)) {
		t.Fatalf("dlq show %d: error or record differ from the refused write (%v)", shown.ID, err)
	}
	if tr, err := readTrail(context.Background(), d.url); err != nil || tr.dead != len(bad) {
		t.Fatalf("audit trail: %d dead-lettered rows, want %d (%v)", tr.dead, len(bad), err)
	}

	d.hub.SetOptions("contacts", "lifecyclestage", "lead", "customer", refused)
	if out := d.cli("dlq", "replay", "--pipeline", pipelineName, "--all"); !strings.Contains(out, "marked 5 dead letters") {
		t.Fatalf("dlq replay printed %q", out)
	}
	waitConverged(t, d.url, nil, d.hub, 45*time.Second)
	cdctest.Eventually(t, 10*time.Second, "the dead letters to be marked replayed", func() bool {
		var replayed []letter
		mustJSON(t, d.cli("dlq", "list", "--pipeline", pipelineName, "--status", "replayed", "--json"), &replayed)
		return len(replayed) == len(bad)
	})
	if tr, err := readTrail(context.Background(), d.url); err != nil || tr.replayed != len(bad) {
		t.Fatalf("audit trail: %d replayed rows, want %d (%v)", tr.replayed, len(bad), err)
	}
	checkCreatedOnce(t, d.hub, w.ids)
}

func mustJSON(t *testing.T, out string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("cdcd printed invalid JSON: %v", err)
	}
}

func idOfKey(t *testing.T, key string) int {
	t.Helper()
	var k struct{ ID int }
	if err := json.Unmarshal([]byte(key), &k); err != nil {
		t.Fatalf("key %q: %v", key, err)
	}
	return k.ID
}

// waitCaughtUp waits until the slot confirmed everything written to the
// database so far.
func waitCaughtUp(t *testing.T, url, slot string, timeout time.Duration) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var behind bool
	target := ""
	if err := conn.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&target); err != nil {
		t.Fatal(err)
	}
	poll(t, timeout, 100*time.Millisecond, func() error {
		err := conn.QueryRow(ctx, "SELECT confirmed_flush_lsn < $1::pg_lsn FROM pg_replication_slots WHERE slot_name = $2",
			target, slot).Scan(&behind)
		switch {
		case err != nil:
			return err
		case behind:
			return fmt.Errorf("slot %s has not confirmed %s", slot, target)
		}
		return nil
	})
}
