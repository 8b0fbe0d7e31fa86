package e2etest

import (
	"flag"
	"fmt"
	"os"
	"testing"

	"github.com/cdcd-dev/cdcd/cdc/cdctest"
)

// Main is a TestMain for a package of end-to-end tests: under -short it
// only runs the tests (each skips itself); otherwise it builds cdcd, starts
// one Postgres with the extra settings for the whole package, hands both to
// ready, runs the tests and cleans up. It returns the exit code.
func Main(m *testing.M, name string, ready func(bin string, pg *cdctest.Postgres), settings ...string) int {
	flag.Parse()
	if testing.Short() {
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "cdcd-"+name+"-")
	if err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		return 1
	}
	defer os.RemoveAll(dir)
	bin, err := BuildCdcd(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, name+": build cdcd:", err)
		return 1
	}
	pg, err := cdctest.NewPostgres(settings...)
	if err != nil {
		fmt.Fprintln(os.Stderr, name+": start postgres:", err)
		return 1
	}
	defer pg.Destroy()
	ready(bin, pg)
	return m.Run()
}
