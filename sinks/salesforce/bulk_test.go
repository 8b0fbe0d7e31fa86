package salesforce

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/sources/imports"
	"github.com/cdcd-dev/cdcd/vendortest/salesforce"
)

// hostile are values a results set must carry through as they are.
var hostile = []string{
	`comma, inside`, "new\nline", "crlf\r\nkept", `"quoted" and ""doubled""`, `#N/A`, `null`, ` padded `,
	`=HYPERLINK("http://x")`, `back\slash`, "tab\there", "Zürich ✓ 東京", `'single'`, `,`, `"`, "\n", `a,"b",c`,
}

// seedBulk inserts n contacts: Email always, MailingCity a hostile value
// on most, none on every seventh.
func seedBulk(srv *salesforce.Server, n int, base time.Time) {
	for i := range n {
		f := map[string]any{"Email": fmt.Sprintf("c%d@example.com", i), "LastModifiedDate": base.Add(time.Duration(i) * time.Second).Format("2006-01-02T15:04:05.000-0700")}
		if i%7 != 0 {
			f["MailingCity"] = hostile[i%len(hostile)]
		}
		srv.Insert("Contact", f)
	}
}

// checkBulk asserts that got holds each of the n contacts once, as seeded.
func checkBulk(t *testing.T, got collect, n int, base time.Time) {
	t.Helper()
	if len(got) != n {
		t.Fatalf("%d contacts, want %d", len(got), n)
	}
	for id, ch := range got {
		email, _ := ch.After.Get("Email")
		city, ok := ch.After.Get("MailingAddress.City")
		var e string
		var i int
		if json.Unmarshal(email, &e) != nil || !ok {
			t.Fatalf("contact %s: %s", id, ch.After)
		}
		fmt.Sscanf(e, "c%d@", &i)
		var have, want *string
		if i%7 != 0 {
			want = &hostile[i%len(hostile)]
		}
		if json.Unmarshal(city, &have) != nil || (have == nil) != (want == nil) || have != nil && *have != *want ||
			!ch.CommitTime.Equal(base.Add(time.Duration(i)*time.Second)) || len(ch.After) != 2 {
			t.Fatalf("contact %d: city %s (want %q), at %s, fields %s", i, city, hostile[i%len(hostile)], ch.CommitTime, ch.After)
		}
	}
}

func bulkConfig(c *Config) *Config {
	c.Import = Import{Bulk: true, BulkPage: 700, BulkPoll: 250 * time.Millisecond}
	return c
}

func runImport(t *testing.T, w *Writer, got collect, cursor string, save imports.Progress) error {
	return imports.Run(context.Background(), imports.Config{System: "sf", Object: "Contact", Fields: []string{"Email", "MailingAddress.City"}, Job: "1",
		MaxAttempts: 40, BackoffMin: time.Millisecond, BackoffMax: 10 * time.Millisecond}, w, got, cursor, save,
		zerolog.New(zerolog.NewTestWriter(t)))
}

