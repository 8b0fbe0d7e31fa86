// Package deliverytest holds in-memory fakes of delivery's stores for
// tests. Each is safe for concurrent use; Fail makes every later call fail
// until Fail(nil).
package deliverytest

import (
	"context"
	"maps"
	"slices"
	"sync"

	"github.com/cdcd-dev/cdcd/syncstate"
)

// Links is an in-memory syncstate.Links.
type Links struct {
	mu   sync.Mutex
	m    map[syncstate.LinkRef]syncstate.Link
	gets int
	fail error
}

// NewLinks returns an empty store.
func NewLinks() *Links { return &Links{m: map[syncstate.LinkRef]syncstate.Link{}} }

// Get implements syncstate.Links; the links returned are copies.
func (l *Links) Get(_ context.Context, refs []syncstate.LinkRef) (map[syncstate.LinkRef]*syncstate.Link, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.gets++
	if l.fail != nil {
		return nil, l.fail
	}
	out := make(map[syncstate.LinkRef]*syncstate.Link, len(refs))
	for _, ref := range refs {
		if link, ok := l.m[ref]; ok {
			out[ref] = &link
		}
	}
	return out, nil
}

// Put implements syncstate.Links.
func (l *Links) Put(_ context.Context, links []syncstate.Link) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fail != nil {
		return l.fail
	}
	for _, link := range links {
		l.m[syncstate.LinkRef{System: link.System, Object: link.Object, Table: link.Table, Key: link.Key}] = link
	}
	return nil
}

// Seed stores links as they are, even while failing.
func (l *Links) Seed(links ...syncstate.Link) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, link := range links {
		l.m[syncstate.LinkRef{System: link.System, Object: link.Object, Table: link.Table, Key: link.Key}] = link
	}
}

// Link returns the stored link of ref.
func (l *Links) Link(ref syncstate.LinkRef) (syncstate.Link, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	link, ok := l.m[ref]
	return link, ok
}

// Len is the number of links stored.
func (l *Links) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}

// Gets is the number of Get calls so far.
func (l *Links) Gets() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.gets
}

// Fail makes later calls return err (nil: succeed again).
func (l *Links) Fail(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.fail = err
}

// DeadLetters is an in-memory syncstate.DeadLetters. Dead letters stay
// until a replay of them is resolved without an error.
type DeadLetters struct {
	mu       sync.Mutex
	next     int64
	letters  map[int64]syncstate.DeadLetter // still dead
	asked    map[int64]bool                 // to replay, not yet taken
	resolved map[int64]error
	fail     error
}

// NewDeadLetters returns an empty store.
func NewDeadLetters() *DeadLetters {
	return &DeadLetters{letters: map[int64]syncstate.DeadLetter{}, asked: map[int64]bool{}, resolved: map[int64]error{}}
}

// Put implements syncstate.DeadLetters, assigning ids.
func (d *DeadLetters) Put(_ context.Context, letters []syncstate.DeadLetter) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fail != nil {
		return d.fail
	}
	for _, dl := range letters {
		d.next++
		dl.ID = d.next
		d.letters[dl.ID] = dl
	}
	return nil
}

// Replays implements syncstate.DeadLetters: the letters of pipeline asked to
// replay (AskReplay), oldest first, marked as taken.
func (d *DeadLetters) Replays(_ context.Context, pipeline string, limit int) ([]syncstate.DeadLetter, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fail != nil {
		return nil, d.fail
	}
	var out []syncstate.DeadLetter
	for _, id := range slices.Sorted(maps.Keys(d.asked)) {
		dl := d.letters[id]
		if dl.Pipeline != pipeline || len(out) == limit {
			continue
		}
		delete(d.asked, id)
		out = append(out, dl)
	}
	return out, nil
}

// Resolve implements syncstate.DeadLetters. A nil err removes the letter.
func (d *DeadLetters) Resolve(_ context.Context, id int64, err error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fail != nil {
		return d.fail
	}
	d.resolved[id] = err
	if err == nil {
		delete(d.letters, id)
	}
	return nil
}

// AskReplay marks every dead letter of pipeline for replay, as
// "cdcd dlq replay" does, and returns how many.
func (d *DeadLetters) AskReplay(pipeline string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for id, dl := range d.letters {
		if dl.Pipeline == pipeline {
			d.asked[id] = true
			n++
		}
	}
	return n
}

// Letters returns the letters still dead, oldest first.
func (d *DeadLetters) Letters() []syncstate.DeadLetter {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []syncstate.DeadLetter
	for _, id := range slices.Sorted(maps.Keys(d.letters)) {
		out = append(out, d.letters[id])
	}
	return out
}

// Resolved returns the outcome recorded for a replayed letter.
func (d *DeadLetters) Resolved(id int64) (err error, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	err, ok = d.resolved[id]
	return err, ok
}

// Fail makes later calls return err (nil: succeed again).
func (d *DeadLetters) Fail(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.fail = err
}

// Audit is an in-memory syncstate.Audit.
type Audit struct {
	mu   sync.Mutex
	rows []syncstate.Outcome
	fail error
}

// Record implements syncstate.Audit.
func (a *Audit) Record(_ context.Context, outcomes []syncstate.Outcome) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fail != nil {
		return a.fail
	}
	a.rows = append(a.rows, outcomes...)
	return nil
}

// Outcomes returns the rows recorded, in order; with eventID set, only that
// event's.
func (a *Audit) Outcomes(eventID string) []syncstate.Outcome {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []syncstate.Outcome
	for _, o := range a.rows {
		if eventID == "" || o.EventID == eventID {
			out = append(out, o)
		}
	}
	return out
}

// Fail makes later calls return err (nil: succeed again).
func (a *Audit) Fail(err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.fail = err
}

// PendingCreates is an in-memory syncstate.PendingCreates.
type PendingCreates struct {
	mu   sync.Mutex
	m    map[syncstate.LinkRef]bool
	fail error
}

// NewPendingCreates returns an empty store.
func NewPendingCreates() *PendingCreates {
	return &PendingCreates{m: map[syncstate.LinkRef]bool{}}
}

// Pending implements syncstate.PendingCreates.
func (p *PendingCreates) Pending(_ context.Context, refs []syncstate.LinkRef) (map[syncstate.LinkRef]bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail != nil {
		return nil, p.fail
	}
	out := map[syncstate.LinkRef]bool{}
	for _, r := range refs {
		if p.m[r] {
			out[r] = true
		}
	}
	return out, nil
}

// Begin implements syncstate.PendingCreates.
func (p *PendingCreates) Begin(_ context.Context, refs []syncstate.LinkRef) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail != nil {
		return p.fail
	}
	for _, r := range refs {
		p.m[r] = true
	}
	return nil
}

// Settle implements syncstate.PendingCreates.
func (p *PendingCreates) Settle(_ context.Context, refs []syncstate.LinkRef) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail != nil {
		return p.fail
	}
	for _, r := range refs {
		delete(p.m, r)
	}
	return nil
}

// Refs returns the pending refs.
func (p *PendingCreates) Refs() []syncstate.LinkRef {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Collect(maps.Keys(p.m))
}

// Fail makes every later call fail with err (nil heals).
func (p *PendingCreates) Fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fail = err
}
