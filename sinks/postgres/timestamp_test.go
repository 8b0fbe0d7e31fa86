package postgres

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/cdc/cdctest"
	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/conflict"
)

// A vendor's timestamp (…41.123Z) written to a timestamptz column reads
// back in Postgres's form (…41.123+00): the same value as the link's
// base, so the system's later changes of the record are applied, not
// taken for a conflict with a local change nobody made.
func TestVendorTimestampFormIsNoLocalChange(t *testing.T) {
	pg := cdctest.StartPostgres(t)
	url := pg.CreateDB(t, "ts")
	pg.Exec(t, "ts", contactsDDL)
	migrate(t, url)
	detected := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x"}, []string{"pipeline", "rule"})
	w, err := New("crm", testConfig(url), Inbound{Conflicts: &Conflicts{
		Pipeline: "crm-in", Policy: conflict.Policy{Rules: []conflict.Rule{{Kind: conflict.KindManual}}},
		Columns: map[string]string{"email": "email", "firstname": "name", "seen": "deleted_at"}, Detected: detected,
	}}, config.Env{Log: zerolog.New(zerolog.NewTestWriter(t))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close(context.Background()) })
	write(t, w, crmRecord(cdc.OpCreate, 1, "d1", "512", false, "email", `"a@x"`, "firstname", `"Ada"`, "seen", `"2026-03-01T07:34:41.123Z"`))
	for i, r := range []struct{ field, value, want string }{
		{"firstname", `"Bea"`, "Bea"},
		{"seen", `"2026-03-02T08:00:00.5Z"`, "Bea"},
		{"firstname", `"Cy"`, "Cy"},
	} {
		res := write(t, w, crmRecord(cdc.OpUpdate, 2+i, "d"+string(rune('2'+i)), "512", true, r.field, r.value))
		if res[0].Err != nil {
			t.Fatalf("change %d: %v", i, res[0].Err)
		}
		if c := lastConflict(t, url); c.n != 0 {
			t.Fatalf("change %d of %s raised a conflict: %+v", i, r.field, c)
		}
		if got := row(t, url, "a@x")["name"]; got != r.want {
			t.Fatalf("change %d: name %q, want %q", i, got, r.want)
		}
	}
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var seen string
	if err := conn.QueryRow(context.Background(), `SELECT to_char(deleted_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS') FROM contacts WHERE email = 'a@x'`).Scan(&seen); err != nil {
		t.Fatal(err)
	}
	if seen != "2026-03-02T08:00:00.500" {
		t.Fatalf("seen %s, want the second change's 2026-03-02T08:00:00.500", seen)
	}
}
