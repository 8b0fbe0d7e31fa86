package inbound

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/cdc/cdctest"
	"github.com/cdcd-dev/cdcd/vendortest/hubspot"
)

// A contact changed locally and in HubSpot within one sync (HubSpot is
// refusing writes, so the local change has not reached it yet) is a
// conflict on firstname, decided by the default policy (merge, newest
// with a 60 s skew, manual) and recorded; both sides end with the same
// name.
func TestConflictsConverge(t *testing.T) {
	t.Parallel()
	bus(t, func(t *testing.T, k *cdctest.Kafka) {
		c := newCRM(t, k)
		scenario := func(email string, remoteAt time.Duration) (string, int64) {
			t.Helper()
			execSQL(t, c.url, `INSERT INTO contacts (email, first_name) VALUES ($1, 'Ada')`, email)
			id := c.waitHub(email, "Ada")
			c.hub.FailNext(hubspot.Fault503, 1_000_000) // the local change waits, retrying
			defer c.hub.ClearFaults()
			execSQL(t, c.url, `UPDATE contacts SET first_name = 'Ann' WHERE email = $1`, email)
			e := c.hubEvent("contact.propertyChange", id, "firstname", "Bea", "CRM_UI")
			e["occurredAt"] = time.Now().Add(remoteAt).UnixMilli()
			c.deliver(e)
			var conflictID int64
			poll(t, settle, func() error {
				var cs []struct {
					ID         int64  `json:"id"`
					ExternalID string `json:"external_id"`
				}
				api(t, c, "GET", "/api/conflicts?status=all", nil, &cs)
				for _, x := range cs {
					if x.ExternalID == id {
						conflictID = x.ID
						return nil
					}
				}
				return fmt.Errorf("no conflict recorded for contact %s", id)
			})
			return id, conflictID
		}
		converged := func(email, name string) {
			t.Helper()
			poll(t, settle, func() error {
				if got := query(t, c.url, `SELECT first_name FROM contacts WHERE email = $1`, email); got != name {
					return fmt.Errorf("local first_name %q, want %q", got, name)
				}
				return nil
			})
			c.waitHub(email, name)
			c.waitERP(email, name)
		}
		type row struct {
			Status     string `json:"status"`
			Rule       string `json:"rule"`
			ResolvedBy string `json:"resolved_by"`
		}

		// HubSpot's change is newer by more than the skew: it wins.
		_, id := scenario("remote-newer@example.com", 5*time.Minute)
		converged("remote-newer@example.com", "Bea")
		var r row
		api(t, c, "GET", fmt.Sprintf("/api/conflicts/%d", id), nil, &r)
		if r.Status != "resolved" || r.Rule != "newest" || r.ResolvedBy != "policy" {
			t.Fatalf("conflict %d: %+v", id, r)
		}

		// The local change is newer: it wins.
		_, id = scenario("local-newer@example.com", -5*time.Minute)
		converged("local-newer@example.com", "Ann")
		api(t, c, "GET", fmt.Sprintf("/api/conflicts/%d", id), nil, &r)
		if r.Status != "resolved" || r.Rule != "newest" {
			t.Fatalf("conflict %d: %+v", id, r)
		}

		// Within the skew window: escalated, the local row is held, until
		// someone resolves it through the API.
		_, id = scenario("same-time@example.com", 0)
		api(t, c, "GET", fmt.Sprintf("/api/conflicts/%d", id), nil, &r)
		if r.Status != "escalated" {
			t.Fatalf("conflict %d: %+v", id, r)
		}
		if got := query(t, c.url, `SELECT first_name FROM contacts WHERE email = 'same-time@example.com'`); got != "Ann" {
			t.Fatalf("the held record changed locally: %s", got)
		}
		// The escalation is announced by the pipeline from cdcd.conflicts.
		alert := fmt.Sprintf("Conflict %d on hubspot-to-contacts needs a decision", id)
		poll(t, settle, func() error {
			for _, m := range c.slack.Messages() {
				if m.Text == alert {
					return nil
				}
			}
			return fmt.Errorf("slack got %d messages, none %q", len(c.slack.Messages()), alert)
		})
		api(t, c, "POST", fmt.Sprintf("/api/conflicts/%d/resolve", id), map[string]any{"choice": "remote", "by": "alice"}, &r)
		if r.Status != "resolved" || r.Rule != "manual:remote" || r.ResolvedBy != "alice" {
			t.Fatalf("resolution: %+v", r)
		}
		converged("same-time@example.com", "Bea")

		// HubSpot changed the contact and its webhook has not come (yet):
		// cdcd reads HubSpot's version before updating, finds the record
		// moved, reads it back and compares. Within the skew window that is
		// an escalated conflict: HubSpot keeps its change, nothing is
		// overwritten, until someone decides.
		email := "moved@example.com"
		execSQL(t, c.url, `INSERT INTO contacts (email, first_name) VALUES ($1, 'Ada')`, email)
		hubID := c.waitHub(email, "Ada")
		c.hub.Advance(10 * time.Second) // an edit made a little later
		c.hub.Update("contacts", hubID, map[string]string{"firstname": "Bea"})
		execSQL(t, c.url, `UPDATE contacts SET first_name = 'Ann' WHERE email = $1`, email)
		var moved struct {
			ID     int64  `json:"id"`
			Status string `json:"status"`
		}
		poll(t, settle, func() error {
			var cs []struct {
				ID         int64  `json:"id"`
				Status     string `json:"status"`
				ExternalID string `json:"external_id"`
			}
			api(t, c, "GET", "/api/conflicts?status=open", nil, &cs)
			for _, x := range cs {
				if x.ExternalID == hubID {
					moved.ID, moved.Status = x.ID, x.Status
					return nil
				}
			}
			return fmt.Errorf("no open conflict for contact %s", hubID)
		})
		if _, props := c.contact(email); props["firstname"] != "Bea" || moved.Status != "escalated" {
			t.Fatalf("HubSpot's change was overwritten (%q) or the conflict is %s", props["firstname"], moved.Status)
		}
		api(t, c, "POST", fmt.Sprintf("/api/conflicts/%d/resolve", moved.ID), map[string]any{"choice": "local"}, &r)
		converged(email, "Ann")

		// The API refuses requests without the token.
		req, _ := http.NewRequest("GET", "http://"+c.listen+"/api/conflicts", nil)
		if status, _ := send(t, req); status != http.StatusUnauthorized {
			t.Fatalf("no token: %d", status)
		}
	})
}

