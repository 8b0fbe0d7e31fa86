package hubspot

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/ratelimit"
	"github.com/cdcd-dev/cdcd/syncapi"
	fake "github.com/cdcd-dev/cdcd/vendortest/hubspot"
)

func TestBadTokenIsPermanent(t *testing.T) {
	t.Parallel()
	srv := start(t, fake.Options{})
	w := newWriter(t, srv, nil, func(c *Config) { c.Token = "pat-na1-revoked" })
	res, err := w.Write(context.Background(), contacts("a", 2))
	if !cdc.IsPermanent(err) || !strings.Contains(err.Error(), "401") {
		t.Fatalf("err = %v, want a permanent 401", err)
	}
	if strings.Contains(err.Error(), "pat-na1-revoked") {
		t.Fatal("the error shows the token")
	}
	for i, r := range res {
		if !cdc.IsPermanent(r.Err) {
			t.Fatalf("record %d: %v", i, r.Err)
		}
	}
}

func TestRateLimitPausesTheAccount(t *testing.T) {
	t.Parallel()
	srv := start(t, fake.Options{Window: 300 * time.Millisecond})
	limiters := ratelimit.NewLimiters()
	w := newWriter(t, srv, limiters, nil)
	id := srv.Insert("contacts", map[string]string{"email": "r@example.com"})
	srv.FailNext(fake.FaultWindowSpent, 1)

	recs := append(contacts("r", 2), upsertRec(`["r"]`, id, map[string]any{"firstname": "R"}))
	res, err := w.Write(context.Background(), recs)
	d, ok := cdc.RetryAfterOf(err)
	if !ok || d != 300*time.Millisecond {
		t.Fatalf("err = %v (retry after %v), want RetryAfter of the 300ms window", err, d)
	}
	for i, r := range res {
		if _, ok := cdc.RetryAfterOf(r.Err); !ok {
			t.Fatalf("record %d: %v", i, r.Err)
		}
	}
	if n := len(srv.Requests()); n != 1 {
		t.Fatalf("%d calls after the 429, want the rest of the write unsent", n)
	}

	// Another writer on the same account waits out the pause.
	other := newWriter(t, srv, limiters, nil)
	begin := time.Now()
	mustSucceed(t, write(t, other, recs))
	if waited := time.Since(begin); waited < 250*time.Millisecond {
		t.Fatalf("next write started after %v, want it held by the pause", waited)
	}
}

