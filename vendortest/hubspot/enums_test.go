package hubspot

import (
	"strings"
	"testing"
)

func TestSetOptionsRefusesOtherValuesUntilAdded(t *testing.T) {
	t.Parallel()
	s, c := newServer(t, Options{})
	s.SetOptions("contacts", "lifecyclestage", "lead", "customer")
	batch := map[string]any{"inputs": []any{
		map[string]any{"objectWriteTraceId": "0", "properties": map[string]any{"email": "a@example.com", "lifecyclestage": "lead"}},
		map[string]any{"objectWriteTraceId": "1", "properties": map[string]any{"email": "b@example.com", "lifecyclestage": "evangelist"}},
	}}
	status, body, _ := c.do("POST", "contacts/batch/create", batch)
	errs, _ := body["errors"].([]any)
	if status != 207 || len(errs) != 1 || len(s.Objects("contacts")) != 1 {
		t.Fatalf("batch with one bad option: %d %v", status, body)
	}
	e := errs[0].(map[string]any)
	if e["category"] != "VALIDATION_ERROR" || !strings.Contains(e["message"].(string), "evangelist was not one of the allowed options") {
		t.Fatalf("per-input error %v", e)
	}
	if status, body, _ := c.do("POST", "contacts", props("email", "c@example.com", "lifecyclestage", "evangelist")); status != 400 ||
		!strings.Contains(body["message"].(string), "evangelist was not one of the allowed options") {
		t.Fatalf("single create with a bad option: %d %v", status, body)
	}
	if status, _, _ := c.do("POST", "contacts", props("email", "d@example.com", "lifecyclestage", "")); status != 201 {
		t.Fatalf("clearing an enumeration property: %d", status)
	}
	s.SetOptions("contacts", "lifecyclestage", "lead", "customer", "evangelist")
	if status, body, _ := c.do("POST", "contacts", props("email", "c@example.com", "lifecyclestage", "evangelist")); status != 201 {
		t.Fatalf("create after the option was added: %d %v", status, body)
	}
	s.SetOptions("contacts", "lifecyclestage")
	if status, _, _ := c.do("POST", "contacts", props("email", "e@example.com", "lifecyclestage", "anything")); status != 201 {
		t.Fatalf("create after the restriction was lifted: %d", status)
	}
}
