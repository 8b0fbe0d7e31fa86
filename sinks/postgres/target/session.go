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
	var zone, dates, intervals, digits string
	if err := tx.QueryRow(ctx, `WITH s AS MATERIALIZED (SELECT current_setting('TimeZone') AS zone,
			current_setting('DateStyle') AS dates, current_setting('IntervalStyle') AS intervals,
			current_setting('extra_float_digits') AS digits)
		SELECT zone, dates, intervals, digits, set_config('TimeZone', 'UTC', true), set_config('DateStyle', 'ISO, MDY', true),
			set_config('IntervalStyle', 'iso_8601', true), set_config('extra_float_digits', '3', true) FROM s`).
		Scan(&zone, &dates, &intervals, &digits, nil, nil, nil, nil); err != nil {
		return nil, fmt.Errorf("pin the session settings: %w", err)
	}
	if zone == "UTC" && dates == "ISO, MDY" && intervals == "iso_8601" && digits == "3" {
		return func() {}, nil
	}
	return func() {
		tx.Exec(context.WithoutCancel(ctx), `SELECT set_config('TimeZone', $1, true), set_config('DateStyle', $2, true),
			set_config('IntervalStyle', $3, true), set_config('extra_float_digits', $4, true)`, zone, dates, intervals, digits)
	}, nil
}
