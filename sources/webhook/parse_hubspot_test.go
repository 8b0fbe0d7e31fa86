package webhook

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
)

func ms(v int64) time.Time { return time.UnixMilli(v).UTC() }

func row(kv ...string) cdc.Row {
	var r cdc.Row
	for i := 0; i+1 < len(kv); i += 2 {
		r = append(r, cdc.Field{Name: kv[i], Value: []byte(kv[i+1])})
	}
	return r
}

func hubspotChange(table string, op cdc.Op) Change {
	return Change{Event: cdc.Event{Op: op, Source: "hubspot", Schema: "hubspot", Table: table}}
}

func TestHubSpotParse(t *testing.T) {
	t.Parallel()
	body, err := os.ReadFile("testdata/hubspot_events.json")
	if err != nil {
		t.Fatal(err)
	}
	p := must(NewHubSpotParser(HubSpotParserConfig{}))
	got, err := p.Parse(&Request{Body: body})
	if err != nil {
		t.Fatal(err)
	}
	var want []Change
	add := func(c Change, f func(*Change)) { f(&c); want = append(want, c) }
	add(hubspotChange("contacts", cdc.OpUpdate), func(c *Change) {
		c.Key = row("id", `"1246965"`)
		c.After = row("firstname", `"Ada \"Countess\" Lovelace"`)
		c.Partial, c.Kind, c.OriginHint = true, "contact.propertyChange", "CRM_UI"
		c.CommitTime = ms(1763819940123)
		c.DeliveryID = "33/25/3816279340/1763819940123/1246965/firstname"
	})
	add(hubspotChange("contacts", cdc.OpCreate), func(c *Change) {
		c.Key = row("id", `"1246978"`)
		c.Refetch, c.Kind, c.OriginHint = true, "contact.creation", "INTEGRATION/1160453"
		c.CommitTime = ms(1763819941000)
		c.DeliveryID = "33/26/3816279341/1763819941000/1246978"
	})
	add(hubspotChange("companies", cdc.OpDelete), func(c *Change) {
		c.Key = row("id", `"9007199254740993"`)
		c.Kind, c.OriginHint = "company.deletion", "CRM_UI"
		c.CommitTime = ms(1763819942000)
		c.DeliveryID = "33/27/3816279342/1763819942000/9007199254740993"
	})
	add(hubspotChange("deals", cdc.OpUpdate), func(c *Change) {
		c.Key = row("id", `"5102"`)
		c.After = row("amount", `""`)
		c.Partial, c.Kind = true, "deal.propertyChange"
		c.CommitTime = ms(1763819943000)
		c.DeliveryID = "33/28/3816279343/1763819943000/5102/amount"
	})
	add(hubspotChange("contacts", cdc.OpUpdate), func(c *Change) {
		c.Key = row("id", `"1246965"`)
		c.Refetch, c.Kind, c.OriginHint = true, "contact.merge", "CRM_UI"
		c.CommitTime = ms(1763819944000)
		c.DeliveryID = "33/29/3816279344/1763819944000/1246965"
	})
	add(hubspotChange("contacts", cdc.OpDelete), func(c *Change) {
		c.Key = row("id", `"1246978"`)
		c.MergedInto, c.Kind, c.OriginHint = "1246965", "contact.merge", "CRM_UI"
		c.CommitTime = ms(1763819944000)
		c.DeliveryID = "33/29/3816279344/1763819944000/1246978"
	})
	add(hubspotChange("contacts", cdc.OpDelete), func(c *Change) {
		c.Key = row("id", `"1246990"`)
		c.Kind, c.OriginHint = "contact.privacyDeletion", "GDPR"
		c.CommitTime = ms(1763819945000)
		c.DeliveryID = "33/30/3816279345/1763819945000/1246990"
	})
	if len(got) != len(want) {
		t.Fatalf("got %d changes, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("change %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

func TestHubSpotParseErrors(t *testing.T) {
	t.Parallel()
	p := must(NewHubSpotParser(HubSpotParserConfig{System: "crm"}))
	const ev = `{"eventId":1,"subscriptionId":2,"portalId":3,"occurredAt":1763819940000,"objectId":4,`
	tests := []struct{ name, body, want string }{
		{"empty", ``, "body is not a JSON array"},
		{"object", `{"eventId":1}`, "body is not a JSON array"},
		{"truncated", `[{"eventId":1`, "invalid JSON"},
		{"wrong type", `[{"occurredAt":"yesterday"}]`, "occurredAt is a JSON string, want int64"},
		{"bad id", `[{"objectId":1.5}]`, "is not an integer or a string"},
		{"too many", "[" + strings.Repeat(`{},`, 100) + "{}]", "101 events, at most 100 allowed"},
		{"unknown type", `[` + ev + `"subscriptionType":"contact.associationChange"}]`, `event[0]: unsupported subscriptionType "contact.associationChange"`},
		{"unknown object", `[` + ev + `"subscriptionType":"ticket.creation"}]`, `unsupported subscriptionType "ticket.creation"`},
		{"no type", `[` + ev + `"x":1}]`, `unsupported subscriptionType ""`},
		{"no property name", `[` + ev + `"subscriptionType":"contact.propertyChange","propertyValue":"x"}]`, "propertyChange without propertyName"},
		{"object value", `[` + ev + `"subscriptionType":"contact.propertyChange","propertyName":"a","propertyValue":{}}]`, "propertyValue: is an object or array"},
		{"no event id", `[{"occurredAt":1,"objectId":4,"subscriptionType":"contact.creation"}]`, "no eventId"},
		{"no occurredAt", `[{"eventId":1,"objectId":4,"subscriptionType":"contact.creation"}]`, "no occurredAt"},
		{"no objectId", `[{"eventId":1,"occurredAt":1,"subscriptionType":"contact.deletion"}]`, "no objectId"},
		{"merge without ids", `[{"eventId":1,"occurredAt":1,"subscriptionType":"contact.merge"}]`, "merge without primaryObjectId"},
		{"second event bad", `[` + ev + `"subscriptionType":"contact.creation"},{"eventId":1}]`, "event[1]: unsupported"},
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
	got, err := p.Parse(&Request{Body: []byte(`[]`)})
	if err != nil || len(got) != 0 {
		t.Fatalf("Parse([]) = %v, %v", got, err)
	}
	got, err = p.Parse(&Request{Body: []byte(`[` + ev + `"subscriptionType":"deal.propertyChange","propertyName":"amount","propertyValue":null}]`)})
	if err != nil || got[0].Source != "crm" || got[0].Schema != "crm" || string(got[0].After[0].Value) != "null" {
		t.Fatalf("Parse = %+v, %v", got, err)
	}
}
