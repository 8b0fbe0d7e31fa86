package webhook

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/vendortest/salesforce"
)

var contactSchema = salesforce.Schema{Entity: "Contact", Fields: []salesforce.SchemaField{
	{Name: "Name", Components: []string{"Salutation", "FirstName", "LastName"}},
	{Name: "Email"}, {Name: "Phone"}, {Name: "Description"},
	{Name: "MailingAddress", Components: []string{"Street", "City", "PostalCode", "Country"}},
	{Name: "OtherAddress", Components: []string{"Street", "City", "PostalCode", "Country"}},
	{Name: "LastModifiedDate"},
}}

// sfParser returns a parser with contactSchema configured for Contact.
func sfParser(t testing.TB) *SalesforceParser {
	t.Helper()
	path := filepath.Join(t.TempDir(), "contact.avsc")
	if err := os.WriteFile(path, contactSchema.Avro(), 0o600); err != nil {
		t.Fatal(err)
	}
	return must(NewSalesforceParser(SalesforceParserConfig{AvroSchemas: map[string]string{"Contact": path}}))
}

func sfChange(typ string, values map[string]any) salesforce.Change {
	return salesforce.Change{Entity: "Contact", RecordIDs: []string{"003RM00000Ab1CdYAJ"}, Type: typ,
		Origin: "com/salesforce/api/rest/62.0", TxKey: "0004f1f8-9f08-3fb5-7a5c-19e58ef9e3a4", Sequence: 1,
		CommitTimestamp: 1763819940000, CommitNumber: 11757823472131, ReplayID: 4771, Values: values}
}

func parseOne(t *testing.T, p *SalesforceParser, body []byte) Change {
	t.Helper()
	got, err := p.Parse(&Request{Body: body})
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, body)
	}
	if len(got) != 1 {
		t.Fatalf("got %d changes, want 1", len(got))
	}
	checkChanges(t, got)
	return got[0]
}

// Both channels' shapes of one change give the same Change: the Pub/Sub
// API's bitmaps are decoded with the schema and its nulls for unchanged
// fields are not taken as cleared; the Streaming API's {"diff": ...} and
// the Pub/Sub API's diff text never reach After; compound components are
// "Parent.Component" whether nested or listed.
func TestSalesforceParseShapes(t *testing.T) {
	t.Parallel()
	p := sfParser(t)
	update := sfChange("UPDATE", map[string]any{"Email": "new@example.com", "Phone": nil,
		"MailingAddress.City": "London", "LastModifiedDate": "2026-11-22T13:59:00.000Z"})
	update.Diffs = map[string]string{"Description": "--- \n+++ 682b8747ccdb93b546e7bbe479b27d26ec7c38ccabb76cdd8308c6595492bffc\n@@ -2,1 +2,1 @@\n-a\n+b\n"}
	create := sfChange("CREATE", map[string]any{"Name.FirstName": "Ada", "Name.LastName": "Lovelace", "Email": "ada@example.com",
		"MailingAddress.City": "London", "MailingAddress.Street": "12 St James's Sq"})
	tests := []struct {
		name   string
		change salesforce.Change
		want   cdc.Row
		// refetch, partial: what the change must say
		refetch, partial bool
		op               cdc.Op
	}{
		{"update", update, row("Email", `"new@example.com"`, "LastModifiedDate", `"2026-11-22T13:59:00.000Z"`,
			"MailingAddress.City", `"London"`, "Phone", `null`), true, true, cdc.OpUpdate},
		{"create", create, row("Email", `"ada@example.com"`, "MailingAddress.City", `"London"`, "MailingAddress.Street", `"12 St James's Sq"`,
			"Name.FirstName", `"Ada"`, "Name.LastName", `"Lovelace"`), false, false, cdc.OpCreate},
	}
	for _, tt := range tests {
		for _, shape := range []struct {
			name string
			body []byte
		}{{"cometd", tt.change.CometD()}, {"pubsub", tt.change.PubSub(contactSchema)}} {
			t.Run(tt.name+"/"+shape.name, func(t *testing.T) {
				t.Parallel()
				c := parseOne(t, p, shape.body)
				if c.Op != tt.op || c.Refetch != tt.refetch || c.Partial != tt.partial || c.Table != "Contact" || c.OriginHint != tt.change.Origin {
					t.Fatalf("op %c refetch %v partial %v table %s origin %q", c.Op, c.Refetch, c.Partial, c.Table, c.OriginHint)
				}
				got := sortedRow(c.After)
				if shape.name == "pubsub" && tt.op == cdc.OpCreate {
					got = withoutNulls(got) // a Pub/Sub create sends every field, empty ones null
				}
				if !reflect.DeepEqual(got, sortedRow(tt.want)) {
					t.Fatalf("After\n got %s\nwant %s", got, sortedRow(tt.want))
				}
				if c.DeliveryID != "00000011757823472131/0000000001/0004f1f8-9f08-3fb5-7a5c-19e58ef9e3a4/003RM00000Ab1CdYAJ" {
					t.Fatalf("DeliveryID %q", c.DeliveryID)
				}
			})
		}
	}
}

