package inbox

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/jackc/pgx/v5"
)

// Run hands the inbox's changes to pub in arrival order, starting with
// what an earlier run left, and deletes each once pub acknowledged it. A
// nack makes it read again from the oldest change still in the inbox, so
// nothing is skipped; a change may then be handed over twice, which the
// apply path tolerates (stale versions and equal values change nothing).
// Run returns nil when ctx ends, after deleting what was acknowledged.
func (b *Inbox) Run(ctx context.Context, pub cdc.Publisher) error {
	p := &pump{
		b: b, slots: make(chan struct{}, b.cfg.MaxInFlight),
		settled: make(chan struct{}, 1),
	}
	defer p.flush(context.WithoutCancel(ctx))
	tick := time.NewTicker(deleteEvery)
	defer tick.Stop()
	idle := time.NewTimer(poll)
	defer idle.Stop()
	var last int64
	for {
		if p.nacked() {
			// Everything handed over must settle before reading again,
			// or a change could be handed over while its first copy is
			// still in flight, out of order.
			if err := p.drain(ctx, tick.C); err != nil {
				return nil
			}
			last = 0
		}
		n, err := p.read(ctx, pub, &last)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			b.log.Warn().Err(err).Msg("read inbox; retrying")
		}
		if n == readBatch && err == nil {
			p.maybeFlush(ctx)
			continue
		}
		idle.Reset(poll)
		select {
		case <-ctx.Done():
			return nil
		case <-b.wake:
		case <-idle.C:
		case <-p.settled:
		case <-tick.C:
			p.maybeFlush(ctx)
		}
	}
}

type pump struct {
	b     *Inbox
	slots chan struct{} // one per change in flight

	mu      sync.Mutex
	acked   []int64
	nack    bool
	settled chan struct{} // signalled on a nack
}

// read hands over up to readBatch rows after *last.
func (p *pump) read(ctx context.Context, pub cdc.Publisher, last *int64) (int, error) {
	rows, err := p.b.pool.Query(ctx, `SELECT id, key, envelope FROM cdcd.inbox WHERE deployment = $1 AND id > $2 ORDER BY id LIMIT $3`,
		p.b.cfg.Deployment, *last, readBatch)
	if err != nil {
		return 0, err
	}
	var (
		id            int64
		key, envelope []byte
		events        []cdc.Event
		n             int
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &key, &envelope}, func() error {
		n++
		*last = id
		e, err := cdc.ParseEnvelope(key, envelope)
		if err != nil {
			// Only a row written by something other than Accept can fail
			// here; it stays in the table for an operator to look at.
			p.b.m.unreadable.Inc()
			p.b.log.Error().Err(err).Int64("id", id).Msg("cdcd.inbox row cannot be read; skipped and kept")
			return nil
		}
		e.Ack = &rowAck{p: p, id: id}
		events = append(events, e)
		return nil
	})
	if err != nil {
		return n, err
	}
	for range events {
		select {
		case p.slots <- struct{}{}:
		case <-ctx.Done():
			return n, ctx.Err()
		}
	}
	if len(events) == 0 {
		return n, nil
	}
	if err := pub.Publish(ctx, events); err != nil {
		for range events {
			<-p.slots
		}
		p.mu.Lock()
		p.nack = true
		p.mu.Unlock()
		return n, fmt.Errorf("hand %d changes to the bus: %w", len(events), err)
	}
	p.b.m.handed.Add(float64(len(events)))
	return n, nil
}

type rowAck struct {
	p  *pump
	id int64
}

func (a *rowAck) Ack(err error) {
	p := a.p
	p.mu.Lock()
	if err == nil {
		p.acked = append(p.acked, a.id)
	} else if !p.nack {
		p.nack = true
		select {
		case p.settled <- struct{}{}:
		default:
		}
	}
	p.mu.Unlock()
	<-p.slots
}

func (p *pump) nacked() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.nack
}

// drain waits until nothing is in flight, deleting what was acknowledged,
// and clears the nack.
func (p *pump) drain(ctx context.Context, tick <-chan time.Time) error {
	for len(p.slots) > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick:
			p.maybeFlush(ctx)
		}
	}
	p.flush(ctx)
	p.mu.Lock()
	p.nack = false
	p.mu.Unlock()
	p.b.log.Warn().Msg("the bus refused inbox changes; reading again from the oldest one left")
	return nil
}

// maybeFlush deletes acknowledged rows, logging a failure: they are
// deleted at the next try, or handed over again after a restart.
func (p *pump) maybeFlush(ctx context.Context) {
	if err := p.flush(ctx); err != nil && ctx.Err() == nil {
		p.b.log.Warn().Err(err).Msg("delete delivered inbox rows; retrying")
	}
}

func (p *pump) flush(ctx context.Context) error {
	p.mu.Lock()
	ids := p.acked
	p.acked = nil
	p.mu.Unlock()
	if len(ids) == 0 {
		return nil
	}
	tag, err := p.b.pool.Exec(ctx, `DELETE FROM cdcd.inbox WHERE deployment = $1 AND id = ANY($2)`, p.b.cfg.Deployment, ids)
	if err != nil {
		p.mu.Lock()
		p.acked = slices.Concat(p.acked, ids)
		p.mu.Unlock()
		return err
	}
	p.b.m.pending.Sub(float64(tag.RowsAffected()))
	p.b.m.delivered.Add(float64(tag.RowsAffected()))
	return nil
}
