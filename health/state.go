// Package health judges cdcd continuously: rules over the figures cdcd
// already keeps (its metrics and its tables) give every pipeline, system
// and the capture a state, ok, degraded or unhealthy, with a reason in
// words. A new state is reported only once it has held for a while, and
// each reported change is stored in cdcd.health_transitions with the
// figures that caused it, where alert pipelines read it like any table.
package health

import (
	"fmt"
	"time"

	"github.com/cdcd-dev/cdcd/config"
)

// State is a subject's health. Higher is worse.
type State int8

// States, from best to worst.
const (
	OK State = iota
	Degraded
	Unhealthy
)

var stateNames = [...]string{"ok", "degraded", "unhealthy"}

func (s State) String() string {
	if s < OK || s > Unhealthy {
		return fmt.Sprintf("State(%d)", int8(s))
	}
	return stateNames[s]
}

// ParseState is the inverse of String; an unknown name is an error.
func ParseState(s string) (State, error) {
	for i, n := range stateNames {
		if n == s {
			return State(i), nil
		}
	}
	return OK, fmt.Errorf("unknown health state %q: want ok, degraded or unhealthy", s)
}

// MarshalText writes the state's name.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a state's name.
func (s *State) UnmarshalText(b []byte) error {
	v, err := ParseState(string(b))
	*s = v
	return err
}

// ExitCode is the state as `cdcd status` exits: 0 ok, 1 degraded, 2
// unhealthy.
func (s State) ExitCode() int { return int(s) }

// level judges value against l; nil or zero levels are off.
func level[T int64 | float64 | time.Duration](l *config.Levels[T], value T) State {
	switch {
	case l == nil:
		return OK
	case l.Unhealthy > 0 && value >= l.Unhealthy:
		return Unhealthy
	case l.Degraded > 0 && value >= l.Degraded:
		return Degraded
	}
	return OK
}

// finding is one rule's verdict on a subject.
type finding struct {
	state  State
	reason string
}

// verdict is the worst of findings, with the reasons at that state.
func verdict(fs []finding) (State, string) {
	worst := OK
	for _, f := range fs {
		worst = max(worst, f.state)
	}
	reason := ""
	for _, f := range fs {
		if f.state == worst && worst != OK {
			if reason != "" {
				reason += "; "
			}
			reason += f.reason
		}
	}
	if worst == OK {
		reason = "ok"
	}
	return worst, reason
}
