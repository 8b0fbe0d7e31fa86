package e2etest

import (
	"os"
	"path/filepath"
	"testing"
)

// A race the detector reports in cdcd's log is found and cut at the end
// of its report, so the test that ran the process can fail with it.
func TestRaceReport(t *testing.T) {
	p := &Process{logPath: filepath.Join(t.TempDir(), "cdcd.log")}
	if got := p.raceReport(); got != "" {
		t.Fatalf("no log: %q", got)
	}
	log := `{"level":"info","message":"cdcd starting"}
==================
WARNING: DATA RACE
Write at 0x00c000123456 by goroutine 7:
  main.main()
==================
{"level":"info","message":"cdcd stopped"}
`
	if err := os.WriteFile(p.logPath, []byte(log), 0o600); err != nil {
		t.Fatal(err)
	}
	want := "WARNING: DATA RACE\nWrite at 0x00c000123456 by goroutine 7:\n  main.main()"
	if got := p.raceReport(); got != want {
		t.Fatalf("report %q, want %q", got, want)
	}
}
