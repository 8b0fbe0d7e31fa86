package soak

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
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
		d.rest(3 * time.Minute)
		violations = d.check(p.Records, h)
		var letters, claims, replayed int
		if err := d.pool.QueryRow(context.Background(), `SELECT count(*), count(claimed_id), count(*) FILTER (WHERE status = 'replayed')
			FROM cdcd.dead_letters`).Scan(&letters, &claims, &replayed); err != nil {
			t.Fatal(err)
		}
		t.Logf("seed %d: %d records, %d operations, %d API calls, %d webhook requests: set-up %s, play %s, rest %s; "+
			"%d agree, %d held by an open conflict, %d conflicts recorded, %d dead letters (%d refused an id another record held, "+
			"%d replayed), %d violations",
			p.Seed, p.Records, len(h), len(d.hub.Requests()), len(d.hub.WebhookDeliveries()),
			ready.Sub(start).Round(time.Millisecond), played.Sub(ready).Round(time.Millisecond),
			time.Since(played).Round(time.Millisecond), d.stats.agree, d.stats.held, d.stats.conflicts,
			letters, claims, replayed, len(violations))
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
			// Delivering again before the operations go on, so the second
			// kill does not land while Kafka still waits for the first
			// process's consumers to time out.
			d.barrier(3 * time.Minute)
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
func (d *deployment) hubID(rec int) string { return d.liveID(email(rec)) }

// liveID is the id of the live HubSpot contact with address addr, or "".
func (d *deployment) liveID(addr string) string {
	for _, o := range d.hub.Objects("contacts") {
		if !o.Archived && o.Properties["email"] == addr {
			return o.ID
		}
	}
	return ""
}

// rest waits until both sides are at rest: cdcd delivers again (a
// barrier contact goes through both ways: after a SIGKILL, Kafka
// consumers may take a while to get their partitions back), and then
// nothing has changed for a while: no webhook due, nothing queued in
// cdcd, no call to HubSpot, no write to HubSpot, no change of the local
// rows or of cdcd's conflicts.
func (d *deployment) rest(timeout time.Duration) {
	d.t.Helper()
	d.quiet(timeout)
	d.barrier(timeout)
	d.quiet(timeout)
}

func (d *deployment) quiet(timeout time.Duration) {
	d.t.Helper()
	const quiet = 3 * time.Second
	var last, why string
	since := time.Now()
	for deadline := time.Now().Add(timeout); ; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			d.t.Fatalf("not at rest after %s: %s", timeout, why)
		}
		var local string
		err := d.pool.QueryRow(context.Background(), `SELECT
			(SELECT coalesce(md5(string_agg(c::text, ',' ORDER BY id)), '') FROM contacts c) ||
			(SELECT coalesce(md5(string_agg(x::text, ',' ORDER BY id)), '') FROM cdcd.conflicts x)`).Scan(&local)
		if err != nil {
			why = err.Error()
			continue
		}
		var replays int
		if err := d.pool.QueryRow(context.Background(),
			`SELECT count(*) FROM cdcd.dead_letters WHERE status IN ('replay', 'replaying')`).Scan(&replays); err != nil || replays > 0 {
			why = fmt.Sprintf("%d dead letters to replay (%v)", replays, err)
			continue
		}
		if n := d.hub.WebhooksPending(); n > 0 {
			why = fmt.Sprintf("%d webhooks pending", n)
			continue
		}
		if n, what := d.backlog(); n != 0 {
			why = fmt.Sprintf("cdcd's backlog: %s", what)
			continue
		}
		sig := fmt.Sprintf("%d/%d/%d/%s", len(d.hub.Requests()), len(d.hub.Writes()), len(d.hub.WebhookDeliveries()), local)
		if sig != last {
			last, since, why = sig, time.Now(), "still changing"
			continue
		}
		if time.Since(since) >= quiet {
			return
		}
	}
}

// barrier creates a contact locally, waits for it in HubSpot, changes it
// there and waits for the change locally.
func (d *deployment) barrier(timeout time.Duration) {
	d.t.Helper()
	ctx := context.Background()
	d.barriers++
	addr := fmt.Sprintf("barrier-%d@barrier.example.com", d.barriers)
	if _, err := d.pool.Exec(ctx, `INSERT INTO contacts (email, first_name) VALUES ($1, 'Barrier')`, addr); err != nil {
		d.t.Fatal(err)
	}
	var id string
	cdctest.Eventually(d.t, timeout, "the barrier contact in HubSpot", func() bool {
		id = d.liveID(addr)
		return id != ""
	})
	d.hub.Update("contacts", id, map[string]string{"firstname": "Seen"})
	cdctest.Eventually(d.t, timeout, "HubSpot's change of the barrier contact locally", func() bool {
		var name string
		err := d.pool.QueryRow(ctx, `SELECT first_name FROM contacts WHERE email = $1`, addr).Scan(&name)
		return err == nil && name == "Seen"
	})
}

// queues are the metrics that count what cdcd has still to deliver.
var queues = []string{"cdcd_sink_queue_depth", "cdcd_bus_queue_depth", "cdcd_inbox_pending", "cdcd_kafka_consumer_lag"}

// backlog is how much cdcd reports still to deliver, and which metrics
// say so; -1 when it cannot be read (cdcd restarting).
func (d *deployment) backlog() (float64, string) {
	client := &http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get("http://" + d.listen + "/metrics")
	if err != nil {
		return -1, err.Error()
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return -1, fmt.Sprintf("metrics: %d %v", resp.StatusCode, err)
	}
	var n float64
	var what []string
	for _, line := range strings.Split(string(body), "\n") {
		for _, q := range queues {
			if strings.HasPrefix(line, q+"{") || strings.HasPrefix(line, q+" ") {
				f := strings.Fields(line)
				v, _ := strconv.ParseFloat(f[len(f)-1], 64)
				if v > 0 {
					n += v
					what = append(what, line)
				}
			}
		}
	}
	return n, strings.Join(what, ", ")
}
