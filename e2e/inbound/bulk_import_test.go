package inbound

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/cdcd-dev/cdcd/e2e/e2etest"
	"github.com/cdcd-dev/cdcd/vendortest/salesforce"
)

// TestSalesforceBulkImportSurvivesKill imports 3,000 Salesforce contacts
// through a Bulk API 2.0 query job from a double that keeps the job in
// progress for a while, fails a fifth of its calls (503 or 429) and
// answers titles with commas, quotes and line breaks; cdcd is killed with
// SIGKILL in the middle and started again: the job ends done, every
// contact is in the table once, linked, with its title as it is (null
// where it has none), from one query job read set by set; nothing was
// written back to Salesforce.
func TestSalesforceBulkImportSurvivesKill(t *testing.T) {
	t.Parallel()
	name, url := newDB(t)
	execSQL(t, url, `CREATE TABLE contacts (
		id    serial PRIMARY KEY,
		email text NOT NULL UNIQUE,
		title text
	)`)
	sf := salesforce.New(t, salesforce.Options{ClientID: "consumer-key", ClientSecret: "consumer-secret", BulkPolls: 3,
		Faults: salesforce.Faults{Seed: 21, Rate5xx: 0.1, Rate429: 0.1}})
	titles := []string{"VP, Sales", `The "Boss"`, "two\nlines", "#N/A", "Zürich ✓"}
	const n = 3000
	for i := range n {
		f := map[string]any{"Email": fmt.Sprintf("c%04d@example.com", i), "LastModifiedDate": "2026-03-01T10:00:00.000+0000"}
		if i%6 != 0 {
			f["Title"] = titles[i%len(titles)]
		}
		sf.Insert("Contact", f)
	}
	listen := e2etest.FreeAddr(t)
	config := fmt.Sprintf(`postgres:
  url: %q
  slot: %[2]s
  publication: %[2]s
  tables: [public.contacts]
  status_interval: 100ms
http:
  listen: %q
jobs:
  lease: 3s   # a killed cdcd's job is taken 3 s after its last renewal
systems:
  salesforce:
    type: salesforce
    login_url: %q
    auth: {type: client_credentials, client_id: consumer-key, client_secret: consumer-secret}
    object: Contact
    external_id_field: App_Id__c
    rate: {requests: 4, per: 1s}   # slow enough to be killed in the middle
    timeout: 2s
    import: {bulk: true, bulk_page: 250, bulk_poll: 250ms}
pipelines:
  - name: contacts-to-salesforce
    from: public.contacts
    to: salesforce
    object: Contact
    map: {App_Id__c: id, Email: email, Title: title}
  - name: salesforce-to-contacts
    from: salesforce
    object: Contact
    to: public.contacts
    map: {email: Email, title: Title}
    match: [email]
`, url, name, listen, sf.URL)
	killedAt := importKilledAndResumed(t, url, config, listen, "salesforce-to-contacts", "salesforce", 750, n, func(job string) {
		cursor := query(t, url, `SELECT cursor::text FROM cdcd.jobs WHERE id = $1`, job)
		var c struct{ Next string }
		if json.Unmarshal([]byte(cursor), &c) != nil || !strings.HasPrefix(c.Next, "bulk:750") {
			t.Fatalf("cursor at the kill %s, want a query job's", cursor)
		}
	})
	for i, title := range titles {
		bad := query(t, url, `SELECT count(*)::text FROM contacts WHERE substr(email, 2, 4)::int % 6 <> 0
			AND substr(email, 2, 4)::int % 5 = $1 AND title IS DISTINCT FROM $2`, i, title)
		if bad != "0" {
			t.Fatalf("%s contacts with a title other than %q", bad, title)
		}
	}
	if bad := query(t, url, `SELECT count(*)::text FROM contacts WHERE substr(email, 2, 4)::int % 6 = 0 AND title IS NOT NULL`); bad != "0" {
		t.Fatalf("%s contacts without a title in Salesforce have one", bad)
	}
	if sf.BulkJobs() != 1 {
		t.Fatalf("%d query jobs, want the one, resumed", sf.BulkJobs())
	}
	// A local contact reaches Salesforce after every change before it:
	// none of the imported ones went back.
	execSQL(t, url, `INSERT INTO contacts (email, title) VALUES ('barrier@example.com', 'Barrier')`)
	poll(t, settle, func() error {
		for _, r := range sf.Records("Contact") {
			if r["Email"] == "barrier@example.com" {
				return nil
			}
		}
		return fmt.Errorf("the barrier contact is not in Salesforce yet")
	})
	for _, r := range sf.Requests() {
		if r.Method == "PATCH" && r.Status == 200 && strings.Contains(string(r.Body), "@example.com") && !strings.Contains(string(r.Body), "barrier@") {
			t.Fatalf("Salesforce received an imported contact back: %s %s %.200s", r.Method, r.Path, r.Body)
		}
	}
	t.Logf("killed at %d of %d processed", killedAt, n)
}
