package delivery_test

import (
	"context"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/delivery"
	"github.com/cdcd-dev/cdcd/delivery/deliverytest"
	"github.com/cdcd-dev/cdcd/syncstate"
)

type txKey struct{}

// txLog notes in which transaction (by number, 0 for none) the stores were
// called.
type txLog struct {
	mu     sync.Mutex
	n      int
	puts   map[string]int // a record's key: the transaction of its link's Put
	audits map[string]int // a record's key: the transaction of its delivered outcome
}

func (l *txLog) tx(ctx context.Context, fn func(ctx context.Context) error) error {
	l.mu.Lock()
	l.n++
	n := l.n
	l.mu.Unlock()
	return fn(context.WithValue(ctx, txKey{}, n))
}

func txOf(ctx context.Context) int {
	n, _ := ctx.Value(txKey{}).(int)
	return n
}

type txLinks struct {
	*deliverytest.Links
	log *txLog
}

func (t txLinks) Put(ctx context.Context, links []syncstate.Link) error {
	t.log.mu.Lock()
	for _, l := range links {
		t.log.puts[l.Key] = txOf(ctx)
	}
	t.log.mu.Unlock()
	return t.Links.Put(ctx, links)
}

type txAudit struct {
	*deliverytest.Audit
	log *txLog
}

func (t txAudit) Record(ctx context.Context, outcomes []syncstate.Outcome) error {
	t.log.mu.Lock()
	for _, o := range outcomes {
		if o.Status == syncstate.StatusDelivered {
			t.log.audits[o.Key] = txOf(ctx)
		}
	}
	t.log.mu.Unlock()
	return t.Audit.Record(ctx, outcomes)
}

// With Stores.Tx, a record's link and its audit event are stored in one
// transaction.
func TestBookkeepingInOneTransaction(t *testing.T) {
	log := &txLog{puts: map[string]int{}, audits: map[string]int{}}
	st := delivery.Stores{
		Links: txLinks{deliverytest.NewLinks(), log}, DeadLetters: deliverytest.NewDeadLetters(),
		Audit: txAudit{&deliverytest.Audit{}, log}, Tx: log.tx,
	}
	p, err := delivery.NewPipeline(delivery.PipelineConfig{Name: "contacts-to-crm", System: "crm", Object: "contacts", Concurrency: 4},
		&mapper{}, newVendor(), st, zerolog.New(zerolog.NewTestWriter(t)), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	var events []cdc.Event
	for k := 1; k <= 20; k++ {
		events = append(events, ev(100, uint32(k), k, cdc.OpCreate, "name", "a"))
	}
	if err := p.Write(context.Background(), events); err != nil {
		t.Fatal(err)
	}
	for k := 1; k <= 20; k++ {
		put, audit := log.puts[keyOf(k)], log.audits[keyOf(k)]
		if put == 0 || put != audit {
			t.Errorf("record %d: link stored in transaction %d, audit event in %d", k, put, audit)
		}
	}
}
