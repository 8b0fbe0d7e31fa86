package soak

import (
	"fmt"
	"regexp"
	"strconv"
	"testing"
)

// recordName finds the records a violation names.
var recordName = regexp.MustCompile(`\bc(\d+)@soak\.example\.com`)

// shrink looks for a shorter history that still breaks the invariant:
// it drops chunks of operations (halves, then quarters, down to single
// ones), keeping each cut that still fails when run again, within budget
// runs. It returns the shortest failing history and its violations.
func shrink(t *testing.T, p params, o options, h history, violations []string, budget int) (history, []string) {
	runs := 0
	// First the operations of the records the violations name alone.
	named := map[int]bool{}
	for _, v := range violations {
		for _, m := range recordName.FindAllStringSubmatch(v, -1) {
			n, _ := strconv.Atoi(m[1])
			named[n] = true
		}
	}
	var only history
	for _, x := range h {
		if named[x.Rec] {
			only = append(only, x)
		}
	}
	if len(only) > 0 && len(only) < len(h) && budget > 0 {
		runs++
		if v := run(t, fmt.Sprintf("shrink-%d-%dops", runs, len(only)), p, o, only); len(v) > 0 {
			h, violations = only, v
			t.Logf("seed %d: still fails with %d operations", p.Seed, len(h))
		}
	}
	for chunk := len(h) / 2; chunk >= 1 && runs < budget; chunk /= 2 {
		for start := 0; start < len(h) && runs < budget; {
			cut := append(append(history{}, h[:start]...), h[min(start+chunk, len(h)):]...)
			runs++
			v := run(t, fmt.Sprintf("shrink-%d-%dops", runs, len(cut)), p, o, cut)
			if len(v) > 0 {
				h, violations = cut, v
				t.Logf("seed %d: still fails with %d operations", p.Seed, len(h))
				continue // the same start now holds the next chunk
			}
			start += chunk
		}
	}
	return h, violations
}

// soak generates a history for p, runs it, and on violations shrinks it
// and fails the test with the seed, the shortest history and what was
// wrong.
func soak(t *testing.T, p params, o options, shrinkBudget int) {
	t.Helper()
	h := generate(p)
	v := run(t, fmt.Sprintf("seed-%d", p.Seed), p, o, h)
	if len(v) == 0 {
		return
	}
	t.Errorf("seed %d: %d violations with %d operations:\n%s", p.Seed, len(v), len(h), lines(v))
	short, sv := shrink(t, p, o, h, v, shrinkBudget)
	t.Errorf("seed %d: shortest failing history found (%d of %d operations):\n%sviolations:\n%s", p.Seed, len(short), len(h), short, lines(sv))
}

func lines(v []string) string {
	s := ""
	for _, l := range v {
		s += "  " + l + "\n"
	}
	return s
}
