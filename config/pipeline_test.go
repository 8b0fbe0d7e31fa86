package config

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

const pipelineSrc = `
postgres: {url: 'postgres://localhost/app'}
systems: {crm: {type: nokeys}}
pipelines:
  - name: contacts-to-crm
    from: contacts
    to: crm
    object: contacts
    map:
      email: email
      source: {const: CRM}
      rank: {const: 3}
      ratio: {const: 0.5}
      vip: {const: true}
      owner: {const: null}
      env: {const: "${REGION:-eu}"}
      name: {expr: "upper(after.first_name) + ' ' + after.last_name"}
      account.name: company
    ops: [create, update]
    filter: "after.stock < after.reorder_point && before.stock >= before.reorder_point"
    columns: {deny: [ssn]}
    lookups:
      - name: customer
        table: customers
        key: {id: after.customer_id}
        columns: [email, name]
        cache: {size: 500}
    link: {column: external_id}
    coalesce: false
    concurrency: 8
    max_attempts: 5
    backoff: {min: 500ms, max: 1m}
    max_age: 24h
`

func TestPipelineKeys(t *testing.T) {
	t.Parallel()
	cfg, err := loadString(t, pipelineSrc, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := &Pipeline{
		Name: "contacts-to-crm", From: "public.contacts", To: "crm", Object: "contacts",
		Map: map[string]Source{
			"email":        ColumnSource("email"),
			"source":       ConstSource("CRM"),
			"rank":         ConstSource(json.Number("3")),
			"ratio":        ConstSource(json.Number("0.5")),
			"vip":          ConstSource(true),
			"owner":        ConstSource(nil),
			"env":          ConstSource("eu"),
			"name":         ExprSource("upper(after.first_name) + ' ' + after.last_name"),
			"account.name": ColumnSource("company"),
		},
		Ops:     []string{"create", "update"},
		Filter:  "after.stock < after.reorder_point && before.stock >= before.reorder_point",
		Columns: Columns{Deny: []string{"ssn"}},
		Lookups: []*Lookup{{Name: "customer", Table: "public.customers", Key: map[string]string{"id": "after.customer_id"},
			Columns: []string{"email", "name"}, Cache: Cache{Size: 500, TTL: 5 * time.Minute}}},
		Link:        &Link{Column: "external_id"},
		Coalesce:    false,
		Concurrency: 8,
		MaxAttempts: 5,
		Backoff:     Backoff{Min: 500 * time.Millisecond, Max: time.Minute},
		MaxAge:      24 * time.Hour,
		OnDelete:    "delete", SoftDeleteColumn: "deleted_at", TombstoneTTL: DefaultTombstoneTTL,
		Line: 4,
	}
	if got := cfg.Pipelines[0]; !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%+v\nwant\n%+v", got, want)
	}
}

func TestPipelineDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := loadString(t, minimal+"systems: {crm: {type: nokeys}}\npipelines: [{name: p, from: t, to: crm}]\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.Pipelines[0], defaultPipeline("p", "public.t", "crm", 3); !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	p := cfg.Pipelines[0]
	if !p.Coalesce || p.Concurrency != 4 || p.MaxAttempts != 10 || p.Backoff != (Backoff{time.Second, 5 * time.Minute}) ||
		p.MaxAge != 0 || strings.Join(p.Ops, ",") != "create,update,delete" {
		t.Errorf("defaults: %+v", p)
	}
}

