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

// versionSlack is how much newer than the link's version the system's may
// be and still count as cdcd's own last sync: the two clocks of one write
// (the write's answer and a later read) may differ by milliseconds.
const versionSlack = time.Second

// heldReason is why the change of a record with an open conflict is
// skipped.
const heldReason = "held by an open conflict; its resolution is synced instead"

// errRemoteMoved holds a change back while the system's own change of the
// record is compared with it.
var errRemoteMoved = errors.New("the record changed in the system since the last sync; holding this change until that one is compared with it")

// checkVersions sets, per record, why it must not be written now: the
// system changed it since the version in its link (RemoteMoved is told, so
// the change is compared on the inbound side, which then moves the link's
// version), or the record is held by an open conflict (skip). Records
// that may be written have neither.
func (p *Pipeline) checkVersions(ctx context.Context, qs []*keyQueue, recs []Record, hold []error, skip []string) {
	if p.st.Links == nil {
		return
	}
	p.heldSince(ctx, qs, hold, skip)
	v, ok := p.w.(Versioner)
	if !ok || p.cfg.RemoteMoved == nil {
		return
	}
	var ids []string
	var at []int
	for i, r := range recs {
		if hold[i] == nil && skip[i] == "" && r.Op == cdc.OpUpdate && r.ExternalID != "" && !qs[i].version.IsZero() {
			ids, at = append(ids, r.ExternalID), append(at, i)
		}
	}
	if len(ids) == 0 {
		return
	}
	remote, err := v.Versions(ctx, p.cfg.Object, ids)
	if err != nil {
		for _, i := range at {
			hold[i] = fmt.Errorf("read the system's version of the record: %w", err)
		}
		return
	}
	// Candidates read their link again: the inbound side may have compared
	// the system's change and moved the version since this Write began.
	var refs []syncstate.LinkRef
	var moved []int
	for _, i := range at {
		if rv, ok := remote[recs[i].ExternalID]; ok && rv.After(qs[i].version.Add(versionSlack)) {
			if ref, ok := qs[i].items[0].ref(p.cfg.System); ok {
				refs, moved = append(refs, ref), append(moved, i)
			}
		}
	}
	if len(moved) == 0 {
		return
	}
	links, err := p.st.Links.Get(ctx, refs)
	if err != nil {
		for _, i := range moved {
			hold[i] = fmt.Errorf("read the record's link: %w", err)
		}
		return
	}
	for k, i := range moved {
		l := links[refs[k]]
		if l != nil {
			qs[i].version = parseVersion(l.Version)
			if l.Held {
				skip[i] = heldReason
				continue
			}
		}
		rv := remote[recs[i].ExternalID]
		if !rv.After(qs[i].version.Add(versionSlack)) {
			continue
		}
		hold[i] = errRemoteMoved
		if err := p.cfg.RemoteMoved(ctx, recs[i].Object, recs[i].ExternalID, rv); err != nil {
			hold[i] = fmt.Errorf("%w (and handing the system's change over failed: %v)", errRemoteMoved, err)
		}
	}
}

// heldSince skips the retried records whose record a conflict has held
// since their first attempt (the first attempt was checked at Write).
func (p *Pipeline) heldSince(ctx context.Context, qs []*keyQueue, hold []error, skip []string) {
	var refs []syncstate.LinkRef
	var at []int
	for i, q := range qs {
		if it := q.items[0]; it.attempt > 1 {
			if ref, ok := it.ref(p.cfg.System); ok {
				refs, at = append(refs, ref), append(at, i)
			}
		}
	}
	if len(refs) == 0 {
		return
	}
	links, err := p.st.Links.Get(ctx, refs)
	if err != nil {
		for _, i := range at {
			hold[i] = fmt.Errorf("read the record's link: %w", err)
		}
		return
	}
	for k, i := range at {
		if l := links[refs[k]]; l != nil && l.Held {
			skip[i] = heldReason
		}
	}
}

// parseVersion reads a link's version; zero when it is not a time.
func parseVersion(s string) time.Time {
	if s == "" {
		return time.Time{} // most writers return none; time.Parse would build an error
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

// patch skips the updates of linked records that change no field since
// the last sync (whatever the writer: an update of a column that is not
// mapped sends nothing), and cuts the others down to the fields changed
// for a Patcher: then it reports patched.
func (p *Pipeline) patch(qs []*keyQueue, recs []Record, skip []string) (patched bool) {
	pw, ok := p.w.(Patcher)
	patches := ok && pw.PatchesFields()
	for i, q := range qs {
		if recs[i].Op == cdc.OpUpdate && recs[i].ExternalID != "" && q.base != nil && skip[i] == "" {
			changed := changedFields(recs[i].Fields, q.base)
			if len(changed) == 0 {
				skip[i] = "unchanged since the last sync"
			} else if patches {
				recs[i].Fields, patched = changed, true
			}
		}
	}
	return patched
}

// changedFields returns the fields of an update that differ from base
// (every field when base is nil).
func changedFields(fields, base map[string]any) map[string]any {
	if base == nil {
		return fields
	}
	out := make(map[string]any, len(fields))
	for k, v := range fields {
		if b, ok := base[k]; !ok || !sameJSON(v, b) {
			out[k] = v
		}
	}
	return out
}

// sameJSON compares two decoded values by their JSON.
func sameJSON(a, b any) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(ja, jb)
}
