package target

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// pinReadSettings sets, for the rest of tx, the session settings that
// shape how values read as text look, to those of the capture reader
// (UTC, ISO dates, ISO 8601 intervals), so that a local row reads as
// captured events carry it whatever the user's database or role sets.
// They are read and set in one round trip (the materialized CTE first).
// The returned func puts the user's settings back; it does nothing when
// they were the pinned ones already.
func pinReadSettings(ctx context.Context, tx pgx.Tx) (restore func(), err error) {
	var zone, dates, intervals string
	if err := tx.QueryRow(ctx, `WITH s AS MATERIALIZED (SELECT current_setting('TimeZone') AS zone,
			current_setting('DateStyle') AS dates, current_setting('IntervalStyle') AS intervals)
		SELECT zone, dates, intervals, set_config('TimeZone', 'UTC', true), set_config('DateStyle', 'ISO, MDY', true),
			set_config('IntervalStyle', 'iso_8601', true) FROM s`).Scan(&zone, &dates, &intervals, nil, nil, nil); err != nil {
		return nil, fmt.Errorf("pin the session settings: %w", err)
	}
	if zone == "UTC" && dates == "ISO, MDY" && intervals == "iso_8601" {
		return func() {}, nil
	}
	return func() {
		tx.Exec(context.WithoutCancel(ctx), `SELECT set_config('TimeZone', $1, true), set_config('DateStyle', $2, true),
			set_config('IntervalStyle', $3, true)`, zone, dates, intervals)
	}, nil
}
