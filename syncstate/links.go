package syncstate

import (
	"context"
	"fmt"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
)

// Link ties a local record to its record in a system, with the base
// version: the field values both sides agreed on at the last sync.
type Link struct {
	System     string
	Object     string
	Table      string // local schema.table
	Key        string // local key (JSON of the key columns)
	ExternalID string
	Base       map[string]any // mapped field values last written or received
	// BaseJSON, when set, is Base encoded as JSON already (the body the
	// writer sent): Put stores it instead of encoding Base.
	BaseJSON  []byte
	Version   string  // the system's version/updated-at after the last sync
	LSN       cdc.LSN // commit LSN of the local change last synced
	UpdatedAt time.Time
	// Held is set when the local record has an open conflict: its changes
	// are not synced until the conflict is resolved, and the resolution,
	// a change of its own, carries the record's values then.
	Held bool
	// Deleted is set once the local record's delete was delivered, or
	// skipped because a conflict held the record: ExternalID names the
	// system's record, Base is nil, a change of the local record creates
	// it anew, and the id is free for another local record to claim.
	Deleted bool
}

// LinkRef names a local record in a system.
type LinkRef struct {
	System, Object, Table, Key string
}

// Links stores links. Get returns the links that exist for refs, keyed by
// ref; a missing ref has no link yet.
//
// An external id belongs to at most one local record per system and
// object; a Deleted link holds none. Put writes all links or none: when
// one would give a local record an external id that another record holds
// (and keeps), Put fails with a *LinkConflictError for each such link
// (errors.Join).
type Links interface {
	Get(ctx context.Context, refs []LinkRef) (map[LinkRef]*Link, error)
	Put(ctx context.Context, links []Link) error
}

// PendingCreates keeps, across restarts, the local records whose create
// was sent to a system and not settled: no link was stored for it, and no
// answer showed that nothing was applied. Pending returns the refs of
// refs that are pending; Begin records refs before their creates are sent;
// Settle forgets refs.
type PendingCreates interface {
	Pending(ctx context.Context, refs []LinkRef) (map[LinkRef]bool, error)
	Begin(ctx context.Context, refs []LinkRef) error
	Settle(ctx context.Context, refs []LinkRef) error
}

// LinkConflictError reports an external id claimed by a local record while
// another local record holds it (Links.Put).
type LinkConflictError struct {
	System, Object, ExternalID string
	// Holder is the local record linked to ExternalID.
	HolderTable, HolderKey string
	// Claimant is the local record whose link was refused.
	ClaimantTable, ClaimantKey string
}

func (e *LinkConflictError) Error() string {
	return fmt.Sprintf("link %s %s %q: already linked to %s %s, claimed by %s %s",
		e.System, e.Object, e.ExternalID, e.HolderTable, e.HolderKey, e.ClaimantTable, e.ClaimantKey)
}
