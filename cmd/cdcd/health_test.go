package main

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdcd-dev/cdcd/cdc/cdctest"
	"github.com/cdcd-dev/cdcd/health"
	"github.com/cdcd-dev/cdcd/statuspage"
	"github.com/cdcd-dev/cdcd/statuspage/browsertest"
	"github.com/cdcd-dev/cdcd/vendortest/httpapi"
	"github.com/cdcd-dev/cdcd/vendortest/pagerduty"
)

// A sink that starts failing every call is shown degraded on the status
// page (in Chromium) and by cdcd status within 30 s, then unhealthy per
// its rule; the alert pipeline from cdcd.health_transitions triggers one
// PagerDuty incident, never a second while the sink stays down, and
// resolves it within 30 s of the sink recovering.
func TestFailingSinkPagesOnceAndResolves(t *testing.T) {
	browser := browsertest.Start(t)
	pg := cdctest.StartPostgres(t)
	url := pg.CreateDB(t, "app")
	pg.Exec(t, "app", "CREATE TABLE contacts (id int PRIMARY KEY, email text)")
	api := httpapi.New(t, httpapi.Options{})
	pd := pagerduty.New(t)
	addr := freeAddr(t)
	const pipelineName = "contacts-to-api"
	yaml := fmt.Sprintf(`postgres:
  url: %q
  tables: [public.contacts, cdcd.health_transitions]
http:
  listen: %q
  read_token: rd
log: {level: warn}
health:
  interval: 1s
  hold: 2s
  pipeline:
    failing: {degraded: 2s, unhealthy: 15s}
systems:
  api:
    type: http
    create: {method: PUT, url: "%s/contacts/{{.Fields.id}}"}
  pd:
    type: pagerduty
    url: %q
    routing_key: 0123456789abcdef0123456789abcdef
    action_field: action
    dedup_key: "cdcd-health/{{.Fields.kind}}/{{.Fields.name}}"
    summary: "{{.Fields.kind}} {{.Fields.name}} is {{.Fields.state}}: {{.Fields.reason}}"
pipelines:
  - name: %s
    from: public.contacts
    to: api
    map: {id: id, email: email}
    max_attempts: 10000
    backoff: {min: 200ms, max: 1s}
  - name: health-to-pagerduty
    from: cdcd.health_transitions
    to: pd
    ops: [create]
    filter: "after.kind == 'pipeline' && after.name == '%s' && (after.state == 'unhealthy' || after.previous == 'unhealthy')"
    map:
      kind: kind
      name: name
      state: state
      reason: reason
      action: {expr: "after.state == 'unhealthy' ? 'trigger' : 'resolve'"}
`, url, addr, api.URL, pd.URL(), pipelineName, pipelineName)
	ended := runDaemon(t, filepath.Join(t.TempDir(), "cdcd.yaml"), yaml)
	base := "http://" + addr
	state := func() health.State {
		st, err := fetchStatus(context.Background(), base, "rd")
		if err != nil {
			return -1
		}
		for _, s := range st.Subjects {
			if s.Kind == health.KindPipeline && s.Name == pipelineName {
				return s.State
			}
		}
		return -1
	}
	cdctest.Eventually(t, 60*time.Second, "cdcd to stream, with the pipeline ok", func() bool {
		select {
		case <-ended:
			t.Fatal("run ended while starting")
		default:
		}
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK && state() == health.OK
	})
	pg.Exec(t, "app", "INSERT INTO contacts VALUES (1, 'ada@example.com')")
	cdctest.Eventually(t, 30*time.Second, "the first contact to reach the API", func() bool {
		return len(api.Requests()) > 0 && api.Requests()[0].Status < 300
	})

	api.SetFaults(httpapi.Faults{Rate5xx: 1})
	failed := time.Now()
	pg.Exec(t, "app", "INSERT INTO contacts VALUES (2, 'grace@example.com')")
	cdctest.Eventually(t, 30*time.Second, "the pipeline to be degraded", func() bool { return state() >= health.Degraded })
	t.Logf("degraded %s after the sink started failing", time.Since(failed).Round(100*time.Millisecond))
	browsertest.PipelineState(browser, t, base+"/", "rd", pipelineName, "degraded", 10*time.Second)
	if _, _, code := runStatus(t, nil, "--url", base, "--token", "rd"); code != 1 && code != 2 {
		t.Errorf("cdcd status exits %d while a pipeline is degraded, want 1 (or 2 once unhealthy)", code)
	}

	cdctest.Eventually(t, 45*time.Second, "the pipeline to be unhealthy", func() bool { return state() == health.Unhealthy })
	t.Logf("unhealthy %s after the sink started failing", time.Since(failed).Round(100*time.Millisecond))
	key := "cdcd-health/pipeline/" + pipelineName
	cdctest.Eventually(t, 30*time.Second, "PagerDuty to get a trigger", func() bool { return pd.Alert(key) == pagerduty.Triggered })
	// Still down for a while: the incident stays one.
	until := time.Now().Add(5 * time.Second)
	for time.Now().Before(until) {
		if n := countActions(pd, key, "trigger"); n > 1 {
			t.Fatalf("%d triggers while the sink stays down, want 1", n)
		}
		time.Sleep(200 * time.Millisecond)
	}

	api.SetFaults(httpapi.Faults{})
	recovered := time.Now()
	cdctest.Eventually(t, 30*time.Second, "PagerDuty to get a resolve", func() bool { return pd.Alert(key) == pagerduty.Resolved })
	t.Logf("resolved %s after the sink recovered", time.Since(recovered).Round(100*time.Millisecond))
	// Regression: each transition is its own row, and the trigger and the
	// resolve share a dedup key; the resolve was dead-lettered as a record
	// claiming the id the trigger's row was linked to.
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, _ := conn.Query(context.Background(), "SELECT pipeline || ': ' || error FROM cdcd.dead_letters")
	if dl, err := pgx.CollectRows(rows, pgx.RowTo[string]); err != nil || len(dl) > 0 {
		t.Errorf("dead letters %q (%v), want none", dl, err)
	}
	if tr, rs := countActions(pd, key, "trigger"), countActions(pd, key, "resolve"); tr != 1 || rs != 1 {
		t.Errorf("PagerDuty got %d triggers and %d resolves for %s, want one each", tr, rs, key)
	}
	var st *statuspage.Status
	if st, err = fetchStatus(context.Background(), base, "rd"); err != nil {
		t.Fatal(err)
	}
	var seq []string
	for i := len(st.Transitions) - 1; i >= 0; i-- {
		if tr := st.Transitions[i]; tr.Kind == health.KindPipeline && tr.Name == pipelineName {
			seq = append(seq, tr.Previous+">"+tr.State)
		}
	}
	if len(seq) < 3 || seq[0] != "ok>degraded" || seq[1] != "degraded>unhealthy" {
		t.Errorf("transitions of %s: %v, want ok>degraded, degraded>unhealthy, then out of unhealthy", pipelineName, seq)
	}
}

func countActions(pd *pagerduty.Server, key, action string) int {
	n := 0
	for _, e := range pd.Events() {
		if e.DedupKey == key && e.EventAction == action {
			n++
		}
	}
	return n
}
