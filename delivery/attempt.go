package delivery

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/syncstate"
)

// verdict is what became of one record in one Writer call.
type verdict struct {
	q       *keyQueue
	it      *item
	err     error  // nil when delivered or skipped
	skip    string // why the record was not written and never will be
	class   string // why a failed record is dead: permanent, retries_exhausted, max_age
	extID   string
	readyAt time.Time // retry time; zero when delivered or dead
}

// attempt writes the heads of qs in one Writer call, settles each record in
// the stores, and advances the queues. The scheduler does not touch qs
// until the report is sent.
func (p *Pipeline) attempt(ctx context.Context, qs []*keyQueue, replay bool) report {
	recs := make([]Record, len(qs))
	start := time.Now()
	for i, q := range qs {
		it := q.items[0]
		if it.attempt == 0 {
			it.first = start
		}
		it.attempt++
		recs[i] = it.rec
		recs[i].ExternalID = q.externalID(it.rec.Op)
	}
	hold, skip := p.checkVersions(ctx, qs, recs)
	for i, q := range qs {
		if q.items[0].born && recs[i].ExternalID == "" && !q.pending && hold[i] == nil && skip[i] == "" {
			skip[i] = "created and deleted before delivery"
		}
	}
	p.patch(qs, recs, skip)
	if err := p.beginCreates(ctx, qs, recs, hold, skip, replay); err != nil {
		return report{err: err}
	}
	var write []Record
	var at []int
	for i := range recs {
		if hold[i] == nil && skip[i] == "" {
			write, at = append(write, recs[i]), append(at, i)
		}
	}
	results := make([]Result, len(recs))
	var err error
	if len(write) > 0 {
		var written []Result
		written, err = p.w.Write(ctx, write)
		if err == nil && len(written) != len(write) {
			err = fmt.Errorf("writer returned %d results for %d records", len(written), len(write))
		}
		if err == nil {
			for k, i := range at {
				results[i] = written[k]
			}
		}
	}
	end := time.Now()
	took := end.Sub(start)
	p.met.writeSeconds.Observe(took.Seconds())
	if ctx.Err() != nil {
		return report{err: ctx.Err()}
	}

	vs := make([]verdict, len(qs))
	for i, q := range qs {
		v := verdict{q: q, it: q.items[0], err: err, skip: skip[i]}
		switch {
		case skip[i] != "":
			v.err = nil
		case hold[i] != nil:
			v.err = hold[i]
		case err == nil:
			v.err = results[i].Err
			v.extID = firstNonEmpty(results[i].ExternalID, recs[i].ExternalID)
		}
		switch {
		case v.skip != "", v.err == nil:
		case cdc.IsPermanent(v.err):
			v.class = "permanent"
		case v.it.attempt >= p.cfg.MaxAttempts:
			v.class = "retries_exhausted"
		case end.Sub(v.it.first) >= p.cfg.MaxAge:
			v.class = "max_age"
		default:
			v.readyAt = end.Add(p.backoff(v.it.attempt, v.err))
		}
		vs[i] = v
	}
	settled := p.settleCreates(recs, vs)
	if err := p.settle(ctx, vs, results, took, end, replay); err != nil {
		return report{err: err}
	}
	if err := p.forgetCreates(ctx, settled); err != nil {
		return report{err: err}
	}

	r := report{qs: qs}
	skipped := 0
	for i, v := range vs {
		q := v.q
		switch {
		case !v.readyAt.IsZero():
			q.readyAt = v.readyAt
			r.stats.retried++
			continue
		case v.skip != "":
			skipped++
		case v.err == nil:
			q.extID = v.extID
			q.deleted = v.it.rec.Op == cdc.OpDelete
			if ver := parseVersion(results[i].Version); !ver.IsZero() {
				q.version = ver
			}
			if q.deleted {
				q.base = nil
			} else {
				q.base = v.it.rec.Fields
			}
			r.stats.delivered++
		default:
			p.logDead(v.it, v.class)
			r.stats.dead++
		}
		q.items[0] = nil
		q.items = q.items[1:]
		q.readyAt = time.Time{}
		r.resolved++
	}
	p.met.delivered.Add(float64(r.stats.delivered))
	p.met.retried.Add(float64(r.stats.retried))
	p.met.dead.Add(float64(r.stats.dead))
	p.met.skipped.Add(float64(skipped))
	return r
}

