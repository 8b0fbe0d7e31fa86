package delivery

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/syncstate"
)

// replayBatch is how many dead letters one ReplayDeadLetters takes.
const replayBatch = 100

// ReplayDeadLetters takes up to 100 of the pipeline's dead letters that an
// operator asked to replay (DeadLetters.Replays) and writes them again
// through the same path as Write: links looked up again, per-key order,
// retries, the audit trail (StatusReplayed once delivered).
//
// Every letter taken is resolved. Resolve(id, nil): it was delivered, or a
// newer change to the record (a higher commit LSN on its link) was
// delivered since, so writing the letter would undo it. Resolve(id, err):
// it failed permanently again or ran out of retries, and stays dead. A
// letter whose event could not be mapped (Attempts 0) is mapped again.
//
// Replays and Writes of one pipeline run one at a time. It returns how
// many letters it took. An error means ctx ended or a store failed; the
// letters not yet resolved stay taken.
func (p *Pipeline) ReplayDeadLetters(ctx context.Context) (int, error) {
	if p.closed.Load() {
		return 0, errClosed
	}
	if p.st.DeadLetters == nil {
		return 0, nil
	}
	// Every Write that prepared before is over (its calls and its
	// bookkeeping) before the turn is taken, and none prepares meanwhile.
	if err := take(ctx, p.prep); err != nil {
		return 0, err
	}
	defer func() { <-p.prep }()
	if err := p.tails.wait(ctx); err != nil {
		return 0, err
	}
	if err := take(ctx, p.turn); err != nil {
		return 0, err
	}
	defer func() { <-p.turn }()
	letters, err := p.st.DeadLetters.Replays(ctx, p.cfg.Name, replayBatch)
	if err != nil {
		return 0, fmt.Errorf("take dead letters to replay: %w", err)
	}
	defer func() {
		if ctx.Err() != nil {
			p.release(ctx, letters)
		}
	}()
	if len(letters) == 0 {
		return 0, nil
	}
	now := time.Now()
	items := make([]*item, 0, len(letters))
	var outcomes []syncstate.Outcome
	for i := range letters {
		dl := &letters[i]
		it, err := p.rebuild(ctx, dl)
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		if err == nil && it != nil {
			items = append(items, it)
			continue
		}
		status, reason := syncstate.StatusSkipped, "filtered on replay"
		if err != nil {
			status, reason = syncstate.StatusDeadLettered, errorText(err)
			err = errors.New(reason)
		}
		if rerr := p.st.DeadLetters.Resolve(ctx, dl.ID, err); rerr != nil {
			return 0, fmt.Errorf("resolve dead letter %d: %w", dl.ID, rerr)
		}
		outcomes = append(outcomes, p.letterOutcome(dl, status, now, reason))
	}
	links, err := p.lookup(ctx, items)
	if err != nil {
		return 0, err
	}
	kept := items[:0]
	for _, it := range items {
		if !p.superseded(it, links) {
			kept = append(kept, it)
			continue
		}
		if err := p.st.DeadLetters.Resolve(ctx, it.letter.ID, nil); err != nil {
			return 0, fmt.Errorf("resolve dead letter %d: %w", it.letter.ID, err)
		}
		outcomes = append(outcomes, p.outcome(it, syncstate.StatusSkipped, now, 0, "superseded by a newer delivered change"))
	}
	if err := p.audit(ctx, outcomes); err != nil {
		return 0, err
	}
	for _, o := range outcomes {
		if o.Status == syncstate.StatusSkipped {
			p.met.skipped.Inc()
		}
	}
	st, err := p.deliver(ctx, kept, links, true, nil)
	if err != nil {
		return 0, fmt.Errorf("replay %d dead letters to %s: %w", len(kept), p.cfg.System, err)
	}
	p.log.Info().Int("taken", len(letters)).Int("delivered", st.delivered).
		Int("still_dead", st.dead).Msg("dead letters replayed")
	return len(letters), nil
}

