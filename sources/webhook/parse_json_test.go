package webhook

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
)

// stripeLike maps Stripe-style customer events.
var stripeLike = JSONParserConfig{
	System: "billing", Table: "customers", ID: "data.object.id",
	Op: "type", Ops: map[string]string{"customer.created": "c", "customer.updated": "u", "customer.deleted": "d"},
	OccurredAt: "created", DeliveryID: "id",
	Fields: []JSONField{{"email", "data.object.email"}, {"name", "data.object.name"}, {"balance", "data.object.balance"}, {"tags", "data.object.metadata.tags"}},
}

func TestJSONParse(t *testing.T) {
	t.Parallel()
	p := must(NewJSONParser(stripeLike))
	body := `{"id":"evt_1QxYz2","type":"customer.updated","created":1763819940,"data":{"object":{"id":"cus_R4nd0m","email":"ada@example.com","name":"Ada <Lovelace>","balance":-1250,"metadata":{}}}}`
	got, err := p.Parse(&Request{Body: []byte(body)})
	if err != nil {
		t.Fatal(err)
	}
	want := []Change{{
		Kind: "customer.updated",
		Event: cdc.Event{Op: cdc.OpUpdate, Source: "billing", Schema: "billing", Table: "customers",
			Key: row("id", `"cus_R4nd0m"`), After: row("email", `"ada@example.com"`, "name", `"Ada <Lovelace>"`, "balance", `-1250`),
			CommitTime: time.Unix(1763819940, 0).UTC(), DeliveryID: "evt_1QxYz2", Partial: true},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}

	arr := must(NewJSONParser(JSONParserConfig{System: "erp", Table: "items", Events: "changes", ID: "sku",
		OccurredAt: "at", OccurredAtUnit: "ms", Fields: []JSONField{{"qty", "stock.0"}}}))
	got, err = arr.Parse(&Request{Body: []byte(`{"changes":[{"sku":"A-1","at":1763819940123,"stock":[5]},{"sku":7,"at":"2026-11-22T14:00:00+01:00","stock":[0]}]}`)})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || string(got[0].Key[0].Value) != `"A-1"` || string(got[1].Key[0].Value) != `"7"` ||
		!got[0].CommitTime.Equal(time.UnixMilli(1763819940123)) || !got[1].CommitTime.Equal(time.Date(2026, 11, 22, 13, 0, 0, 0, time.UTC)) ||
		string(got[0].After[0].Value) != "5" || got[0].Op != cdc.OpUpdate || got[0].Partial {
		t.Fatalf("got %+v", got)
	}
	got, err = p.Parse(&Request{Body: []byte(`{"id":"evt_2","type":"customer.deleted","created":1,"data":{"object":{"id":"cus_1","email":"x"}}}`)})
	if err != nil || got[0].Op != cdc.OpDelete || got[0].After != nil {
		t.Fatalf("delete: %+v, %v", got, err)
	}
}

func TestJSONParseErrors(t *testing.T) {
	t.Parallel()
	p := must(NewJSONParser(stripeLike))
	const ok = `"id":"evt_1","type":"customer.created","created":1763819940,"data":{"object":{"id":"cus_1"}}`
	tests := []struct{ name, body, want string }{
		{"truncated", `{`, "delivery: JSON is empty or truncated"},
		{"not json", `{x`, "delivery: invalid JSON at byte 2"},
		{"trailing", `{` + ok + `} {}`, "data after the JSON value"},
		{"no id", `{"id":"evt_1","type":"customer.created","created":1}`, `id "data.object.id": is absent`},
		{"object id", `{"id":"evt_1","data":{"object":{"id":{}}}}`, "is neither a string nor a number"},
		{"unmapped op", `{"id":"evt_1","type":"invoice.paid","data":{"object":{"id":"in_1"}}}`, `value "invoice.paid" is not mapped`},
		{"bad time", `{"id":"evt_1","type":"customer.created","created":"noon","data":{"object":{"id":"cus_1"}}}`, `"noon" is not an RFC 3339 time`},
		{"fraction time", `{"id":"evt_1","type":"customer.created","created":1.5,"data":{"object":{"id":"cus_1"}}}`, "1.5 is not a Unix time"},
		{"no delivery id", `{"type":"customer.created","created":1,"data":{"object":{"id":"cus_1"}}}`, `delivery_id "id": is absent`},
		{"second event", `[{` + ok + `},{"id":"evt_2"}]`, "event[1]: id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := p.Parse(&Request{Body: []byte(tt.body)})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse = %v, %v; want error containing %q", got, err, tt.want)
			}
		})
	}
	err := (&JSONParserConfig{Op: "type", Ops: map[string]string{"x": "z"}, OccurredAtUnit: "us", Fields: []JSONField{{"a", "a"}, {"a", "b"}, {"", "c"}}}).Validate()
	for _, want := range []string{"system: required", "table: required", "id: required", `ops.x: "z" is not c, u or d`,
		`occurred_at_unit: "us" is not s or ms`, `fields[1].name: "a" appears twice`, "fields[2].name: required"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate = %v, want it to contain %q", err, want)
		}
	}
}
