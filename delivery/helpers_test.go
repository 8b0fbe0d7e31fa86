package delivery_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/delivery"
	"github.com/cdcd-dev/cdcd/delivery/deliverytest"
	"github.com/cdcd-dev/cdcd/syncstate"
)

// ev is a change to public.contacts row id=key in transaction lsn; fields
// are "name=value" pairs of string columns.
func ev(lsn uint64, idx uint32, key int, op cdc.Op, fields ...string) cdc.Event {
	id := json.RawMessage(strconv.Itoa(key))
	e := cdc.Event{
		Op: op, Source: cdc.SourcePostgres, Schema: "public", Table: "contacts",
		Key: cdc.Row{{Name: "id", Value: id}}, Pos: cdc.Position{CommitLSN: cdc.LSN(lsn), Index: idx},
		CommitTime: time.Unix(1700000000, 0),
	}
	if op == cdc.OpDelete {
		e.Before = e.Key
		return e
	}
	e.After = cdc.Row{{Name: "id", Value: id}}
	for _, f := range fields {
		name, value, _ := strings.Cut(f, "=")
		v, _ := json.Marshal(value)
		e.After = append(e.After, cdc.Field{Name: name, Value: v})
	}
	return e
}

func keyOf(key int) string { return fmt.Sprintf(`{"id":%d}`, key) }

func refOf(key int) syncstate.LinkRef {
	return syncstate.LinkRef{System: "crm", Object: "contacts", Table: "public.contacts", Key: keyOf(key)}
}

// mapper maps every After column but id; a column "skip" filters the event
// out, a column "bad" fails while broken is set.
type mapper struct{ broken atomic.Bool }

func (m *mapper) Map(_ context.Context, e *cdc.Event) (delivery.Record, bool, error) {
	rec := delivery.Record{}
	if e.Op == cdc.OpDelete {
		return rec, true, nil
	}
	rec.Fields = map[string]any{}
	for _, f := range e.After {
		switch f.Name {
		case "id":
			continue
		case "skip":
			return rec, false, nil
		case "bad":
			if m.broken.Load() {
				return rec, false, errors.New(`unknown column "bad"`)
			}
		}
		var v any
		if err := json.Unmarshal(f.Value, &v); err != nil {
			return rec, false, err
		}
		rec.Fields[f.Name] = v
	}
	return rec, true, nil
}

// vendor is a fake system. It upserts by key (a unique property), refuses
// ids it does not know (404, permanent), and records what it saw: the
// events applied per key, attempts per event, and any violation of the
// Writer contract (two writes to one key at once, two records of one key
// in one call, a call larger than MaxBatch).
type vendor struct {
	batch int           // MaxBatch when wrapped in batching
	every bool          // EveryChange: compare-and-set writes, never coalesced
	delay time.Duration // latency of each call
	// fail, when set, decides the error of each record's attempt (1-based).
	fail func(r delivery.Record, attempt int) error
	// callFail, when set, fails whole calls (1-based); with applied the
	// records were applied anyway (the outcome was unknown to the caller).
	callFail func(call int) (err error, applied bool)

	mu         sync.Mutex
	calls      int
	inflight   map[string]bool
	active     int
	maxActive  int
	violations []string
	attempts   map[string][]time.Time // event id → attempt times
	applied    map[string][]string    // key → event ids applied, in order
	seen       []delivery.Record      // records applied, in order
	byKey      map[string]string      // key → external id
	state      map[string]map[string]any
	deleted    map[string]bool
	creates    map[string]int
	nextID     int
}

func (v *vendor) EveryChange() bool { return v.every }

func newVendor() *vendor {
	return &vendor{
		inflight: map[string]bool{}, attempts: map[string][]time.Time{}, applied: map[string][]string{},
		byKey: map[string]string{}, state: map[string]map[string]any{}, deleted: map[string]bool{}, creates: map[string]int{},
	}
}

// batching makes v a delivery.Batcher.
type batching struct{ *vendor }

func (b batching) MaxBatch() int { return b.batch }

