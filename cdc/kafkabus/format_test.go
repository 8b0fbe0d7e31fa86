package kafkabus

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/cdc/cdctest"
)

var updateGolden = flag.Bool("update", false, "rewrite the testdata golden files")

func raw(s string) json.RawMessage { return json.RawMessage(s) }

// formatCases are the cases of docs/events.md, as the decoder emits them:
// create, update (default replica identity: no before), primary-key
// change, update with an unchanged TOASTed column, delete, truncate.
func formatCases() []cdc.Event {
	at := time.UnixMilli(1700000000123).UTC()
	rel := &cdc.Relation{Columns: []cdc.Column{{Name: "id", Type: "int4", Key: true}, {Name: "email", Type: "text"}, {Name: "bio", Type: "text"}}}
	ev := func(op cdc.Op, index uint32) cdc.Event {
		return cdc.Event{Op: op, Source: cdc.SourcePostgres, Schema: "public", Table: "contacts",
			CommitTime: at, TxID: 900, Pos: cdc.Position{CommitLSN: 0x1000, Index: index}, Relation: rel}
	}
	create := ev(cdc.OpCreate, 0)
	create.Key = cdc.Row{{Name: "id", Value: raw(`1`)}}
	create.After = cdc.Row{{Name: "id", Value: raw(`1`)}, {Name: "email", Value: raw(`"a@x"`)}, {Name: "bio", Value: raw(`"long"`)}}
	update := ev(cdc.OpUpdate, 1)
	update.Key = cdc.Row{{Name: "id", Value: raw(`1`)}}
	update.After = cdc.Row{{Name: "id", Value: raw(`1`)}, {Name: "email", Value: raw(`"b@x"`)}, {Name: "bio", Value: raw(`"long"`)}}
	rekey := ev(cdc.OpUpdate, 2)
	rekey.Key = cdc.Row{{Name: "id", Value: raw(`2`)}}
	rekey.Before = cdc.Row{{Name: "id", Value: raw(`1`)}}
	rekey.After = cdc.Row{{Name: "id", Value: raw(`2`)}, {Name: "email", Value: raw(`"b@x"`)}, {Name: "bio", Value: raw(`"long"`)}}
	toast := ev(cdc.OpUpdate, 3)
	toast.Key = cdc.Row{{Name: "id", Value: raw(`2`)}}
	toast.After = cdc.Row{{Name: "id", Value: raw(`2`)}, {Name: "email", Value: raw(`"c@x"`)}}
	toast.Unchanged = []string{"bio"}
	del := ev(cdc.OpDelete, 4)
	del.Key = cdc.Row{{Name: "id", Value: raw(`2`)}}
	del.Before = cdc.Row{{Name: "id", Value: raw(`2`)}}
	trunc := ev(cdc.OpTruncate, 5)
	return []cdc.Event{create, update, rekey, toast, del, trunc}
}

var nowTS = regexp.MustCompile(`"op":"(.)","ts_ms":\d+`)

// render prints records as the golden files hold them: key, headers and
// value per message, the processing time zeroed.
func render(recs []cdctest.Record) string {
	var b strings.Builder
	for _, r := range recs {
		b.WriteString("key: " + string(r.Key) + "\n")
		for _, h := range r.Headers {
			b.WriteString("header " + h.Key + ": " + string(h.Value) + "\n")
		}
		v := "null (tombstone)"
		if r.Value != nil {
			v = nowTS.ReplaceAllString(string(r.Value), `"op":"$1","ts_ms":0`)
		}
		b.WriteString("value: " + v + "\n\n")
	}
	return b.String()
}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := "testdata/" + name
	if *updateGolden {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Fatalf("%s differs:\n got:\n%s\nwant:\n%s", path, got, want)
	}
}

// The topic as a consumer other than cdcd's (franz-go) reads it, per
// format, on one partition so that the order across keys shows too.
func TestFormatGolden(t *testing.T) {
	k := cdctest.StartKafka(t, kfake.NumBrokers(1))
	for _, c := range []struct {
		name, golden string
		mod          func(*Config)
		messages     int
	}{
		{"debezium", "debezium.golden", func(*Config) {}, 9},
		{"debezium without tombstones", "debezium_no_tombstones.golden", func(c *Config) { c.NoTombstones = true }, 7},
		{"cdcd", "cdcd.golden", func(c *Config) { c.Format = FormatCDCD }, 6},
		{"debezium with schemas", "debezium_schemas.golden", func(c *Config) { c.Schemas = true }, 9},
	} {
		t.Run(c.name, func(t *testing.T) {
			prefix := strings.ReplaceAll(c.name, " ", "-")
			p, _ := newTestProducer(t, k.Brokers(), testLogger(t), func(cfg *Config) {
				cfg.TopicPrefix, cfg.Partitions = prefix, 1
				c.mod(cfg)
			})
			events := formatCases()
			ack := &countAck{}
			for i := range events {
				events[i].Ack = ack
			}
			if err := p.Publish(context.Background(), events); err != nil {
				t.Fatal(err)
			}
			cdctest.Eventually(t, 30*time.Second, "every event acknowledged", func() bool { return ack.n.Load() == int32(len(events)) })
			if err := ack.Err(); err != nil {
				t.Fatal(err)
			}
			recs := cdctest.ReadTopic(t, k.Brokers(), prefix+".public.contacts")
			if len(recs) != c.messages {
				t.Fatalf("%d messages, want %d:\n%s", len(recs), c.messages, render(recs))
			}
			checkGolden(t, c.golden, render(recs))
			if strings.Contains(c.name, "schemas") {
				checkSchemas(t, recs)
			}
		})
	}
}

