package kafkabus

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/cdc/cdctest"
)

// benchEvents returns n changes of a ten-column contacts table with
// distinct keys, as one transaction at lsn.
func benchEvents(n, first int, lsn cdc.LSN) []cdc.Event {
	events := make([]cdc.Event, n)
	for i := range events {
		id := json.RawMessage(strconv.Itoa(first + i))
		events[i] = cdc.Event{
			Op: cdc.OpUpdate, Source: cdc.SourcePostgres, Schema: "public", Table: "contacts",
			Key: cdc.Row{{Name: "id", Value: id}},
			After: cdc.Row{
				{Name: "id", Value: id},
				{Name: "email", Value: json.RawMessage(fmt.Sprintf(`"user%d@example.com"`, first+i))},
				{Name: "first_name", Value: json.RawMessage(`"Ada"`)},
				{Name: "last_name", Value: json.RawMessage(`"Lovelace"`)},
				{Name: "phone", Value: json.RawMessage(`"+44 20 7946 0000"`)},
				{Name: "company", Value: json.RawMessage(`"Analytical Engines Ltd"`)},
				{Name: "score", Value: json.RawMessage(`"1234.50"`)},
				{Name: "active", Value: json.RawMessage(`true`)},
				{Name: "created_at", Value: json.RawMessage(`"2024-01-02T03:04:05.123456Z"`)},
				{Name: "updated_at", Value: json.RawMessage(`"2024-06-07T08:09:10.654321Z"`)},
			},
			CommitTime: time.Unix(1700000000, 0),
			Pos:        cdc.Position{CommitLSN: lsn, Index: uint32(i)},
			TxID:       uint32(lsn),
		}
	}
	return events
}

// BenchmarkPublish publishes b.N events to kfake in transactions of
// perTxn events, one Publish each, and waits until the tracker confirmed
// them all (Kafka acknowledged every message with acks=all). The broker
// shares the CPU; "blackhole" discards records broker-side.
func BenchmarkPublish(b *testing.B) {
	for _, bc := range []struct {
		name   string
		perTxn int
		cfg    func(*Config)
		opts   []kfake.Opt
	}{
		{"stored/txn=500", 500, nil, nil},
		{"stored/txn=1", 1, nil, nil},
		{"blackhole/txn=500", 500, nil, []kfake.Opt{kfake.BlackholeProduce()}},
		{"blackhole/txn=500/lz4", 500, func(c *Config) { c.Compression = "lz4" }, []kfake.Opt{kfake.BlackholeProduce()}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			k := cdctest.StartKafka(b, bc.opts...)
			p, _ := newTestProducer(b, k.Brokers(), zerolog.Nop(), func(c *Config) {
				c.Linger = 0 // the default
				if bc.cfg != nil {
					bc.cfg(c)
				}
			})
			ctx := context.Background()
			if err := p.EnsureTopics(ctx, []string{"cdcd.public.contacts"}); err != nil {
				b.Fatal(err)
			}
			// Encode the events up front: the benchmark measures the producer.
			var txns [][]cdc.Event
			for i := 0; i < b.N; i += bc.perTxn {
				txns = append(txns, benchEvents(min(bc.perTxn, b.N-i), i%100_000, cdc.LSN(i+1)))
			}
			tr := cdc.NewTracker(0)
			b.ReportAllocs()
			b.ResetTimer()
			var end cdc.LSN
			for _, events := range txns {
				x := tr.Open()
				x.Add(len(events))
				for i := range events {
					events[i].Ack = x
				}
				if err := p.Publish(ctx, events); err != nil {
					b.Fatal(err)
				}
				end = events[0].Pos.CommitLSN + cdc.LSN(len(events))
				x.Seal(end)
			}
			for tr.Confirmed() != end {
				if tr.Err() != nil {
					b.Fatal(tr.Err())
				}
				time.Sleep(time.Millisecond) // polling interval
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
