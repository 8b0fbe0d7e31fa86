// Command intake measures webhook intake in the in-process mode: signed
// one-event HubSpot v3 deliveries from a local load generator, through the
// real handler (verify, parse, dedupe) into cdcd.inbox on a Postgres with
// fsync and synchronous_commit on, so a 200 means the delivery is on disk.
// Side by side, in the same run, the same load against the same handler
// whose acceptor keeps nothing gives the ceiling of HTTP, verification and
// parsing alone. Then it measures the apply path: the inbox pumped through
// the in-process bus into public.contacts by the Postgres writer.
//
//	go run ./deploy/bench/intake [-deliveries 50000] [-clients 64]
//
// It is not a test; docs/benchmarks.md records its results.
package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/cdc/cdctest"
	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/delivery"
	"github.com/cdcd-dev/cdcd/sinks/postgres"
	"github.com/cdcd-dev/cdcd/sources/inbox"
	"github.com/cdcd-dev/cdcd/sources/webhook"
	"github.com/cdcd-dev/cdcd/store"
	"github.com/cdcd-dev/cdcd/syncapi"
)

const secret = "bench-client-secret"

func main() {
	n := flag.Int("deliveries", 50_000, "deliveries to send")
	clients := flag.Int("clients", 64, "concurrent senders")
	flag.Parse()
	if err := run(*n, *clients); err != nil {
		fmt.Fprintln(os.Stderr, "intake:", err)
		os.Exit(1)
	}
}

