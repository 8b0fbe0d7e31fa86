package soak

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cdcd-dev/cdcd/cdc/cdctest"
	"github.com/cdcd-dev/cdcd/e2e/e2etest"
	"github.com/cdcd-dev/cdcd/vendortest/hubspot"
)

const (
	hubToken  = "pat-soak"
	hubSecret = "hubspot-client-secret"
	hubAppID  = "4242"

	hubAppIDNum = 4242
)

// deployment is one database, one HubSpot double and one cdcd process
// syncing public.contacts with it both ways.
type deployment struct {
	t      *testing.T
	db     string
	url    string
	pool   *pgxpool.Pool
	listen string
	hub    *hubspot.Server
	proc   *e2etest.Process
	stats  stats
	// barriers counts the barrier contacts made.
	barriers int
}

// stats are what the check found at rest.
type stats struct {
	agree     int // linked records equal on both sides
	held      int // records that differ, held by an open conflict
	conflicts int // conflicts recorded, decided or not
}

var databases atomic.Int32

// options are the conditions of a run.
type options struct {
	Kafka  *cdctest.Kafka // nil: the in-process bus
	Faults float64        // fraction of HubSpot calls that fail
	Kills  int            // SIGKILLs of cdcd during the edits
}

// deploy creates the database and the double and starts cdcd. The
// double announces every write by webhook: the CRM edits of h as h says,
// the others (cdcd's own writes) as plan draws.
func deploy(t *testing.T, seed uint64, o options, h history) *deployment {
	t.Helper()
	d := &deployment{t: t, db: fmt.Sprintf("soak_%d", databases.Add(1))}
	d.url = pg.CreateDB(t, d.db)
	t.Cleanup(func() {
		_ = pg.ExecErr("postgres", fmt.Sprintf("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '%s'", d.db))
	})
	pg.Exec(t, d.db, `CREATE TABLE contacts (
		id         serial PRIMARY KEY,
		email      text NOT NULL UNIQUE,
		first_name text,
		last_name  text,
		phone      text,
		company    text
	)`)
	pool, err := pgxpool.New(context.Background(), d.url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	d.pool = pool
	d.listen = e2etest.FreeAddr(t)
	d.hub = hubspot.New(hubspot.Options{Tokens: []string{hubToken}, Limit: -1, Seed: seed,
		Faults: hubspot.Faults{Rate: o.Faults, Stall: 2 * time.Second},
		Webhooks: hubspot.Webhooks{
			URL: "http://" + d.listen + "/webhooks/hubspot", Secret: hubSecret, AppID: hubAppIDNum,
			Reorder: true, Plan: plan(h), RetryBackoff: 200 * time.Millisecond, Retries: 20,
		}})
	t.Cleanup(d.hub.Close)
	path := t.TempDir() + "/cdcd.yaml"
	if err := os.WriteFile(path, []byte(d.config(o.Kafka)), 0o600); err != nil {
		t.Fatal(err)
	}
	d.proc = e2etest.NewProcess(t, "cdcd", cdcdBin, "run", "--config", path)
	d.start()
	return d
}

func (d *deployment) start() {
	d.t.Helper()
	d.proc.Start()
	d.proc.WaitReady(d.listen, 60*time.Second)
}

// config syncs the four fields both ways under the default conflict
// policy (merge, newest with a 60 s skew, manual).
func (d *deployment) config(k *cdctest.Kafka) string {
	return fmt.Sprintf(`postgres:
  url: %q
  slot: %[2]s
  publication: %[2]s
  tables: [public.contacts]
  status_interval: 100ms
  heartbeat: 1s
http:
  listen: %q
  admin_token: test-admin-token
systems:
  hubspot:
    type: hubspot
    base_url: %q
    token: %s
    object: contacts
    id_property: email
    webhook:
      secret: %s
      own_sources: ["INTEGRATION/%s"]
pipelines:
  - name: contacts-to-hubspot
    from: public.contacts
    to: hubspot
    object: contacts
    map: {email: email, firstname: first_name, lastname: last_name, phone: phone, company: company}
    backoff: {min: 50ms, max: 500ms}
    max_attempts: 100000
  - name: hubspot-to-contacts
    from: hubspot
    object: contacts
    to: public.contacts
    map: {email: email, first_name: firstname, last_name: lastname, phone: phone, company: company}
    match: [email]
%s`, d.url, d.db, d.listen, d.hub.URL(), hubToken, hubSecret, hubAppID, kafkaSection(k))
}

// kafkaSection is the kafka: section for k, or "" for the in-process bus.
func kafkaSection(k *cdctest.Kafka) string {
	if k == nil {
		return ""
	}
	quoted := make([]string, 0, len(k.Brokers()))
	for _, b := range k.Brokers() {
		quoted = append(quoted, fmt.Sprintf("%q", b))
	}
	return fmt.Sprintf("kafka:\n  brokers: [%s]\n  topics: {partitions: 1}\n", strings.Join(quoted, ", "))
}

func email(rec int) string { return fmt.Sprintf("c%d@soak.example.com", rec) }

// initial is record rec's value of a field before any edit.
func initial(rec int, vendor string) string { return fmt.Sprintf("%s-%d", vendor, rec) }

// insertAll creates the records locally and waits until HubSpot holds
// them all and every one is linked.
func (d *deployment) insertAll(n int) {
	d.t.Helper()
	ctx := context.Background()
	for i := 0; i < n; i += 100 {
		var emails []string
		var recs []int
		for r := i; r < min(i+100, n); r++ {
			emails, recs = append(emails, email(r)), append(recs, r)
		}
		_, err := d.pool.Exec(ctx, `INSERT INTO contacts (email, first_name, last_name, phone, company)
			SELECT e, 'firstname-' || r, 'lastname-' || r, 'phone-' || r, 'company-' || r FROM unnest($1::text[], $2::int[]) AS x(e, r)`, emails, recs)
		if err != nil {
			d.t.Fatal(err)
		}
	}
	cdctest.Eventually(d.t, 120*time.Second, fmt.Sprintf("%d contacts linked", n), func() bool {
		var linked int
		err := d.pool.QueryRow(ctx, `SELECT count(*) FROM cdcd.links WHERE system = 'hubspot'`).Scan(&linked)
		return err == nil && linked == n
	})
}
