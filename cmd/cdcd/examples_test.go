package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/store"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/cdc/cdctest"
	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/daemon"
	"github.com/cdcd-dev/cdcd/transform"
)

const examplesDir = "../../deploy/examples"

// exampleEnv holds a stand-in for every environment variable the examples
// require (written ${VAR}, without a default), shaped as each key expects.
var exampleEnv = map[string]string{
	"DATABASE_URL":             "postgres://cdcd@localhost:5432/app?sslmode=disable",
	"HUBSPOT_TOKEN":            "pat-na1-00000000-0000-0000-0000-000000000000",
	"HUBSPOT_CLIENT_SECRET":    "hubspot-client-secret",
	"HUBSPOT_APP_ID":           "1160453",
	"SALESFORCE_LOGIN_URL":     "https://acme.my.salesforce.com",
	"SALESFORCE_CLIENT_ID":     "3MVG9-consumer-key",
	"SALESFORCE_CLIENT_SECRET": "consumer-secret",
	"ERP_HMAC_SECRET":          "hmac-secret",
	"ERP_API_TOKEN":            "erp-token",
	"SMTP_HOST":                "smtp.example.com",
	"SMTP_USERNAME":            "cdcd",
	"SMTP_PASSWORD":            "smtp-password",
	"SHOPIFY_SHOP":             "acme.myshopify.com",
	"SHOPIFY_ACCESS_TOKEN":     "shpat_0000",
	"POS_API_KEY":              "pos-key",
	"POS_WEBHOOK_SECRET":       "pos-webhook-secret",
	"WMS_API_TOKEN":            "wms-token",
	"SLACK_WEBHOOK_URL":        "https://hooks.slack.com/services/T000/B000/XXXX",
	"PAGERDUTY_ROUTING_KEY":    "0123456789abcdef0123456789abcdef",
	"CDCD_READ_TOKEN":          "read-token",
	"HR_API_TOKEN":             "hr-token",
	"HR_WEBHOOK_SECRET":        "hr-webhook-secret",
	"CDCD_ADMIN_TOKEN":         "admin-token",
}

