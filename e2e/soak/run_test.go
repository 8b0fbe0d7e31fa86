package soak

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/cdc/cdctest"
	"github.com/cdcd-dev/cdcd/vendortest/hubspot"
)

// run deploys cdcd, creates the records, plays h, waits until everything
// is at rest and returns what the invariant found wrong (nil when it
// holds). Each call runs as a subtest so its processes end with it; the
// subtest itself only fails on broken set-up, not on violations.
func run(t *testing.T, name string, p params, o options, h history) (violations []string) {
	t.Run(name, func(t *testing.T) {
		start := time.Now()
		d := deploy(t, p.Seed, o, h)
		d.insertAll(p.Records)
		ready := time.Now()
		d.play(h, o)
		played := time.Now()
		d.rest(90 * time.Second)
		violations = d.check(p.Records, h)
		t.Logf("seed %d: %d records, %d operations, %d API calls, %d webhook requests: set-up %s, play %s, rest %s; "+
			"%d agree, %d held by an open conflict, %d conflicts recorded, %d violations",
			p.Seed, p.Records, len(h), len(d.hub.Requests()), len(d.hub.WebhookDeliveries()),
			ready.Sub(start).Round(time.Millisecond), played.Sub(ready).Round(time.Millisecond),
			time.Since(played).Round(time.Millisecond), d.stats.agree, d.stats.held, d.stats.conflicts, len(violations))
	})
	return violations
}

// play performs the operations at their times. Kills are spread over
// the operations: cdcd is SIGKILLed and started again.
func (d *deployment) play(h history, o options) {
	ctx := context.Background()
	start := time.Now()
	killAt := map[int]bool{}
	for k := 1; k <= o.Kills; k++ {
		killAt[k*len(h)/(o.Kills+1)] = true
	}
	for i, x := range h {
		if killAt[i] {
			d.proc.Kill()
			d.start()
		}
		time.Sleep(time.Until(start.Add(x.At)))
		var err error
		switch x.Kind {
		case localUpdate:
			_, err = d.pool.Exec(ctx, `UPDATE contacts SET `+column(x.Field)+` = $1 WHERE email = $2`, x.Value, email(x.Rec))
		case localDelete:
			_, err = d.pool.Exec(ctx, `DELETE FROM contacts WHERE email = $1`, email(x.Rec))
		case localCreate:
			_, err = d.pool.Exec(ctx, `INSERT INTO contacts (email, first_name, last_name, phone, company)
				VALUES ($1, $2, $3, $4, $5) ON CONFLICT (email) DO NOTHING`,
				email(x.Rec), initial(x.Rec, "firstname"), initial(x.Rec, "lastname"), initial(x.Rec, "phone"), initial(x.Rec, "company"))
		case crmEdit:
			if id := d.hubID(x.Rec); id != "" {
				d.hub.Update("contacts", id, map[string]string{x.Field: x.Value})
			} // else not in HubSpot (deleted, not created yet): nothing to edit
		}
		if err != nil {
			d.t.Fatalf("operation %d (%s): %v", i+1, x, err)
		}
	}
}

// plan times the webhooks: a CRM edit's as its operation says, the
// others' (cdcd's own writes, announced as INTEGRATION) drawn alike: a
// third 1-3 s late, the rest within 200 ms, one in ten sent twice.
func plan(h history) func(hubspot.WebhookEvent, *rand.Rand) []time.Duration {
	edits := map[string]op{}
	for _, x := range h {
		if x.Kind == crmEdit {
			edits[x.Value] = x
		}
	}
	return func(e hubspot.WebhookEvent, rng *rand.Rand) []time.Duration {
		if x, ok := edits[value(e)]; ok && e.ChangeSource == "CRM_UI" {
			if x.Dup {
				return []time.Duration{x.Delay, x.Delay + x.Again}
			}
			return []time.Duration{x.Delay}
		}
		x := webhookTiming(rng)
		if x.Dup {
			return []time.Duration{x.Delay, x.Delay + x.Again}
		}
		return []time.Duration{x.Delay}
	}
}

func value(e hubspot.WebhookEvent) string {
	if e.PropertyValue == nil {
		return ""
	}
	return *e.PropertyValue
}

// hubID is the id of the live HubSpot contact of record rec, or "".
func (d *deployment) hubID(rec int) string {
	for _, o := range d.hub.Objects("contacts") {
		if !o.Archived && o.Properties["email"] == email(rec) {
			return o.ID
		}
	}
	return ""
}

// rest waits until neither side has changed for quiet: no webhook due,
// no call to HubSpot, no write to HubSpot, no change of the local rows or
// of cdcd's conflicts.
func (d *deployment) rest(timeout time.Duration) {
	d.t.Helper()
	const quiet = 3 * time.Second
	var last string
	since := time.Now()
	cdctest.Eventually(d.t, timeout, "both sides at rest", func() bool {
		var local string
		err := d.pool.QueryRow(context.Background(), `SELECT
			(SELECT coalesce(md5(string_agg(c::text, ',' ORDER BY id)), '') FROM contacts c) ||
			(SELECT coalesce(md5(string_agg(x::text, ',' ORDER BY id)), '') FROM cdcd.conflicts x)`).Scan(&local)
		if err != nil {
			return false
		}
		if d.hub.WebhooksPending() > 0 {
			return false
		}
		sig := fmt.Sprintf("%d/%d/%d/%s", len(d.hub.Requests()), len(d.hub.Writes()), len(d.hub.WebhookDeliveries()), local)
		if sig != last {
			last, since = sig, time.Now()
			return false
		}
		return time.Since(since) >= quiet
	})
}
