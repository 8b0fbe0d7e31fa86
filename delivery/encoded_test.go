package delivery_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/delivery"
	"github.com/cdcd-dev/cdcd/delivery/deliverytest"
	"github.com/cdcd-dev/cdcd/syncstate"
)

// encodingWriter answers each record with the JSON of the fields it was
// given (Result.Encoded), as a writer whose body that JSON is.
type encodingWriter struct{ patches bool }

func (w encodingWriter) Write(_ context.Context, recs []delivery.Record) ([]delivery.Result, error) {
	res := make([]delivery.Result, len(recs))
	for i, r := range recs {
		b, err := json.Marshal(r.Fields)
		if err != nil {
			return nil, err
		}
		res[i] = delivery.Result{ExternalID: "x" + r.Key, Encoded: b}
	}
	return res, nil
}

func (w encodingWriter) PatchesFields() bool { return w.patches }

// A link keeps, as its base's JSON, what the Writer encoded of the
// record's fields, so that the store does not encode them again; not when
// the Writer was given only the changed fields (a Patcher), whose encoding
// is not the base.
func TestLinkBaseIsTheWritersEncoding(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		patches bool
	}{{"whole record", false}, {"patched", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			links := deliverytest.NewLinks()
			links.Seed(syncstate.Link{System: "crm", Object: "contacts", Table: "public.contacts", Key: keyOf(1),
				ExternalID: "x1", Base: map[string]any{"name": "Ann", "email": "ann@example.com"}})
			p, err := delivery.NewPipeline(delivery.PipelineConfig{Name: "contacts-to-crm", System: "crm", Object: "contacts"},
				&mapper{}, encodingWriter{patches: tc.patches}, delivery.Stores{Links: links},
				zerolog.New(zerolog.NewTestWriter(t)), prometheus.NewRegistry())
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err = p.Write(ctx, []cdc.Event{
				ev(10, 0, 1, cdc.OpUpdate, "name=Anna", "email=ann@example.com"),
				ev(10, 1, 2, cdc.OpCreate, "name=Bob", "email=bob@example.com"),
			})
			if err != nil {
				t.Fatal(err)
			}
			for key, whole := range map[int]string{1: `{"email":"ann@example.com","name":"Anna"}`, 2: `{"email":"bob@example.com","name":"Bob"}`} {
				l, ok := links.Link(refOf(key))
				if !ok || l.Base["name"] == nil || l.Base["email"] == nil {
					t.Fatalf("record %d: link %+v", key, l)
				}
				want := whole
				if tc.patches && key == 1 {
					want = "" // the Writer encoded {"name":"Anna"}, not the base
				}
				if string(l.BaseJSON) != want {
					t.Errorf("record %d: base JSON %q, want %q", key, l.BaseJSON, want)
				}
			}
		})
	}
}
