package http

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/sources/imports"
	"github.com/cdcd-dev/cdcd/sources/webhook"
	"github.com/cdcd-dev/cdcd/vendortest/httpapi"
)

type collect struct{ changes map[string]webhook.Change }

func (c *collect) Accept(_ context.Context, _ string, changes []webhook.Change) error {
	for _, ch := range changes {
		v, _ := ch.Key.Get("id")
		var id string
		_ = json.Unmarshal(v, &id)
		c.changes[id] = ch
	}
	return nil
}

// TestListPaginations imports 137 employees from an API that fails a
// fifth of its calls (429, 503), in each pagination style: every
// employee arrives once with its members and updated time, and the list
// ends without a call past what the style needs.
func TestListPaginations(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		style string
		list  List
	}{
		{"cursor", List{URL: "/employees?limit=50", Pagination: PageCursor, NextPath: "meta.next_cursor", HasMorePath: "meta.has_more", RecordsPath: "data", UpdatedAtPath: "updated_at"}},
		{"offset", List{URL: "/{{.Object}}?limit=50", Pagination: PageOffset, RecordsPath: "data", UpdatedAtPath: "updated_at"}},
		{"link", List{URL: "/employees?per_page=50", Pagination: PageLink, UpdatedAtPath: "updated_at"}},
	} {
		t.Run(tc.style, func(t *testing.T) {
			t.Parallel()
			srv := httpapi.New(t, httpapi.Options{Paging: httpapi.Paging{Style: tc.style, MaxLimit: 40},
				Faults: httpapi.Faults{Seed: 3, Rate429: 0.1, Rate5xx: 0.1, RetryAfter: "0"}})
			base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
			for i := range 137 {
				e := map[string]any{"id": fmt.Sprintf("E%03d", i), "name": []string{"Ada", "O'Hara \"x\"", "", "ü\n"}[i%4],
					"updated_at": base.Add(time.Duration(i) * time.Minute).Format(time.RFC3339)}
				if i%5 == 0 {
					e["manager"] = map[string]any{"id": "E000"} // nested, and often missing
				}
				srv.Put(fmt.Sprintf("/employees/E%03d", i), e)
			}
			c := testConfig(srv)
			l := tc.list
			l.URL = srv.URL + l.URL
			c.List = &l
			w := newWriter(t, c)
			in := &collect{changes: map[string]webhook.Change{}}
			pages := 0
			err := imports.Run(context.Background(), imports.Config{System: "hr", Object: "employees", Job: "1", MaxAttempts: 30, BackoffMin: time.Millisecond, BackoffMax: 10 * time.Millisecond},
				w, in, "", func(context.Context, string, int) error { pages++; return nil }, zerolog.New(zerolog.NewTestWriter(t)))
			if err != nil {
				t.Fatal(err)
			}
			if len(in.changes) != 137 {
				t.Fatalf("%d employees imported, want 137", len(in.changes))
			}
			for i := range 137 {
				ch, ok := in.changes[fmt.Sprintf("E%03d", i)]
				if !ok || !ch.CommitTime.Equal(base.Add(time.Duration(i)*time.Minute)) || ch.Op != cdc.OpRead {
					t.Fatalf("employee %d: %+v", i, ch.Event)
				}
				if _, hasManager := ch.After.Get("manager"); hasManager != (i%5 == 0) {
					t.Fatalf("employee %d: members %+v", i, ch.After)
				}
			}
			// 40 a page: 4 pages; offset needs one more to see the end.
			want := map[string]int{"cursor": 4, "offset": 5, "link": 4}[tc.style]
			if pages != want {
				t.Fatalf("%d pages, want %d", pages, want)
			}
		})
	}
}