// api calls the admin API and decodes the answer into out.
func api(t *testing.T, c *crm, method, path string, body, out any) {
	t.Helper()
	var b []byte
	if body != nil {
		b, _ = json.Marshal(body)
	}
	req, _ := http.NewRequest(method, "http://"+c.listen+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer test-admin-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e map[string]string
		_ = json.NewDecoder(resp.Body).Decode(&e)
		t.Fatalf("%s %s: %d %v", method, path, resp.StatusCode, e)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatal(err)
	}
}

// The other policies, end to end: the system preferred for firstname,
// and disjoint changes merging.
func TestConflictPolicies(t *testing.T) {
	t.Parallel()
	bus(t, func(t *testing.T, k *cdctest.Kafka) {
		c := newCRMWith(t, k, "    conflict: {strategy: merge, then: [manual], fields: {firstname: [{prefer: hubspot}]}}\n")
		sameSync := func(email string, local string, remote map[string]any) {
			t.Helper()
			execSQL(t, c.url, `INSERT INTO contacts (email, first_name, last_name) VALUES ($1, 'Ada', 'Lovelace')`, email)
			id := c.waitHub(email, "Ada")
			c.hub.FailNext(hubspot.Fault503, 1_000_000)
			defer c.hub.ClearFaults()
			execSQL(t, c.url, `UPDATE contacts SET `+local+` WHERE email = $1`, email)
			e := c.hubEvent("contact.propertyChange", id, "", "", "CRM_UI")
			for k, v := range remote {
				e["propertyName"], e["propertyValue"] = k, v
				c.hub.Update("contacts", id, map[string]string{k: v.(string)}) // the edit the webhook reports
			}
			c.deliver(e)
			poll(t, settle, func() error {
				var cs []struct {
					ExternalID string `json:"external_id"`
				}
				api(t, c, "GET", "/api/conflicts?status=all", nil, &cs)
				for _, x := range cs {
					if x.ExternalID == id {
						return nil
					}
				}
				if _, ok := remote["lastname"]; ok { // disjoint: no conflict to wait for
					if got := query(t, c.url, `SELECT last_name FROM contacts WHERE email = $1`, email); got == remote["lastname"] {
						return nil
					}
				}
				return fmt.Errorf("contact %s not compared yet", id)
			})
		}
		both := func(email, first, last string) {
			t.Helper()
			poll(t, settle, func() error {
				got := query(t, c.url, `SELECT first_name || ' ' || last_name FROM contacts WHERE email = $1`, email)
				_, props := c.contact(email)
				if got != first+" "+last || props["firstname"] != first || props["lastname"] != last {
					id, _ := c.contact(email)
					return fmt.Errorf("local %q, HubSpot %q %q; want %s %s; history %+v", got, props["firstname"], props["lastname"], first, last, c.hub.History("contacts", id))
				}
				return nil
			})
		}
		// firstname changed on both sides: HubSpot is preferred.
		sameSync("prefer@example.com", "first_name = 'Ann'", map[string]any{"firstname": "Bea"})
		both("prefer@example.com", "Bea", "Lovelace")
		// firstname locally, lastname in HubSpot: no conflict, both kept.
		sameSync("disjoint@example.com", "first_name = 'Ann'", map[string]any{"lastname": "Byron"})
		both("disjoint@example.com", "Ann", "Byron")
	})
}
