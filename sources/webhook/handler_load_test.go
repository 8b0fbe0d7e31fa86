package webhook

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// TestHandlerLoad sends 5,000 signed 10-event HubSpot deliveries through a
// real listener and reports throughput and p99 latency.
func TestHandlerLoad(t *testing.T) {
	const (
		deliveries = 5000
		events     = 10
		workers    = 32
	)
	acc := &fakeAcceptor{}
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel) // no per-delivery lines
	in := newIntakeLog(t, HandlerConfig{}, acc, NewMemoryDeduper(0, 0), log)
	srv := httptest.NewServer(in.mux)
	defer srv.Close()
	url := srv.URL + "/webhooks/hubspot"
	client := &http.Client{
		Transport: &http.Transport{MaxIdleConnsPerHost: workers},
		Timeout:   10 * time.Second,
	}
	defer client.CloseIdleConnections()

	bodies := make([]string, deliveries)
	for d := range bodies {
		evs := make([]string, events)
		for i := range evs {
			evs[i] = fmt.Sprintf(`{"eventId":%d,"subscriptionId":25,"portalId":33,"occurredAt":%d,"subscriptionType":"contact.propertyChange","objectId":%d,"changeSource":"CRM_UI","propertyName":"firstname","propertyValue":"Ada %d"}`,
				d*events+i, 1763819940000+int64(i), 1246965+d, i)
		}
		bodies[d] = "[" + strings.Join(evs, ",") + "]"
	}

	jobs := make(chan int)
	latencies := make([]time.Duration, deliveries)
	errs := make(chan error, deliveries)
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for d := range jobs {
				signed := hubSpotV3Request(testSecrets[0], "POST", url, bodies[d], time.Now())
				req, _ := http.NewRequest("POST", url, strings.NewReader(bodies[d]))
				req.Header = signed.Header
				t0 := time.Now()
				resp, err := client.Do(req)
				latencies[d] = time.Since(t0)
				if err != nil {
					errs <- err
					continue
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					errs <- fmt.Errorf("delivery %d: status %d", d, resp.StatusCode)
				}
			}
		})
	}
	for d := range deliveries {
		jobs <- d
	}
	close(jobs)
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	slices.Sort(latencies)
	t.Logf("%d deliveries (%d events each) in %s: %.0f deliveries/s, p50 %s, p99 %s, max %s",
		deliveries, events, elapsed.Round(time.Millisecond), deliveries/elapsed.Seconds(),
		latencies[deliveries/2], latencies[deliveries*99/100], latencies[deliveries-1])

	got := acc.changes()
	ids := make(map[string]struct{}, len(got))
	for _, c := range got {
		ids[c.DeliveryID] = struct{}{}
	}
	if len(got) != deliveries*events || len(ids) != deliveries*events {
		t.Errorf("accepted %d changes with %d distinct ids, want %d", len(got), len(ids), deliveries*events)
	}
}
