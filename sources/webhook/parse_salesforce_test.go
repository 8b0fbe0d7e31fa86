package webhook

import (
	"strings"
	"testing"
)

const sfHeader = `"transactionKey":"0004f1f8-9f08-3fb5-7a5c-19e58ef9e3a4","sequenceNumber":1,"commitTimestamp":1763819940000,"commitNumber":11757823472131,"commitUser":"005RM000002dH1JYAU"`

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
