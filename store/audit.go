package store

import (
	"context"
	"fmt"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/syncstate"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Audit appends delivery outcomes to cdcd.sync_events. It implements
// syncstate.Audit.
type Audit struct {
	pool *pgxpool.Pool
}

var auditColumns = []string{"at", "pipeline", "system", "object", "local_key", "event_id", "op", "status", "attempt", "latency_ms", "error"}

// Record appends outcomes with one COPY, all or none. A zero At means now.
// Keys and ids that text cannot hold are stored with U+FFFD in place of
// the bytes it refuses.
// COPY: faster than a multi-row INSERT of unnested arrays at every batch
// size measured, 1 to 1000.
func (a *Audit) Record(ctx context.Context, outcomes []syncstate.Outcome) error {
	if len(outcomes) == 0 {
		return nil
	}
	now := time.Now()
	// Each value is a pointer into outcomes behind a type pgx encodes as
	// it would the value itself: boxing a pointer allocates nothing, where
	// boxing a string, a time or a float allocates it for each row.
	row := make([]any, 0, len(auditColumns)) // CopyFrom encodes each row before it asks for the next
	_, err := on(ctx, a.pool).CopyFrom(ctx, pgx.Identifier{"cdcd", "sync_events"}, auditColumns,
		pgx.CopyFromSlice(len(outcomes), func(i int) ([]any, error) {
			o := &outcomes[i]
			at := timeRef{&o.At}
			if o.At.IsZero() {
				at.p = &now
			}
			row = append(row[:0], at, textRef{&o.Pipeline}, textRef{&o.System}, textRef{&o.Object},
				storableRef(&o.Key), storableRef(&o.EventID), opText(o.Op), textRef{(*string)(&o.Status)},
				int32(o.Attempt), millisRef{&o.Latency}, nullTextRef{&o.Error})
			return row, nil
		}))
	if err != nil {
		return fmt.Errorf("record %d audit events: %w", len(outcomes), err)
	}
	return nil
}

// The types below are one pointer (or a byte) each, so that an interface
// holds them without an allocation; pgx encodes them through the
// *Valuer interfaces exactly as it encodes the value pointed to.

// textRef encodes *p as text.
type textRef struct{ p *string }

func (r textRef) TextValue() (pgtype.Text, error) { return pgtype.Text{String: *r.p, Valid: true}, nil }

// nullTextRef encodes *p as text, "" as NULL.
type nullTextRef struct{ p *string }

func (r nullTextRef) TextValue() (pgtype.Text, error) {
	return pgtype.Text{String: *r.p, Valid: *r.p != ""}, nil
}

// storableRef refers to storable(*p): to *p itself unless storable
// changes it.
func storableRef(p *string) textRef {
	if s := storable(*p); s != *p {
		c := s
		return textRef{&c}
	}
	return textRef{p}
}

// opText encodes an Op as its letter.
type opText cdc.Op

func (o opText) TextValue() (pgtype.Text, error) {
	return pgtype.Text{String: cdc.Op(o).String(), Valid: true}, nil
}

// timeRef encodes *p as a timestamptz.
type timeRef struct{ p *time.Time }

func (r timeRef) TimestamptzValue() (pgtype.Timestamptz, error) {
	return pgtype.Timestamptz{Time: *r.p, Valid: true}, nil
}

// millisRef encodes *p as milliseconds (float8).
type millisRef struct{ p *time.Duration }

func (r millisRef) Float64Value() (pgtype.Float8, error) {
	return pgtype.Float8{Float64: float64(*r.p) / float64(time.Millisecond), Valid: true}, nil
}
