package inbound

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/cdc/cdctest"
	"github.com/cdcd-dev/cdcd/e2e/e2etest"
	"github.com/cdcd-dev/cdcd/vendortest/httpapi"
)

const signupSecret = "signup-signing-secret"

// Regression: a signed webhook whose field held \u0000 was accepted, then
// refused by Postgres (08P01, taken as transient) and retried with
// backoff while every later change waited; its dead letter could not be
// stored either (jsonb refuses \u0000), so it never ended, restarts
// included. It is now dead-lettered at once, raw payload kept, and the
// changes after it apply promptly, before and after a restart.
func TestPoisonWebhookIsDeadLetteredAlone(t *testing.T) {
	t.Parallel()
	bus(t, func(t *testing.T, k *cdctest.Kafka) {
		name, url := newDB(t)
		execSQL(t, url, `CREATE TABLE people (id serial PRIMARY KEY, email text NOT NULL UNIQUE, name text)`)
		api := httpapi.New(t, httpapi.Options{})
		listen := e2etest.FreeAddr(t)
		cdcd := start(t, fmt.Sprintf(`postgres:
  url: %q
  slot: %[2]s
  publication: %[2]s
  tables: [public.people]
  status_interval: 100ms
http:
  listen: %q
systems:
  signup:
    type: http
    update: {method: PUT, url: "%s/people/{{.Fields.email}}"}
    webhook:
      verify: hmac
      secret: %s
      header: X-Signature
      prefix: "sha256="
      timestamp_header: X-Timestamp
      parse: json
      json:
        table: people
        id: person.id
        delivery_id: event_id
        occurred_at: occurred_at
        fields:
          - {name: email, path: person.email}
          - {name: name, path: person.name}
pipelines:
  - name: signup-to-people
    from: signup
    object: people
    to: public.people
    map: {email: email, name: name}
    match: [email]
%s`, url, name, listen, api.URL, signupSecret, kafkaSection(k)), listen)

		// raw is the JSON text of the name, as the system sends it.
		deliver := func(id int, rawName string) {
			t.Helper()
			body := fmt.Sprintf(`{"event_id":"signup-%d","occurred_at":%q,"person":{"id":"%d","email":"p%d@example.com","name":%s}}`,
				id, time.Now().UTC().Format(time.RFC3339Nano), id, id, rawName)
			ts := strconv.FormatInt(time.Now().Unix(), 10)
			m := hmac.New(sha256.New, []byte(signupSecret))
			m.Write([]byte(ts + "." + body))
			req, _ := http.NewRequest("POST", "http://"+listen+"/webhooks/signup", bytes.NewReader([]byte(body)))
			req.Header.Set("X-Signature", "sha256="+hex.EncodeToString(m.Sum(nil)))
			req.Header.Set("X-Timestamp", ts)
			if status, msg := send(t, req); status != http.StatusOK {
				t.Fatalf("webhook %d answered %d %s", id, status, msg)
			}
		}
		applied := func(ids ...int) {
			t.Helper()
			poll(t, 10*time.Second, func() error {
				for _, id := range ids {
					if got := query(t, url, `SELECT name FROM people WHERE email = $1`, fmt.Sprintf("p%d@example.com", id)); got != fmt.Sprintf("Person %d", id) {
						return fmt.Errorf("person %d holds %q", id, got)
					}
				}
				return nil
			})
		}
		letters := func() string {
			return query(t, url, `SELECT count(*)::text FROM cdcd.dead_letters WHERE pipeline = 'signup-to-people'`)
		}

		deliver(1, `"Ada\u0000Lovelace"`)
		for id := 2; id <= 4; id++ {
			deliver(id, fmt.Sprintf(`"Person %d"`, id))
		}
		applied(2, 3, 4)
		poll(t, 10*time.Second, func() error {
			if n := letters(); n != "1" {
				return fmt.Errorf("%s dead letters, want 1", n)
			}
			return nil
		})
		if got := query(t, url, `SELECT event_id || ' ' || attempts || ' ' || (position('"Ada\u0000Lovelace"' IN convert_from(event, 'UTF8')) > 0)::text
			FROM cdcd.dead_letters WHERE pipeline = 'signup-to-people'`); got != "signup-1 1 true" {
			t.Fatalf("dead letter: %q, want signup-1 after 1 attempt with the raw name in its event", got)
		}
		if n := query(t, url, `SELECT count(*)::text FROM people WHERE email = 'p1@example.com'`); n != "0" {
			t.Fatalf("the poisoned change left %s rows", n)
		}
		if k == nil {
			poll(t, 10*time.Second, func() error {
				if n := query(t, url, `SELECT count(*)::text FROM cdcd.inbox`); n != "0" {
					return fmt.Errorf("%s inbox rows left", n)
				}
				return nil
			})
		}

		cdcd.Stop()
		cdcd.Start()
		cdcd.WaitReady(listen, 60*time.Second)
		deliver(5, `"Person 5"`)
		applied(5)
		if n := letters(); n != "1" {
			t.Fatalf("%s dead letters after the restart, want the one", n)
		}
		if k == nil {
			poll(t, 10*time.Second, func() error {
				if n := query(t, url, `SELECT count(*)::text FROM cdcd.inbox`); n != "0" {
					return fmt.Errorf("%s inbox rows left after the restart", n)
				}
				return nil
			})
		}
	})
}
