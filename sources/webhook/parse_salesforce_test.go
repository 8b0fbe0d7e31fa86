package webhook

import (
	"reflect"
	"strings"
	"testing"

	"github.com/cdcd-dev/cdcd/cdc"
)

const sfHeader = `"transactionKey":"0004f1f8-9f08-3fb5-7a5c-19e58ef9e3a4","sequenceNumber":1,"commitTimestamp":1763819940000,"commitNumber":11757823472131,"commitUser":"005RM000002dH1JYAU"`

func TestSalesforceParse(t *testing.T) {
	t.Parallel()
	p := must(NewSalesforceParser(SalesforceParserConfig{}))
	sf := func(op cdc.Op, kind, id string) Change {
		c := Change{Kind: kind, Event: cdc.Event{Op: op, Source: "salesforce", Schema: "salesforce", Table: "Contact",
			CommitTime: ms(1763819940000), DeliveryID: "0004f1f8-9f08-3fb5-7a5c-19e58ef9e3a4/1/" + id}}
		if id != "" && !strings.Contains(id, "*") {
			c.Key = row("id", `"`+id+`"`)
		}
		return c
	}
	tests := []struct {
		name, body string
		want       []Change
	}{
		{"create", `{"ChangeEventHeader":{"entityName":"Contact","recordIds":["003RM00000Ab1CdYAJ"],"changeType":"CREATE","changeOrigin":"com/salesforce/api/rest/62.0",` + sfHeader + `,"changedFields":[],"nulledFields":[],"diffFields":[]},"LastName":"Lovelace","FirstName":"Ada","Email":"ada@example.com","CreatedDate":"2026-11-22T13:59:00.000Z"}`,
			[]Change{func() Change {
				c := sf(cdc.OpCreate, "CREATE", "003RM00000Ab1CdYAJ")
				c.OriginHint = "com/salesforce/api/rest/62.0"
				c.After = row("LastName", `"Lovelace"`, "FirstName", `"Ada"`, "Email", `"ada@example.com"`, "CreatedDate", `"2026-11-22T13:59:00.000Z"`)
				return c
			}()}},
		{"update two records via cometd", `{"channel":"/data/ContactChangeEvent","data":{"schema":"IeRuaY6cbI_HsV8Rv1Mc5g","payload":{"ChangeEventHeader":{"entityName":"Contact","recordIds":["003A","003B"],"changeType":"UPDATE","changeOrigin":"com/salesforce/api/rest/62.0;client=cdcd",` + sfHeader + `,"changedFields":["Email","Phone","MailingAddress.City","LastModifiedDate"],"nulledFields":["Phone"],"diffFields":[]},"Email":"new@example.com","Phone":null,"MailingAddress":{"City":"London","Street":null},"LastModifiedDate":"2026-11-22T13:59:00.000Z"},"event":{"replayId":4771}}}`,
			func() []Change {
				var out []Change
				for _, id := range []string{"003A", "003B"} {
					c := sf(cdc.OpUpdate, "UPDATE", id)
					c.Partial, c.OriginHint = true, "com/salesforce/api/rest/62.0;client=cdcd"
					c.After = row("Email", `"new@example.com"`, "MailingAddress.City", `"London"`, "LastModifiedDate", `"2026-11-22T13:59:00.000Z"`, "Phone", `null`)
					out = append(out, c)
				}
				return out
			}()},
		{"update with diff field", `[{"ChangeEventHeader":{"entityName":"Contact","recordIds":["003A"],"changeType":"UPDATE",` + sfHeader + `,"changedFields":["Description"],"diffFields":["Description"]},"Description":"@@ -1 +1 @@"}]`,
			[]Change{func() Change {
				c := sf(cdc.OpUpdate, "UPDATE", "003A")
				c.Partial, c.Refetch, c.After = true, true, cdc.Row{}
				return c
			}()}},
		{"delete", `{"ChangeEventHeader":{"entityName":"Contact","recordIds":["003A"],"changeType":"DELETE",` + sfHeader + `}}`,
			[]Change{sf(cdc.OpDelete, "DELETE", "003A")}},
		{"undelete", `{"ChangeEventHeader":{"entityName":"Contact","recordIds":["003A"],"changeType":"UNDELETE",` + sfHeader + `},"LastName":"Lovelace"}`,
			[]Change{func() Change { c := sf(cdc.OpCreate, "UNDELETE", "003A"); c.Refetch = true; return c }()}},
		{"gap update", `{"ChangeEventHeader":{"entityName":"Contact","recordIds":["003A"],"changeType":"GAP_UPDATE",` + sfHeader + `}}`,
			[]Change{func() Change { c := sf(cdc.OpUpdate, "GAP_UPDATE", "003A"); c.Refetch = true; return c }()}},
		{"gap overflow", `{"ChangeEventHeader":{"entityName":"Contact","recordIds":["003*"],"changeType":"GAP_OVERFLOW",` + sfHeader + `}}`,
			[]Change{func() Change { c := sf(cdc.OpUpdate, "GAP_OVERFLOW", "003*"); c.Refetch = true; return c }()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := p.Parse(&Request{Body: []byte(tt.body)})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d changes, want %d", len(got), len(tt.want))
			}
			for i := range got {
				if !reflect.DeepEqual(got[i], tt.want[i]) {
					t.Errorf("change %d:\n got %+v\nwant %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestSalesforceParseErrors(t *testing.T) {
	t.Parallel()
	p := must(NewSalesforceParser(SalesforceParserConfig{}))
	tests := []struct{ name, body, want string }{
		{"empty", ``, "salesforce delivery: event: "},
		{"no header", `{"Name":"x"}`, "no ChangeEventHeader"},
		{"bad change type", `{"ChangeEventHeader":{"changeType":"MERGE"}}`, `unsupported changeType "MERGE"`},
		{"no entity", `{"ChangeEventHeader":{"changeType":"DELETE"}}`, "no entityName"},
		{"no transaction", `{"ChangeEventHeader":{"changeType":"DELETE","entityName":"Contact"}}`, "no transactionKey"},
		{"no commit time", `{"ChangeEventHeader":{"changeType":"DELETE","entityName":"Contact","transactionKey":"k"}}`, "no commitTimestamp"},
		{"no records", `{"ChangeEventHeader":{"changeType":"DELETE","entityName":"Contact",` + sfHeader + `}}`, "no recordIds"},
		{"empty record", `{"ChangeEventHeader":{"changeType":"DELETE","entityName":"Contact","recordIds":[""],` + sfHeader + `}}`, "empty record id"},
		{"bad ids type", `{"ChangeEventHeader":{"recordIds":"003A"}}`, "recordIds is a JSON string"},
		{"array element", `[{"x":1}]`, "event[0]: no ChangeEventHeader"},
		{"bad payload", `{"data":{"payload":[1]}}`, "data.payload"},
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
}
