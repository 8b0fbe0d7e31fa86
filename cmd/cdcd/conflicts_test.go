package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/cdcd-dev/cdcd/store/storetest"
)

func TestConflictsCommands(t *testing.T) {
	_, url := storetest.EscalatedConflict(t)
	cfg := writeConfig(t, url)

	out, _, code := runCLI(t, "conflicts", "list", "-c", cfg)
	if code != 0 || !strings.Contains(out, "escalated") || !strings.Contains(out, "hubspot 512") || !strings.Contains(out, "firstname") {
		t.Fatalf("list (%d):\n%s", code, out)
	}
	out, _, code = runCLI(t, "conflicts", "show", "1", "-c", cfg)
	if code != 0 || !regexpMatch(`(?m)^FIELD\s+LOCAL\s+BASE\s+REMOTE$`, out) || !regexpMatch(`(?m)^firstname\s+"Ann"\s+"Ada"\s+"Bea"$`, out) {
		t.Fatalf("show (%d):\n%s", code, out)
	}
	_, errOut, code := runCLI(t, "conflicts", "resolve", "1", "merged", "-c", cfg)
	if code != 1 || !strings.Contains(errOut, `no merged value for conflicting field "firstname"`) {
		t.Fatalf("merged without values (%d): %s", code, errOut)
	}
	_, errOut, code = runCLI(t, "conflicts", "resolve", "1", "both", "-c", cfg)
	if code != 2 || !strings.Contains(errOut, `"both" is not local, remote or merged`) {
		t.Fatalf("bad choice (%d): %s", code, errOut)
	}
	out, _, code = runCLI(t, "conflicts", "resolve", "1", "merged", "--value", `firstname="Ann-Bea"`, "--by", "alice", "-c", cfg)
	if code != 0 || !strings.Contains(out, "conflict 1 resolved (manual:merged) by alice") || storetest.FirstName(t, url) != "Ann-Bea" {
		t.Fatalf("resolve (%d): %s; local %s", code, out, storetest.FirstName(t, url))
	}
	out, _, _ = runCLI(t, "conflicts", "list", "-c", cfg)
	if !strings.Contains(out, "no conflicts") {
		t.Fatalf("open after resolving:\n%s", out)
	}
	_, errOut, code = runCLI(t, "conflicts", "show", "99", "-c", cfg)
	if code != 1 || !strings.Contains(errOut, "conflict 99: not found") {
		t.Fatalf("missing (%d): %s", code, errOut)
	}
}

func regexpMatch(pattern, s string) bool { return regexp.MustCompile(pattern).MatchString(s) }
