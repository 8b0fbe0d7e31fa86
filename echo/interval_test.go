package echo

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/cdcd-dev/cdcd/cdc/cdctest"
)

// Every interval reads the same in ISO 8601 and in Postgres's postgres
// and postgres_verbose styles, as Postgres prints them; two intervals
// Postgres prints differently in ISO 8601 read differently.
func TestIntervalStylesAgree(t *testing.T) {
	pg := cdctest.StartPostgres(t)
	conn, err := pgx.Connect(context.Background(), pg.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	literals := []string{
		"1 day", "24 hours", "-1 day +02:03", "1 year 2 mons 3 days 04:05:06.5", "1.5 seconds",
		"-0.000001 seconds", "3 weeks", "-1 year -2 mons +3 days -04:05:06.25", "0", "838 hours 59 minutes",
		"1 mon -30 days", "100 years", "00:00:00.123456",
	}
	printed := func(style, lit string) string {
		var s string
		if _, err := conn.Exec(context.Background(), "SET IntervalStyle = "+style); err != nil {
			t.Fatal(err)
		}
		if err := conn.QueryRow(context.Background(), "SELECT $1::interval::text", lit).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	seen := map[interval]string{}
	for _, lit := range literals {
		iso := printed("iso_8601", lit)
		want, ok := parseInterval(iso)
		if !ok {
			t.Fatalf("%q: ISO 8601 %q not read", lit, iso)
		}
		if other, dup := seen[want]; dup {
			t.Errorf("%q (%s) and %q read the same", lit, iso, other)
		}
		seen[want] = lit
		for _, style := range []string{"postgres", "postgres_verbose"} {
			s := printed(style, lit)
			if !sameInterval(iso, s) || !sameInterval(s, iso) {
				got, _ := parseInterval(s)
				t.Errorf("%q: %s %q reads %+v, ISO 8601 %q reads %+v", lit, style, s, got, iso, want)
			}
		}
	}
}

func FuzzSameInterval(f *testing.F) {
	for _, s := range []string{"P1D", "1 day", "@ 1 day ago", "-1 days +02:03:00", "P-1Y2M3DT4H5M6.5S", "PT1.000001S", "P", "1"} {
		f.Add(s, "P1D")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if sameInterval(a, b) != sameInterval(b, a) {
			t.Fatalf("sameInterval(%q, %q) is not symmetric", a, b)
		}
		if iv, ok := parseInterval(a); ok && isoDuration(a) && !sameInterval(a, a) {
			t.Fatalf("%q reads %+v but is not the same as itself", a, iv)
		}
	})
}
