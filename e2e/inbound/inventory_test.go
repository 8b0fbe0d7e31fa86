package inbound

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/cdc/cdctest"
	"github.com/cdcd-dev/cdcd/e2e/e2etest"
	"github.com/cdcd-dev/cdcd/vendortest/httpapi"
)

const posSecret = "pos-signing-secret"

// An adjustment made at the point of sale updates the local stock row and
// goes on to the ERP, the shop and the WMS, but not back to the POS.
func TestPOSAdjustmentFansOut(t *testing.T) {
	t.Parallel()
	bus(t, func(t *testing.T, k *cdctest.Kafka) {
		name, url := newDB(t)
		execSQL(t, url, `CREATE TABLE inventory (
			sku                text NOT NULL,
			warehouse          text NOT NULL,
			quantity_available int  NOT NULL DEFAULT 0,
			PRIMARY KEY (sku, warehouse)
		)`)
		doubles := map[string]*httpapi.Server{}
		var systems, pipelines strings.Builder
		for _, s := range []string{"erp", "shop", "wms", "pos"} {
			doubles[s] = httpapi.New(t, httpapi.Options{})
			fmt.Fprintf(&systems, "  %s:\n    type: http\n    update: {method: PUT, url: \"%s/stock/{{.Fields.sku}}/{{.Fields.warehouse}}\"}\n", s, doubles[s].URL)
			fmt.Fprintf(&pipelines, `  - name: inventory-to-%[1]s
    from: public.inventory
    to: %[1]s
    map: {sku: sku, warehouse: warehouse, available: quantity_available}
    backoff: {min: 50ms, max: 500ms}
`, s)
		}
		listen := e2etest.FreeAddr(t)
		start(t, fmt.Sprintf(`postgres:
  url: %q
  slot: %[2]s
  publication: %[2]s
  tables: [public.inventory]
  status_interval: 100ms
http:
  listen: %q
systems:
%s    webhook:
      verify: hmac
      secret: %s
      header: X-POS-Signature
      prefix: "sha256="
      timestamp_header: X-POS-Timestamp
      parse: json
      json:
        table: adjustments
        id: item.id
        delivery_id: event_id
        occurred_at: occurred_at
        fields:
          - {name: sku, path: item.sku}
          - {name: location, path: item.location}
          - {name: available, path: item.available}
pipelines:
%s  - name: pos-to-inventory
    from: pos
    object: adjustments
    to: public.inventory
    map: {sku: sku, warehouse: location, quantity_available: available}
    match: [sku, warehouse]
%s`, url, name, listen, systems.String(), posSecret, pipelines.String(), kafkaSection(k)), listen)

		stock := func(system, sku string, want float64) {
			t.Helper()
			poll(t, settle, func() error {
				r, _ := doubles[system].Resource("/stock/" + sku + "/STORE-12")
				if r["available"] != want {
					return fmt.Errorf("%s holds %v of %s, want %v", system, r["available"], sku, want)
				}
				return nil
			})
		}
		execSQL(t, url, `INSERT INTO inventory VALUES ('SKU-1', 'STORE-12', 10)`)
		for s := range doubles {
			stock(s, "SKU-1", 10)
		}

		body := fmt.Sprintf(`{"event_id":"adj-9001","occurred_at":%q,"item":{"id":"SKU-1@STORE-12","sku":"SKU-1","location":"STORE-12","available":7}}`,
			time.Now().UTC().Format(time.RFC3339Nano))
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		m := hmac.New(sha256.New, []byte(posSecret))
		m.Write([]byte(ts + "." + body))
		req, _ := http.NewRequest("POST", "http://"+listen+"/webhooks/pos", bytes.NewReader([]byte(body)))
		req.Header.Set("X-POS-Signature", "sha256="+hex.EncodeToString(m.Sum(nil)))
		req.Header.Set("X-POS-Timestamp", ts)
		if status, msg := send(t, req); status != http.StatusOK {
			t.Fatalf("POS webhook answered %d %s", status, msg)
		}
		poll(t, settle, func() error {
			if got := query(t, url, `SELECT quantity_available::text FROM inventory WHERE sku = 'SKU-1'`); got != "7" {
				return fmt.Errorf("local stock %s, want 7", got)
			}
			return nil
		})
		for _, s := range []string{"erp", "shop", "wms"} {
			stock(s, "SKU-1", 7)
		}
		// The POS delivers in commit order: once a later row reached it,
		// the adjustment would have too.
		execSQL(t, url, `INSERT INTO inventory VALUES ('SKU-2', 'STORE-12', 3)`)
		stock("pos", "SKU-2", 3)
		for _, r := range doubles["pos"].Requests() {
			if strings.Contains(r.Path, "SKU-1") && strings.Contains(string(r.Body), `"available":7`) {
				t.Fatalf("the POS got its own adjustment back: %s %s", r.Path, r.Body)
			}
		}
		if r, _ := doubles["pos"].Resource("/stock/SKU-1/STORE-12"); r["available"] != float64(10) {
			t.Fatalf("the POS holds %v of SKU-1, want its own 10 untouched by cdcd", r["available"])
		}
	})
}