// TestListRefusesAnotherHost: a next page on another host would get the
// system's credentials; the list fails for good instead of asking it.
func TestListRefusesAnotherHost(t *testing.T) {
	t.Parallel()
	srv := httpapi.New(t, httpapi.Options{})
	srv.Respond(1, http.StatusOK, nil, `{"data":[{"id":"1"}],"next":"https://evil.example/steal"}`)
	c := testConfig(srv)
	c.Auth = Auth{Type: "bearer", Token: "secret"}
	c.List = &List{URL: srv.URL + "/employees", Pagination: PageURL, NextPath: "next", RecordsPath: "data"}
	_, err := newWriter(t, c).List(context.Background(), "employees", nil, "")
	if !cdc.IsPermanent(err) || !strings.Contains(err.Error(), "not on "+srv.URL) {
		t.Fatalf("List = %v, want a permanent error naming the first page's host", err)
	}
}

// TestListConfig reports every problem of a list: section at its path.
func TestListConfig(t *testing.T) {
	t.Parallel()
	c := NewConfig()
	c.Create = &Request{Method: "POST", URL: "https://hr.example/x"}
	c.List = &List{URL: "ftp://x/{{.Object", Pagination: "pages", RecordsPath: "data..x"}
	err := c.Validate()
	for _, want := range []string{"list.url", "list.pagination", "list.records_path"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("Validate = %v, want a problem at %s", err, want)
		}
	}
	c.List = &List{URL: "https://hr.example/e", Pagination: PageCursor}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "list.next_path") {
		t.Fatalf("Validate = %v, want next_path required", err)
	}
}

// FuzzListRead feeds the list reader any answer in every pagination
// style: it never panics, and a page it accepts has an id for at least
// one of its records, and a next page, if any, on the first page's host.
func FuzzListRead(f *testing.F) {
	f.Add(`{"data":[{"id":"E1","updated_at":"2026-01-01T00:00:00Z"}],"meta":{"next_cursor":"x","has_more":true}}`, `<https://hr.example/e?page=2>; rel="next"`)
	f.Add(`[{"id":7,"updated_at":1700000000123}]`, "")
	f.Add(`{"data":[{"id":null}],"next":"//evil.example/x"}`, `<//evil.example/x>; rel="next"`)
	f.Add(`{"data":{"id":1}}`, "")
	f.Fuzz(func(t *testing.T, body, link string) {
		for _, l := range []List{
			{Pagination: PageCursor, NextPath: "meta.next_cursor", HasMorePath: "meta.has_more", RecordsPath: "data", UpdatedAtPath: "updated_at"},
			{Pagination: PageOffset, RecordsPath: "data"},
			{Pagination: PagePage},
			{Pagination: PageURL, NextPath: "next", RecordsPath: "data"},
			{Pagination: PageLink, UpdatedAtPath: "updated_at"},
		} {
			l.URL = "https://hr.example/e?limit=10"
			ls := newLister(&l)
			u, _ := url.Parse(l.URL)
			p, err := ls.read(u, http.Header{"Link": {link}}, []byte(body))
			if err != nil {
				continue
			}
			if len(p.Records) > 0 && !slices.ContainsFunc(p.Records, func(r imports.Record) bool { return r.ID != "" }) {
				t.Fatalf("%s: a page without any id: %+v", l.Pagination, p.Records)
			}
			if p.Next != "" {
				if n, err := url.Parse(p.Next); err != nil || n.Scheme+"://"+n.Host != "https://hr.example" {
					t.Fatalf("%s: next page %q is not on the first page's host", l.Pagination, p.Next)
				}
			}
		}
	})
}

