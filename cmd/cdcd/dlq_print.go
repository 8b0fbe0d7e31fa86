package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/cdcd-dev/cdcd/store"
)

// letterJSON is a dead letter as dlq list --json and dlq show --json print it.
type letterJSON struct {
	ID         int64           `json:"id"`
	Pipeline   string          `json:"pipeline"`
	System     string          `json:"system"`
	Object     string          `json:"object"`
	Table      string          `json:"table"`
	Key        string          `json:"key"`
	EventID    string          `json:"event_id"`
	Op         string          `json:"op"`
	Status     string          `json:"status"`
	Attempts   int             `json:"attempts"`
	FailedAt   time.Time       `json:"failed_at"`
	StatusAt   time.Time       `json:"status_at"`
	ResolvedAt *time.Time      `json:"resolved_at,omitempty"`
	Error      string          `json:"error"`
	LastError  string          `json:"last_error,omitempty"`
	Record     json.RawMessage `json:"record,omitempty"`
	Event      json.RawMessage `json:"event,omitempty"`
}

func toLetterJSON(l store.DeadLetter) letterJSON {
	j := letterJSON{
		ID: l.ID, Pipeline: l.Pipeline, System: l.System, Object: l.Object, Table: l.Table, Key: l.Key,
		EventID: l.EventID, Op: l.Op.String(), Status: string(l.Status), Attempts: l.Attempts,
		FailedAt: l.FailedAt, StatusAt: l.StatusAt, Error: l.Error, LastError: l.LastError,
		Record: l.Record, Event: l.Event,
	}
	if !l.ResolvedAt.IsZero() {
		j.ResolvedAt = &l.ResolvedAt
	}
	return j
}

func letterList(letters []store.DeadLetter) []letterJSON {
	out := make([]letterJSON, len(letters))
	for i, l := range letters {
		out[i] = toLetterJSON(l)
	}
	return out
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printLetterTable prints letters as an aligned table on w, and on errw a
// note when the limit may have hidden some.
func printLetterTable(w, errw io.Writer, letters []store.DeadLetter, f store.DeadLetterFilter) {
	if len(letters) == 0 {
		var sel []string
		if f.Pipeline != "" {
			sel = append(sel, "in pipeline "+f.Pipeline)
		}
		if f.Status != "" {
			sel = append(sel, "with status "+string(f.Status))
		}
		fmt.Fprintln(w, strings.Join(append([]string{"no dead letters"}, sel...), " "))
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPIPELINE\tSYSTEM\tOBJECT\tKEY\tOP\tSTATUS\tATTEMPTS\tFAILED\tERROR")
	for _, l := range letters {
		errText := l.Error
		if l.LastError != "" {
			errText = l.LastError
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", l.ID, l.Pipeline, l.System, l.Object,
			clip(l.Key, 32), l.Op, l.Status, l.Attempts, when(l.FailedAt), clip(errText, 60))
	}
	tw.Flush()
	if f.Limit > 0 && len(letters) == f.Limit {
		fmt.Fprintf(errw, "the newest %d shown; --limit N shows more\n", f.Limit)
	}
}

func printLetter(w io.Writer, l store.DeadLetter) {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	row("id", strconv.FormatInt(l.ID, 10))
	row("pipeline", l.Pipeline)
	row("system", l.System)
	row("object", l.Object)
	row("table", l.Table)
	row("key", l.Key)
	row("event id", l.EventID)
	row("op", l.Op.String())
	row("status", fmt.Sprintf("%s (since %s)", l.Status, when(l.StatusAt)))
	row("attempts", strconv.Itoa(l.Attempts))
	row("failed at", when(l.FailedAt))
	if !l.ResolvedAt.IsZero() {
		row("resolved at", when(l.ResolvedAt))
	}
	tw.Flush()
	block(w, "error", []byte(l.Error), false)
	if l.LastError != "" {
		block(w, "last error (of the last replay)", []byte(l.LastError), false)
	}
	block(w, "record", l.Record, true)
	block(w, "event", l.Event, true)
}

// block prints a titled, indented block; JSON is pretty-printed.
func block(w io.Writer, title string, body []byte, isJSON bool) {
	fmt.Fprintf(w, "%s:\n", title)
	if len(body) == 0 {
		fmt.Fprintln(w, "  (none)")
		return
	}
	if isJSON {
		var buf bytes.Buffer
		if json.Indent(&buf, body, "", "  ") == nil {
			body = buf.Bytes()
		}
	}
	for line := range strings.Lines(string(body)) {
		fmt.Fprintf(w, "  %s", line)
	}
	if body[len(body)-1] != '\n' {
		fmt.Fprintln(w)
	}
}

func when(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05 MST") }

// clip shortens s to one line of at most n characters.
func clip(s string, n int) string {
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i] + " …"
	}
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
