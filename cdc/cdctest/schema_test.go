package cdctest

import (
	"strings"
	"testing"
)

func TestCheckSchemaFindsEveryFault(t *testing.T) {
	schema := `{"type":"struct","optional":false,"fields":[
		{"type":"int16","optional":false,"field":"id"},
		{"type":"string","optional":true,"field":"name"},
		{"type":"array","optional":true,"items":{"type":"double","optional":true},"field":"xs"},
		{"type":"bytes","optional":true,"field":"raw"}]}`
	if err := CheckSchema([]byte(schema), []byte(`{"id":7,"name":null,"xs":[1.5,"NaN",null],"raw":"3q0="}`)); err != nil {
		t.Errorf("a conforming payload: %v", err)
	}
	err := CheckSchema([]byte(schema), []byte(`{"id":70000,"name":5,"xs":["x"],"raw":"%%","extra":1}`))
	if err == nil {
		t.Fatal("no fault found")
	}
	for _, want := range []string{"$.id: 70000 is not an int16", "$.name: 5 is not a string", `$.xs[0]: "x" is not a double`, "$.raw", `field "extra"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("faults %q miss %q", err, want)
		}
	}
	if err := CheckSchema([]byte(schema), []byte(`{"name":"a"}`)); err == nil || !strings.Contains(err.Error(), "$.id: null for a required int16") {
		t.Errorf("a missing required field: %v", err)
	}
}
