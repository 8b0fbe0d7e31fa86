package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestImportRefusesWhatCannotImport: cdcd import names what is wrong with
// the pipeline, exits 2 and connects to nothing (the config's database
// does not exist).
func TestImportRefusesWhatCannotImport(t *testing.T) {
	t.Parallel()
	src := `postgres: {url: "postgres://127.0.0.1:1/none", tables: [public.items]}
systems:
  erp:
    type: http
    update: {method: PUT, url: "https://erp.example.com/items/{{.ExternalID}}"}
    webhook: {verify: hmac, secret: s, header: X-Sig, parse: json, json: {table: items, id: id, delivery_id: id}}
  hr:
    type: http
    update: {method: PATCH, url: "https://hr.example.com/e/{{.ExternalID}}"}
    list: {url: "https://hr.example.com/employees", pagination: link}
pipelines:
  - {name: items-to-erp, from: public.items, to: erp, map: {sku: sku}}
  - {name: erp-to-items, from: erp, object: items, to: public.items, map: {sku: sku}, match: [sku]}
  - {name: hr-to-employees, from: hr, object: employees, to: public.employees, map: {email: email}, match: [email]}
`
	path := filepath.Join(t.TempDir(), "cdcd.yaml")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ pipeline, want string }{
		{"items-to-erp", "import brings a system's records into a table"},
		{"erp-to-items", "cannot list its records"},
		{"nope", `no pipeline is named "nope"`},
	} {
		_, code, err := runExampleCLI(t, "import", "-c", path, tc.pipeline)
		if code != 2 || err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("import %s: exit %d, %v; want exit 2 saying %q", tc.pipeline, code, err, tc.want)
		}
	}
	// An importable pipeline gets as far as the database.
	if _, code, err := runExampleCLI(t, "import", "-c", path, "hr-to-employees"); code != 1 || err == nil || !strings.Contains(err.Error(), "database unreachable") {
		t.Errorf("import hr-to-employees: exit %d, %v; want exit 1, database unreachable", code, err)
	}
}
