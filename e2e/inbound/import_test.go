package inbound

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/e2e/e2etest"
	"github.com/cdcd-dev/cdcd/vendortest/hubspot"
)

// TestImportSurvivesKill imports 2,000 HubSpot contacts from a double that
// fails a fifth of its calls, kills cdcd with SIGKILL in the middle of
// the import, and starts it again: the job ends done once its lease
// lapsed and another cdcd took it from its last cursor; every contact is
// in the table once and linked; no contact was written more than twice
// locally, and those written twice fit in the one page in flight at the
// kill; nothing was written back to HubSpot.
func TestImportSurvivesKill(t *testing.T) {
	t.Parallel()
	name, url := newDB(t)
	execSQL(t, url, `CREATE TABLE contacts (
		id         serial PRIMARY KEY,
		email      text NOT NULL UNIQUE,
		first_name text,
		last_name  text
	);
	CREATE TABLE contact_writes (email text NOT NULL);
	CREATE FUNCTION count_write() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN INSERT INTO contact_writes VALUES (NEW.email); RETURN NEW; END $$;
	CREATE TRIGGER count_write AFTER INSERT OR UPDATE ON contacts FOR EACH ROW EXECUTE FUNCTION count_write()`)
	hub := hubspot.New(hubspot.Options{Tokens: []string{hubToken}, Limit: 100, Window: time.Second, Seed: 11,
		Faults: hubspot.Faults{Rate: 0.2, Kinds: []hubspot.Fault{hubspot.Fault429, hubspot.Fault500, hubspot.Fault502, hubspot.Fault503, hubspot.FaultHangup}}})
	t.Cleanup(hub.Close)
	const n = 2000
	for i := range n {
		props := map[string]string{"email": fmt.Sprintf("c%04d@example.com", i), "firstname": fmt.Sprintf("F%d", i)}
		if i%4 != 0 {
			props["lastname"] = "O'Hara \"quoted\"\n"
		}
		hub.Insert("contacts", props)
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
  hubspot:
    type: hubspot
    base_url: %q
    token: %s
    object: contacts
    id_property: email
    rate: {requests: 100, per: 1s}
    timeout: 2s
pipelines:
  - name: contacts-to-hubspot
    from: public.contacts
    to: hubspot
    object: contacts
    map: {email: email, firstname: first_name, lastname: last_name}
  - name: hubspot-to-contacts
    from: hubspot
    object: contacts
    to: public.contacts
    map: {email: email, first_name: firstname, last_name: lastname}
    match: [email]
`, url, name, listen, hub.URL(), hubToken)
	killedAt := importKilledAndResumed(t, url, config, listen, "hubspot-to-contacts", "hubspot", 600, n, nil)
	if bad := query(t, url, `SELECT count(*)::text FROM contacts WHERE email LIKE 'c%' AND last_name IS DISTINCT FROM
		CASE WHEN substr(email, 2, 4)::int % 4 = 0 THEN NULL ELSE e'O''Hara "quoted"\n' END`); bad != "0" {
		t.Fatalf("%s contacts with the wrong last name", bad)
	}
	twice := query(t, url, `SELECT count(*)::text FROM (SELECT email FROM contact_writes GROUP BY email HAVING count(*) > 1) d`)
	most := query(t, url, `SELECT max(c)::text FROM (SELECT count(*) AS c FROM contact_writes GROUP BY email) d`)
	if tw, _ := strconv.Atoi(twice); tw > 100 || most != "1" && most != "2" {
		t.Fatalf("%s contacts written twice (at most a page of 100 allowed), one written %s times", twice, most)
	}
	// A local contact reaches HubSpot after every change before it: none
	// of the imported ones went back.
	execSQL(t, url, `INSERT INTO contacts (email, first_name) VALUES ('barrier@example.com', 'Barrier')`)
	poll(t, settle, func() error {
		for _, o := range hub.Objects("contacts") {
			if o.Properties["email"] == "barrier@example.com" {
				return nil
			}
		}
		return fmt.Errorf("the barrier contact is not in HubSpot yet")
	})
	var api []hubspot.Write
	for _, w := range hub.Writes() {
		if w.Source == "INTEGRATION" { // cdcd's calls; the seeds are CRM_UI
			api = append(api, w)
		}
	}
	if len(api) != 1 {
		t.Fatalf("HubSpot received %d writes from cdcd, want only the barrier's: the import echoed back (first: %+v)", len(api), api[:min(3, len(api))])
	}
	t.Logf("killed at %d of %d processed; %s contacts written twice", killedAt, n, twice)
}

// importKilledAndResumed starts cdcd on config, starts an import of
// pipeline with `cdcd import --detach`, kills cdcd with SIGKILL once the
// job processed at least killAfter records (fewer than n), calls atKill
// with the job's id if it is not nil, and starts cdcd again. It returns
// once the job is done, the table holds n contacts and n links of system:
// the records processed when cdcd was killed.
func importKilledAndResumed(t *testing.T, url, config, listen, pipeline, system string, killAfter, n int, atKill func(job string)) int {
	t.Helper()
	daemon, job := startImport(t, config, listen, pipeline)
	processed := func() int {
		v, _ := strconv.Atoi(query(t, url, `SELECT processed::text FROM cdcd.jobs WHERE id = $1`, job))
		return v
	}
	poll(t, settle, func() error {
		if p := processed(); p < killAfter {
			return fmt.Errorf("job %s processed %d, waiting for %d", job, p, killAfter)
		}
		return nil
	})
	daemon.Kill()
	killedAt := processed()
	if killedAt >= n {
		t.Fatalf("the import was done (%d) before the kill; the test proves nothing", killedAt)
	}
	if atKill != nil {
		atKill(job)
	}
	daemon.Start()
	poll(t, 2*settle, func() error {
		if s := query(t, url, `SELECT status || ' ' || coalesce(error, '') FROM cdcd.jobs WHERE id = $1`, job); strings.TrimSpace(s) != "done" {
			return fmt.Errorf("job %s is %q", job, s)
		}
		return nil
	})
	poll(t, settle, func() error {
		if c := query(t, url, `SELECT count(*)::text FROM contacts`); c != strconv.Itoa(n) {
			return fmt.Errorf("%s contacts, want %d", c, n)
		}
		return nil
	})
	if l := query(t, url, `SELECT count(*)::text FROM cdcd.links WHERE system = $1 AND local_table = 'public.contacts'`, system); l != strconv.Itoa(n) {
		t.Fatalf("%s links, want %d", l, n)
	}
	return killedAt
}

// startImport starts cdcd on config and an import of pipeline with
// `cdcd import --detach`, and returns the daemon and the job's id.
func startImport(t *testing.T, config, listen, pipeline string) (*e2etest.Process, string) {
	t.Helper()
	path := t.TempDir() + "/cdcd.yaml"
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	daemon := start(t, config, listen)
	// start wrote its own copy; the import command reads this one.
	out, err := exec.Command(cdcdBin, "import", "--detach", "-c", path, pipeline).CombinedOutput()
	if err != nil {
		t.Fatalf("cdcd import: %v: %s", err, out)
	}
	f := strings.Fields(string(out)) // job <id> import <pipeline> queued 0
	if len(f) < 2 || f[0] != "job" {
		t.Fatalf("cdcd import --detach printed %q, want the job's line", out)
	}
	if _, err := strconv.Atoi(f[1]); err != nil {
		t.Fatalf("cdcd import --detach printed %q, want the job's line", out)
	}
	return daemon, f[1]
}
