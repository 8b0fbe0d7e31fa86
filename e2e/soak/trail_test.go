package soak

import (
	"context"
	"fmt"
	"strings"
)

// trail describes what cdcd did with a local record: its delivery
// attempts and dead letters, for a violation's report.
func (d *deployment) trail(localKey string) string {
	rows, err := d.pool.Query(context.Background(), `SELECT pipeline || ' ' || op || ' ' || status || coalesce(' ' || error, '')
		FROM cdcd.sync_events WHERE local_key = $1 ORDER BY id`, localKey)
	if err != nil {
		return err.Error()
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if rows.Scan(&s) == nil {
			out = append(out, s)
		}
	}
	rows, err = d.pool.Query(context.Background(), `SELECT pipeline || ' dead: ' || error FROM cdcd.dead_letters WHERE local_key = $1 ORDER BY id`, localKey)
	if err == nil {
		for rows.Next() {
			var s string
			if rows.Scan(&s) == nil {
				out = append(out, s)
			}
		}
		rows.Close()
	}
	return fmt.Sprintf("trail of %s: %s", localKey, strings.Join(out, "; "))
}