// Regression: a Streaming API update without changedFields (older API
// versions) holds only what changed; its diff is not copied into the
// column.
func TestSalesforceParseCometDWithoutChangedFields(t *testing.T) {
	t.Parallel()
	body := `{"data":{"payload":{"ChangeEventHeader":{"entityName":"Contact","recordIds":["003A"],"changeType":"UPDATE",` + sfHeader + `},` +
		`"Phone":null,"OtherAddress":{"City":"Paris"},"Description":{"diff":"--- \n+++ abc\n@@ -1 +1 @@\n-x\n+y\n"}},"event":{"replayId":9}}}`
	c := parseOne(t, must(NewSalesforceParser(SalesforceParserConfig{})), []byte(body))
	if !c.Refetch || !c.Partial {
		t.Fatalf("refetch %v partial %v, want both", c.Refetch, c.Partial)
	}
	if want := row("Phone", "null", "OtherAddress.City", `"Paris"`); !reflect.DeepEqual(c.After, want) {
		t.Fatalf("After %s, want %s", c.After, want)
	}
}

func TestSalesforceParseBitmapRefusals(t *testing.T) {
	t.Parallel()
	update := sfChange("UPDATE", map[string]any{"Email": "x@example.com"})
	t.Run("no schema", func(t *testing.T) {
		t.Parallel()
		_, err := must(NewSalesforceParser(SalesforceParserConfig{})).Parse(&Request{Body: update.PubSub(contactSchema)})
		if err == nil || !strings.Contains(err.Error(), "webhook.avro_schemas.Contact") {
			t.Fatalf("Parse error %v, want one naming webhook.avro_schemas.Contact", err)
		}
	})
	t.Run("outdated schema", func(t *testing.T) {
		t.Parallel()
		// A field added since the schema was saved sets a bit past its fields.
		newer := contactSchema
		newer.Fields = append(append([]salesforce.SchemaField(nil), contactSchema.Fields...), salesforce.SchemaField{Name: "Pronouns__c"})
		body := sfChange("UPDATE", map[string]any{"Pronouns__c": "she/her"}).PubSub(newer)
		_, err := sfParser(t).Parse(&Request{Body: body})
		if err == nil || !strings.Contains(err.Error(), "past the 8 fields") {
			t.Fatalf("Parse error %v, want a bit past the schema's fields", err)
		}
	})
}

// A wildcard record id (a custom field type conversion) names every record
// of the entity: the change is read back, not dropped.
func TestSalesforceParseWildcard(t *testing.T) {
	t.Parallel()
	ch := sfChange("UPDATE", map[string]any{"Email": nil})
	ch.RecordIDs = []string{"003*"}
	c := parseOne(t, sfParser(t), ch.CometD())
	if c.Key != nil || !c.Refetch || c.After != nil {
		t.Fatalf("key %v refetch %v after %v; want nil key, refetch, no values", c.Key, c.Refetch, c.After)
	}
}

