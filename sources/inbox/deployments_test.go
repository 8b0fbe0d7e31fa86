package inbox

import (
	"fmt"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/cdc/cdctest"
	"github.com/cdcd-dev/cdcd/sources/webhook"
)

// Regression: with two deployments on one database, the one without
// pipelines for a system took its inbox rows, counted them delivered and
// deleted them, and the vendor's retries were then dropped as duplicates:
// 0 of 20 changes applied after a crash and a restart.
func TestDeploymentsKeepTheirOwnRows(t *testing.T) {
	t.Parallel()
	pool := newPool(t)
	ctx := t.Context()
	crm := openAs(t, pool, Config{Deployment: "crm_sync"}, nil)
	var changes []webhook.Change
	for i := range 20 {
		changes = append(changes, change(fmt.Sprint(i), "a@example.com"))
	}
	if err := crm.Accept(ctx, "hubspot", changes); err != nil {
		t.Fatal(err)
	}
	crm.Close() // killed before handing anything over

	// The other deployment runs meanwhile, with a bus that takes anything.
	other := openAs(t, pool, Config{Deployment: "billing"}, nil)
	var taken cdctest.Collector
	stopOther := run(t, other, &taken)
	// Its own change proves its pump has read the inbox since.
	if err := other.Accept(ctx, "stripe", []webhook.Change{change("own", "b@example.com")}); err != nil {
		t.Fatal(err)
	}
	taken.WaitFor(t, 10*time.Second, "its own change", func(e []cdc.Event) bool { return len(e) >= 1 })
	cdctest.Eventually(t, 10*time.Second, "its own row deleted", func() bool {
		return count(t, pool, `SELECT count(*) FROM cdcd.inbox WHERE deployment = 'billing'`) == 0
	})
	if got := taken.Events(); len(got) != 1 || got[0].Source != "hubspot" || string(got[0].Key[0].Value) != `"own"` {
		t.Fatalf("the other deployment took %d changes: %+v", len(got), got)
	}
	if n := count(t, pool, `SELECT count(*) FROM cdcd.inbox WHERE deployment = 'crm_sync'`); n != 20 {
		t.Fatalf("%d rows of crm_sync left, want 20", n)
	}
	// The vendor's retries reaching the other deployment are not
	// duplicates there; reaching their own deployment, they are.
	if err := other.Accept(ctx, "hubspot", changes[:1]); err != nil {
		t.Fatal(err)
	}
	taken.WaitFor(t, 10*time.Second, "the retry, new to it", func(e []cdc.Event) bool { return len(e) == 2 })
	stopOther()

	restarted := openAs(t, pool, Config{Deployment: "crm_sync"}, nil)
	if err := restarted.Accept(ctx, "hubspot", changes); err != nil {
		t.Fatal(err)
	}
	var c cdctest.Collector
	run(t, restarted, &c)
	got := c.WaitFor(t, 10*time.Second, "20 changes", func(e []cdc.Event) bool { return len(e) >= 20 })
	for i, e := range got {
		if string(e.Key[0].Value) != fmt.Sprintf(`"%d"`, i) {
			t.Fatalf("change %d has key %s", i, e.Key[0].Value)
		}
	}
	cdctest.Eventually(t, 10*time.Second, "crm_sync rows deleted", func() bool {
		return count(t, pool, `SELECT count(*) FROM cdcd.inbox`) == 0
	})
	if got := c.Events(); len(got) != 20 {
		t.Fatalf("%d changes after the retries, want 20 (retries are duplicates)", len(got))
	}
}

// Rows accepted before rows had a deployment are adopted by the deployment
// that receives their system, and by no other.
func TestDeploymentAdoptsRowsOfItsSystems(t *testing.T) {
	t.Parallel()
	pool := newPool(t)
	ctx := t.Context()
	old := openAs(t, pool, Config{Deployment: "x"}, nil)
	if err := old.Accept(ctx, "hubspot", []webhook.Change{change("1", "a"), change("2", "b")}); err != nil {
		t.Fatal(err)
	}
	if err := old.Accept(ctx, "stripe", []webhook.Change{change("3", "c")}); err != nil {
		t.Fatal(err)
	}
	old.Close()
	for _, table := range []string{"inbox", "webhook_deliveries"} {
		if _, err := pool.Exec(ctx, `UPDATE cdcd.`+table+` SET deployment = ''`); err != nil {
			t.Fatal(err)
		}
	}
	b := openAs(t, pool, Config{Deployment: "crm_sync", Systems: []string{"hubspot"}}, nil)
	if err := b.Accept(ctx, "hubspot", []webhook.Change{change("1", "a")}); err != nil { // a retry
		t.Fatal(err)
	}
	var c cdctest.Collector
	run(t, b, &c)
	c.WaitFor(t, 10*time.Second, "2 changes", func(e []cdc.Event) bool { return len(e) == 2 })
	cdctest.Eventually(t, 10*time.Second, "adopted rows deleted", func() bool {
		return count(t, pool, `SELECT count(*) FROM cdcd.inbox WHERE system = 'hubspot'`) == 0
	})
	if n := count(t, pool, `SELECT count(*) FROM cdcd.inbox WHERE system = 'stripe' AND deployment = ''`); n != 1 {
		t.Fatalf("stripe rows left to no deployment: %d, want 1", n)
	}
	if got := c.Events(); len(got) != 2 {
		t.Fatalf("%d changes, want 2", len(got))
	}
}
