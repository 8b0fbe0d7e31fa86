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
		{"no type", `[` + ev + `"x":1}]`, `unsupported subscriptionType ""`},
		{"no property name", `[` + ev + `"subscriptionType":"contact.propertyChange","propertyValue":"x"}]`, "propertyChange without propertyName"},
		{"object value", `[` + ev + `"subscriptionType":"contact.propertyChange","propertyName":"a","propertyValue":{}}]`, "propertyValue: is an object or array"},
		{"no event id", `[{"occurredAt":1,"objectId":4,"subscriptionType":"contact.creation"}]`, "no eventId"},
		{"no occurredAt", `[{"eventId":1,"objectId":4,"subscriptionType":"contact.creation"}]`, "no occurredAt"},
		{"no objectId", `[{"eventId":1,"occurredAt":1,"subscriptionType":"contact.deletion"}]`, "no objectId"},
		{"merge without ids", `[{"eventId":1,"occurredAt":1,"subscriptionType":"contact.merge"}]`, "merge without primaryObjectId"},
		{"second event bad", `[` + ev + `"subscriptionType":"contact.creation"},{"eventId":1}]`, "event[1]: unsupported subscriptionType \"\""},
		{"generic without type id", `[` + ev + `"subscriptionType":"object.deletion"}]`, `unsupported objectTypeId ""`},
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

// Apps on HubSpot's current developer platform receive generic events
// (object.creation, object.propertyChange, ...) naming the object by
// objectTypeId; they parse as the legacy ones do.
func TestHubSpotParseGenericEvents(t *testing.T) {
	t.Parallel()
	p := must(NewHubSpotParser(HubSpotParserConfig{}))
	body := `[
	{"eventId":11,"subscriptionId":40,"portalId":33,"appId":7,"occurredAt":1763819950000,"subscriptionType":"object.propertyChange","attemptNumber":0,"objectId":1246965,"objectTypeId":"0-1","propertyName":"lastname","propertyValue":"Byron","changeSource":"CRM_UI"},
	{"eventId":12,"subscriptionId":41,"portalId":33,"appId":7,"occurredAt":1763819951000,"subscriptionType":"object.creation","attemptNumber":0,"objectId":77,"objectTypeId":"0-2","changeSource":"INTEGRATION","sourceId":"1160453"},
	{"eventId":13,"subscriptionId":42,"portalId":33,"appId":7,"occurredAt":1763819952000,"subscriptionType":"object.deletion","attemptNumber":1,"objectId":5102,"objectTypeId":"0-3","changeSource":"CRM_UI"}]`
	got, err := p.Parse(&Request{Body: []byte(body)})
	if err != nil {
		t.Fatal(err)
	}
	want := []Change{hubspotChange("contacts", cdc.OpUpdate), hubspotChange("companies", cdc.OpCreate), hubspotChange("deals", cdc.OpDelete)}
	want[0].Key, want[0].After, want[0].Partial = row("id", `"1246965"`), row("lastname", `"Byron"`), true
	want[0].Kind, want[0].OriginHint, want[0].CommitTime = "object.propertyChange", "CRM_UI", ms(1763819950000)
	want[0].DeliveryID = "33/40/11/1763819950000/1246965/lastname"
	want[1].Key, want[1].Refetch = row("id", `"77"`), true
	want[1].Kind, want[1].OriginHint, want[1].CommitTime = "object.creation", "INTEGRATION/1160453", ms(1763819951000)
	want[1].DeliveryID = "33/41/12/1763819951000/77"
	want[2].Key = row("id", `"5102"`)
	want[2].Kind, want[2].OriginHint, want[2].CommitTime = "object.deletion", "CRM_UI", ms(1763819952000)
	want[2].DeliveryID = "33/42/13/1763819952000/5102"
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
}
