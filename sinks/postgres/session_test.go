package postgres

import (
	"context"
	"testing"

	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/cdc/cdctest"
	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/conflict"
)

// A run pins the read settings (TimeZone, DateStyle...) in its reads'
// round trip, for the local rows' read, and puts the user's back before
// its writes: the table's triggers and the values written see the
// user's settings, in a run as for a record applied alone, and so does
// the run after it.
func TestRunWritesUnderTheUsersSettings(t *testing.T) {
	pg := cdctest.StartPostgres(t)
	url := hostileDB(t, pg, "settings")
	pg.Exec(t, "settings", `ALTER DATABASE settings SET TimeZone = 'Asia/Tokyo';
		ALTER DATABASE settings SET DateStyle = 'SQL, DMY';
		CREATE FUNCTION seen() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN NEW.phone := current_setting('TimeZone') || '|' || current_setting('DateStyle'); RETURN NEW; END $$;
		CREATE TRIGGER seen BEFORE INSERT OR UPDATE ON contacts FOR EACH ROW EXECUTE FUNCTION seen();`)
	w, err := New("crm", testConfig(url), Inbound{Conflicts: &Conflicts{
		Pipeline: "crm-in", Policy: conflict.Policy{Rules: []conflict.Rule{{Kind: conflict.KindManual}}},
		Columns: map[string]string{"email": "email", "firstname": "name"},
	}}, config.Env{Log: zerolog.New(zerolog.NewTestWriter(t))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close(context.Background()) })
	const want = "Asia/Tokyo|SQL, DMY"
	check := func(when string) {
		t.Helper()
		for _, email := range []string{"a@x", "b@x", "c@x"} {
			if got := row(t, url, email); got["phone"] != want {
				t.Errorf("%s: %s written under %q, want the user's settings %q", when, email, got["phone"], want)
			}
		}
	}
	write(t, w, // one run of creates
		crmRecord(cdc.OpCreate, 1, "d1", "901", false, "email", `"a@x"`, "firstname", `"Ada"`),
		crmRecord(cdc.OpCreate, 1, "d2", "902", false, "email", `"b@x"`, "firstname", `"Bob"`),
		crmRecord(cdc.OpCreate, 1, "d3", "903", false, "email", `"c@x"`, "firstname", `"Cy"`))
	check("created")
	pg.Exec(t, "settings", `UPDATE contacts SET phone = 'local'`)
	res := write(t, w, // two runs of linked updates, their local rows read pinned
		crmRecord(cdc.OpUpdate, 2, "u1", "901", true, "firstname", `"Ann"`),
		crmRecord(cdc.OpUpdate, 2, "u2", "902", true, "firstname", `"Bea"`),
		crmRecord(cdc.OpUpdate, 3, "u3", "901", true, "firstname", `"Amy"`),
		crmRecord(cdc.OpUpdate, 3, "u4", "903", true, "firstname", `"Cyd"`))
	for i, r := range res {
		if r.Err != nil {
			t.Fatalf("record %d: %v", i, r.Err)
		}
	}
	check("updated")
	if a, b, c := row(t, url, "a@x")["name"], row(t, url, "b@x")["name"], row(t, url, "c@x")["name"]; a != "Amy" || b != "Bea" || c != "Cyd" {
		t.Errorf("names %s, %s, %s; want Amy, Bea, Cyd", a, b, c)
	}
}
