package store

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ConflictMetrics reports open conflicts from cdcd.conflicts at each
// scrape: cdcd_conflicts_open{pipeline,status} and
// cdcd_conflicts_oldest_open_seconds{pipeline}.
func (s *Store) ConflictMetrics() prometheus.Collector { return conflictMetrics{s} }

var (
	openDesc = prometheus.NewDesc("cdcd_conflicts_open",
		"Conflicts holding their record, by pipeline and status (pending: a rule may still decide; escalated: waiting for a person).",
		[]string{"pipeline", "status"}, nil)
	oldestDesc = prometheus.NewDesc("cdcd_conflicts_oldest_open_seconds",
		"Age of the oldest open conflict, by pipeline.", []string{"pipeline"}, nil)
)

type conflictMetrics struct{ s *Store }

func (conflictMetrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- openDesc
	ch <- oldestDesc
}

func (m conflictMetrics) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	rows, err := m.s.pool.Query(ctx, `SELECT pipeline, status, count(*), extract(epoch FROM now() - min(detected_at))
		FROM cdcd.conflicts WHERE status <> 'resolved' GROUP BY pipeline, status`)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(openDesc, err)
		return
	}
	defer rows.Close()
	oldest := map[string]float64{}
	for rows.Next() {
		var pipeline, status string
		var n int64
		var age float64
		if err := rows.Scan(&pipeline, &status, &n, &age); err != nil {
			ch <- prometheus.NewInvalidMetric(openDesc, err)
			return
		}
		ch <- prometheus.MustNewConstMetric(openDesc, prometheus.GaugeValue, float64(n), pipeline, status)
		oldest[pipeline] = max(oldest[pipeline], age)
	}
	if err := rows.Err(); err != nil {
		ch <- prometheus.NewInvalidMetric(openDesc, err)
		return
	}
	for p, age := range oldest {
		ch <- prometheus.MustNewConstMetric(oldestDesc, prometheus.GaugeValue, age, p)
	}
}