// TestListGoesOnAfterEmptyPageWithMore imports from an API that filters
// its pages after reading them, so that a whole page comes back empty
// with has_more true and a next cursor: the import goes on to the pages
// after it instead of ending there.
func TestListGoesOnAfterEmptyPageWithMore(t *testing.T) {
	t.Parallel()
	hidden := func(path string) bool { return path >= "/employees/E020" && path < "/employees/E040" }
	srv := httpapi.New(t, httpapi.Options{Paging: httpapi.Paging{Style: "cursor", MaxLimit: 20, Hidden: hidden}})
	for i := range 100 {
		srv.Put(fmt.Sprintf("/employees/E%03d", i), map[string]any{"id": fmt.Sprintf("E%03d", i)})
	}
	c := testConfig(srv)
	c.List = &List{URL: srv.URL + "/employees?limit=20", Pagination: PageCursor, NextPath: "meta.next_cursor", HasMorePath: "meta.has_more", RecordsPath: "data"}
	in := &collect{changes: map[string]webhook.Change{}}
	var cursors []string
	err := imports.Run(context.Background(), imports.Config{System: "hr", Object: "employees", Job: "1", MaxAttempts: 3, BackoffMin: time.Millisecond},
		newWriter(t, c), in, "", func(_ context.Context, next string, _ int) error { cursors = append(cursors, next); return nil }, zerolog.New(zerolog.NewTestWriter(t)))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		id := fmt.Sprintf("E%03d", i)
		if _, ok := in.changes[id]; ok == (i >= 20 && i < 40) {
			t.Fatalf("employee %s imported %v; want the 80 not hidden, got %d", id, ok, len(in.changes))
		}
	}
	if len(cursors) != 5 || cursors[4] != "" {
		t.Fatalf("pages saved with next cursors %q; want 5 pages, the last with none", cursors)
	}
}

// TestListRecordWithoutID: one employee of a page has no id. The records
// beside it and after it are imported, and it is rejected alone, so the
// job records it instead of failing on that page at every resume. A page
// where no record has an id still fails for good (id_path is wrong).
func TestListRecordWithoutID(t *testing.T) {
	t.Parallel()
	srv := httpapi.New(t, httpapi.Options{Paging: httpapi.Paging{Style: "cursor", MaxLimit: 10}})
	for i := range 25 {
		e := map[string]any{"id": fmt.Sprintf("E%03d", i)}
		if i == 4 {
			e = map[string]any{"name": "no id yet"}
		}
		srv.Put(fmt.Sprintf("/employees/E%03d", i), e)
	}
	c := testConfig(srv)
	c.List = &List{URL: srv.URL + "/employees?limit=10", Pagination: PageCursor, NextPath: "meta.next_cursor", HasMorePath: "meta.has_more", RecordsPath: "data"}
	in := &collect{changes: map[string]webhook.Change{}}
	var rejected []string
	cfg := imports.Config{System: "hr", Object: "employees", Job: "1", MaxAttempts: 3, BackoffMin: time.Millisecond,
		Reject: func(_ context.Context, record string, err error) error {
			rejected = append(rejected, record+": "+err.Error())
			return nil
		}}
	err := imports.Run(context.Background(), cfg, newWriter(t, c), in, "", func(context.Context, string, int) error { return nil }, zerolog.New(zerolog.NewTestWriter(t)))
	if err != nil || len(in.changes) != 24 || len(rejected) != 1 {
		t.Fatalf("Run = %v, %d employees imported, rejected %q; want 24 and the one without an id", err, len(in.changes), rejected)
	}
	c.List.IDPath = "employee_id"
	if _, err := newWriter(t, c).List(context.Background(), "employees", nil, ""); !cdc.IsPermanent(err) || !strings.Contains(err.Error(), "id_path") {
		t.Fatalf("List with a wrong id_path = %v, want a permanent error naming id_path", err)
	}
}

// TestListHasMoreWithoutNextPage: the answer says more records follow
// but holds no next page where next_path says (a next_path mistyped):
// the import fails for good naming next_path, instead of ending done
// after the first page.
func TestListHasMoreWithoutNextPage(t *testing.T) {
	t.Parallel()
	srv := httpapi.New(t, httpapi.Options{Paging: httpapi.Paging{Style: "cursor", MaxLimit: 20}})
	for i := range 50 {
		srv.Put(fmt.Sprintf("/employees/E%03d", i), map[string]any{"id": fmt.Sprintf("E%03d", i)})
	}
	c := testConfig(srv)
	c.List = &List{URL: srv.URL + "/employees?limit=20", Pagination: PageCursor, NextPath: "meta.next", HasMorePath: "meta.has_more", RecordsPath: "data"}
	in := &collect{changes: map[string]webhook.Change{}}
	err := imports.Run(context.Background(), imports.Config{System: "hr", Object: "employees", Job: "1", MaxAttempts: 3, BackoffMin: time.Millisecond},
		newWriter(t, c), in, "", func(context.Context, string, int) error { return nil }, zerolog.New(zerolog.NewTestWriter(t)))
	if !cdc.IsPermanent(err) || !strings.Contains(err.Error(), "next_path") {
		t.Fatalf("Run = %v with %d employees imported; want a permanent error naming next_path", err, len(in.changes))
	}
}

