package main

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/cdc/cdctest"
)

// With windows of seconds in the retention section, cdcd prunes the rows
// of every table that records the past within seconds, not at its hourly
// or minutely pace.
func TestShortRetentionPrunesEveryTable(t *testing.T) {
	pg := cdctest.StartPostgres(t)
	url := pg.CreateDB(t, "app")
	pg.Exec(t, "app", "CREATE TABLE items (id int PRIMARY KEY, sku text)")
	path := filepath.Join(t.TempDir(), "cdcd.yaml")
	runDaemon(t, path, fmt.Sprintf(`postgres: {url: %q, tables: [items]}
http: {listen: %q}
log: {level: warn}
retention: {audit: 2s, health: 2s, webhook_deliveries: 2s, deleted_links: 2s, recent_writes: 2s}
systems:
  erp:
    type: http
    update: {method: PUT, url: "http://127.0.0.1:1/items/{{.ExternalID}}"}
    webhook: {verify: hmac, secret: s, header: X-Sig, parse: json, json: {table: items, id: id, delivery_id: id}}
pipelines:
  - {name: items-to-erp, from: items, to: erp, map: {sku: sku}}
  - {name: erp-to-items, from: erp, object: items, to: items, map: {sku: sku}, match: [sku]}
`, url, freeAddr(t)))
	tables := []struct{ table, left, insert string }{
		{"sync_events", "cdcd.sync_events", `INSERT INTO cdcd.sync_events (at, pipeline, system, object, local_key, event_id, op, status, attempt, latency_ms)
			SELECT now(), 'items-to-erp', 'erp', 'items', i::text, 'e' || i, 'u', 'delivered', 1, 1 FROM generate_series(1, 100) i`},
		{"dead_letters", "cdcd.dead_letters", `INSERT INTO cdcd.dead_letters (pipeline, system, object, local_table, local_key, event_id, op, error, status, resolved_at)
			SELECT 'items-to-erp', 'erp', 'items', 'public.items', i::text, 'e' || i, 'u', 'refused', 'discarded', now() FROM generate_series(1, 100) i`},
		{"webhook_deliveries", "cdcd.webhook_deliveries", `INSERT INTO cdcd.webhook_deliveries (deployment, system, delivery_id)
			SELECT 'cdcd', 'erp', 'd' || i FROM generate_series(1, 100) i`},
		{"recent_writes", "cdcd.recent_writes", `INSERT INTO cdcd.recent_writes (system, object, external_id, fields)
			SELECT 'erp', 'items', i::text, '{}' FROM generate_series(1, 100) i`},
		{"links", "cdcd.links WHERE deleted", `INSERT INTO cdcd.links (system, object, local_table, local_key, external_id, deleted)
			SELECT 'erp', 'items', 'public.items', i::text, i::text, true FROM generate_series(1, 100) i`},
		// Each subject's latest transition is kept: the 100 older go.
		{"health_transitions", "cdcd.health_transitions WHERE name = 'retention-test' AND at < (SELECT max(at) FROM cdcd.health_transitions WHERE name = 'retention-test')", `INSERT INTO cdcd.health_transitions (kind, name, state, previous, reason, figures, at)
			SELECT 'pipeline', 'retention-test', 'ok', 'ok', '', '{}', now() - (i || ' ms')::interval FROM generate_series(0, 100) i`},
	}
	// cdcd made its tables once it serves /readyz; runDaemon waits only
	// for the start.
	cdctest.Eventually(t, 30*time.Second, "cdcd's tables", func() bool {
		return pg.ExecErr("app", "SELECT 1 FROM cdcd.recent_writes, cdcd.health_transitions LIMIT 1") == nil
	})
	for _, tb := range tables {
		pg.Exec(t, "app", tb.insert)
	}
	for _, tb := range tables {
		if pg.ExecErr("app", "DO $$ BEGIN IF (SELECT count(*) FROM "+tb.left+") < 100 THEN RAISE 'not inserted'; END IF; END $$") != nil {
			t.Fatalf("cdcd.%s: fewer than the 100 rows inserted (pruned before they were %s old?)", tb.table, "2s")
		}
	}
	for _, tb := range tables {
		cdctest.Eventually(t, 20*time.Second, "cdcd."+tb.table+" pruned", func() bool {
			return pg.ExecErr("app", "DO $$ BEGIN IF EXISTS (SELECT FROM "+tb.left+") THEN RAISE 'rows left'; END IF; END $$") == nil
		})
	}
}
