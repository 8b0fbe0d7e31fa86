package inbound

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdcd-dev/cdcd/e2e/e2etest"
	"github.com/cdcd-dev/cdcd/vendortest/httpapi"
	"github.com/cdcd-dev/cdcd/vendortest/hubspot"
	"github.com/cdcd-dev/cdcd/vendortest/slack"
)

// Regression: with a second deployment (its own slot and config) on the
// database, 20 webhooks accepted, a kill -9 and a restart applied none:
// the other deployment's inbox reader took the rows, counted them
// delivered (it has no pipeline for them) and deleted them.
func TestTwoDeploymentsKeepTheirWebhooks(t *testing.T) {
	t.Parallel()
	name, url := newDB(t)
	execSQL(t, url, `CREATE TABLE contacts (id serial PRIMARY KEY, email text NOT NULL UNIQUE, first_name text, last_name text);
		CREATE TABLE notes (id int PRIMARY KEY)`)
	c := &crm{t: t, url: url}
	c.hub = hubspot.New(hubspot.Options{Limit: -1, Tokens: []string{hubToken}})
	t.Cleanup(c.hub.Close)
	c.erp = httpapi.New(t, httpapi.Options{})
	c.slack = slack.New(t)
	c.listen = e2etest.FreeAddr(t)
	crmSync := start(t, c.config(name, c.listen, nil), c.listen)

	// The other deployment receives HubSpot webhooks too, and has no
	// pipeline for them.
	otherListen := e2etest.FreeAddr(t)
	start(t, fmt.Sprintf(`postgres: {url: %q, slot: %s_b, publication: %[2]s_b, tables: [public.notes]}
http: {listen: %q}
systems:
  hubspot:
    type: hubspot
    base_url: %q
    token: %s
    webhook: {secret: %s}
`, url, name, otherListen, c.hub.URL(), hubToken, hubSecret), otherListen)

	// The apply waits on the table, so the changes stay in the inbox.
	ctx := context.Background()
	lock, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close(ctx)
	tx, err := lock.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `LOCK TABLE contacts IN EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	var sent []map[string]any
	for i := range 20 {
		e := c.hubEvent("contact.propertyChange", fmt.Sprint(900+i), "email", fmt.Sprintf("w%d@example.com", i), "CRM_UI")
		sent = append(sent, e)
		c.deliver(e)
	}
	// The other deployment's own change is read and dropped; its reader
	// has passed the rows of crm-sync since.
	other := &crm{t: t, listen: otherListen}
	other.events.Store(100)
	other.deliver(other.hubEvent("contact.propertyChange", "1", "email", "other@example.com", "CRM_UI"))
	poll(t, settle, func() error {
		if n := query(t, url, `SELECT count(*)::text FROM cdcd.webhook_deliveries d WHERE NOT EXISTS
			(SELECT 1 FROM cdcd.inbox i WHERE i.delivery_id = d.delivery_id)`); n != "1" {
			return fmt.Errorf("%s changes handed over, want the other deployment's own", n)
		}
		return nil
	})
	if n := query(t, url, `SELECT count(*)::text FROM cdcd.inbox`); n != "20" {
		t.Fatalf("cdcd.inbox holds %s rows, want crm-sync's 20", n)
	}

	crmSync.Kill()
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	crmSync.Start()
	crmSync.WaitReady(c.listen, 60*time.Second)
	// The vendor retries; the retries are duplicates of accepted changes.
	for _, e := range sent {
		c.deliver(e)
	}
	poll(t, settle, func() error {
		if n := query(t, url, `SELECT count(*)::text FROM contacts WHERE email LIKE 'w%@example.com'`); n != "20" {
			return fmt.Errorf("%s of 20 changes applied", n)
		}
		return nil
	})
	poll(t, settle, func() error {
		if n := query(t, url, `SELECT count(*)::text FROM cdcd.inbox`); n != "0" {
			return fmt.Errorf("cdcd.inbox holds %s rows", n)
		}
		return nil
	})
}