// TestListLinkWithCommas: a Link header's next URL that keeps the
// request's parameters holds commas (?fields=id,name), as GitHub's do;
// the import follows it to the last page instead of ending after the
// first.
func TestListLinkWithCommas(t *testing.T) {
	t.Parallel()
	srv := httpapi.New(t, httpapi.Options{Paging: httpapi.Paging{Style: "link", MaxLimit: 20}})
	for i := range 50 {
		srv.Put(fmt.Sprintf("/employees/E%03d", i), map[string]any{"id": fmt.Sprintf("E%03d", i), "name": "n"})
	}
	c := testConfig(srv)
	c.List = &List{URL: srv.URL + "/employees?per_page=20&fields=id,name", Pagination: PageLink}
	in := &collect{changes: map[string]webhook.Change{}}
	err := imports.Run(context.Background(), imports.Config{System: "hr", Object: "employees", Job: "1", MaxAttempts: 3, BackoffMin: time.Millisecond},
		newWriter(t, c), in, "", func(context.Context, string, int) error { return nil }, zerolog.New(zerolog.NewTestWriter(t)))
	if err != nil || len(in.changes) != 50 {
		t.Fatalf("Run = %v, %d employees imported; want 50", err, len(in.changes))
	}
}

// A key in list.url's query string is sent with every page but never put
// in a saved cursor: cdcd.jobs.cursor is shown by `cdcd jobs show`, the
// jobs API and any pipeline that reads the jobs table.
func TestListCursorHoldsNoKeyOfListURL(t *testing.T) {
	t.Parallel()
	for _, style := range []string{"cursor", "link", "offset"} {
		t.Run(style, func(t *testing.T) {
			t.Parallel()
			srv := httpapi.New(t, httpapi.Options{Paging: httpapi.Paging{Style: style, MaxLimit: 20}})
			for i := range 50 {
				srv.Put(fmt.Sprintf("/employees/E%03d", i), map[string]any{"id": fmt.Sprintf("E%03d", i)})
			}
			c := testConfig(srv)
			c.List = &List{URL: srv.URL + "/employees?api_key=s3cret&limit=20", Pagination: map[string]string{"cursor": PageCursor, "link": PageLink, "offset": PageOffset}[style],
				NextPath: "meta.next_cursor", HasMorePath: "meta.has_more", RecordsPath: "data"}
			if style == "link" {
				c.List.NextPath, c.List.HasMorePath, c.List.RecordsPath = "", "", ""
			}
			in := &collect{changes: map[string]webhook.Change{}}
			var cursors []string
			err := imports.Run(context.Background(), imports.Config{System: "hr", Object: "employees", Job: "1", MaxAttempts: 3, BackoffMin: time.Millisecond},
				newWriter(t, c), in, "", func(_ context.Context, cursor string, _ int) error { cursors = append(cursors, cursor); return nil },
				zerolog.New(zerolog.NewTestWriter(t)))
			if err != nil || len(in.changes) != 50 {
				t.Fatalf("Run = %v, %d employees imported; want 50", err, len(in.changes))
			}
			for _, cur := range cursors {
				if strings.Contains(cur, "s3cret") {
					t.Fatalf("saved cursor %q holds list.url's key", cur)
				}
			}
			reqs := srv.Requests()
			for _, r := range reqs {
				if q, _ := url.ParseQuery(r.RawQuery); q.Get("api_key") != "s3cret" || q.Get("limit") != "20" {
					t.Fatalf("page asked as %q, without list.url's api_key and limit", r.RawQuery)
				}
			}
			if len(reqs) < 3 {
				t.Fatalf("%d pages asked, want 3 or more", len(reqs))
			}
		})
	}
}