func TestPauseFor(t *testing.T) {
	t.Parallel()
	h := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			out.Set(kv[i], kv[i+1])
		}
		return out
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		header http.Header
		policy string
		want   time.Duration
	}{
		{"ten secondly", h(), "TEN_SECONDLY_ROLLING", 10 * time.Second},
		{"reported window", h("X-HubSpot-RateLimit-Interval-Milliseconds", "10000"), "TEN_SECONDLY_ROLLING", 10 * time.Second},
		{"daily", h("X-HubSpot-RateLimit-Interval-Milliseconds", "10000"), "DAILY", time.Hour},
		{"secondly", h(), "SECONDLY", time.Second},
		{"retry-after wins", h("Retry-After", "3"), "DAILY", 3 * time.Second},
		// Regression: Retry-After as an HTTP date was ignored.
		{"retry-after date", h("Retry-After", now.Add(42*time.Second).Format(http.TimeFormat)), "DAILY", 42 * time.Second},
		{"retry-after passed", h("Retry-After", now.Add(-time.Minute).Format(http.TimeFormat)), "SECONDLY", time.Second},
		{"no body", h(), "", 10 * time.Second},
		// Regression: a 429 with calls left in the window held the account
		// for the whole window.
		{"calls remaining", h("X-HubSpot-RateLimit-Interval-Milliseconds", "10000", "X-HubSpot-RateLimit-Remaining", "60"), "TEN_SECONDLY_ROLLING", time.Second},
		{"window spent", h("X-HubSpot-RateLimit-Interval-Milliseconds", "10000", "X-HubSpot-RateLimit-Remaining", "0"), "TEN_SECONDLY_ROLLING", 10 * time.Second},
	} {
		if got := pauseFor(tc.header, tc.policy, now); got != tc.want {
			t.Errorf("%s: pause %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestServerErrorsAndTimeoutsAreTransient(t *testing.T) {
	t.Parallel()
	for _, f := range []fake.Fault{fake.Fault500, fake.Fault502, fake.Fault503, fake.FaultTimeout, fake.FaultHangup} {
		t.Run(f.String(), func(t *testing.T) {
			t.Parallel()
			srv := start(t, fake.Options{})
			w := newWriter(t, srv, nil, func(c *Config) { c.Timeout = 200 * time.Millisecond })
			srv.FailNext(f, 1)
			_, err := w.Write(context.Background(), contacts("t", 3))
			if err == nil || cdc.IsPermanent(err) {
				t.Fatalf("err = %v, want transient", err)
			}
			if _, ok := cdc.RetryAfterOf(err); ok {
				t.Fatalf("err = %v asks for a delay", err)
			}
			if unknown := errors.Is(err, ErrOutcomeUnknown); unknown != (f == fake.FaultTimeout || f == fake.FaultHangup) {
				t.Fatalf("err = %v: outcome unknown %v", err, unknown)
			}
			mustSucceed(t, write(t, w, contacts("t", 3)))
			if n := len(srv.Objects("contacts")); n != 3 {
				t.Fatalf("%d contacts, want 3", n)
			}
		})
	}
}

// A create applied by HubSpot whose answer was lost is not sent blindly
// again: upserts and a lookup by the contact's email settle it; anything
// else is dead-lettered rather than duplicated.
func TestLostCreateAnswerNeverDuplicates(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		object    string
		idProp    string
		fields    map[string]any
		permanent bool
	}{
		{"upsert", "contacts", "email", map[string]any{"email": "u@example.com", "firstname": "U"}, false},
		{"contact email", "contacts", "", map[string]any{"email": "c@example.com", "firstname": "C"}, false},
		{"company", "companies", "", map[string]any{"name": "Acme"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := start(t, fake.Options{})
			w := newWriter(t, srv, nil, func(c *Config) {
				c.Object, c.IDProperty, c.Timeout = tc.object, tc.idProp, 200*time.Millisecond
			})
			rec := []syncapi.Record{upsertRec(`[1]`, "", tc.fields)}
			srv.FailNext(fake.FaultTimeoutAfterApply, 1)
			if _, err := w.Write(context.Background(), rec); !errors.Is(err, ErrOutcomeUnknown) || cdc.IsPermanent(err) {
				t.Fatalf("first write: %v, want a transient unknown outcome", err)
			}
			rec[0].Unsettled = true                      // as the pipeline marks it
			res, _ := w.Write(context.Background(), rec) // the delivery layer's retry
			objs := srv.Objects(tc.object)
			if len(objs) != 1 {
				t.Fatalf("%d %s after the retry, want 1", len(objs), tc.object)
			}
			creates := 0
			for _, r := range srv.Requests() {
				if strings.HasSuffix(r.Path, "/batch/create") {
					creates++
				}
			}
			if creates > 1 { // the first call is recorded once the double sees the client leave
				t.Fatalf("%d create calls, want 1: the retry looks the record up", creates)
			}
			if tc.permanent {
				if !cdc.IsPermanent(res[0].Err) {
					t.Fatalf("retry: %v, want a permanent error", res[0].Err)
				}
				return
			}
			mustSucceed(t, res)
			if res[0].ExternalID != objs[0].ID {
				t.Fatalf("linked to %s, want %s", res[0].ExternalID, objs[0].ID)
			}
		})
	}
}

// Random faults, retried as the delivery layer does: every contact ends up
// in HubSpot exactly once, whether HubSpot's answers echo trace ids or not.
func TestFaultsNeverCreateTwice(t *testing.T) {
	t.Parallel()
	for _, ids := range []fake.TraceIDs{fake.TraceIDsEcho, fake.TraceIDsOmit} {
		t.Run(fmt.Sprint(ids), func(t *testing.T) {
			t.Parallel()
			faultsNeverCreateTwice(t, ids)
		})
	}
}

func faultsNeverCreateTwice(t *testing.T, ids fake.TraceIDs) {
	srv := start(t, fake.Options{Seed: 42, TraceIDs: ids, Faults: fake.Faults{Rate: 0.3, Kinds: []fake.Fault{
		fake.Fault500, fake.Fault503, fake.FaultHangup, fake.FaultTimeoutAfterApply, fake.FaultHangupAfterApply,
	}}})
	for _, idProp := range []string{"email", ""} {
		w := newWriter(t, srv, nil, func(c *Config) { c.IDProperty, c.Timeout = idProp, 200*time.Millisecond })
		pending := contacts("f"+idProp, 40)
		for attempt := 0; len(pending) > 0; attempt++ {
			if attempt == 50 {
				t.Fatalf("%d records still failing", len(pending))
			}
			var next []syncapi.Record
			for batch := range slices.Chunk(pending, 4) {
				res, _ := w.Write(context.Background(), batch)
				for i, r := range res {
					if cdc.IsPermanent(r.Err) {
						t.Fatalf("record %s: %v", batch[i].Key, r.Err)
					}
					if r.Err != nil {
						next = append(next, batch[i])
					}
				}
			}
			pending = next
		}
	}
	faults := 0
	for _, r := range srv.Requests() {
		if r.Fault != 0 {
			faults++
		}
	}
	if faults < 5 {
		t.Fatalf("only %d faults injected", faults)
	}
	t.Logf("%d calls, %d faults", len(srv.Requests()), faults)
	creates := map[string]int{}
	for _, wr := range srv.Writes() {
		if wr.Op == "create" {
			creates[wr.Properties["email"]]++
		}
	}
	for email, n := range creates {
		if n != 1 {
			t.Fatalf("%s created %d times", email, n)
		}
	}
	if len(creates) != 80 {
		t.Fatalf("%d contacts created, want 80", len(creates))
	}
}

// Only plain creates are tracked as pending: an upsert by id_property is
// idempotent on its own.
func TestSettlesOnlyPlainCreates(t *testing.T) {
	t.Parallel()
	srv := start(t, fake.Options{})
	plain := newWriter(t, srv, nil, nil)
	byEmail := newWriter(t, srv, nil, func(c *Config) { c.IDProperty = "email" })
	withEmail := upsertRec(`[1]`, "", map[string]any{"email": "a@example.com"})
	noEmail := upsertRec(`[2]`, "", map[string]any{"firstname": "A", "email": nil})
	for _, tc := range []struct {
		w    *Writer
		rec  syncapi.Record
		want bool
	}{{plain, withEmail, true}, {byEmail, withEmail, false}, {byEmail, noEmail, true}} {
		if got := tc.w.SettlesCreate(&tc.rec); got != tc.want {
			t.Errorf("id_property %q, fields %v: SettlesCreate %v, want %v", tc.w.idProperty, tc.rec.Fields, got, tc.want)
		}
	}
}