var (
	requiredVar = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)
	defaultVar  = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*):-[^}]*\}`)
)

// exampleFiles returns every deploy/examples/*.yaml.
func exampleFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(examplesDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 5 {
		t.Fatalf("found %d examples in %s, want at least 5: %v", len(files), examplesDir, files)
	}
	return files
}

// exampleVars returns the variables a file requires and those it has
// defaults for.
func exampleVars(t *testing.T, path string) (required, defaulted []string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var text []string
	for line := range strings.SplitSeq(string(b), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			text = append(text, line)
		}
	}
	src := strings.Join(text, "\n")
	for _, m := range requiredVar.FindAllStringSubmatch(src, -1) {
		if !slices.Contains(required, m[1]) {
			required = append(required, m[1])
		}
	}
	for _, m := range defaultVar.FindAllStringSubmatch(src, -1) {
		if !slices.Contains(defaulted, m[1]) {
			defaulted = append(defaulted, m[1])
		}
	}
	return required, defaulted
}

// setExampleEnv sets a stand-in for each variable path requires, and
// empties the ones it has defaults for, so that the defaults apply.
func setExampleEnv(t *testing.T, path string) {
	t.Helper()
	required, defaulted := exampleVars(t, path)
	for _, name := range required {
		v, ok := exampleEnv[name]
		if !ok {
			t.Fatalf("%s requires ${%s}: add a stand-in value to exampleEnv", filepath.Base(path), name)
		}
		t.Setenv(name, v)
	}
	for _, name := range defaulted {
		t.Setenv(name, "")
	}
}

// runExampleCLI runs cdcd's root command in-process with args and returns
// its output, its error and the exit status main would use.
func runExampleCLI(t *testing.T, args ...string) (stdout string, code int, err error) {
	t.Helper()
	root := rootCommand()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err = root.ExecuteContext(context.Background())
	if err != nil {
		code = exitCode(err)
	}
	return out.String(), code, err
}

func TestExamplesValidate(t *testing.T) {
	for _, path := range exampleFiles(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			setExampleEnv(t, path)
			out, code, err := runExampleCLI(t, "validate", "--config", path)
			if err != nil || code != 0 {
				t.Fatalf("cdcd validate %s: exit %d:\n%v", path, code, err)
			}
			if want := path + ": valid ("; !strings.HasPrefix(out, want) {
				t.Errorf("output %q, want a line starting %q", out, want)
			}
		})
	}
}

// TestExamplesReadme checks that the README lists every example and the
// variables each one requires.
func TestExamplesReadme(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(examplesDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	for _, path := range exampleFiles(t) {
		name := filepath.Base(path)
		if !strings.Contains(readme, name) {
			t.Errorf("README.md does not mention %s", name)
		}
		required, _ := exampleVars(t, path)
		for _, v := range required {
			if !strings.Contains(readme, v) {
				t.Errorf("README.md does not mention %s, which %s requires", v, name)
			}
		}
	}
}

// TestExampleBrokenConfigReportsEveryProblem breaks a copy of an example
// twice, a misspelt key and a pipeline to a system that does not exist, and
// expects both problems, each at its file and line.
func TestExampleBrokenConfigReportsEveryProblem(t *testing.T) {
	src := filepath.Join(examplesDir, "crm-sync.yaml")
	setExampleEnv(t, src)
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	breakLine := func(old, new string) int {
		t.Helper()
		if strings.Count(text, old) != 1 {
			t.Fatalf("%q occurs %d times in %s, want once", old, strings.Count(text, old), src)
		}
		i := strings.Index(text, old)
		text = text[:i] + new + text[i+len(old):]
		return strings.Count(text[:i], "\n") + 1
	}
	typoLine := breakLine("    filter: \"op == 'delete'", "    fliter: \"op == 'delete'")
	systemLine := breakLine("    to: salesforce\n", "    to: salesfroce\n")

	path := filepath.Join(t.TempDir(), "cdcd.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	out, code, err := runExampleCLI(t, "validate", "-c", path)
	if code != 2 || err == nil {
		t.Fatalf("exit %d, err %v; want exit 2 and an error", code, err)
	}
	if strings.Contains(out, "valid") {
		t.Errorf("output %q claims the config is valid", out)
	}
	msg := err.Error()
	for _, want := range []string{
		fmt.Sprintf(`(?m)^%s:%d:\d+: pipelines\[0\]\.fliter: unknown key \(did you mean "filter"\?\)$`, regexp.QuoteMeta(path), typoLine),
		fmt.Sprintf(`(?m)^%s:%d:\d+: pipelines\[1\]\.to: no system named "salesfroce" \(did you mean "salesforce"\?\)$`, regexp.QuoteMeta(path), systemLine),
	} {
		if !regexp.MustCompile(want).MatchString(msg) {
			t.Errorf("errors do not match %s:\n%s", want, msg)
		}
	}
	if n := strings.Count(msg, "\n") + 1; n != 2 {
		t.Errorf("%d problems reported, want 2:\n%s", n, msg)
	}
}

// TestExamplesAgainstSchema loads deploy/examples/schema.sql into a fresh
// database, checks every example with validate --check-db, and runs the
// examples' pipelines (filters, lookups, maps) over sample changes, so that
// each one does what its comments say.
func TestExamplesAgainstSchema(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Postgres")
	}
	pg := cdctest.StartPostgres(t)
	url := pg.CreateDB(t, "examples")
	schema, err := os.ReadFile(filepath.Join(examplesDir, "schema.sql"))
	if err != nil {
		t.Fatal(err)
	}
	pg.Exec(t, "examples", string(schema))
	// cdcd's own tables (cdcd.health_transitions, cdcd.jobs) exist once
	// cdcd ran.
	st, err := store.Open(context.Background(), url, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	st.Close()

	t.Run("check-db", func(t *testing.T) {
		for _, path := range exampleFiles(t) {
			t.Run(filepath.Base(path), func(t *testing.T) {
				setExampleEnv(t, path)
				t.Setenv("DATABASE_URL", url)
				out, code, err := runExampleCLI(t, "validate", "--check-db", "-c", path)
				if err != nil || code != 0 {
					t.Fatalf("cdcd validate --check-db %s: exit %d:\n%v", path, code, err)
				}
				if !strings.Contains(out, ": valid (") {
					t.Errorf("output %q, want the valid line", out)
				}
			})
		}
	})

	pg.Exec(t, "examples", `
