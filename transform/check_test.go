package transform

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/syncapi"
)

type noKeys struct{}

func (*noKeys) Validate() error { return nil }

type nopWriter struct{}

func (nopWriter) Write(context.Context, []syncapi.Record) ([]syncapi.Result, error) {
	return nil, nil
}

func testRegistry() *config.Registry { return registryOf(nil) }

// registryOf registers the type nokeys, whose systems send webhooks with
// a webhook: section webhook makes (none when nil).
func registryOf(webhook func() config.Validator) *config.Registry {
	r := config.NewRegistry()
	config.Register(r, "nokeys", config.Type[*noKeys]{
		NewConfig: func() *noKeys { return &noKeys{} },
		Writer:    func(string, *noKeys, config.Env) (syncapi.Writer, error) { return nopWriter{}, nil },
		Webhook:   webhook,
	})
	return r
}

func TestCheck(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "cdcd.yaml")
	src := `postgres: {url: "postgres://localhost/app"}
systems: {crm: {type: nokeys}}
pipelines:
  - name: ok
    from: contacts
    to: crm
    map: {email: email}
  - name: bad
    from: contacts
    to: crm
    map:
      firstname: {expr: "upper(after.first_name"}
      lastname: {expr: "lookup.custmer.name"}
    filter: "after.stock <"
    lookups:
      - name: customer
        table: customers
        key: {id: "after.customer_id +"}
        columns: [name]
`
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	reg := testRegistry()
	reg.Checker(Check)
	_, err := config.Load(path, reg)
	want := path + `:12:7: pipelines[1].map.firstname: does not compile: unexpected token EOF (column 22)
` + path + `:13:7: pipelines[1].map.lastname: unknown lookup "custmer" (did you mean "customer"?)
` + path + `:14:5: pipelines[1].filter: does not compile: unexpected token EOF (column 13)
` + path + `:18:15: pipelines[1].lookups[0].key.id: does not compile: unexpected token EOF (column 19)`
	if err == nil || err.Error() != want {
		t.Errorf("got\n%v\nwant\n%s", err, want)
	}

	reg = testRegistry()
	reg.Checker(Check)
	if err := os.WriteFile(path, []byte(strings.SplitN(src, "  - name: bad", 2)[0]), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := config.Load(path, reg); err != nil {
		t.Errorf("valid config: %v", err)
	}
}