func TestPipelineErrors(t *testing.T) {
	t.Parallel()
	const head = "postgres: {url: 'postgres://localhost/app'}\nsystems: {crm: {type: nokeys}}\npipelines:\n  - name: p\n    from: t\n    to: crm\n"
	tests := []struct {
		name, src, want string
	}{
		{"source forms", head + "    map:\n      a: 5\n      b: {const: 1, expr: x}\n      c: {exp: x}\n      d: {const: [1]}\n      e: {expr: null}\n      f: first name\n      g: ~\n",
			"cdcd.yaml:8:10: pipelines[0].map.a: expected a column name, {const: value} or {expr: \"...\"}, got an integer (write {const: 5} for a constant)\n" +
				"cdcd.yaml:9:11: pipelines[0].map.b: expected a column name, {const: value} or {expr: \"...\"} with exactly one key\n" +
				"cdcd.yaml:10:11: pipelines[0].map.c: expected a column name, {const: value} or {expr: \"...\"} with exactly one key\n" +
				"cdcd.yaml:11:18: pipelines[0].map.d: a constant must be a string, a finite number, a boolean or null, not a list\n" +
				"cdcd.yaml:12:17: pipelines[0].map.e: expected an expression, got null\n" +
				"cdcd.yaml:13:7: pipelines[0].map.f: \"first name\" is not a column name; write {expr: \"...\"} for an expression or {const: ...} for a constant\n" +
				"cdcd.yaml:14:7: pipelines[0].map.g: required: a column name, {const: value} or {expr: \"...\"}"},
		{"target path", head + "    map: {a..b: x}\n",
			`cdcd.yaml:7:11: pipelines[0].map.a..b: "a..b" is not a field path (names joined by single dots)`},
		{"ops", head + "    ops: [create, upsert, create]\n",
			"cdcd.yaml:7:19: pipelines[0].ops[1]: \"upsert\" is not one of create, update, delete\n" +
				"cdcd.yaml:7:27: pipelines[0].ops[2]: duplicate op \"create\""},
		{"no ops", head + "    ops: []\n",
			"cdcd.yaml:7:5: pipelines[0].ops: must name at least one of create, update, delete"},
		{"columns", head + "    columns: {allow: [a], deny: [b]}\n",
			"cdcd.yaml:7:5: pipelines[0].columns: set allow or deny, not both"},
		{"column names", head + "    columns: {deny: [b, 'x y']}\n",
			"cdcd.yaml:7:25: pipelines[0].columns.deny[1]: \"x y\" is not a column name"},
		{"lookups", head + "    lookups:\n      - {name: c, table: customers, key: {id: a}, columns: [x]}\n      - {name: c, table: 'a.b.c', key: {}, columns: [], cache: {size: -1, ttl: -1s}}\n      - {name: 1x}\n",
			"cdcd.yaml:9:10: pipelines[0].lookups[1].name: duplicate lookup name \"c\" (also lookups[0])\n" +
				"cdcd.yaml:9:19: pipelines[0].lookups[1].table: \"a.b.c\" is not a table name (schema.table or table)\n" +
				"cdcd.yaml:9:35: pipelines[0].lookups[1].key: required (a mapping of key column to expression)\n" +
				"cdcd.yaml:9:44: pipelines[0].lookups[1].columns: required (the columns to read)\n" +
				"cdcd.yaml:9:65: pipelines[0].lookups[1].cache.size: must not be negative (0 disables the cache)\n" +
				"cdcd.yaml:9:75: pipelines[0].lookups[1].cache.ttl: must not be negative (0 keeps entries until evicted)\n" +
				"cdcd.yaml:10:10: pipelines[0].lookups[2].name: \"1x\" is not a valid lookup name (a letter or _, then letters, digits or _)\n" +
				"cdcd.yaml:10:10: pipelines[0].lookups[2].table: \"\" is not a table name (schema.table or table)\n" +
				"cdcd.yaml:10:10: pipelines[0].lookups[2].key: required (a mapping of key column to expression)\n" +
				"cdcd.yaml:10:10: pipelines[0].lookups[2].columns: required (the columns to read)"},
		{"delivery keys", head + "    concurrency: 0\n    max_attempts: 0\n    backoff: {min: 0, max: 0}\n    max_age: -1s\n    coalesce: maybe\n",
			"cdcd.yaml:7:5: pipelines[0].concurrency: must be at least 1\n" +
				"cdcd.yaml:8:5: pipelines[0].max_attempts: must be at least 1\n" +
				"cdcd.yaml:9:15: pipelines[0].backoff.min: must be more than 0\n" +
				"cdcd.yaml:10:5: pipelines[0].max_age: must not be negative (0 means 24 hours)\n" +
				"cdcd.yaml:11:15: pipelines[0].coalesce: \"maybe\" is not a boolean (true or false)"},
		{"link", head + "    link: {}\n  - {name: q, from: crm, to: crm.x.y, object: c, match: [email], link: {column: id}}\n",
			"cdcd.yaml:7:5: pipelines[0].link.column: required (the local column that holds the external id)\n" +
				"cdcd.yaml:8:15: pipelines[1].from: system \"crm\" has no webhook: section; add one (its secrets) so cdcd can receive its changes\n" +
				"cdcd.yaml:8:26: pipelines[1].to: \"crm.x.y\" is not a table name (schema.table or table); a pipeline from a system applies to a local table\n" +
				"cdcd.yaml:8:66: pipelines[1].link: only a pipeline from a table can link records (from names a system)"},
		{"inbound keys", head + "    match: [email]\n  - {name: q, from: crm, to: t, object: c, match: [\"a b\"], on_delete: drop, tombstone_ttl: 0s}\n",
			"cdcd.yaml:7:5: pipelines[0].match: only a pipeline from a system to a table matches local rows\n" +
				"cdcd.yaml:8:15: pipelines[1].from: system \"crm\" has no webhook: section; add one (its secrets) so cdcd can receive its changes\n" +
				"cdcd.yaml:8:52: pipelines[1].match[0]: \"a b\" is not a column name, or repeats one\n" +
				"cdcd.yaml:8:60: pipelines[1].on_delete: \"drop\" is not one of delete, soft, ignore\n" +
				"cdcd.yaml:8:77: pipelines[1].tombstone_ttl: must be more than 0"},
		{"conflict on an outbound pipeline", head + "    conflict: {strategy: merge}\n",
			`cdcd.yaml:7:5: pipelines[0].conflict: only a pipeline from a system to a table decides conflicts (set it on the pipeline that brings the system's changes in)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := loadString(t, tt.src, nil)
			if err == nil || err.Error() != tt.want {
				t.Errorf("got\n%v\nwant\n%s", err, tt.want)
			}
		})
	}
}

func TestCheckers(t *testing.T) {
	t.Parallel()
	reg := testRegistry()
	var seen []string
	reg.Checker(func(cfg *Config) error {
		seen = append(seen, cfg.Pipelines[0].Name)
		return FieldError{Path: "pipelines[0].filter", Msg: "does not compile"}
	})
	reg.Checker(func(cfg *Config) error {
		return FieldError{Path: "pipelines[0].to", Msg: "reported by Validate already"}
	})
	src := minimal + "systems: {crm: {type: nokeys}}\npipelines:\n  - name: p\n    from: t\n    to: nope\n    filter: x\n"
	_, err := load("cdcd.yaml", []byte(src), reg, envOf(nil))
	want := "cdcd.yaml:6:5: pipelines[0].to: no system named \"nope\"\ncdcd.yaml:7:5: pipelines[0].filter: does not compile"
	if err == nil || err.Error() != want || len(seen) != 1 {
		t.Errorf("got %v (checker ran %d times), want\n%s", err, len(seen), want)
	}
}
