package syncstate

import (
	"context"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
)

// Status is a delivery outcome in the audit trail.
type Status string

const (
	StatusDelivered    Status = "delivered"
	StatusRetried      Status = "retried"
	StatusDeadLettered Status = "dead_lettered"
	StatusSkipped      Status = "skipped" // filtered out, coalesced, or an echo
	StatusReplayed     Status = "replayed"
)

// Outcome is one attempt to deliver one record.
type Outcome struct {
	At       time.Time
	Pipeline string
	System   string
	Object   string
	Key      string
	EventID  string
	Op       cdc.Op
	Status   Status
	Attempt  int
	Latency  time.Duration
	Error    string
}

// Audit keeps the delivery trail (cdcd.sync_events).
type Audit interface {
	Record(ctx context.Context, outcomes []Outcome) error
}
