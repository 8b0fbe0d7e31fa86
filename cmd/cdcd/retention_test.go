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
retention: {audit: 2s, health: 2s, webhook_deliveries: 2s, deleted_links: 2s, recent_writes: 2s, conflicts: 2s, jobs: 2s}
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
		{"conflicts", "cdcd.conflicts WHERE status = 'resolved'", `INSERT INTO cdcd.conflicts (pipeline, system, object, external_id, local_table, local_key, fields, columns,
			base, local, remote, rule, status, resolved_at)
			SELECT 'erp-to-items', 'erp', 'items', i::text, 'public.items', '{"id": ' || i || '}', '{sku}', '{"sku": "sku"}',
			'{}', '{}', '{}', 'manual', 'resolved', now() FROM generate_series(1, 100) i`},
		// Each kind, pipeline and requester's latest job is kept: the
		// 100 older go, with their failed records.
		{"jobs", "cdcd.jobs WHERE requested_by = 'retention-test' AND id < (SELECT max(id) FROM cdcd.jobs WHERE requested_by = 'retention-test')", `WITH j AS (
			INSERT INTO cdcd.jobs (kind, pipeline, status, requested_by, finished_at) SELECT 'backfill', 'items-to-erp', 'done', 'retention-test', now() FROM generate_series(0, 100)
			RETURNING id)
			INSERT INTO cdcd.job_errors (job_id, record, error) SELECT id, '{}', 'refused' FROM j`},
		{"job_errors", "cdcd.job_errors WHERE job_id < (SELECT max(id) FROM cdcd.jobs WHERE requested_by = 'retention-test')", ``},
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
		if tb.insert != "" {
			pg.Exec(t, "app", tb.insert)
		}
	}
	// An open conflict is kept however old. Its sides differ, with no
	// times, so the pipeline's policy, which cdcd evaluates again now and
	// then, leaves it open (with empty sides it resolved it, and then
	// pruned it, when the test was slow).
	pg.Exec(t, "app", `INSERT INTO cdcd.conflicts (pipeline, system, object, external_id, local_table, local_key, fields, columns,
		base, local, remote, rule, status, detected_at)
		VALUES ('erp-to-items', 'erp', 'items', 'open', 'public.items', '{"id": 0}', '{sku}', '{"sku": "sku"}',
		'{"sku": "c"}', '{"sku": "a"}', '{"sku": "b"}', 'manual', 'escalated', now() - interval '1 year')`)
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
	for what, sql := range map[string]string{
		"the open conflict":                       "SELECT count(*) = 1 FROM cdcd.conflicts WHERE external_id = 'open'",
		"the latest job of its kind and pipeline": "SELECT count(*) = 1 FROM cdcd.jobs WHERE requested_by = 'retention-test'",
		"the latest job's failed record":          "SELECT count(*) = 1 FROM cdcd.job_errors",
	} {
		if pg.ExecErr("app", "DO $$ BEGIN IF NOT ("+sql+") THEN RAISE 'gone'; END IF; END $$") != nil {
			t.Errorf("%s was pruned; it is kept", what)
		}
	}
}
