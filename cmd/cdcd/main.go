// Command cdcd is the change-data-capture pipeline daemon: it streams an
// application's Postgres changes to Kafka or straight to the systems around
// it, as declared in one config file.
package main

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"

	"github.com/cdcd-dev/cdcd/daemon"

	"github.com/spf13/cobra"
)

func cdcdVersion() string { return currentBuild().version }

// exitError carries the process exit code: 1 for runtime failures, 2 for
// bad usage or configuration.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageError(err error) error { return &exitError{2, err} }

// tuneGC sets cdcd's garbage collector defaults unless GOGC or GOMEMLIMIT
// are set: most of the heap is event buffers that live for milliseconds, so
// collecting a quarter as often saves much of the CPU a collection costs,
// while the soft limit keeps the process near its usual size when a large
// transaction streams through.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(300)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(128 << 20)
	}
}

func main() {
	tuneGC()
	root := rootCommand()
	err := root.Execute()
	if err == nil {
		return
	}
	fmt.Fprintln(os.Stderr, "cdcd:", err)
	os.Exit(exitCode(err))
}

// exitCode is the exit status of a command that returned err (not nil).
func exitCode(err error) int {
	var (
		ee *exitError
		ce *daemon.ConfigError
	)
	switch {
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &ce):
		return 2
	}
	return 1
}

func rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "cdcd",
		Short: "Change-data-capture pipelines between Postgres and the systems around it",
		Long: `cdcd reads Postgres logical replication (no triggers), turns every committed
row change into an event, and delivers it through Kafka or an in-process bus
to the systems declared in its config file.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError(err) })
	root.AddCommand(runCommand(), validateCommand(), versionCommand(), dlqCommand(), conflictsCommand(), statusCommand(), importCommand(),
		jobsCommand(), startJobCommand("backfill"), startJobCommand("export"))
	return root
}

func versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print cdcd's version and the commit it was built from",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintln(cmd.OutOrStdout(), "cdcd", currentBuild())
			return nil
		},
	}
}

func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError(fmt.Errorf("%s takes no arguments, got %q", cmd.CommandPath(), args))
	}
	return nil
}