// TestListBulk imports 4,000 contacts through one Bulk API 2.0 query job
// from an org that keeps the job in progress for a while, fails a fifth
// of its calls (503 or 429), answers sets of 700 records out of Id order
// and holds values with commas, quotes, line breaks and "#N/A": every
// contact arrives once with its values as they are (null where it has
// none), and the calls are the documented ones.
func TestListBulk(t *testing.T) {
	t.Parallel()
	srv, c := ccServer(t, salesforce.Options{BulkPolls: 4, Faults: salesforce.Faults{Seed: 9, Rate5xx: 0.1, Rate429: 0.1}})
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	seedBulk(srv, 4000, base)
	w := newWriter(t, bulkConfig(c))
	got := collect{}
	var cursors []string
	err := runImport(t, w, got, "", func(_ context.Context, next string, _ int) error {
		cursors = append(cursors, next)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	checkBulk(t, got, 4000, base)
	if srv.BulkJobs() != 1 {
		t.Fatalf("%d query jobs, want 1", srv.BulkJobs())
	}
	// The job first, then its 6 sets; the cursor names the job and set.
	if len(cursors) != 7 || !strings.HasPrefix(cursors[0], "bulk:750") || !strings.HasSuffix(cursors[0], ":") || cursors[6] != "" {
		t.Fatalf("cursors %q", cursors)
	}
	var polls, inProgress, faults int
	for _, r := range srv.Requests() {
		switch {
		case r.Fault != "":
			faults++
		case r.Method == "POST" && strings.HasSuffix(r.Path, "/jobs/query"):
			var job struct{ Operation, Query string }
			if json.Unmarshal(r.Body, &job) != nil || job.Operation != "query" || strings.Contains(job.Query, "ORDER BY") || !strings.Contains(job.Query, "MailingCity") {
				t.Fatalf("job created with %s", r.Body)
			}
		case strings.HasSuffix(r.Path, "/results"):
			q, _ := url.ParseQuery(r.RawQuery)
			if q.Get("maxRecords") != "700" || r.Status != 200 {
				t.Fatalf("results read with %q: HTTP %d (412: before the job completed)", r.RawQuery, r.Status)
			}
		case r.Method == "GET" && strings.Contains(r.Path, "/jobs/query/"):
			polls++
			if r.Status == 200 {
				inProgress++
			}
		case strings.Contains(r.Path, "/query"):
			t.Fatalf("a SOQL query during a bulk import: %s?%s", r.Path, r.RawQuery)
		}
	}
	if inProgress < 5 || faults == 0 {
		t.Fatalf("%d job reads answered (want 4 in progress and at least 1 complete), %d faults", inProgress, faults)
	}
}

// TestListBulkResumes stops a bulk import after two sets and resumes it
// from the saved cursor: the same job is read from the next set on. Then
// the job expires (Salesforce deletes jobs seven days after they
// complete) and the import, resumed from a set's cursor again, creates
// the job anew and reads it from its first set: nothing is missing.
func TestListBulkResumes(t *testing.T) {
	t.Parallel()
	srv, c := ccServer(t, salesforce.Options{BulkPolls: 2})
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	seedBulk(srv, 3000, base)
	w := newWriter(t, bulkConfig(c))
	errStop := errors.New("stop")
	stopAfter := func(sets int, saved *string) imports.Progress {
		return func(_ context.Context, next string, n int) error {
			*saved = next
			if n > 0 {
				sets--
			}
			if sets == 0 {
				return cdc.Permanent(errStop) // a save's other errors are retried
			}
			return nil
		}
	}
	got := collect{}
	var saved string
	if err := runImport(t, w, got, "", stopAfter(2, &saved)); !errors.Is(err, errStop) {
		t.Fatalf("first run: %v", err)
	}
	if len(got) != 1400 || !strings.HasPrefix(saved, "bulk:") {
		t.Fatalf("first run: %d contacts, cursor %q", len(got), saved)
	}
	before := len(srv.Requests())
	if err := runImport(t, w, got, saved, stopAfter(1, &saved)); !errors.Is(err, errStop) {
		t.Fatalf("second run: %v", err)
	}
	for _, r := range srv.Requests()[before:] {
		if r.Method == "POST" || !strings.HasSuffix(r.Path, "/results") || !strings.Contains(r.RawQuery, "locator=") {
			t.Fatalf("the resumed import called %s %s?%s, want the next set of the same job", r.Method, r.Path, r.RawQuery)
		}
	}
	if len(got) != 2100 {
		t.Fatalf("second run: %d contacts", len(got))
	}

	srv.ExpireBulkJobs()
	again := collect{}
	if err := runImport(t, w, again, saved, func(context.Context, string, int) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if srv.BulkJobs() != 2 || len(again) != 3000 {
		t.Fatalf("after the job expired: %d jobs, %d contacts read again", srv.BulkJobs(), len(again))
	}
	for id, ch := range again {
		got[id] = ch
	}
	checkBulk(t, got, 3000, base)
}

// With bulk_above, an import counts the object first and lists it by
// SOQL up to that many records, by a query job above it.
func TestListBulkAbove(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		above int
		bulk  bool
	}{{2500, false}, {1999, true}} {
		srv, c := ccServer(t, salesforce.Options{})
		base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
		seedBulk(srv, 2000, base)
		c.Import.BulkAbove = tc.above
		got := collect{}
		if err := runImport(t, newWriter(t, c), got, "", func(context.Context, string, int) error { return nil }); err != nil {
			t.Fatal(err)
		}
		checkBulk(t, got, 2000, base)
		if (srv.BulkJobs() == 1) != tc.bulk {
			t.Fatalf("bulk_above %d, 2000 records: %d query jobs", tc.above, srv.BulkJobs())
		}
	}
}

func TestParseCSV(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want [][]string
	}{
		{"", nil},
		{"a,b\n1,2\n", [][]string{{"a", "b"}, {"1", "2"}}},
		{"a,b\r\n1,2\r\n", [][]string{{"a", "b"}, {"1", "2"}}},
		{`"a","b"` + "\n" + `"x,y","say ""hi"""` + "\n", [][]string{{"a", "b"}, {"x,y", `say "hi"`}}},
		{"\"line\r\nbreak\",\n", [][]string{{"line\r\nbreak", ""}}},
		{"a,,\"\"\n,x,", [][]string{{"a", "", ""}, {"", "x", ""}}},
	} {
		got, err := parseCSV([]byte(tc.in))
		if err != nil || !slices.EqualFunc(got, tc.want, slices.Equal) {
			t.Errorf("parseCSV(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{`"open`, `"a"b`, `a"b`} {
		if _, err := parseCSV([]byte(bad)); err == nil {
			t.Errorf("parseCSV(%q) accepted it", bad)
		}
	}
}

// FuzzParseCSV: parsing never panics, and what it reads, written back
// quoted, reads the same.
func FuzzParseCSV(f *testing.F) {
	for _, s := range []string{"a,b\n1,2\n", `"x,y","say ""hi"""`, "\"a\r\nb\",\r\n", ",,\n", `"`, "a\"b"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rows, err := parseCSV(data)
		if err != nil {
			return
		}
		var b strings.Builder
		for _, row := range rows {
			for i, v := range row {
				if i > 0 {
					b.WriteByte(',')
				}
				b.WriteString(`"` + strings.ReplaceAll(v, `"`, `""`) + `"`)
			}
			b.WriteByte('\n')
		}
		again, err := parseCSV([]byte(b.String()))
		if err != nil || !slices.EqualFunc(again, rows, slices.Equal) {
			t.Fatalf("%q read as %q, written back as %q, read again as %q (%v)", data, rows, b.String(), again, err)
		}
	})
}
