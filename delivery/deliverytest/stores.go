// Package deliverytest holds in-memory fakes of delivery's stores for
// tests. Each is safe for concurrent use; Fail makes every later call fail
// until Fail(nil).
package deliverytest

import (
	"context"
	"maps"
	"slices"
	"sync"

	"github.com/cdcd-dev/cdcd/delivery"
)

// Links is an in-memory delivery.Links.
type Links struct {
	mu   sync.Mutex
	m    map[delivery.LinkRef]delivery.Link
	gets int
	fail error
}

// NewLinks returns an empty store.
func NewLinks() *Links { return &Links{m: map[delivery.LinkRef]delivery.Link{}} }

// Get implements delivery.Links; the links returned are copies.
func (l *Links) Get(_ context.Context, refs []delivery.LinkRef) (map[delivery.LinkRef]*delivery.Link, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.gets++
	if l.fail != nil {
		return nil, l.fail
	}
	out := make(map[delivery.LinkRef]*delivery.Link, len(refs))
	for _, ref := range refs {
		if link, ok := l.m[ref]; ok {
			out[ref] = &link
		}
	}
	return out, nil
}

// Put implements delivery.Links.
func (l *Links) Put(_ context.Context, links []delivery.Link) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fail != nil {
		return l.fail
	}
	for _, link := range links {
		l.m[delivery.LinkRef{System: link.System, Object: link.Object, Table: link.Table, Key: link.Key}] = link
	}
	return nil
}

// Seed stores links as they are, even while failing.
func (l *Links) Seed(links ...delivery.Link) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, link := range links {
		l.m[delivery.LinkRef{System: link.System, Object: link.Object, Table: link.Table, Key: link.Key}] = link
	}
}

// Link returns the stored link of ref.
func (l *Links) Link(ref delivery.LinkRef) (delivery.Link, bool) {
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

// DeadLetters is an in-memory delivery.DeadLetters. Dead letters stay
// until a replay of them is resolved without an error.
type DeadLetters struct {
	mu       sync.Mutex
	next     int64
	letters  map[int64]delivery.DeadLetter // still dead
	asked    map[int64]bool                // to replay, not yet taken
	resolved map[int64]error
	fail     error
}

// NewDeadLetters returns an empty store.
func NewDeadLetters() *DeadLetters {
	return &DeadLetters{letters: map[int64]delivery.DeadLetter{}, asked: map[int64]bool{}, resolved: map[int64]error{}}
}

// Put implements delivery.DeadLetters, assigning ids.
func (d *DeadLetters) Put(_ context.Context, letters []delivery.DeadLetter) error {
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

// Replays implements delivery.DeadLetters: the letters of pipeline asked to
// replay (AskReplay), oldest first, marked as taken.
func (d *DeadLetters) Replays(_ context.Context, pipeline string, limit int) ([]delivery.DeadLetter, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fail != nil {
		return nil, d.fail
	}
	var out []delivery.DeadLetter
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

// Resolve implements delivery.DeadLetters. A nil err removes the letter.
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
func (d *DeadLetters) Letters() []delivery.DeadLetter {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []delivery.DeadLetter
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

// Audit is an in-memory delivery.Audit.
type Audit struct {
	mu   sync.Mutex
	rows []delivery.Outcome
	fail error
}

// Record implements delivery.Audit.
func (a *Audit) Record(_ context.Context, outcomes []delivery.Outcome) error {
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
func (a *Audit) Outcomes(eventID string) []delivery.Outcome {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []delivery.Outcome
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

// PendingCreates is an in-memory delivery.PendingCreates.
type PendingCreates struct {
	mu   sync.Mutex
	m    map[delivery.LinkRef]bool
	fail error
}

// NewPendingCreates returns an empty store.
func NewPendingCreates() *PendingCreates {
	return &PendingCreates{m: map[delivery.LinkRef]bool{}}
}

// Pending implements delivery.PendingCreates.
func (p *PendingCreates) Pending(_ context.Context, refs []delivery.LinkRef) (map[delivery.LinkRef]bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail != nil {
		return nil, p.fail
	}
	out := map[delivery.LinkRef]bool{}
	for _, r := range refs {
		if p.m[r] {
			out[r] = true
		}
	}
	return out, nil
}

// Begin implements delivery.PendingCreates.
func (p *PendingCreates) Begin(_ context.Context, refs []delivery.LinkRef) error {
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

// Settle implements delivery.PendingCreates.
func (p *PendingCreates) Settle(_ context.Context, refs []delivery.LinkRef) error {
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
func (p *PendingCreates) Refs() []delivery.LinkRef {
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
