package delivery

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
	"unicode/utf8"

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
	// encoded is the record's fields as the Writer encoded them
	// (Result.Encoded), when they are the fields its link keeps.
	encoded []byte
}

// attempt writes the heads of qs in one Writer call, settles each record
// in the stores through the ledger of b, and advances the queues.
// It calls called once the Writer call is over (or will not be made),
// saying whether qs hold more to write (a retry, a later change): the
// report says the same. The call is reported once, always after called
// (a run that has its last report may return, and called would wait for
// it forever): by reply when it fails before its bookkeeping, otherwise
// by the ledger once the call's bookkeeping is stored, after attempt
// returned: the goroutine that made the call is free for another
// meanwhile. The scheduler does not touch qs until the call is reported.
func (p *Pipeline) attempt(ctx context.Context, qs []*keyQueue, replay bool, b *book, called func(more bool), reply func(report)) {
	freed := false
	more := false
	free := func() {
		if !freed {
			freed = true
			called(more)
		}
	}
	defer free()
	s := newCall(len(qs))
	recs, hold, skip := s.recs, s.hold, s.skip
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
	p.checkVersions(ctx, qs, recs, hold, skip)
	for i, q := range qs {
		if q.items[0].born && recs[i].ExternalID == "" && !q.pending && hold[i] == nil && skip[i] == "" {
			skip[i] = "created and deleted before delivery"
		}
	}
	patched := p.patch(qs, recs, skip)
	if err := p.beginCreates(ctx, qs, recs, hold, skip, replay); err != nil {
		free()
		reply(report{err: err})
		return
	}
	write, at := s.write[:0], s.at[:0]
	for i := range recs {
		if hold[i] == nil && skip[i] == "" {
			write, at = append(write, recs[i]), append(at, i)
		}
	}
	results := s.results
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
		free()
		reply(report{err: ctx.Err()})
		return
	}

	vs := s.vs
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
			if !patched { // the Writer had the fields the link keeps
				v.encoded = results[i].Encoded
			}
			if v.err == nil && p.st.Links != nil && v.extID != recs[i].ExternalID {
				if v.err = linkable(v.extID); v.err != nil {
					v.extID = ""
				}
			}
		}
		if v.skip == "" && cdc.IsTransient(v.err) && !cdc.IsPermanent(v.err) {
			v.it.waits++
		}
		// A call that failed as a whole for the system's sake does not say
		// which record caused it: its records are tried in calls of their
		// own, so that one whose write keeps failing so holds back no other.
		v.it.alone = err != nil && hold[i] == nil && skip[i] == "" && cdc.IsTransient(err) && !cdc.IsPermanent(err)
		switch {
		case v.skip != "", v.err == nil:
		case cdc.IsPermanent(v.err):
			v.class = "permanent"
		case v.it.attempt-v.it.waits >= p.cfg.MaxAttempts:
			v.class = "retries_exhausted"
		case end.Sub(v.it.first) >= p.cfg.MaxAge:
			v.class = "max_age"
		default:
			v.readyAt = end.Add(p.backoff(v.it.attempt, v.err))
			p.log.Debug().Str("event_id", v.it.rec.Event.ID()).Str("op", v.it.rec.Op.String()).Int("attempt", v.it.attempt).
				Float64("retry_in_seconds", v.readyAt.Sub(end).Seconds()).Msg("write failed; retrying the record")
		}
		vs[i] = v
		more = more || !v.readyAt.IsZero() || len(q.items) > 1
	}
	free()
	s.took, s.end, s.replay, s.qs, s.more = took, end, replay, qs, more
	s.forget = p.settleCreates(recs, vs)
	b.in <- &s.settlement
}

// call is what one attempt allocates, in one allocation: its settlement
// and the records it writes. A call of one record (a Writer that takes
// one a call) keeps its slices inline.
type call struct {
	settlement
	recs, write []Record
	hold        []error
	skip        []string
	at          []int
	rec1        [1]Record
	write1      [1]Record
	hold1       [1]error
	skip1       [1]string
	at1         [1]int
	result1     [1]Result
	verdict1    [1]verdict
}

func newCall(n int) *call {
	c := &call{}
	if n == 1 {
		c.recs, c.write, c.hold, c.skip, c.at = c.rec1[:], c.write1[:], c.hold1[:], c.skip1[:], c.at1[:]
		c.results, c.vs = c.result1[:], c.verdict1[:]
		return c
	}
	c.recs, c.write, c.hold, c.skip, c.at = make([]Record, n), make([]Record, n), make([]error, n), make([]string, n), make([]int, n)
	c.results, c.vs = make([]Result, n), make([]verdict, n)
	return c
}

// advance moves the queues of a Writer call's verdicts on, once the
// call's bookkeeping is stored, and returns the call's report.
func (p *Pipeline) advance(qs []*keyQueue, vs []verdict, results []Result, more bool) report {
	r := report{qs: qs, more: more}
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
func (p *Pipeline) link(ref syncstate.LinkRef, it *item, extID, version string, encoded []byte, now time.Time) syncstate.Link {
	l := syncstate.Link{
		System: ref.System, Object: ref.Object, Table: ref.Table, Key: ref.Key,
		ExternalID: extID, Version: storableVersion(version), LSN: it.rec.Event.Pos.CommitLSN, UpdatedAt: now,
	}
	l.Deleted = it.rec.Op == cdc.OpDelete
	if !l.Deleted {
		l.Base, l.BaseJSON = it.rec.Fields, encoded
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

// maxExternalID bounds the external id of a link: the links' unique
// index takes keys of at most 2704 bytes.
const maxExternalID = 1024

// unlinkedError is a record the system took, answering an id that no
// link can hold. Its create, applied, stays pending (see settleCreates).
type unlinkedError struct{ why string }

func (e *unlinkedError) Error() string {
	return "the system answered an id that " + e.why + ", which cdcd cannot link; the record was written to the system unlinked"
}

// linkable reports why a system's answered id cannot be linked: text
// cannot hold it, or the links' index cannot. Linking fails for good.
func linkable(id string) error {
	switch {
	case strings.IndexByte(id, 0) >= 0 || !utf8.ValidString(id):
		return cdc.Permanent(&unlinkedError{"holds NUL or is not UTF-8"})
	case len(id) > maxExternalID:
		return cdc.Permanent(&unlinkedError{fmt.Sprintf("is %d bytes, more than %d", len(id), maxExternalID)})
	}
	return nil
}

// storableVersion is the system's version of a record as its link keeps
// it: none ("", compared as unknown) when text cannot hold it (a NUL,
// invalid UTF-8). Stored, it would fail the links of the record's whole
// group at every try, though the system took the record.
func storableVersion(v string) string {
	if strings.IndexByte(v, 0) >= 0 || !utf8.ValidString(v) {
		return ""
	}
	return v
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