func run(n, clients int) error {
	ctx := context.Background()
	fmt.Fprintln(os.Stderr, "starting Postgres (fsync on, synchronous_commit on)...")
	pg, err := cdctest.NewPostgres("fsync = on", "synchronous_commit = on", "full_page_writes = on")
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
	log := zerolog.Nop()

	cfg := &webhook.Config{Verify: "hubspot", Parse: "hubspot", Secret: secret}
	sys, err := cfg.System("hubspot")
	if err != nil {
		return err
	}

	fmt.Fprintf(os.Stderr, "ceiling: %d deliveries, %d clients, acceptor keeps nothing...\n", n, clients)
	ceiling, err := load(n, clients, sys, discard{}, 0)
	if err != nil {
		return err
	}

	st, err := store.Open(ctx, url, log) // makes cdcd.inbox
	if err != nil {
		return err
	}
	st.Close()
	ib, err := inbox.Open(ctx, pool, inbox.Config{Deployment: "bench"}, log, nil)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "inbox: %d deliveries, %d clients, into cdcd.inbox...\n", n, clients)
	durable, err := load(n, clients, sys, ib, n)
	if err != nil {
		return err
	}
	var stored, ids int64
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM cdcd.inbox), (SELECT count(*) FROM cdcd.webhook_deliveries)`).Scan(&stored, &ids); err != nil {
		return err
	}
	ib.Close()

	fmt.Fprintln(os.Stderr, "apply: inbox -> in-process bus -> public.contacts...")
	applied, applyTime, err := apply(ctx, pool, url, ib, int64(n))
	if err != nil {
		return err
	}

	fmt.Printf("webhook intake, in-process mode: %d one-event HubSpot v3 deliveries, %d concurrent clients, %d CPUs (load generator in the same process)\n\n",
		n, clients, runtime.NumCPU())
	fmt.Printf("| | deliveries/s | p50 | p99 | max |\n|---|---|---|---|---|\n")
	fmt.Printf("| ceiling: verify + parse, nothing kept | %.0f | %s | %s | %s |\n", ceiling.rate(), ceiling.p(50), ceiling.p(99), ceiling.p(100))
	fmt.Printf("| accepted durably into cdcd.inbox | %.0f | %s | %s | %s |\n", durable.rate(), durable.p(50), durable.p(99), durable.p(100))
	fmt.Printf("\ndurable / ceiling: %.2f\n", durable.rate()/ceiling.rate())
	fmt.Printf("answered 200: %d of %d; rows in cdcd.inbox: %d; delivery ids in cdcd.webhook_deliveries: %d\n", durable.ok, n, stored, ids)
	fmt.Printf("apply: %d rows into public.contacts in %s: %.0f rows/s\n", applied, applyTime.Round(time.Millisecond), float64(applied)/applyTime.Seconds())
	if durable.ok != n || stored != int64(n) || ids != int64(n) {
		return errors.New("not every delivery was stored exactly once")
	}
	return nil
}

// discard is an Acceptor that keeps nothing.
type discard struct{}

func (discard) Accept(context.Context, string, []webhook.Change) error { return nil }

// result is one load run.
type result struct {
	elapsed   time.Duration
	latencies []time.Duration
	ok        int
}

func (r result) rate() float64 { return float64(len(r.latencies)) / r.elapsed.Seconds() }

// p is the q-th percentile latency; p(100) is the slowest.
func (r result) p(q int) string {
	i := min(len(r.latencies)*q/100, len(r.latencies)-1)
	return r.latencies[i].Round(10 * time.Microsecond).String()
}

// load serves the handler on a local port and sends n signed deliveries
// from clients goroutines. Object ids start at base.
func load(n, clients int, sys webhook.System, acc webhook.Acceptor, base int) (result, error) {
	h, err := webhook.NewHandler(webhook.HandlerConfig{}, []webhook.System{sys}, acc, webhook.NewMemoryDeduper(0, 0), zerolog.Nop(), nil)
	if err != nil {
		return result{}, err
	}
	mux := http.NewServeMux()
	mux.Handle("POST /webhooks/{system}", h)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return result{}, err
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(l)
	defer srv.Close()
	url := "http://" + l.Addr().String() + "/webhooks/hubspot"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()

	latencies := make([]time.Duration, n)
	statuses := make([]int, n)
	jobs := make(chan int, clients)
	var wg sync.WaitGroup
	start := time.Now()
	for range clients {
		wg.Go(func() {
			for d := range jobs {
				id := base + d
				body := fmt.Sprintf(`[{"eventId":%d,"subscriptionId":25,"portalId":33,"appId":7,"occurredAt":%d,"subscriptionType":"contact.propertyChange","attemptNumber":0,"objectId":%d,"changeSource":"CRM_UI","propertyName":"email","propertyValue":"c%d@example.com"}]`,
					id, time.Now().UnixMilli(), 1_000_000+id, id)
				req := sign(url, body)
				t0 := time.Now()
				resp, err := client.Do(req)
				latencies[d] = time.Since(t0)
				if err == nil {
					statuses[d] = resp.StatusCode
					resp.Body.Close()
				}
			}
		})
	}
	for d := range n {
		jobs <- d
	}
	close(jobs)
	wg.Wait()
	r := result{elapsed: time.Since(start), latencies: latencies}
	for _, s := range statuses {
		if s == http.StatusOK {
			r.ok++
		}
	}
	slices.Sort(r.latencies)
	return r, nil
}

// sign builds a delivery signed as HubSpot signs v3.
func sign(url, body string) *http.Request {
	ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("POST" + url + body + ts))
	req, _ := http.NewRequest("POST", url, bytes.NewReader([]byte(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(webhook.HeaderHubSpotSignatureV3, base64.StdEncoding.EncodeToString(m.Sum(nil)))
	req.Header.Set(webhook.HeaderHubSpotTimestamp, ts)
	return req
}

// apply pumps the inbox into public.contacts through the delivery engine
// and the Postgres writer, and times it until want rows exist.
func apply(ctx context.Context, pool *pgxpool.Pool, url string, ib *inbox.Inbox, want int64) (int64, time.Duration, error) {
	if _, err := pool.Exec(ctx, `CREATE TABLE contacts (id bigserial PRIMARY KEY, email text NOT NULL UNIQUE, first_name text)`); err != nil {
		return 0, 0, err
	}
	st, err := store.Open(ctx, url, zerolog.Nop())
	if err != nil {
		return 0, 0, err
	}
	defer st.Close()
	env := config.Env{Log: zerolog.Nop()}
	pcfg := postgres.DefaultConfig()
	pcfg.URL, pcfg.Table, pcfg.Match = url, "public.contacts", []string{"email"}
	w, err := postgres.New("hubspot", pcfg, postgres.Inbound{Object: "contacts"}, env)
	if err != nil {
		return 0, 0, err
	}
	p, err := delivery.NewPipeline(delivery.PipelineConfig{Name: "hubspot-to-contacts", System: "public.contacts", Object: "contacts", Concurrency: 4},
		emailMapper{}, w, delivery.Stores{}, zerolog.Nop(), nil)
	if err != nil {
		return 0, 0, err
	}
	bus := cdc.NewLocalBus(cdc.LocalBusConfig{}, []cdc.Route{{Name: "hubspot-to-contacts", System: "public.contacts", Sink: p}}, zerolog.Nop(), nil)
	defer bus.Close(context.Background())
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	go ib.Run(runCtx, bus)
	var rows int64
	for rows < want {
		if time.Since(start) > 10*time.Minute {
			return rows, time.Since(start), fmt.Errorf("applied %d of %d rows in 10 minutes", rows, want)
		}
		time.Sleep(20 * time.Millisecond)
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM contacts`).Scan(&rows); err != nil {
			return 0, 0, err
		}
	}
	return rows, time.Since(start), nil
}

// emailMapper maps HubSpot's email property to the email column.
type emailMapper struct{}

func (emailMapper) Map(_ context.Context, e *cdc.Event) (syncapi.Record, bool, error) {
	raw, ok := e.After.Get("email")
	if !ok {
		return syncapi.Record{}, false, nil
	}
	var email string
	if len(raw) > 2 {
		email = string(raw[1 : len(raw)-1])
	}
	return syncapi.Record{Op: e.Op, Object: "contacts", Key: string(cdc.AppendKey(nil, e)), Fields: map[string]any{"email": email}}, true, nil
}
