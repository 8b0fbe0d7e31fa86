package inbound

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/cdc/cdctest"
	"github.com/cdcd-dev/cdcd/e2e/e2etest"
	"github.com/cdcd-dev/cdcd/vendortest/httpapi"
	"github.com/cdcd-dev/cdcd/vendortest/hubspot"
	"github.com/cdcd-dev/cdcd/vendortest/slack"
)

const (
	hubToken  = "pat-inbound"
	hubSecret = "hubspot-client-secret"
	hubAppID  = "4242"
)

// crm is a deployment syncing public.contacts both ways with the HubSpot
// double, and on to an ERP double.
type crm struct {
	t      *testing.T
	url    string
	listen string
	hub    *hubspot.Server
	erp    *httpapi.Server
	slack  *slack.Server
	policy string // the inbound pipeline's conflict: section, if any
	events atomic.Int64
}

// newCRM starts the deployment: one cdcd process, or with Kafka one per
// role in roles (the first one receives the webhooks and serves the API).
func newCRM(t *testing.T, k *cdctest.Kafka, roles ...string) *crm {
	return newCRMWith(t, k, "", roles...)
}

// newCRMWith is newCRM with a conflict: section for the inbound pipeline.
func newCRMWith(t *testing.T, k *cdctest.Kafka, policy string, roles ...string) *crm {
	return newCRMHub(t, k, policy, hubspot.Options{Limit: -1}, roles...)
}

// newCRMHub is newCRMWith with the HubSpot double's options; when they
// set Webhooks.Secret, the double announces every write to cdcd.
func newCRMHub(t *testing.T, k *cdctest.Kafka, policy string, opts hubspot.Options, roles ...string) *crm {
	name, url := newDB(t)
	execSQL(t, url, `CREATE TABLE contacts (
		id         serial PRIMARY KEY,
		email      text NOT NULL UNIQUE,
		first_name text,
		last_name  text
	)`)
	c := &crm{t: t, url: url, policy: policy}
	opts.Tokens = []string{hubToken}
	c.hub = hubspot.New(opts)
	t.Cleanup(c.hub.Close)
	c.erp = httpapi.New(t, httpapi.Options{})
	c.slack = slack.New(t)
	if len(roles) == 0 {
		roles = []string{"all"}
	}
	for i, role := range roles {
		listen := e2etest.FreeAddr(t)
		if i == 0 {
			c.listen = listen
			if opts.Webhooks.Secret != "" {
				c.hub.SetWebhookURL("http://" + listen + "/webhooks/hubspot")
			}
		}
		start(t, c.config(name, listen, k), listen, "--role", role)
	}
	return c
}

// config is the deployment's config with the HTTP listener on listen.
func (c *crm) config(name, listen string, k *cdctest.Kafka) string {
	return fmt.Sprintf(`postgres:
  url: %q
  slot: %[2]s
  publication: %[2]s
  tables: [public.contacts, cdcd.conflicts]
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
  erp:
    type: http
    update: {method: PUT, url: "%s/contacts/{{.Fields.email}}"}
  slack:
    type: slack
    webhook_url: %q
    text: "Conflict {{.Fields.id}} on {{.Fields.pipeline}} needs a decision"
pipelines:
  - name: conflicts-to-slack
    from: cdcd.conflicts
    to: slack
    ops: [create, update]
    filter: "after.status == 'escalated' && (op == 'create' || after.notified_at != before.notified_at)"
    map: {id: id, pipeline: pipeline}
  - name: contacts-to-hubspot
    from: public.contacts
    to: hubspot
    object: contacts
    map: {email: email, firstname: first_name, lastname: last_name}
    backoff: {min: 50ms, max: 500ms}
    max_attempts: 1000
  - name: contacts-to-erp
    from: public.contacts
    to: erp
    map: {email: email, name: first_name, surname: last_name}
    backoff: {min: 50ms, max: 500ms}
  - name: hubspot-to-contacts
    from: hubspot
    object: contacts
    to: public.contacts
    map: {email: email, first_name: firstname, last_name: lastname}
    match: [email]
%s%s`, c.url, name, listen, c.hub.URL(), hubToken, hubSecret, hubAppID, c.erp.URL, c.slack.Hook("conflicts"), c.policy, kafkaSection(k))
}