// recordSink keeps the events a consumer delivered.
type recordSink struct {
	mu  sync.Mutex
	got []cdc.Event
}

func (s *recordSink) Write(_ context.Context, events []cdc.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, events...)
	return nil
}

func (s *recordSink) Close(context.Context) error { return nil }

func (s *recordSink) snapshot() []cdc.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]cdc.Event(nil), s.got...)
}

// cdcd's sink workers read the debezium format back as the events that
// were captured: tombstones and the delete of a key change are no events,
// the create of a key change is the update, an unchanged TOASTed column is
// absent and named unchanged.
func TestConsumerReadsDebeziumFormatBack(t *testing.T) {
	k := cdctest.StartKafka(t, kfake.NumBrokers(1))
	for _, schemas := range []bool{false, true} {
		t.Run(fmt.Sprintf("schemas=%v", schemas), func(t *testing.T) {
			prefix := fmt.Sprintf("schemas-%v", schemas)
			p, _ := newTestProducer(t, k.Brokers(), testLogger(t), func(cfg *Config) {
				cfg.Partitions, cfg.TopicPrefix, cfg.Schemas = 1, prefix, schemas
			})
			events := formatCases()
			if err := p.Publish(context.Background(), events); err != nil {
				t.Fatal(err)
			}
			sink := &recordSink{}
			c, _ := runConsumer(t, ConsumerConfig{Brokers: k.Brokers(), Group: prefix, Topics: []string{prefix + ".public.contacts"}, System: "erp"}, sink)
			cdctest.Eventually(t, 30*time.Second, "six events delivered", func() bool { return len(sink.snapshot()) >= 6 })
			got := sink.snapshot()
			if len(got) != 6 {
				t.Fatalf("%d events delivered, want 6", len(got))
			}
			for i, want := range events {
				e := got[i]
				if e.Op != want.Op || e.ID() != want.ID() || string(cdc.AppendKey(nil, &e)) != string(cdc.AppendKey(nil, &want)) ||
					rowJSON(e.Before) != rowJSON(want.Before) || rowJSON(e.After) != rowJSON(want.After) ||
					strings.Join(e.Unchanged, ",") != strings.Join(want.Unchanged, ",") {
					t.Errorf("event %d: got %c key %s before %s after %s unchanged %q; want %c key %s before %s after %s",
						i, e.Op, cdc.AppendKey(nil, &e), rowJSON(e.Before), rowJSON(e.After), e.Unchanged,
						want.Op, cdc.AppendKey(nil, &want), rowJSON(want.Before), rowJSON(want.After))
				}
			}
			if v := metricValue(c.m.invalid); v != 0 {
				t.Fatalf("%v messages counted invalid", v)
			}
		})
	}
}

func rowJSON(r cdc.Row) string { return string(cdc.AppendKey(nil, &cdc.Event{Key: r})) }

func FuzzParseMessage(f *testing.F) {
	f.Add([]byte(`{"id":2}`), []byte(`{"op":"c","after":{"id":2},"source":{"lsn":1}}`), HeaderOldKey, []byte(`{"id":1}`))
	f.Add([]byte(`{"id":1}`), []byte(`{"op":"d","before":{"id":1},"source":{"lsn":1}}`), HeaderNewKey, []byte(`{"id":2}`))
	f.Add([]byte(`{"id":1}`), []byte(nil), HeaderEventID, []byte(`0/1/0`))
	f.Add([]byte(`{"schema":{"type":"struct"},"payload":{"id":1}}`), []byte(`{"schema":{"type":"struct"},"payload":{"op":"c","after":{"id":1}}}`), HeaderEventID, []byte(`0/1/0`))
	f.Fuzz(func(t *testing.T, key, value []byte, header string, hv []byte) {
		e, err := ParseMessage(kafka.Message{Key: key, Value: value, Headers: []kafka.Header{{Key: header, Value: hv}}})
		if err != nil {
			return
		}
		if out := cdc.AppendEnvelope(nil, &e, &cdc.SourceInfo{}, time.Now()); !json.Valid(out) {
			t.Fatalf("re-encoded envelope is invalid JSON: %s", out)
		}
	})
}

// checkSchemas checks that every key and value has a schema block its
// payload conforms to.
func checkSchemas(t *testing.T, recs []cdctest.Record) {
	t.Helper()
	for i, r := range recs {
		for _, m := range []struct {
			what string
			b    []byte
		}{{"key", r.Key}, {"value", r.Value}} {
			if m.b == nil {
				continue // a tombstone
			}
			var w struct{ Schema, Payload json.RawMessage }
			if err := json.Unmarshal(m.b, &w); err != nil || w.Schema == nil || w.Payload == nil {
				t.Errorf("message %d %s has no schema block: %s", i, m.what, m.b)
				continue
			}
			if err := cdctest.CheckSchema(w.Schema, w.Payload); err != nil {
				t.Errorf("message %d %s: %v", i, m.what, err)
			}
		}
	}
}
