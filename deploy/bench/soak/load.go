package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// keyspace makes the changes of a bounded set of live records: first it
// creates size records, then of every ten changes eight update a live
// record (in turn), one deletes the oldest, one creates a new one.
type keyspace struct {
	size       int64
	lo, hi     int64 // live records are [lo, hi)
	step, turn int64
}

// next returns the next change's op ('c', 'u' or 'd') and record.
func (k *keyspace) next() (byte, int64) {
	if k.hi-k.lo < k.size {
		k.hi++
		return 'c', k.hi - 1
	}
	k.step = (k.step + 1) % 10
	switch k.step {
	case 8:
		k.lo++
		return 'd', k.lo - 1
	case 9:
		k.hi++
		return 'c', k.hi - 1
	}
	k.turn++
	return 'u', k.lo + k.turn%(k.hi-k.lo)
}

// outbound changes public.items: each change its own statement, the
// changes of 10 ms in one transaction.
type outbound struct {
	keys keyspace
	sent atomic.Int64
	// made counts the changes by op; live is each live item's last qty.
	// Both are the driver's until drive returns.
	made map[byte]int64
	live map[string]int64
}

func newOutbound(keys int) *outbound {
	return &outbound{keys: keyspace{size: int64(keys)}, made: map[byte]int64{}, live: map[string]int64{}}
}

func (o *outbound) drive(ctx context.Context, url string, n, perSecond int) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return paced(ctx, n, perSecond, 10*time.Millisecond, func(first, count int) error {
		b := &pgx.Batch{}
		for seq := first; seq < first+count; seq++ {
			op, id := o.keys.next()
			o.made[op]++
			switch op {
			case 'c':
				b.Queue("INSERT INTO items (id, qty, note) VALUES ($1, $2, 'an item of the soak')", id, seq)
				o.live[strconv.FormatInt(id, 10)] = int64(seq)
			case 'u':
				b.Queue("UPDATE items SET qty = $2 WHERE id = $1", id, seq)
				o.live[strconv.FormatInt(id, 10)] = int64(seq)
			case 'd':
				b.Queue("DELETE FROM items WHERE id = $1", id)
				delete(o.live, strconv.FormatInt(id, 10))
			}
		}
		// A batch outside a transaction runs in one implicit transaction.
		if err := conn.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("outbound changes: %w", err)
		}
		o.sent.Add(int64(count))
		return nil
	})
}

// paced calls do for n changes at perSecond, every, with the changes due
// since the last call, until done or ctx ends.
func paced(ctx context.Context, n, perSecond int, every time.Duration, do func(first, count int) error) error {
	t := time.NewTicker(every)
	defer t.Stop()
	began := time.Now()
	for done := 0; done < n; {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		due := min(int(time.Since(began).Seconds()*float64(perSecond)), n)
		// Never more than a second's worth at once, should the driver
		// itself fall behind.
		count := min(due-done, perSecond)
		if count <= 0 {
			continue
		}
		if err := do(done, count); err != nil {
			return err
		}
		done += count
	}
	return nil
}

// inbound sends the system's changes of orders as signed webhook
// deliveries, the events of 100 ms in one delivery, one delivery at a
// time (so that a record's changes arrive in order).
type inbound struct {
	keys   keyspace
	url    string
	client *http.Client
	sent   atomic.Int64 // events answered 200
	// live is each live order's last qty (by sku), the driver's until
	// drive returns.
	live map[string]int64
}

func newInbound(keys int, url string) *inbound {
	return &inbound{keys: keyspace{size: int64(keys)}, url: url, client: &http.Client{Timeout: 30 * time.Second}, live: map[string]int64{}}
}

type event struct {
	EventID string `json:"eid"`
	ID      string `json:"id"`
	Op      string `json:"op"`
	SKU     string `json:"sku,omitempty"`
	Qty     int    `json:"qty,omitempty"`
	At      int64  `json:"at"`
}

func (in *inbound) drive(ctx context.Context, n, perSecond int) error {
	ops := map[byte]string{'c': "create", 'u': "update", 'd': "delete"}
	return paced(ctx, n, perSecond, 100*time.Millisecond, func(first, count int) error {
		evs := make([]event, 0, count)
		for seq := first; seq < first+count; seq++ {
			op, id := in.keys.next()
			e := event{EventID: fmt.Sprintf("e-%d", seq), ID: fmt.Sprintf("o-%d", id), Op: ops[op], At: time.Now().UnixMilli()}
			sku := fmt.Sprintf("S-%d", id)
			if op == 'd' {
				delete(in.live, sku)
			} else {
				e.SKU, e.Qty = sku, seq+1 // qty 0 would be left out
				in.live[sku] = int64(seq + 1)
			}
			evs = append(evs, e)
		}
		body, err := json.Marshal(map[string]any{"events": evs})
		if err != nil {
			return err
		}
		if err := in.send(ctx, body); err != nil {
			return err
		}
		in.sent.Add(int64(count))
		return nil
	})
}

