package postgres

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/cdc/cdctest"
	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/conflict"
)

// Regression: the local row was read back with the session's IntervalStyle
// (and TimeZone, DateStyle pinned, not IntervalStyle), while captured
// events, what an outbound pipeline sends and so the link's base, carry
// intervals in ISO 8601 (P1D). A vendor's P1D written to an interval
// column read back as "1 day" (or "@ 1 day", "1 0:00:00" in other
// styles): a local change nobody made, so the system's next change of
// the column was held as a conflict.
func TestVendorIntervalIsNoLocalChange(t *testing.T) {
	pg := cdctest.StartPostgres(t)
	for _, style := range []string{"postgres", "postgres_verbose", "sql_standard", "iso_8601"} {
		t.Run(style, func(t *testing.T) {
			vendorValueIsNoLocalChange(t, pg, "iv_"+style, "IntervalStyle = '"+style+"'", "interval", `"P1D"`, `"PT2H30M"`)
		})
	}
}

// Regression: the same for a timestamptz column: a vendor's …41.123Z read
// back as …41.123+00, compared as text with the link's base, was a local
// change nobody made.
func TestVendorTimestampIsNoLocalChange(t *testing.T) {
	pg := cdctest.StartPostgres(t)
	vendorValueIsNoLocalChange(t, pg, "ts", "TimeZone = 'Europe/Paris'", "timestamptz", `"2026-03-01T07:34:41.123Z"`, `"2026-03-02T08:00:00.5Z"`)
}

// Regression: the same for a float8 column in a database whose sessions
// set extra_float_digits to 0: 0.3333333333333333 read back as
// 0.333333333333333, where captured events (extra_float_digits 3) carry
// every digit.
func TestVendorFloatIsNoLocalChange(t *testing.T) {
	pg := cdctest.StartPostgres(t)
	vendorValueIsNoLocalChange(t, pg, "fl", "extra_float_digits = 0", "float8", `0.3333333333333333`, `0.6666666666666666`)
}

// vendorValueIsNoLocalChange writes first, then second, to a column of typ
// in a database whose sessions have setting, and the system's other
// changes around them: none may be taken for a conflict with a local
// change, and the column ends with second.
func vendorValueIsNoLocalChange(t *testing.T, pg *cdctest.Postgres, db, setting, typ, first, second string) {
	url := pg.CreateDB(t, db)
	pg.Exec(t, db, "ALTER DATABASE "+db+" SET "+setting)
	pg.Exec(t, db, contactsDDL)
	pg.Exec(t, db, "ALTER TABLE contacts ADD COLUMN wait "+typ)
	migrate(t, url)
	detected := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x"}, []string{"pipeline", "rule"})
	w, err := New("crm", testConfig(url), Inbound{Conflicts: &Conflicts{
		Pipeline: "crm-in", Policy: conflict.Policy{Rules: []conflict.Rule{{Kind: conflict.KindManual}}},
		Columns: map[string]string{"email": "email", "firstname": "name", "wait": "wait"}, Detected: detected,
	}}, config.Env{Log: zerolog.New(zerolog.NewTestWriter(t))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close(context.Background()) })
	write(t, w, crmRecord(cdc.OpCreate, 1, "d1", "512", false, "email", `"a@x"`, "firstname", `"Ada"`, "wait", first))
	for i, r := range []struct{ field, value, want string }{
		{"firstname", `"Bea"`, "Bea"},
		{"wait", second, "Bea"},
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
	if err := pg.ExecErr(db, `DO $$ BEGIN IF NOT (SELECT wait = ('`+second+`'::jsonb #>> '{}')::`+typ+` FROM contacts WHERE email = 'a@x') THEN RAISE 'other value'; END IF; END $$`); err != nil {
		t.Fatalf("the column does not hold the second change's %s: %v", second, err)
	}
}
