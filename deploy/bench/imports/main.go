// Command imports measures an import of HubSpot contacts end to end: the
// cdcd binary (cdcd run, then cdcd import) lists every contact of the
// HubSpot double, which enforces HubSpot's ten-secondly limit (100 calls
// per 10 s by default), and applies them to public.contacts through the
// inbound pipeline, while an outbound pipeline of the same table to the
// same HubSpot would send back anything not recognised as HubSpot's own.
//
// It reports the list calls per second against the limit's ceiling, the
// least time the limit allows for that many calls, when the job was done
// and when every contact was applied, duplicates in the table, contacts
// written more than once, and writes that went back to HubSpot.
//
//	go run ./deploy/bench/imports [-contacts 10000] [-limit 100] [-window 10s] [-cdcd path]
//
// It is not a test; docs/benchmarks.md records its results.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cdcd-dev/cdcd/cdc/cdctest"
	"github.com/cdcd-dev/cdcd/deploy/bench/proc"
	"github.com/cdcd-dev/cdcd/vendortest/hubspot"
)

const token = "pat-bench"

func main() {
	n := flag.Int("contacts", 10_000, "contacts in HubSpot")
	limit := flag.Int("limit", 100, "HubSpot's calls per window")
	window := flag.Duration("window", 10*time.Second, "HubSpot's rate-limit window")
	bin := flag.String("cdcd", "", "run this cdcd binary instead of building ./cmd/cdcd")
	flag.Parse()
	if err := run(*n, *limit, *window, *bin); err != nil {
		fmt.Fprintln(os.Stderr, "imports:", err)
		os.Exit(1)
	}
}