// send posts one delivery until cdcd answers 200, as a vendor retries.
func (in *inbound) send(ctx context.Context, body []byte) error {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	sig := hex.EncodeToString(m.Sum(nil))
	for attempt := 1; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, in.url, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Signature", sig)
		resp, err := in.client.Do(req)
		if err == nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
			resp.Body.Close()
			switch {
			case resp.StatusCode == http.StatusOK:
				return nil
			case resp.StatusCode != http.StatusServiceUnavailable && resp.StatusCode < 500:
				return fmt.Errorf("webhook delivery answered %d: %s", resp.StatusCode, b)
			}
			err = fmt.Errorf("answered %d", resp.StatusCode)
		}
		if attempt == 20 {
			return fmt.Errorf("webhook delivery: %w, 20 times", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// target is the system's API for the outbound pipeline: POST /items
// answers 201 with the item's own id, PUT and DELETE answer 204, all at
// once. It keeps each live item's last qty.
type target struct {
	url  string
	srv  *http.Server
	mu   sync.Mutex
	live map[string]int64
	seen map[string]int64 // requests by method
}

func startTarget() *target {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	t := &target{url: "http://" + l.Addr().String(), live: map[string]int64{}, seen: map[string]int64{}}
	t.srv = &http.Server{Handler: http.HandlerFunc(t.serve)}
	go func() { _ = t.srv.Serve(l) }()
	return t
}

func (t *target) serve(w http.ResponseWriter, r *http.Request) {
	var item struct {
		ID  json.RawMessage `json:"id"`
		Qty int64           `json:"qty"`
	}
	if r.Method != http.MethodDelete {
		if err := json.NewDecoder(r.Body).Decode(&item); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	}
	id := strings.TrimPrefix(r.URL.Path, "/items/")
	t.mu.Lock()
	t.seen[r.Method]++
	switch r.Method {
	case http.MethodPost:
		id = strings.Trim(string(item.ID), `"`)
		t.live[id] = item.Qty
	case http.MethodPut:
		t.live[id] = item.Qty
	case http.MethodDelete:
		delete(t.live, id)
	}
	t.mu.Unlock()
	if r.Method == http.MethodPost {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"id":"%s"}`, id)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// requests is the number of requests the target answered.
func (t *target) requests() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.seen[http.MethodPost] + t.seen[http.MethodPut] + t.seen[http.MethodDelete]
}

func (t *target) close() { _ = t.srv.Close() }

// arrived returns nil once the target saw every outbound create and
// delete and holds every live item as last written, public.orders holds
// every live order as last sent and cdcd.inbox is empty; else what is
// missing. The target may see fewer updates than were made: the pipeline
// coalesces the pending changes of a record into one write.
func arrived(ctx context.Context, conn *pgx.Conn, t *target, out *outbound, in *inbound) error {
	t.mu.Lock()
	c, u, d := t.seen[http.MethodPost], t.seen[http.MethodPut], t.seen[http.MethodDelete]
	same := maps.Equal(t.live, out.live)
	t.mu.Unlock()
	if c != out.made['c'] || d != out.made['d'] || u > out.made['u'] || !same {
		return fmt.Errorf("the target saw %d creates, %d updates, %d deletes of %d, %d, %d; its items are those last written: %v",
			c, u, d, out.made['c'], out.made['u'], out.made['d'], same)
	}
	rows, _ := conn.Query(ctx, "SELECT sku, qty FROM orders")
	orders := map[string]int64{}
	var sku string
	var qty int64
	if _, err := pgx.ForEachRow(rows, []any{&sku, &qty}, func() error { orders[sku] = qty; return nil }); err != nil {
		return err
	}
	var inbox int64
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM cdcd.inbox").Scan(&inbox); err != nil {
		return err
	}
	if !maps.Equal(orders, in.live) || inbox != 0 {
		return fmt.Errorf("public.orders holds %d rows for %d live orders, as last sent: %v; cdcd.inbox holds %d", len(orders), len(in.live), maps.Equal(orders, in.live), inbox)
	}
	return nil
}