func (v *vendor) Write(ctx context.Context, recs []delivery.Record) ([]delivery.Result, error) {
	v.mu.Lock()
	v.calls++
	call := v.calls
	v.active++
	v.maxActive = max(v.maxActive, v.active)
	if limit := max(v.batch, 1); len(recs) > limit {
		v.violations = append(v.violations, fmt.Sprintf("call of %d records, max %d", len(recs), limit))
	}
	inCall := map[string]bool{}
	for _, r := range recs {
		if inCall[r.Key] {
			v.violations = append(v.violations, "two records of key "+r.Key+" in one call")
		}
		if v.inflight[r.Key] {
			v.violations = append(v.violations, "concurrent writes to key "+r.Key)
		}
		inCall[r.Key], v.inflight[r.Key] = true, true
	}
	v.mu.Unlock()
	defer func() {
		v.mu.Lock()
		for k := range inCall {
			delete(v.inflight, k)
		}
		v.active--
		v.mu.Unlock()
	}()
	if v.delay > 0 {
		select {
		case <-time.After(v.delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}

	v.mu.Lock()
	defer v.mu.Unlock()
	var callErr error
	if v.callFail != nil {
		var applied bool
		if callErr, applied = v.callFail(call); callErr != nil && !applied {
			return nil, callErr
		}
	}
	res := make([]delivery.Result, len(recs))
	for i, r := range recs {
		id := r.Event.ID()
		v.attempts[id] = append(v.attempts[id], time.Now())
		if v.fail != nil {
			if err := v.fail(r, len(v.attempts[id])); err != nil {
				res[i].Err = err
				continue
			}
		}
		res[i] = v.apply(r)
	}
	return res, callErr
}

func (v *vendor) apply(r delivery.Record) delivery.Result {
	ext := r.ExternalID
	if ext != "" && (v.deleted[ext] || v.state[ext] == nil) {
		return delivery.Result{Err: cdc.Permanent(fmt.Errorf("HTTP 404: no contact %s", ext))}
	}
	v.seen = append(v.seen, r)
	v.applied[r.Key] = append(v.applied[r.Key], r.Event.ID())
	if r.Op == cdc.OpDelete {
		if ext != "" {
			delete(v.state, ext)
			v.deleted[ext] = true
			delete(v.byKey, r.Key)
		}
		return delivery.Result{ExternalID: ext}
	}
	if ext == "" {
		ext = v.byKey[r.Key]
	}
	if ext == "" {
		v.nextID++
		ext = fmt.Sprintf("ext-%d", v.nextID)
		v.byKey[r.Key] = ext
		v.creates[r.Key]++
		v.state[ext] = map[string]any{}
	}
	maps.Copy(v.state[ext], r.Fields)
	return delivery.Result{ExternalID: ext, Version: "v" + strconv.Itoa(len(v.seen))}
}

// fields returns the vendor's current fields of key.
func (v *vendor) fields(key int) map[string]any {
	v.mu.Lock()
	defer v.mu.Unlock()
	return maps.Clone(v.state[v.byKey[keyOf(key)]])
}

func (v *vendor) appliedTo(key int) []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]string(nil), v.applied[keyOf(key)]...)
}

func (v *vendor) attemptTimes(eventID string) []time.Time {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]time.Time(nil), v.attempts[eventID]...)
}

func (v *vendor) records() []delivery.Record {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]delivery.Record(nil), v.seen...)
}

func (v *vendor) checkContract(t *testing.T) {
	t.Helper()
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, s := range v.violations {
		t.Error("writer contract violated:", s)
	}
}

type harness struct {
	p     *delivery.Pipeline
	v     *vendor
	m     *mapper
	links *deliverytest.Links
	dead  *deliverytest.DeadLetters
	audit *deliverytest.Audit
	reg   *prometheus.Registry
}

// newHarness builds a pipeline on w (v, or v wrapped) with fast retries;
// cfg's zero fields get test defaults.
func newHarness(t *testing.T, cfg delivery.PipelineConfig, v *vendor) *harness {
	t.Helper()
	h := &harness{
		v: v, m: &mapper{}, links: deliverytest.NewLinks(), dead: deliverytest.NewDeadLetters(),
		audit: &deliverytest.Audit{}, reg: prometheus.NewRegistry(),
	}
	cfg.Name, cfg.System, cfg.Object = "contacts-to-crm", "crm", "contacts"
	cfg.MinBackoff = cmpOr(cfg.MinBackoff, time.Millisecond)
	cfg.MaxBackoff = cmpOr(cfg.MaxBackoff, 5*time.Millisecond)
	var w delivery.Writer = v
	if v.batch > 1 {
		w = batching{v}
	}
	p, err := delivery.NewPipeline(cfg, h.m, w, delivery.Stores{Links: h.links, DeadLetters: h.dead, Audit: h.audit},
		zerolog.New(zerolog.NewTestWriter(t)), h.reg)
	if err != nil {
		t.Fatal(err)
	}
	h.p = p
	t.Cleanup(func() { v.checkContract(t) })
	return h
}

func cmpOr(v, def time.Duration) time.Duration {
	if v == 0 {
		return def
	}
	return v
}

func (h *harness) write(t *testing.T, events ...cdc.Event) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := h.p.Write(ctx, events); err != nil {
		t.Fatalf("Write: %v", err)
	}
}

// statuses lists an event's audit statuses with attempt numbers.
func (h *harness) statuses(eventID string) []string {
	var out []string
	for _, o := range h.audit.Outcomes(eventID) {
		out = append(out, fmt.Sprintf("%s#%d", o.Status, o.Attempt))
	}
	return out
}

// counter returns the value of a counter or gauge series with the given
// labels.
func (h *harness) counter(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if want, ok := labels[l.GetName()]; ok && want != l.GetValue() {
					continue metric
				}
			}
			if g := m.GetGauge(); g != nil {
				return g.GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

func transient(msg string) error { return errors.New(msg) }

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