func run(n, limit int, window time.Duration, bin string) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "cdcd-bench-imports-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if bin == "" {
		bin = filepath.Join(dir, "cdcd")
		fmt.Fprintln(os.Stderr, "building cdcd...")
		build := exec.Command("go", "build", "-o", bin, "github.com/cdcd-dev/cdcd/cmd/cdcd")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return err
		}
	}
	fmt.Fprintln(os.Stderr, "starting Postgres...")
	pg, err := cdctest.NewPostgres()
	if err != nil {
		return err
	}
	defer pg.Destroy()
	url := pg.URL("postgres")
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return err
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, `CREATE TABLE contacts (
		id serial PRIMARY KEY, email text NOT NULL UNIQUE, first_name text, last_name text);
	CREATE TABLE contact_writes (email text NOT NULL);
	CREATE FUNCTION count_write() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN INSERT INTO contact_writes VALUES (NEW.email); RETURN NEW; END $$;
	CREATE TRIGGER count_write AFTER INSERT OR UPDATE ON contacts FOR EACH ROW EXECUTE FUNCTION count_write()`); err != nil {
		return err
	}

	hub := hubspot.New(hubspot.Options{Tokens: []string{token}, Limit: limit, Window: window})
	defer hub.Close()
	for i := range n {
		hub.Insert("contacts", map[string]string{"email": fmt.Sprintf("c%06d@example.com", i), "firstname": fmt.Sprintf("F%d", i), "lastname": "L"})
	}
	listen, err := proc.FreeAddr()
	if err != nil {
		return err
	}
	cfgPath := filepath.Join(dir, "cdcd.yaml")
	cfg := fmt.Sprintf(`postgres:
  url: %q
  slot: bench
  publication: bench
  tables: [public.contacts]
http:
  listen: %q
systems:
  hubspot:
    type: hubspot
    base_url: %q
    token: %s
    object: contacts
    id_property: email
    rate: {requests: %d, per: %s}
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
`, url, listen, hub.URL(), token, limit, window)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return err
	}
	logFile, err := os.Create(filepath.Join(dir, "cdcd.log"))
	if err != nil {
		return err
	}
	defer logFile.Close()
	daemon := exec.Command(bin, "run", "-c", cfgPath)
	daemon.Stdout, daemon.Stderr = logFile, logFile
	if err := daemon.Start(); err != nil {
		return err
	}
	defer func() { _ = daemon.Process.Kill(); _ = daemon.Wait() }()
	if err := waitReady(listen, time.Minute); err != nil {
		return err
	}
	before := len(hub.Requests())

	fmt.Fprintf(os.Stderr, "importing %d contacts at %d calls per %s...\n", n, limit, window)
	start := time.Now()
	out, err := exec.Command(bin, "import", "--detach", "-c", cfgPath, "hubspot-to-contacts").CombinedOutput()
	if err != nil {
		return fmt.Errorf("cdcd import: %w: %s", err, out)
	}
	f := strings.Fields(string(out)) // job <id> import <pipeline> queued 0
	if len(f) < 2 {
		return fmt.Errorf("cdcd import --detach printed %q", out)
	}
	job := f[1]
	var done, applied time.Duration
	for done == 0 || applied == 0 {
		var status string
		var rows int
		if err := pool.QueryRow(ctx, `SELECT (SELECT status FROM cdcd.jobs WHERE id = $1::bigint), (SELECT count(*) FROM contacts)`, job).Scan(&status, &rows); err != nil {
			return err
		}
		switch {
		case status == "failed" || status == "cancelled":
			return fmt.Errorf("job %s %s", job, status)
		case status == "done" && done == 0:
			done = time.Since(start)
		}
		if rows >= n && applied == 0 {
			applied = time.Since(start)
		}
		if time.Since(start) > 30*time.Minute {
			return errors.New("the import did not finish in 30 minutes")
		}
		time.Sleep(20 * time.Millisecond)
	}

	// A local contact reaches HubSpot after every change before it.
	if _, err := pool.Exec(ctx, `INSERT INTO contacts (email, first_name) VALUES ('barrier@example.com', 'Barrier')`); err != nil {
		return err
	}
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		if _, ok := find(hub, "barrier@example.com"); ok {
			break
		}
		if time.Now().After(deadline) {
			return errors.New("the barrier contact never reached HubSpot")
		}
	}
	echoes := -1 // the barrier's create
	for _, w := range hub.Writes() {
		if w.Source == "INTEGRATION" {
			echoes++
		}
	}
	var calls, refused int
	var first, last time.Time
	for _, r := range hub.Requests()[before:] {
		if r.Method != http.MethodGet || !strings.HasSuffix(r.Path, "/contacts") {
			continue
		}
		if r.Status != http.StatusOK {
			refused++
			continue
		}
		if first.IsZero() {
			first = r.At
		}
		calls, last = calls+1, r.At
	}
	var dups, twice int
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) - count(DISTINCT email) FROM contacts),
		(SELECT count(*) FROM (SELECT email FROM contact_writes GROUP BY email HAVING count(*) > 1) d)`).Scan(&dups, &twice); err != nil {
		return err
	}

	ceiling := float64(limit) / window.Seconds()
	span := last.Sub(first)
	least := time.Duration((calls-1)/limit) * window // the rolling limit admits `limit` calls at once
	fmt.Printf("import of %d HubSpot contacts, limit %d calls per %s (ceiling %.1f calls/s), cdcd binary, in-process bus\n\n", n, limit, window, ceiling)
	fmt.Printf("| | figure |\n|---|---|\n")
	fmt.Printf("| list calls answered 200 (refused) | %d (%d) |\n", calls, refused)
	fmt.Printf("| first to last list call | %s (the limit allows %s for %d calls) |\n", span.Round(time.Millisecond), least, calls)
	if span > 0 {
		rate := float64(calls-1) / span.Seconds()
		fmt.Printf("| list calls/s | %.2f (%.0f%% of %.1f/s) |\n", rate, 100*rate/ceiling, ceiling)
	}
	if least > 0 {
		fmt.Printf("| least time / time taken | %.2f |\n", least.Seconds()/span.Seconds())
	}
	fmt.Printf("| job done after | %s |\n", done.Round(time.Millisecond))
	fmt.Printf("| every contact applied after | %s (%.0f contacts/s) |\n", applied.Round(time.Millisecond), float64(n)/applied.Seconds())
	fmt.Printf("| duplicate rows | %d |\n| contacts written more than once | %d |\n| writes echoed back to HubSpot | %d |\n", dups, twice, echoes)
	return nil
}

func find(hub *hubspot.Server, email string) (string, bool) {
	for _, o := range hub.Objects("contacts") {
		if o.Properties["email"] == email {
			return o.ID, true
		}
	}
	return "", false
}

func waitReady(addr string, timeout time.Duration) error {
	c := &http.Client{Timeout: time.Second}
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if resp, err := c.Get("http://" + addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
	return errors.New("cdcd did not become ready")
}
