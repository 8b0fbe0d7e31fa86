package hubspot

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/ratelimit"
	"github.com/cdcd-dev/cdcd/syncapi"
	fake "github.com/cdcd-dev/cdcd/vendortest/hubspot"
)

const testToken = "pat-na1-test"

// start runs a double that accepts testToken.
func start(t testing.TB, opts fake.Options) *fake.Server {
	t.Helper()
	opts.Tokens = []string{testToken}
	s := fake.New(opts)
	t.Cleanup(s.Close)
	return s
}

// newWriter builds a writer against srv; edit adjusts the config.
func newWriter(t testing.TB, srv *fake.Server, limiters *ratelimit.Limiters, edit func(*Config)) *Writer {
	t.Helper()
	c := NewConfig()
	c.BaseURL = srv.URL()
	c.Token = testToken
	c.Object = "contacts"
	if edit != nil {
		edit(c)
	}
	w, err := New("crm", c, zerolog.New(zerolog.NewTestWriter(t)), limiters)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func upsertRec(key, extID string, fields map[string]any) syncapi.Record {
	return syncapi.Record{Op: cdc.OpUpdate, Key: key, ExternalID: extID, Fields: fields}
}

func deleteRec(key, extID string, fields map[string]any) syncapi.Record {
	return syncapi.Record{Op: cdc.OpDelete, Key: key, ExternalID: extID, Fields: fields}
}

// contacts makes n records of new contacts with distinct emails.
func contacts(prefix string, n int) []syncapi.Record {
	recs := make([]syncapi.Record, n)
	for i := range recs {
		recs[i] = upsertRec(fmt.Sprintf(`[%q,%d]`, prefix, i), "", map[string]any{
			"email":     fmt.Sprintf("%s%d@example.com", prefix, i),
			"firstname": fmt.Sprintf("First %d", i),
		})
	}
	return recs
}

func write(t testing.TB, w *Writer, recs []syncapi.Record) []syncapi.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := w.Write(ctx, recs)
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	if len(res) != len(recs) {
		t.Fatalf("got %d results for %d records", len(res), len(recs))
	}
	return res
}

// mustSucceed fails the test if any result has an error.
func mustSucceed(t testing.TB, res []syncapi.Result) {
	t.Helper()
	for i, r := range res {
		if r.Err != nil {
			t.Fatalf("record %d: %v", i, r.Err)
		}
		if r.ExternalID == "" {
			t.Fatalf("record %d: no external id", i)
		}
	}
}

func get(t testing.TB, srv *fake.Server, typ, id string) fake.Object {
	t.Helper()
	o, ok := srv.Get(typ, id)
	if !ok {
		t.Fatalf("%s %s not in the double", typ, id)
	}
	return o
}
