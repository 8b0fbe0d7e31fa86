package inbound

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/e2e/e2etest"
	"github.com/cdcd-dev/cdcd/vendortest/hubspot"
)

// Regression: an imported record that the pipeline could not apply to
// its table (here a check constraint) was dead-lettered, yet the import
// job ended with no errors and nothing in cdcd.job_errors. Each such
// record is now a record error of the job, linked to its dead letter.
func TestImportRecordsNotAppliedAreJobErrors(t *testing.T) {
	t.Parallel()
	name, url := newDB(t)
	execSQL(t, url, `CREATE TABLE contacts (
		id         serial PRIMARY KEY,
		email      text NOT NULL UNIQUE CHECK (email NOT LIKE 'bad%'),
		first_name text
	)`)
	hub := hubspot.New(hubspot.Options{Tokens: []string{hubToken}, Limit: 100, Window: time.Second})
	t.Cleanup(hub.Close)
	for i := range 5 {
		email := fmt.Sprintf("c%d@example.com", i)
		if i%2 == 1 {
			email = "bad" + email
		}
		hub.Insert("contacts", map[string]string{"email": email, "firstname": fmt.Sprintf("F%d", i)})
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
systems:
  hubspot:
    type: hubspot
    base_url: %q
    token: %s
    object: contacts
    id_property: email
pipelines:
  - name: hubspot-to-contacts
    from: hubspot
    object: contacts
    to: public.contacts
    map: {email: email, first_name: firstname}
    match: [email]
`, url, name, listen, hub.URL(), hubToken)
	_, job := startImport(t, config, listen, "hubspot-to-contacts")
	poll(t, settle, func() error {
		s := query(t, url, `SELECT status || ' ' || processed || ' ' || errors FROM cdcd.jobs WHERE id = $1`, job)
		if s != "done 5 2" {
			return fmt.Errorf("job %s is %q, want done with 5 processed and 2 errors", job, s)
		}
		return nil
	})
	if c := query(t, url, `SELECT count(*)::text FROM contacts`); c != "3" {
		t.Fatalf("%s contacts, want the 3 good ones", c)
	}
	got := query(t, url, `SELECT string_agg(d.local_key || ' ' || (e.error = d.error)::text, ', ' ORDER BY d.local_key)
		FROM cdcd.job_errors e JOIN cdcd.dead_letters d ON d.id = e.dead_letter_id
		WHERE e.job_id = $1 AND e.record = d.local_key AND d.event_id LIKE 'import/' || $1 || '/%'`, job)
	if n := strings.Count(got, "true"); n != 2 {
		t.Fatalf("job errors linked to their dead letters: %q, want the 2 bad contacts'", got)
	}
}
