package delivery_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/delivery"
	"github.com/cdcd-dev/cdcd/delivery/deliverytest"
	"github.com/cdcd-dev/cdcd/syncstate"
)

// fixedMapper maps every event to the same fields, at no cost of its own.
type fixedMapper struct{ fields map[string]any }

func (m fixedMapper) Map(context.Context, *cdc.Event) (delivery.Record, bool, error) {
	return delivery.Record{Fields: m.fields}, true, nil
}

// instantCreates answers every record at once with a new id.
type instantCreates struct{}

func (instantCreates) Write(_ context.Context, recs []delivery.Record) ([]delivery.Result, error) {
	res := make([]delivery.Result, len(recs))
	for i := range recs {
		res[i].ExternalID = "x" + recs[i].Key
	}
	return res, nil
}

// nopAudit takes the audit trail and keeps nothing.
type nopAudit struct{}

func (nopAudit) Record(context.Context, []syncstate.Outcome) error { return nil }

// BenchmarkPipelineWrite is the engine's own cost per record (the
// outbound benchmark's path without a system or Postgres): Writes of 512
// new records of distinct keys, 16 calls at once, each record linked.
func BenchmarkPipelineWrite(b *testing.B) {
	fields := map[string]any{"name": "item 1", "sku": "SKU-000001", "qty": float64(3)}
	p, err := delivery.NewPipeline(delivery.PipelineConfig{Name: "items", System: "erp", Object: "items", Concurrency: 16},
		fixedMapper{fields}, instantCreates{}, delivery.Stores{Links: deliverytest.NewLinks(), Audit: nopAudit{}},
		zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close(context.Background())
	const batch = 512
	events := make([]cdc.Event, batch)
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; n += batch {
		for i := range events {
			k := n + i
			events[i] = cdc.Event{Op: cdc.OpCreate, Source: cdc.SourcePostgres, Schema: "public", Table: "items",
				Key: cdc.Row{{Name: "id", Value: []byte(strconv.Itoa(k))}},
				Pos: cdc.Position{CommitLSN: cdc.LSN(1 + k/batch), Index: uint32(i)}}
		}
		if err := p.Write(context.Background(), events); err != nil {
			b.Fatal(err)
		}
	}
}