// contact is a contact's properties in the HubSpot double, and its id.
func (c *crm) contact(email string) (id string, props map[string]string) {
	for _, o := range c.hub.Objects("contacts") {
		if strings.EqualFold(o.Properties["email"], email) {
			return o.ID, o.Properties
		}
	}
	return "", nil
}

// waitHub waits until the double holds the contact with firstname.
func (c *crm) waitHub(email, firstname string) string {
	c.t.Helper()
	var id string
	poll(c.t, settle, func() error {
		var props map[string]string
		id, props = c.contact(email)
		if props["firstname"] != firstname {
			return fmt.Errorf("hubspot contact %s has firstname %q, want %q", email, props["firstname"], firstname)
		}
		return nil
	})
	return id
}

// waitERP waits until the ERP double holds the contact with name.
func (c *crm) waitERP(email, name string) {
	c.t.Helper()
	poll(c.t, settle, func() error {
		r, _ := c.erp.Resource("/contacts/" + email)
		if r["name"] != name {
			return fmt.Errorf("erp contact %s has name %v, want %q", email, r["name"], name)
		}
		return nil
	})
}

// barrier returns once every change made before it, locally or through
// a webhook, has been delivered or dropped by every pipeline: each
// pipeline delivers in order, so it waits for a later change to pass
// through each. A barrier contact is created locally; HubSpot reports a
// change of it, which reaches the local row and the ERP; a second local
// contact then reaches HubSpot after anything those changes would have
// sent there.
func (c *crm) barrier() {
	c.t.Helper()
	n := c.events.Add(1)
	email := fmt.Sprintf("barrier-%d@example.com", n)
	execSQL(c.t, c.url, `INSERT INTO contacts (email, first_name) VALUES ($1, 'Barrier')`, email)
	id := c.waitHub(email, "Barrier")
	seen := fmt.Sprintf("Seen %d", n)
	// Made in HubSpot, as its webhook says: the webhook may come before
	// cdcd stored the contact's link, and then cdcd reads the contact
	// back (the webhook has no email to match on).
	c.hub.Update("contacts", id, map[string]string{"firstname": seen})
	c.deliver(c.hubEvent("contact.propertyChange", id, "firstname", seen, "CRM_UI"))
	poll(c.t, settle, func() error {
		if got := query(c.t, c.url, `SELECT first_name FROM contacts WHERE email = $1`, email); got != seen {
			return fmt.Errorf("barrier contact has first_name %q, want %q", got, seen)
		}
		return nil
	})
	c.waitERP(email, seen)
	last := fmt.Sprintf("barrier-%d-last@example.com", n)
	execSQL(c.t, c.url, `INSERT INTO contacts (email, first_name) VALUES ($1, 'Barrier')`, last)
	c.waitHub(last, "Barrier")
	c.waitERP(last, "Barrier")
}

// hubEvent is one HubSpot webhook event.
func (c *crm) hubEvent(kind, objectID, property, value, source string) map[string]any {
	id, _ := strconv.ParseInt(objectID, 10, 64)
	e := map[string]any{
		"eventId": 1000 + c.events.Add(1), "subscriptionId": 77, "portalId": 62515, "appId": 4242,
		"occurredAt": time.Now().UnixMilli(), "subscriptionType": kind, "attemptNumber": 0,
		"objectId": id, "changeSource": source,
	}
	if property != "" {
		e["propertyName"], e["propertyValue"] = property, value
	}
	return e
}

