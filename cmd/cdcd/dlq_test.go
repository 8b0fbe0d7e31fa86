package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/cdc/cdctest"
	"github.com/cdcd-dev/cdcd/store"
	"github.com/cdcd-dev/cdcd/syncstate"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
)

// runCLI runs cdcd with args in-process, as main does, and returns what it
// printed and its exit status.
func runCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	root := &cobra.Command{Use: "cdcd", SilenceUsage: true, SilenceErrors: true}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError(err) })
	root.AddCommand(dlqCommand(), conflictsCommand())
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	if err != nil {
		fmt.Fprintln(&errOut, "cdcd:", err)
		code = exitCode(err)
	}
	return out.String(), errOut.String(), code
}

func writeConfig(t *testing.T, url string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cdcd.yaml")
	if err := os.WriteFile(path, []byte("postgres:\n  url: "+url+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestDLQCommands(t *testing.T) {
	pg := cdctest.StartPostgres(t)
	url := pg.CreateDB(t, "app")
	ctx := context.Background()
	s, err := store.Open(ctx, url, zerolog.New(zerolog.NewTestWriter(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	letter := func(pipeline, key, errText string) syncstate.DeadLetter {
		return syncstate.DeadLetter{Pipeline: pipeline, System: "hubspot", Object: "contacts", Table: "public.contacts",
			Key: key, EventID: "0/16B3748/" + key, Op: cdc.OpUpdate, Error: errText, Attempts: 1,
			Record: json.RawMessage(`{"email":"not-an-email"}`), Event: json.RawMessage(`{"op":"u"}`)}
	}
	long := `400 Bad Request: {"status":"error","message":"Property values were not valid: email 'not-an-email' is invalid","category":"VALIDATION_ERROR"}`
	err = s.DeadLetters().Put(ctx, []syncstate.DeadLetter{
		letter("contacts-to-hubspot", `{"id":1}`, long),
		letter("contacts-to-hubspot", `{"id":2}`, "409 Conflict: contact exists"),
		letter("orders-to-erp", `{"id":3}`, "422 Unprocessable Entity"),
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, url)
	status := func(id int64) store.LetterStatus {
		t.Helper()
		l, err := s.GetDeadLetter(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return l.Status
	}

	t.Run("list", func(t *testing.T) {
		out, errOut, code := runCLI(t, "dlq", "list", "--config", cfg)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 4 {
			t.Fatalf("want a header and 3 rows:\n%s", out)
		}
		// Aligned columns: every row's STATUS starts where the header's does.
		col := strings.Index(lines[0], "STATUS")
		for _, l := range lines[1:] {
			if !strings.HasPrefix(l[col:], "dead ") {
				t.Errorf("misaligned row %q", l)
			}
		}
		if !strings.HasPrefix(lines[1], "3 ") || !strings.Contains(lines[1], "orders-to-erp") || !strings.Contains(lines[3], "400 Bad Request") {
			t.Errorf("want newest first with pipelines and errors:\n%s", out)
		}
		if strings.Contains(out, "VALIDATION_ERROR") {
			t.Errorf("a long error is not clipped in the table:\n%s", out)
		}

		out, _, _ = runCLI(t, "dlq", "list", "--config", cfg, "--pipeline", "orders-to-erp", "--json")
		var got []map[string]any
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("--json: %v\n%s", err, out)
		}
		if len(got) != 1 || got[0]["id"] != 3.0 || got[0]["error"] != "422 Unprocessable Entity" || got[0]["status"] != "dead" || got[0]["op"] != "u" {
			t.Fatalf("--json = %v", got)
		}

		out, _, code = runCLI(t, "dlq", "list", "--config", cfg, "--status", "replayed")
		if code != 0 || strings.TrimSpace(out) != "no dead letters with status replayed" {
			t.Fatalf("empty list: exit %d, %q", code, out)
		}
	})

	t.Run("show", func(t *testing.T) {
		out, errOut, code := runCLI(t, "dlq", "show", "1", "--config", cfg)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		for _, want := range []string{`(?m)^pipeline: +contacts-to-hubspot$`, `(?m)^key: +\{"id":1\}$`, `(?m)^attempts: +1$`,
			`(?m)^status: +dead \(since `, `(?m)^failed at: +20\d\d-`,
			`\nerror:\n  ` + regexp.QuoteMeta(long) + `\n`,
			`\nrecord:\n  \{\n    "email": "not-an-email"\n  \}\n`, `\nevent:\n  \{\n    "op": "u"\n  \}\n`} {
			if !regexp.MustCompile(want).MatchString(out) {
				t.Errorf("show lacks %s:\n%s", want, out)
			}
		}
		out, _, _ = runCLI(t, "dlq", "show", "1", "--json", "--config", cfg)
		var got letterJSON
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("--json: %v\n%s", err, out)
		}
		if got.ID != 1 || got.Error != long || compact(got.Record) != `{"email":"not-an-email"}` || got.EventID != `0/16B3748/{"id":1}` || got.FailedAt.IsZero() {
			t.Fatalf("--json = %+v", got)
		}
		_, errOut, code = runCLI(t, "dlq", "show", "99", "--config", cfg)
		if code != 1 || !strings.Contains(errOut, "no dead letter 99") {
			t.Fatalf("show 99: exit %d, %q", code, errOut)
		}
	})

	t.Run("replay", func(t *testing.T) {
		out, errOut, code := runCLI(t, "dlq", "replay", "1", "3", "--config", cfg)
		if code != 0 || !strings.HasPrefix(out, "marked 2 dead letters for replay\n") || !strings.Contains(out, "running cdcd") {
			t.Fatalf("replay 1 3: exit %d, %q %q", code, out, errOut)
		}
		if status(1) != store.StatusReplay || status(3) != store.StatusReplay || status(2) != store.StatusDead {
			t.Fatalf("statuses after replay 1 3: %s %s %s", status(1), status(2), status(3))
		}
		// Marked already: nothing to do is a failure the operator should see.
		_, errOut, code = runCLI(t, "dlq", "replay", "1", "--config", cfg)
		if code != 1 || !strings.Contains(errOut, "marked none of 1 dead letter") {
			t.Fatalf("replay 1 again: exit %d, %q", code, errOut)
		}
		out, errOut, code = runCLI(t, "dlq", "replay", "--pipeline", "contacts-to-hubspot", "--all", "--config", cfg)
		if code != 0 || !strings.HasPrefix(out, "marked 1 dead letter of pipeline contacts-to-hubspot for replay") {
			t.Fatalf("replay --all: exit %d, %q", code, out)
		}
		// The test config runs no pipelines: nothing would take them.
		if !strings.Contains(errOut, "has no pipeline contacts-to-hubspot") {
			t.Errorf("replay --all of a pipeline not in the config: no warning in %q", errOut)
		}
		if status(2) != store.StatusReplay {
			t.Fatalf("status of 2 after replay --all: %s", status(2))
		}
		// The daemon's side takes them.
		if r, err := s.DeadLetters().Replays(ctx, "contacts-to-hubspot", 10); err != nil || len(r) != 2 {
			t.Fatalf("replays: %d, %v", len(r), err)
		}
	})

	t.Run("discard", func(t *testing.T) {
		out, errOut, code := runCLI(t, "dlq", "discard", "3", "1", "--config", cfg)
		if code != 0 || out != "discarded 1 dead letter\n" || !strings.Contains(errOut, "1 of the ids given were not discarded") {
			t.Fatalf("discard 3 1: exit %d, %q %q", code, out, errOut)
		}
		if status(3) != store.StatusDiscarded || status(1) != store.StatusReplaying {
			t.Fatalf("statuses after discard: 1 %s, 3 %s", status(1), status(3))
		}
	})

	t.Run("usage", func(t *testing.T) {
		for _, args := range [][]string{
			{"dlq", "show", "abc"},
			{"dlq", "show", "0"},
			{"dlq", "show"},
			{"dlq", "discard", "1", "x"},
			{"dlq", "discard"},
			{"dlq", "replay"},
			{"dlq", "replay", "--all"},
			{"dlq", "replay", "1", "--pipeline", "p", "--all"},
			{"dlq", "list", "--status", "gone"},
			{"dlq", "list", "--limit", "0"},
			{"dlq", "list", "--bogus"},
			{"dlq", "frobnicate"},
			{"dlq"},
		} {
			_, errOut, code := runCLI(t, append(args, "--config", cfg)...)
			if code != 2 {
				t.Errorf("%v: exit %d, want 2: %s", args, code, errOut)
			}
		}
		if status(2) != store.StatusReplaying {
			t.Fatal("a usage error changed a dead letter")
		}
	})

	t.Run("unreachable", func(t *testing.T) {
		bad := writeConfig(t, "postgres://postgres@127.0.0.1:1/app?sslmode=disable")
		_, errOut, code := runCLI(t, "dlq", "list", "--config", bad)
		if code != 1 || !strings.Contains(errOut, "database unreachable") || !strings.Contains(errOut, "postgres.url in "+bad) {
			t.Fatalf("exit %d, want 1 and a clear message: %s", code, errOut)
		}
	})
}

func compact(b []byte) string {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return string(b)
	}
	return buf.String()
}