// settle records the verdicts: links for delivered records, dead letters
// (or, for a replay, the dead letters' resolution), and the audit trail.
// A delivered record whose link would claim an external id another local
// record holds becomes a dead letter (see putLinks).
func (p *Pipeline) settle(ctx context.Context, vs []verdict, results []Result, took time.Duration, now time.Time, replay bool) error {
	var links []syncstate.Link
	for i, v := range vs {
		if v.skip != "" || v.err != nil {
			continue
		}
		if ref, ok := v.it.ref(p.cfg.System); ok && v.extID != "" {
			links = append(links, p.link(ref, v.it, v.extID, results[i].Version, now))
		}
	}
	if len(links) > 0 && p.st.Links != nil {
		refused, err := p.putLinks(ctx, links)
		if err != nil {
			return fmt.Errorf("store %d links: %w", len(links), err)
		}
		for i := range vs {
			v := &vs[i]
			ref, ok := v.it.ref(p.cfg.System)
			if c := refused[ref]; ok && c != nil && v.skip == "" && v.err == nil {
				v.err, v.class, v.extID = claimError(c), "permanent", ""
			}
		}
	}
	var letters []syncstate.DeadLetter
	outcomes := make([]syncstate.Outcome, 0, len(vs))
	for _, v := range vs {
		it := v.it
		switch {
		case v.skip != "":
			outcomes = append(outcomes, p.outcome(it, syncstate.StatusSkipped, now, took, v.skip))
		case v.err == nil:
			status := syncstate.StatusDelivered
			if replay {
				status = syncstate.StatusReplayed
			}
			outcomes = append(outcomes, p.outcome(it, status, now, took, ""))
		case !v.readyAt.IsZero():
			outcomes = append(outcomes, p.outcome(it, syncstate.StatusRetried, now, took, errorText(v.err)))
		default:
			dl := p.deadLetter(it, v.err, now)
			letters = append(letters, dl)
			outcomes = append(outcomes, p.outcome(it, syncstate.StatusDeadLettered, now, took, dl.Error))
		}
	}
	if replay {
		if err := p.resolve(ctx, vs); err != nil {
			return err
		}
	} else if err := p.putDeadLetters(ctx, letters); err != nil {
		return err
	}
	if err := p.replayClaims(ctx, vs); err != nil {
		return err
	}
	if err := p.releaseHeldVerdicts(ctx, vs); err != nil {
		return err
	}
	return p.audit(ctx, outcomes)
}

// resolve records the outcome of replayed dead letters that are settled.
func (p *Pipeline) resolve(ctx context.Context, vs []verdict) error {
	for _, v := range vs {
		if !v.readyAt.IsZero() || v.it.letter == nil {
			continue
		}
		var rerr error
		if v.err != nil {
			rerr = errors.New(errorText(v.err))
		}
		if err := p.st.DeadLetters.Resolve(ctx, v.it.letter.ID, rerr); err != nil {
			return fmt.Errorf("resolve dead letter %d: %w", v.it.letter.ID, err)
		}
	}
	return nil
}

// link is the link after a successful write. A delete keeps the link,
// Deleted: its id, and no Base.
func (p *Pipeline) link(ref syncstate.LinkRef, it *item, extID, version string, now time.Time) syncstate.Link {
	l := syncstate.Link{
		System: ref.System, Object: ref.Object, Table: ref.Table, Key: ref.Key,
		ExternalID: extID, Version: version, LSN: it.rec.Event.Pos.CommitLSN, UpdatedAt: now,
	}
	l.Deleted = it.rec.Op == cdc.OpDelete
	if !l.Deleted {
		l.Base = it.rec.Fields
		if l.Base == nil {
			l.Base = map[string]any{}
		}
	}
	return l
}

// backoff is the delay before attempt+1: uniform between MinBackoff and
// MinBackoff·2^(attempt-1) capped at MaxBackoff, and never sooner than the
// error's cdc.RetryAfter.
func (p *Pipeline) backoff(attempt int, err error) time.Duration {
	lo, hi := p.cfg.MinBackoff, p.cfg.MaxBackoff
	ceil := lo
	for i := 1; i < attempt && ceil < hi; i++ {
		if ceil > hi/2 {
			ceil = hi
			break
		}
		ceil *= 2
	}
	ceil = min(ceil, hi)
	d := lo + rand.N(ceil-lo+1)
	if after, ok := cdc.RetryAfterOf(err); ok && after > d {
		d = after
	}
	return d
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