// signedRequest is a delivery to /webhooks/{system} signed as HubSpot
// signs (v3) with secret.
func (c *crm) signedRequest(system string, body []byte, secret string, at time.Time) *http.Request {
	c.t.Helper()
	url := "http://" + c.listen + "/webhooks/" + system
	ts := strconv.FormatInt(at.UnixMilli(), 10)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("POST" + url + string(body) + ts))
	req, err := http.NewRequest("POST", url, bytes.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-HubSpot-Signature-v3", base64.StdEncoding.EncodeToString(m.Sum(nil)))
	req.Header.Set("X-HubSpot-Request-Timestamp", ts)
	return req
}

// send delivers a request and returns the status and body.
func send(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	if req.GetBody != nil {
		req.Body, _ = req.GetBody()
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// deliver signs and sends HubSpot events, expecting 200.
func (c *crm) deliver(events ...map[string]any) *http.Request {
	c.t.Helper()
	body, _ := json.Marshal(events)
	req := c.signedRequest("hubspot", body, hubSecret, time.Now())
	if status, msg := send(c.t, req); status != http.StatusOK {
		c.t.Fatalf("webhook answered %d %s", status, msg)
	}
	return req
}

// hubRequestsSince returns the bodies of the double's calls after the
// first n.
func (c *crm) hubRequestsSince(n int) []string {
	var out []string
	for _, r := range c.hub.Requests()[n:] {
		out = append(out, r.Method+" "+r.Path+" "+string(r.Body))
	}
	return out
}

// erpPuts counts the ERP double's PUTs of email whose body holds s.
func (c *crm) erpPuts(email, s string) int {
	n := 0
	for _, r := range c.erp.Requests() {
		if r.Method == "PUT" && r.Path == "/contacts/"+email && strings.Contains(string(r.Body), s) {
			n++
		}
	}
	return n
}

func TestHubSpotWebhookSyncsWithoutEcho(t *testing.T) {
	t.Parallel()
	bus(t, func(t *testing.T, k *cdctest.Kafka) {
		c := newCRM(t, k)
		execSQL(t, c.url, `INSERT INTO contacts (email, first_name, last_name) VALUES ('ada@example.com', 'Ada', 'Lovelace')`)
		id := c.waitHub("ada@example.com", "Ada")
		c.waitERP("ada@example.com", "Ada")

		// A change made in HubSpot reaches the local row and the ERP, and
		// is not written back to HubSpot.
		hubCalls := len(c.hub.Requests())
		change := c.deliver(c.hubEvent("contact.propertyChange", id, "firstname", "Augusta", "CRM_UI"))
		poll(t, settle, func() error {
			if got := query(t, c.url, `SELECT first_name FROM contacts WHERE email = 'ada@example.com'`); got != "Augusta" {
				return fmt.Errorf("local first_name %q, want Augusta", got)
			}
			return nil
		})
		c.waitERP("ada@example.com", "Augusta")

		// The same delivery again is accepted and applied no second time.
		xmin := query(t, c.url, `SELECT xmin::text FROM contacts WHERE email = 'ada@example.com'`)
		if status, msg := send(t, change); status != http.StatusOK {
			t.Fatalf("redelivery answered %d %s", status, msg)
		}
		c.barrier()
		for _, call := range c.hubRequestsSince(hubCalls) {
			if strings.Contains(call, "Augusta") {
				t.Fatalf("HubSpot's own change was written back to it: %s", call)
			}
		}
		if n := c.erpPuts("ada@example.com", "Augusta"); n != 1 {
			t.Fatalf("the ERP got the change %d times, want once", n)
		}
		if got := query(t, c.url, `SELECT xmin::text FROM contacts WHERE email = 'ada@example.com'`); got != xmin {
			t.Fatalf("the redelivery rewrote the row (xmin %s, then %s)", xmin, got)
		}

		// HubSpot reporting cdcd's own write changes nothing and sends
		// nothing: a change with values is compared with what cdcd wrote
		// (the link's base), even when cdcd's app is its source; one that
		// holds no values (a creation) is known by its source alone and not
		// read back.
		execSQL(t, c.url, `UPDATE contacts SET first_name = 'Ada', last_name = 'Byron' WHERE email = 'ada@example.com'`)
		// HubSpot still holds firstname Ada (the Augusta change above was
		// only announced), so wait for the last name, which only this
		// update sets there.
		poll(t, settle, func() error {
			if _, props := c.contact("ada@example.com"); props["lastname"] != "Byron" {
				return fmt.Errorf("hubspot contact has lastname %q, want Byron", props["lastname"])
			}
			return nil
		})
		c.waitERP("ada@example.com", "Ada")
		// cdcd stores what it wrote (the link's base) once HubSpot has
		// answered; the echoes below are compared with it. Sent before it
		// is stored, the lastname echo met the base of Lovelace: both sides
		// changed, so the record was read back from HubSpot (seen once
		// under load).
		poll(t, settle, func() error {
			if got := query(t, c.url, `SELECT coalesce(max(base->>'lastname'), '') FROM cdcd.links WHERE system = 'hubspot' AND external_id = $1`, id); got != "Byron" {
				return fmt.Errorf("the link's base has lastname %q, want Byron", got)
			}
			return nil
		})
		hubCalls, erpCalls := len(c.hub.Requests()), len(c.erp.Requests())
		xmin = query(t, c.url, `SELECT xmin::text FROM contacts WHERE email = 'ada@example.com'`)
		c.deliver(c.hubEvent("contact.propertyChange", id, "lastname", "Byron", "INTEGRATION"))
		withValue := c.hubEvent("contact.propertyChange", id, "firstname", "Ada", "INTEGRATION")
		withValue["sourceId"] = hubAppID
		c.deliver(withValue)
		hinted := c.hubEvent("contact.creation", id, "", "", "INTEGRATION")
		hinted["sourceId"] = hubAppID
		c.deliver(hinted)
		c.barrier()
		if got := query(t, c.url, `SELECT xmin::text FROM contacts WHERE email = 'ada@example.com'`); got != xmin {
			t.Fatalf("an echo rewrote the local row (xmin %s, then %s)", xmin, got)
		}
		for _, call := range c.hubRequestsSince(hubCalls) {
			if !strings.Contains(call, "barrier") {
				t.Fatalf("an echo reached HubSpot: %s", call)
			}
		}
		for _, r := range c.erp.Requests()[erpCalls:] {
			if !strings.Contains(r.Path, "barrier") {
				t.Fatalf("an echo reached the ERP: %s %s", r.Path, r.Body)
			}
		}
		metrics := get(t, "http://"+c.listen+"/metrics")
		for layer, n := range map[string]string{"base": "2", "hint": "1"} {
			if !strings.Contains(metrics, `cdcd_echoes_suppressed_total{layer="`+layer+`",system="hubspot"} `+n) {
				t.Errorf("metrics count not %s %s echoes:\n%s", n, layer, grepLines(metrics, "cdcd_echoes"))
			}
		}
	})
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// With Kafka split across processes, the capture process receives the
// webhooks and the sinks workers apply them and deliver the rest.
func TestSplitRoles(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts Kafka")
	}
	c := newCRM(t, cdctest.StartKafka(t), "capture", "sinks", "sinks")
	execSQL(t, c.url, `INSERT INTO contacts (email, first_name) VALUES ('ada@example.com', 'Ada')`)
	id := c.waitHub("ada@example.com", "Ada")
	c.waitERP("ada@example.com", "Ada")
	calls := len(c.hub.Requests())
	c.hub.Update("contacts", id, map[string]string{"firstname": "Augusta"})
	c.deliver(c.hubEvent("contact.propertyChange", id, "firstname", "Augusta", "CRM_UI"))
	c.waitERP("ada@example.com", "Augusta")
	if got := query(t, c.url, `SELECT first_name FROM contacts WHERE email = 'ada@example.com'`); got != "Augusta" {
		t.Fatalf("local first_name %q", got)
	}
	c.barrier()
	for _, call := range c.hubRequestsSince(calls) {
		if strings.Contains(call, "Augusta") {
			t.Fatalf("HubSpot's own change was written back to it: %s", call)
		}
	}
}