// Regression: two transactions on one record in one second must compare
// in commit order (commitNumber), not by their transaction keys' text.
func TestSalesforceParseSameSecondOrder(t *testing.T) {
	t.Parallel()
	p := sfParser(t)
	first := sfChange("UPDATE", map[string]any{"Email": "first@example.com"})
	first.TxKey, first.CommitNumber, first.ReplayID = "ffff0000", 99, 10
	second := sfChange("UPDATE", map[string]any{"Email": "second@example.com"})
	second.TxKey, second.CommitNumber, second.ReplayID = "0000ffff", 100, 11
	for _, shape := range []string{"cometd", "pubsub", "cometd without commitNumber"} {
		body := func(c salesforce.Change) []byte {
			switch shape {
			case "pubsub":
				return c.PubSub(contactSchema)
			case "cometd without commitNumber":
				c.CommitNumber = 0 // the replay id orders instead
			}
			return c.CometD()
		}
		a, b := parseOne(t, p, body(first)), parseOne(t, p, body(second))
		if !a.CommitTime.Equal(b.CommitTime) || a.ID() >= b.ID() {
			t.Errorf("%s: first %s %q, second %s %q: the second does not sort after the first", shape, a.CommitTime, a.ID(), b.CommitTime, b.ID())
		}
	}
}

func sortedRow(r cdc.Row) cdc.Row {
	out := append(cdc.Row{}, r...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j].Name < out[i].Name {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func withoutNulls(r cdc.Row) cdc.Row {
	var out cdc.Row
	for _, f := range r {
		if !cdc.IsNull(f.Value) {
			out = append(out, f)
		}
	}
	return out
}

// The change types that carry no data, and merged record ids.
func TestSalesforceParseChangeTypes(t *testing.T) {
	t.Parallel()
	p := sfParser(t)
	tests := []struct {
		typ     string
		ids     []string
		op      cdc.Op
		refetch bool
		keys    int
	}{
		{"DELETE", []string{"003A"}, cdc.OpDelete, false, 1},
		{"UNDELETE", []string{"003A"}, cdc.OpCreate, true, 1},
		{"GAP_UPDATE", []string{"003A", "003B"}, cdc.OpUpdate, true, 2},
		{"GAP_OVERFLOW", nil, cdc.OpUpdate, true, 0},
		{"UPDATE", []string{"003A", "003B", "003C"}, cdc.OpUpdate, false, 3}, // one change merged for several records
	}
	for _, tt := range tests {
		for _, shape := range []string{"cometd", "pubsub"} {
			t.Run(tt.typ+"/"+shape, func(t *testing.T) {
				t.Parallel()
				ch := sfChange(tt.typ, map[string]any{"Email": "x@example.com"})
				ch.RecordIDs = tt.ids
				body := ch.CometD()
				if shape == "pubsub" {
					body = ch.PubSub(contactSchema)
				}
				got, err := p.Parse(&Request{Body: body})
				if err != nil {
					t.Fatal(err)
				}
				checkChanges(t, got)
				keys := 0
				for _, c := range got {
					if c.Op != tt.op || c.Refetch != tt.refetch || c.Kind != tt.typ {
						t.Fatalf("op %c refetch %v kind %s", c.Op, c.Refetch, c.Kind)
					}
					if c.Key != nil {
						keys++
					}
					if (tt.refetch || tt.op == cdc.OpDelete) && len(c.After) > 0 {
						t.Fatalf("%s carries values %s", tt.typ, c.After)
					}
				}
				if keys != tt.keys {
					t.Fatalf("%d keyed changes, want %d", keys, tt.keys)
				}
			})
		}
	}
}

// Relays that decode the Pub/Sub API's Avro longs as strings (JavaScript
// BigInt) send commitNumber and commitTimestamp as JSON strings; commit
// numbers past 2^53 stay exact.
func TestSalesforceParseLongsAsStrings(t *testing.T) {
	t.Parallel()
	body := `{"replayId":"2142249","payload":{"ChangeEventHeader":{"entityName":"Contact","recordIds":["003A"],"changeType":"DELETE",` +
		`"transactionKey":"00009c89","sequenceNumber":"4","commitTimestamp":"1725346778000","commitNumber":"1725346778429841409"}}}`
	c := parseOne(t, sfParser(t), []byte(body))
	if c.DeliveryID != "01725346778429841409/0000000004/00009c89/003A" || c.CommitTime.UnixMilli() != 1725346778000 {
		t.Fatalf("DeliveryID %q, CommitTime %s", c.DeliveryID, c.CommitTime)
	}
}
