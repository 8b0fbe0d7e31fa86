package health

import "time"

// window is how far back the hourly figures and the plots reach.
const window = time.Hour

// history keeps one point per minute of a counter or gauge for the last
// hour, plus the newest point, so that hourly deltas and plots cost
// nothing to compute.
type history struct {
	points []point // oldest first, one per minute, at most window/time.Minute+1
	last   point
}

type point struct {
	at time.Time
	v  float64
}

// add records v at t; a new minute starts a new point.
func (h *history) add(t time.Time, v float64) {
	h.last = point{t, v}
	if n := len(h.points); n == 0 || t.Sub(h.points[n-1].at) >= time.Minute {
		h.points = append(h.points, h.last)
		if cut := len(h.points) - int(window/time.Minute) - 1; cut > 0 {
			h.points = append(h.points[:0], h.points[cut:]...)
		}
	}
}

// delta is the counter's increase over the last hour (or since the first
// point, when younger).
func (h *history) delta(now time.Time) float64 {
	for _, p := range h.points {
		if now.Sub(p.at) <= window {
			return max(0, h.last.v-p.v)
		}
	}
	return 0
}

// perMinute returns the counter's increase in each whole minute of the
// last hour, oldest first.
func (h *history) perMinute() []float64 {
	if len(h.points) < 2 {
		return nil
	}
	out := make([]float64, 0, len(h.points)-1)
	for i := 1; i < len(h.points); i++ {
		out = append(out, max(0, h.points[i].v-h.points[i-1].v))
	}
	return out
}

// values returns the gauge's points, oldest first, the newest included.
func (h *history) values() []float64 {
	out := make([]float64, 0, len(h.points)+1)
	for _, p := range h.points {
		out = append(out, p.v)
	}
	return append(out, h.last.v)
}
