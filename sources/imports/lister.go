package imports

import (
	"context"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
)

// Lister is implemented by writers that can list their system's records.
// List returns the page of object's records at cursor ("" is the first
// page) with at least the named fields (nil: the system's default set),
// and the cursor of the next page, "" after the last. A cursor is opaque
// and stays valid across restarts, so it may be stored and passed again
// later. Errors are classified like a Writer's: cdc.Permanent for what
// retrying cannot fix, cdc.RetryAfter for a system that asked to wait.
type Lister interface {
	List(ctx context.Context, object string, fields []string, cursor string) (Page, error)
}

// Page is one page of records and where the next one starts.
type Page struct {
	Records []Record
	// Next is the cursor of the next page; "" means this was the last.
	Next string
}

// Record is one record as the system lists it.
type Record struct {
	// ID is the record's id in the system.
	ID string
	// Fields are its fields as the system names them, values as JSON.
	Fields cdc.Row
	// UpdatedAt is when the record last changed in the system; zero when
	// the system does not say.
	UpdatedAt time.Time
}
