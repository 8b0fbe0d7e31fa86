package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Regression: validate passed a template naming a field that no record
// holds ({{.ID}}, a field outside the mapping); at run time every record
// was dead-lettered. It is reported with file:line, and templates that
// hold are not.
func TestValidateRendersTemplates(t *testing.T) {
	t.Parallel()
	src := `postgres: {url: "postgres://localhost/app"}
systems:
  erp:
    type: http
    create: {method: POST, url: "https://erp.example.com/items", body: '{"sku": {{json .Fields.sku}}}'}
    update:
      method: PUT
      url: "https://erp.example.com/items/{{.ID}}"
      body: '{"sku": {{json .Fields.sku}}, "qty": {{json .Fields.qty}}}'
  chat:
    type: slack
    webhook_url: https://hooks.slack.com/services/T/B/X
    text: "{{.Op}} {{.Fields.sku}} {{.Fields.price.amount}}"
pipelines:
  - name: items-to-erp
    from: public.items
    to: erp
    map: {sku: sku, quantity: qty}
  - name: items-to-chat
    from: public.items
    to: chat
    map: {sku: sku, price.amount: price}
`
	path := filepath.Join(t.TempDir(), "cdcd.yaml")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	_, code, err := runExampleCLI(t, "validate", "-c", path)
	if code != 2 || err == nil {
		t.Fatalf("exit %d, err %v; want exit 2 and the template problems", code, err)
	}
	msg := err.Error()
	for _, want := range []string{
		fmt.Sprintf(`(?m)^%s:8:\d+: systems\.erp\.update\.url: .*can't evaluate field ID.*pipeline "items-to-erp"`, regexp.QuoteMeta(path)),
		fmt.Sprintf(`(?m)^%s:9:\d+: systems\.erp\.update\.body: .*map has no entry for key "qty".*pipeline "items-to-erp" holds it \(its fields: quantity, sku\)$`, regexp.QuoteMeta(path)),
	} {
		if !regexp.MustCompile(want).MatchString(msg) {
			t.Errorf("errors do not match %s:\n%s", want, msg)
		}
	}
	if n := strings.Count(msg, "\n") + 1; n != 2 {
		t.Errorf("%d problems reported, want 2:\n%s", n, msg)
	}
}