INSERT INTO customers (id, email, first_name) VALUES (7, 'ada@example.com', 'Ada');
INSERT INTO orders (id, order_number, customer_id, status) VALUES (42, 'SO-1042', 7, 'confirmed');
INSERT INTO products (sku, name, reorder_point, reorder_quantity, shopify_inventory_item_id) VALUES
  ('MUG-01', 'Enamel mug', 10, 50, 44001),
  ('BOX-01', 'Gift box', 5, 20, NULL);
INSERT INTO warehouses (code, name, shopify_location_id, pos_location_id) VALUES
  ('WH-EAST', 'East warehouse', 61001, NULL),
  ('STORE-12', 'Store 12', NULL, 'loc-12');
`)
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	lookups := transform.NewPostgres(pool)

	orderRow := func(status string) cdc.Row {
		return exampleRow("id", 42, "order_number", "SO-1042", "customer_id", 7, "order_date", "2026-05-04",
			"ship_date", nil, "status", status, "subtotal", "119.90", "tax", "0.00", "shipping", "10.00",
			"total", "129.90", "currency", "EUR", "delivered_at", nil, "updated_at", "2026-05-04T10:00:00Z")
	}
	shipmentRow := func(status string) cdc.Row {
		return exampleRow("id", 3, "erp_shipment_id", nil, "order_id", 42, "carrier", "UPS",
			"tracking_number", "1Z999", "ship_date", "2026-05-05", "estimated_delivery", nil,
			"status", status, "updated_at", "2026-05-05T09:00:00Z")
	}
	stock := func(sku, warehouse string, available int, source string) cdc.Row {
		return exampleRow("sku", sku, "warehouse", warehouse, "quantity_on_hand", available+2,
			"quantity_available", available, "quantity_reserved", 2, "quantity_on_order", 0,
			"bin_location", nil, "last_count_date", nil, "last_adjustment_type", "shipment",
			"last_adjustment_source", source, "updated_at", "2026-05-05T09:00:00Z")
	}
	contact := func(email string, phone, mobile, last any) cdc.Row {
		return exampleRow("id", 5, "email", email, "first_name", "Grace", "last_name", last,
			"phone", phone, "mobile_phone", mobile, "company", "Navy", "title", "Rear Admiral",
			"source", "referral", "status", "lead", "password_hash", "$2a$10$secret", "api_token", "tok",
			"sync_status", "pending", "sync_error", nil, "last_sync_attempt", nil, "last_synced_at", nil,
			"created_at", "2026-05-01T00:00:00Z", "updated_at", "2026-05-01T00:00:00Z")
	}
	idKey := []string{"id"}
	invKey := []string{"sku", "warehouse"}

	cases := []struct {
		file, pipeline, name string
		event                *cdc.Event
		pass                 bool
		want                 map[string]string // dotted field path: fmt.Sprint of the value; "<absent>" for none
	}{
		// crm-sync.yaml
		{"crm-sync.yaml", "contacts-to-hubspot", "insert", exampleEvent(cdc.OpCreate, "contacts", idKey, nil, contact("grace@example.com", nil, "+1 555 0100", "Hopper")), true,
			map[string]string{"email": "grace@example.com", "phone": "+1 555 0100", "lastname": "Hopper", "password_hash": "<absent>", "api_token": "<absent>"}},
		{"crm-sync.yaml", "contacts-to-hubspot", "blank email", exampleEvent(cdc.OpCreate, "contacts", idKey, nil, contact(" ", nil, nil, "Hopper")), false, nil},
		{"crm-sync.yaml", "contacts-to-hubspot", "delete", exampleEvent(cdc.OpDelete, "contacts", idKey, contact("grace@example.com", nil, nil, "Hopper"), nil), true,
			map[string]string{"email": "grace@example.com"}},
		{"crm-sync.yaml", "contacts-to-salesforce", "no last name", exampleEvent(cdc.OpCreate, "contacts", idKey, nil, contact("grace@example.com", "+1 555 0199", nil, nil)), true,
			map[string]string{"App_Contact_Id__c": "5", "LastName": "[not provided]", "Phone": "+1 555 0199"}},

		// erp-orders.yaml
		{"erp-orders.yaml", "orders-to-erp", "draft", exampleEvent(cdc.OpCreate, "orders", idKey, nil, orderRow("draft")), false, nil},
		{"erp-orders.yaml", "orders-to-erp", "confirmed", exampleEvent(cdc.OpUpdate, "orders", idKey, orderRow("draft"), orderRow("confirmed")), true,
			map[string]string{"orderNumber": "SO-1042", "customer.id": "7", "customer.email": "ada@example.com", "total": "129.90"}},
		{"erp-orders.yaml", "orders-to-erp", "delete draft", exampleEvent(cdc.OpDelete, "orders", idKey, orderRow("draft"), nil), false, nil},
		{"erp-orders.yaml", "orders-to-erp", "delete confirmed", exampleEvent(cdc.OpDelete, "orders", idKey, orderRow("confirmed"), nil), true, nil},
		{"erp-orders.yaml", "order-status-emails", "draft to confirmed", exampleEvent(cdc.OpUpdate, "orders", idKey, orderRow("draft"), orderRow("confirmed")), true,
			map[string]string{"email": "ada@example.com", "first_name": "Ada", "order_number": "SO-1042", "status": "confirmed"}},
		{"erp-orders.yaml", "order-status-emails", "same status", exampleEvent(cdc.OpUpdate, "orders", idKey, orderRow("confirmed"), orderRow("confirmed")), false, nil},
		{"erp-orders.yaml", "order-status-emails", "to an unannounced status", exampleEvent(cdc.OpUpdate, "orders", idKey, orderRow("draft"), orderRow("on_hold")), false, nil},
		{"erp-orders.yaml", "order-status-emails", "before holds only the key", exampleEvent(cdc.OpUpdate, "orders", idKey, exampleRow("id", 42), orderRow("shipped")), false, nil},
		{"erp-orders.yaml", "order-status-emails", "no before", exampleEvent(cdc.OpUpdate, "orders", idKey, nil, orderRow("shipped")), false, nil},
		{"erp-orders.yaml", "shipment-emails", "created shipped", exampleEvent(cdc.OpCreate, "shipments", idKey, nil, shipmentRow("shipped")), true,
			map[string]string{"email": "ada@example.com", "order_number": "SO-1042", "tracking_url": "https://track.example.com/1Z999", "estimated_delivery": "to be confirmed"}},
		{"erp-orders.yaml", "shipment-emails", "turns shipped", exampleEvent(cdc.OpUpdate, "shipments", idKey, shipmentRow("pending"), shipmentRow("shipped")), true, nil},
		{"erp-orders.yaml", "shipment-emails", "stays shipped", exampleEvent(cdc.OpUpdate, "shipments", idKey, shipmentRow("shipped"), shipmentRow("shipped")), false, nil},
		{"erp-orders.yaml", "shipment-emails", "no before", exampleEvent(cdc.OpUpdate, "shipments", idKey, nil, shipmentRow("shipped")), false, nil},
		{"erp-orders.yaml", "shipment-emails", "created pending", exampleEvent(cdc.OpCreate, "shipments", idKey, nil, shipmentRow("pending")), false, nil},

		// inventory-fanout.yaml
		{"inventory-fanout.yaml", "inventory-to-erp", "sale", exampleEvent(cdc.OpUpdate, "inventory", invKey, stock("MUG-01", "WH-EAST", 12, "app"), stock("MUG-01", "WH-EAST", 11, "app")), true,
			map[string]string{"sku": "MUG-01", "warehouseCode": "WH-EAST", "qtyAvailable": "11"}},
		{"inventory-fanout.yaml", "inventory-to-erp", "made by the erp", exampleEvent(cdc.OpUpdate, "inventory", invKey, stock("MUG-01", "WH-EAST", 12, "app"), stock("MUG-01", "WH-EAST", 40, "erp")), false, nil},
		{"inventory-fanout.yaml", "inventory-to-shopify", "sale", exampleEvent(cdc.OpUpdate, "inventory", invKey, stock("MUG-01", "WH-EAST", 12, "app"), stock("MUG-01", "WH-EAST", 11, "pos")), true,
			map[string]string{"inventory_item_id": "44001", "location_id": "61001", "available": "11", "previous_available": "12"}},
		{"inventory-fanout.yaml", "inventory-to-shopify", "first stock", exampleEvent(cdc.OpCreate, "inventory", invKey, nil, stock("MUG-01", "WH-EAST", 30, "app")), true,
			map[string]string{"available": "30", "previous_available": "<nil>"}},
		{"inventory-fanout.yaml", "inventory-to-shopify", "delete", exampleEvent(cdc.OpDelete, "inventory", invKey, stock("MUG-01", "WH-EAST", 3, "app"), nil), true,
			map[string]string{"inventory_item_id": "44001", "location_id": "61001", "previous_available": "3"}},
		{"inventory-fanout.yaml", "inventory-to-shopify", "made by shopify", exampleEvent(cdc.OpUpdate, "inventory", invKey, stock("MUG-01", "WH-EAST", 12, "app"), stock("MUG-01", "WH-EAST", 11, "ecommerce")), false, nil},
		{"inventory-fanout.yaml", "inventory-to-shopify", "not sold online", exampleEvent(cdc.OpUpdate, "inventory", invKey, stock("BOX-01", "WH-EAST", 12, "app"), stock("BOX-01", "WH-EAST", 11, "app")), false, nil},
		{"inventory-fanout.yaml", "inventory-to-shopify", "not a shopify location", exampleEvent(cdc.OpUpdate, "inventory", invKey, stock("MUG-01", "STORE-12", 12, "app"), stock("MUG-01", "STORE-12", 11, "app")), false, nil},
		{"inventory-fanout.yaml", "inventory-to-shopify", "quantity unchanged", exampleEvent(cdc.OpUpdate, "inventory", invKey, stock("MUG-01", "WH-EAST", 12, "app"), stock("MUG-01", "WH-EAST", 12, "app")), false, nil},
		{"inventory-fanout.yaml", "inventory-to-pos", "store", exampleEvent(cdc.OpUpdate, "inventory", invKey, stock("MUG-01", "STORE-12", 4, "app"), stock("MUG-01", "STORE-12", 3, "app")), true,
			map[string]string{"item_id": "MUG-01", "quantity": "3", "location_id": "loc-12"}},
		{"inventory-fanout.yaml", "inventory-to-pos", "not a store", exampleEvent(cdc.OpUpdate, "inventory", invKey, stock("MUG-01", "WH-EAST", 4, "app"), stock("MUG-01", "WH-EAST", 3, "app")), false, nil},
		{"inventory-fanout.yaml", "inventory-to-wms", "bin unassigned", exampleEvent(cdc.OpUpdate, "inventory", invKey, stock("MUG-01", "WH-EAST", 4, "app"), stock("MUG-01", "WH-EAST", 3, "app")), true,
			map[string]string{"qty": "5", "bin": "UNASSIGNED"}},
		{"inventory-fanout.yaml", "low-stock-to-slack", "crosses the reorder point", exampleEvent(cdc.OpUpdate, "inventory", invKey, stock("MUG-01", "WH-EAST", 11, "app"), stock("MUG-01", "WH-EAST", 10, "app")), true,
			map[string]string{"product": "Enamel mug", "available": "10", "reorder_point": "10", "reorder_quantity": "50"}},
		{"inventory-fanout.yaml", "low-stock-to-slack", "already below", exampleEvent(cdc.OpUpdate, "inventory", invKey, stock("MUG-01", "WH-EAST", 10, "app"), stock("MUG-01", "WH-EAST", 8, "app")), false, nil},
		{"inventory-fanout.yaml", "low-stock-to-slack", "restocked", exampleEvent(cdc.OpUpdate, "inventory", invKey, stock("MUG-01", "WH-EAST", 8, "app"), stock("MUG-01", "WH-EAST", 60, "erp")), false, nil},
		{"inventory-fanout.yaml", "low-stock-to-slack", "before holds only the key", exampleEvent(cdc.OpUpdate, "inventory", invKey, exampleRow("sku", "MUG-01", "warehouse", "WH-EAST"), stock("MUG-01", "WH-EAST", 8, "app")), false, nil},
		{"inventory-fanout.yaml", "low-stock-to-slack", "no before", exampleEvent(cdc.OpUpdate, "inventory", invKey, nil, stock("MUG-01", "WH-EAST", 8, "app")), false, nil},
		{"inventory-fanout.yaml", "out-of-stock-to-pagerduty", "no before", exampleEvent(cdc.OpUpdate, "inventory", invKey, nil, stock("MUG-01", "WH-EAST", 0, "app")), false, nil},
		{"inventory-fanout.yaml", "low-stock-to-slack", "unknown product", exampleEvent(cdc.OpUpdate, "inventory", invKey, stock("NOPE", "WH-EAST", 11, "app"), stock("NOPE", "WH-EAST", 1, "app")), false, nil},
		{"inventory-fanout.yaml", "out-of-stock-to-pagerduty", "sells out", exampleEvent(cdc.OpUpdate, "inventory", invKey, stock("MUG-01", "WH-EAST", 1, "app"), stock("MUG-01", "WH-EAST", 0, "app")), true,
			map[string]string{"alert_action": "trigger", "product": "Enamel mug"}},
		{"inventory-fanout.yaml", "out-of-stock-to-pagerduty", "restocked", exampleEvent(cdc.OpUpdate, "inventory", invKey, stock("MUG-01", "WH-EAST", 0, "app"), stock("MUG-01", "WH-EAST", 25, "erp")), true,
			map[string]string{"alert_action": "resolve"}},
		{"inventory-fanout.yaml", "out-of-stock-to-pagerduty", "still in stock", exampleEvent(cdc.OpUpdate, "inventory", invKey, stock("MUG-01", "WH-EAST", 5, "app"), stock("MUG-01", "WH-EAST", 4, "app")), false, nil},
	}

	mappers := map[string]*transform.Mapper{}
	mapper := func(t *testing.T, file, pipeline string) *transform.Mapper {
		t.Helper()
		id := file + "/" + pipeline
		if m, ok := mappers[id]; ok {
			return m
		}
		path := filepath.Join(examplesDir, file)
		setExampleEnv(t, path)
		t.Setenv("DATABASE_URL", url)
		cfg, err := config.Load(path, daemon.Components())
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range cfg.Pipelines {
			if p.Name == pipeline {
				m, err := transform.New(transform.SpecOf(p), lookups, zerolog.Nop())
				if err != nil {
					t.Fatal(err)
				}
				mappers[id] = m
				return m
			}
		}
		t.Fatalf("%s has no pipeline %s", file, pipeline)
		return nil
	}
	for _, tc := range cases {
		t.Run(tc.pipeline+"/"+tc.name, func(t *testing.T) {
			m := mapper(t, tc.file, tc.pipeline)
			rec, ok, err := m.Map(context.Background(), tc.event)
			if err != nil {
				t.Fatalf("Map: %v", err)
			}
			if ok != tc.pass {
				t.Fatalf("delivered = %v, want %v (fields %v)", ok, tc.pass, rec.Fields)
			}
			for path, want := range tc.want {
				got := "<absent>"
				if v, found := fieldAt(rec.Fields, path); found {
					got = fmt.Sprint(v)
				}
				if got != want {
					t.Errorf("field %s = %s, want %s (fields %v)", path, got, want, rec.Fields)
				}
			}
		})
	}
}

// exampleRow builds a row from name, value pairs; values are encoded as
// the change stream encodes them (numbers, strings, null).
func exampleRow(kv ...any) cdc.Row {
	r := make(cdc.Row, 0, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		b, err := json.Marshal(kv[i+1])
		if err != nil {
			panic(err)
		}
		r = append(r, cdc.Field{Name: kv[i].(string), Value: b})
	}
	return r
}

// exampleEvent is a change of public.<table> whose key is the named
// columns of after, or of before for a delete.
func exampleEvent(op cdc.Op, table string, key []string, before, after cdc.Row) *cdc.Event {
	from := after
	if from == nil {
		from = before
	}
	var k cdc.Row
	for _, name := range key {
		for _, f := range from {
			if f.Name == name {
				k = append(k, f)
			}
		}
	}
	return &cdc.Event{Op: op, Source: cdc.SourcePostgres, Schema: "public", Table: table, Key: k, Before: before, After: after}
}

// fieldAt reads a dotted path of nested record fields.
func fieldAt(fields map[string]any, path string) (any, bool) {
	var cur any = fields
	for part := range strings.SplitSeq(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}
