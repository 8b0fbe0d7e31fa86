package target

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// pinReadSettings sets, for the rest of tx, the session settings that
// shape how values read as text look, to those of the capture reader
// (UTC, ISO dates, ISO 8601 intervals, floats with every digit), so that a local row reads as
// captured events carry it whatever the user's database or role sets.
// They are read and set in one round trip (the materialized CTE first).
// The returned func puts the user's settings back; it does nothing when
// they were the pinned ones already.
func pinReadSettings(ctx context.Context, tx pgx.Tx) (restore func(), err error) {
	b := &pgx.Batch{}
	p := QueuePinReadSettings(b)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, err
	}
	return func() { p.Restore(ctx, tx) }, nil
}

// Pin is the user's session settings that QueuePinReadSettings replaced
// with the capture reader's.
type Pin struct {
	zone, dates, intervals, digits string
}

// QueuePinReadSettings queues pinReadSettings's statement in b, for a
// caller that sends it with others in one round trip and reads with
// ReadManyPinned after it. The Pin is filled in once b's results are read.
func QueuePinReadSettings(b *pgx.Batch) *Pin {
	p := &Pin{}
	b.Queue(`WITH s AS MATERIALIZED (SELECT current_setting('TimeZone') AS zone,
			current_setting('DateStyle') AS dates, current_setting('IntervalStyle') AS intervals,
			current_setting('extra_float_digits') AS digits)
		SELECT zone, dates, intervals, digits, set_config('TimeZone', 'UTC', true), set_config('DateStyle', 'ISO, MDY', true),
			set_config('IntervalStyle', 'iso_8601', true), set_config('extra_float_digits', '3', true) FROM s`).QueryRow(func(row pgx.Row) error {
		if err := row.Scan(&p.zone, &p.dates, &p.intervals, &p.digits, nil, nil, nil, nil); err != nil {
			return fmt.Errorf("pin the session settings: %w", err)
		}
		return nil
	})
	return p
}

// Restore puts the user's settings back for the rest of tx; it does
// nothing when they were the pinned ones already. A failure aborts tx,
// which its next statement reports.
func (p *Pin) Restore(ctx context.Context, tx pgx.Tx) {
	if p.zone == "UTC" && p.dates == "ISO, MDY" && p.intervals == "iso_8601" && p.digits == "3" {
		return
	}
	tx.Exec(context.WithoutCancel(ctx), `SELECT set_config('TimeZone', $1, true), set_config('DateStyle', $2, true),
		set_config('IntervalStyle', $3, true), set_config('extra_float_digits', $4, true)`, p.zone, p.dates, p.intervals, p.digits)
}