// release hands the letters taken and not yet resolved back to the store,
// so that the next start replays them at once instead of after the lease.
func (p *Pipeline) release(ctx context.Context, letters []syncstate.DeadLetter) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	released := 0
	for i := range letters {
		// A letter already resolved is no longer replaying: the store
		// refuses it, and it keeps its outcome.
		if p.st.DeadLetters.Resolve(rctx, letters[i].ID, syncstate.ErrReplayInterrupted) == nil {
			released++
		}
	}
	p.log.Info().Int("released", released).Msg("dead-letter replay interrupted; letters left to replay on the next start")
}

// RunReplays calls ReplayDeadLetters every interval (default 10s) until
// ctx ends, as long as full batches come back. Failures are logged and
// tried again at the next tick. It returns nil when ctx ends or the
// pipeline is closed.
func (p *Pipeline) RunReplays(ctx context.Context, every time.Duration) error {
	if every <= 0 {
		every = 10 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		for {
			n, err := p.ReplayDeadLetters(ctx)
			switch {
			case errors.Is(err, errClosed):
				return nil
			case err != nil:
				if ctx.Err() == nil {
					p.log.Warn().Err(err).Msg("dead-letter replay failed; retrying at the next tick")
				}
			case n == replayBatch:
				continue
			}
			break
		}
	}
}

// rebuild turns a dead letter back into an item; nil when the Mapper now
// skips its event.
func (p *Pipeline) rebuild(ctx context.Context, dl *syncstate.DeadLetter) (*item, error) {
	e, err := eventOf(dl)
	if err != nil {
		return nil, err
	}
	if dl.Attempts == 0 {
		rec, ok, err := p.m.Map(ctx, e)
		if err != nil {
			return nil, fmt.Errorf("map: %w", err)
		}
		if !ok {
			return nil, nil
		}
		it := p.newItem(e, rec, &tables{})
		it.letter = dl
		return it, nil
	}
	fields, err := decodeFields(dl.Record)
	if err != nil {
		return nil, fmt.Errorf("decode dead letter %d record: %w", dl.ID, err)
	}
	rec := Record{Event: e, Op: dl.Op, Object: dl.Object, Key: dl.Key, Fields: fields}
	it := newItemOf(rec, dl.Table)
	it.letter = dl
	return it, nil
}

// superseded reports whether a newer change to the replayed record was
// delivered since it was dead-lettered.
func (p *Pipeline) superseded(it *item, links map[syncstate.LinkRef]*syncstate.Link) bool {
	ref, ok := it.ref(p.cfg.System)
	if !ok {
		return false
	}
	l := links[ref]
	lsn := it.rec.Event.Pos.CommitLSN
	return l != nil && lsn != 0 && l.LSN > lsn
}

func (p *Pipeline) letterOutcome(dl *syncstate.DeadLetter, s syncstate.Status, now time.Time, msg string) syncstate.Outcome {
	return syncstate.Outcome{
		At: now, Pipeline: p.cfg.Name, System: p.cfg.System, Object: dl.Object,
		Key: dl.Key, EventID: dl.EventID, Op: dl.Op, Status: s, Error: msg,
	}
}

// eventOf rebuilds a dead letter's event from its envelope with the one
// envelope codec (cdc.ParseEnvelope), so a replayed change is the original
// one: inbound block, origin and position included.
func eventOf(dl *syncstate.DeadLetter) (*cdc.Event, error) {
	if len(bytes.TrimSpace(dl.Event)) == 0 {
		return nil, fmt.Errorf("dead letter %d has no event to replay", dl.ID)
	}
	e, err := cdc.ParseEnvelope([]byte(dl.Key), dl.Event)
	if err != nil {
		return nil, fmt.Errorf("decode dead letter %d: %w", dl.ID, err)
	}
	if e.ID() != dl.EventID {
		e.DeliveryID = dl.EventID
	}
	return &e, nil
}

// decodeFields decodes a dead letter's record fields; numbers stay exact
// (json.Number).
func decodeFields(raw json.RawMessage) (map[string]any, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var fields map[string]any
	if err := dec.Decode(&fields); err != nil {
		return nil, err
	}
	return fields, nil
}
