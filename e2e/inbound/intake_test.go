package inbound

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/cdc/cdctest"
)

// Every rejected delivery gets its status and a reason, and changes
// nothing: no row, no delivery id, no call to any system.
func TestRejectedDeliveriesChangeNothing(t *testing.T) {
	t.Parallel()
	bus(t, func(t *testing.T, k *cdctest.Kafka) {
		c := newCRM(t, k)
		execSQL(t, c.url, `INSERT INTO contacts (email, first_name) VALUES ('ada@example.com', 'Ada')`)
		id := c.waitHub("ada@example.com", "Ada")
		c.waitERP("ada@example.com", "Ada")
		xmin := query(t, c.url, `SELECT xmin::text FROM contacts WHERE email = 'ada@example.com'`)
		hubCalls, erpCalls := len(c.hub.Requests()), len(c.erp.Requests())

		body, _ := json.Marshal([]any{c.hubEvent("contact.propertyChange", id, "firstname", "Mallory", "CRM_UI")})
		unsigned := c.signedRequest("hubspot", body, hubSecret, time.Now())
		unsigned.Header.Del("X-HubSpot-Signature-v3")
		oversized := append([]byte(`[{"x":"`), append([]byte(strings.Repeat("a", 1<<20)), `"}]`...)...)
		tests := []struct {
			name   string
			req    *http.Request
			status int
			reason string
		}{
			{"bad signature", c.signedRequest("hubspot", body, "not-the-secret", time.Now()), 401, "bad signature"},
			{"no signature", unsigned, 401, "missing signature"},
			{"expired", c.signedRequest("hubspot", body, hubSecret, time.Now().Add(-10*time.Minute)), 401, "outside the replay window"},
			{"malformed JSON", c.signedRequest("hubspot", []byte(`[{"eventId":1,`), hubSecret, time.Now()), 400, "JSON"},
			{"oversized", c.signedRequest("hubspot", oversized, hubSecret, time.Now()), 413, "body exceeds 1048576 bytes"},
			{"unknown system", c.signedRequest("nosuch", body, hubSecret, time.Now()), 404, "unknown system"},
		}
		for _, tt := range tests {
			status, msg := send(t, tt.req)
			if status != tt.status || !strings.Contains(msg, tt.reason) {
				t.Errorf("%s: answered %d %q, want %d with %q", tt.name, status, msg, tt.status, tt.reason)
			}
		}

		if n := query(t, c.url, `SELECT count(*)::text FROM cdcd.webhook_deliveries`); n != "0" {
			t.Fatalf("%s delivery ids recorded for rejected deliveries", n)
		}
		c.barrier()
		if got := query(t, c.url, `SELECT first_name FROM contacts WHERE email = 'ada@example.com'`); got != "Ada" {
			t.Fatalf("a rejected delivery was applied: first_name %q", got)
		}
		if got := query(t, c.url, `SELECT xmin::text FROM contacts WHERE email = 'ada@example.com'`); got != xmin {
			t.Fatalf("a rejected delivery rewrote the row")
		}
		for _, call := range c.hubRequestsSince(hubCalls) {
			if !strings.Contains(call, "barrier") {
				t.Fatalf("a rejected delivery reached HubSpot: %s", call)
			}
		}
		for _, r := range c.erp.Requests()[erpCalls:] {
			if !strings.Contains(r.Path, "barrier") {
				t.Fatalf("a rejected delivery reached the ERP: %s %s", r.Path, r.Body)
			}
		}
	})
}
