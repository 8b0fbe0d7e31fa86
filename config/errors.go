package config

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Problem is one thing wrong with a config file, placed at the line and
// column of the key or value it concerns.
type Problem struct {
	File      string
	Line, Col int
	// Path names the key, e.g. "pipelines[1].to" or "systems.out.path".
	Path string
	Msg  string
}

func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", p.Line, p.Col)
	}
	b.WriteString(": ")
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Errors is every problem found in a config file, sorted by position. Its
// Error method prints one problem per line.
type Errors struct {
	Problems []Problem
}

func (e *Errors) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

func (e *Errors) sort() {
	sort.SliceStable(e.Problems, func(i, j int) bool {
		a, b := e.Problems[i], e.Problems[j]
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
}

// FieldError is a problem with one key of a config struct. Validate methods
// return them (joined with errors.Join) so that Load can place each one at
// the line of the key it names. Path is relative to the struct being
// validated: "path", "rate.per", "headers[2]"; empty means the struct itself.
type FieldError struct {
	Path string
	Msg  string
}

func (e FieldError) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// fieldErrors flattens err (a tree of joined errors) into FieldErrors whose
// paths are prefixed with prefix. An error that is not a FieldError is
// attributed to prefix itself.
func fieldErrors(prefix string, err error) []FieldError {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []FieldError
		for _, e := range j.Unwrap() {
			out = append(out, fieldErrors(prefix, e)...)
		}
		return out
	}
	var fe FieldError
	if errors.As(err, &fe) {
		return []FieldError{{Path: joinPath(prefix, fe.Path), Msg: fe.Msg}}
	}
	return []FieldError{{Path: prefix, Msg: err.Error()}}
}

// joinPath appends a relative path to a prefix: "a" + "b" = "a.b",
// "a" + "[1]" = "a[1]".
func joinPath(prefix, rel string) string {
	switch {
	case rel == "":
		return prefix
	case prefix == "":
		return rel
	case rel[0] == '[':
		return prefix + rel
	}
	return prefix + "." + rel
}

// parentPath strips the last element of a path: "a.b[1]" → "a.b" → "a" → "".
func parentPath(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

// suggest returns " (did you mean "x"?)" for the candidate closest to s, or
// "" when none is close enough to be a likely typo.
func suggest(s string, candidates []string) string {
	if len(s) > 64 {
		return ""
	}
	best, bestDist := "", -1
	for _, c := range candidates {
		d := editDistance(s, c)
		if bestDist < 0 || d < bestDist {
			best, bestDist = c, d
		}
	}
	if bestDist < 0 || bestDist > max(1, len(s)/3) || bestDist >= len(best) {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the optimal string alignment distance between a and b,
// in bytes: insertions, deletions, substitutions and transpositions of
// adjacent bytes cost 1 each.
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

// Suggest returns " (did you mean "x"?)" for the candidate closest to s, or
// "" when none is close enough to be a likely typo. It is for messages
// about config values that checkers outside this package report.
func Suggest(s string, candidates []string) string { return suggest(s, candidates) }
