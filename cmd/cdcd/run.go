package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/daemon"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
)

func runCommand() *cobra.Command {
	var path, roleName string
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Stream changes from Postgres to the bus and the configured systems",
		Long: `run creates the publication and replication slot if they are missing, then
streams every committed change of the configured tables. With kafka: in the
config, events go to Kafka topics <prefix>.<schema>.<table>; without it, the
in-process bus delivers them to the pipelines' systems (standard output when
no pipeline is configured). The slot is confirmed only once the bus
acknowledged, so a crash or restart loses nothing. SIGINT or SIGTERM stops
cleanly.

With Kafka, --role splits the work across processes and machines: "capture"
runs only the reader (one per slot; a second one stands by), "sinks" runs
only the pipelines' writers as Kafka consumer groups (run as many as you
like), "all" (the default) runs both.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := daemon.ParseRole(roleName)
			if err != nil {
				return err
			}
			cfg, err := loadConfig(path)
			if err != nil {
				return err
			}
			stopProfile, err := startCPUProfile()
			if err != nil {
				return err
			}
			defer stopProfile()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return run(ctx, cfg, r)
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "cdcd.yaml", "config file")
	cmd.Flags().StringVar(&roleName, "role", "all", "what this process runs: capture, sinks or all")
	return cmd
}

// run builds the daemon cfg describes for role r and runs it until ctx
// ends.
func run(ctx context.Context, cfg *config.Config, r daemon.Role) error {
	d, err := daemon.New(ctx, cfg, daemon.Options{Role: r, Log: newLogger(cfg.Log), Version: cdcdVersion()})
	if err != nil {
		return err
	}
	return d.Run(ctx)
}

func newLogger(c config.Log) zerolog.Logger {
	level, err := zerolog.ParseLevel(c.Level)
	if err != nil || c.Level == "" {
		level = zerolog.InfoLevel
	}
	var log zerolog.Logger
	if c.Format == "console" {
		log = zerolog.New(consoleWriter(os.Stderr))
	} else {
		log = zerolog.New(os.Stderr)
	}
	return log.Level(level).With().Timestamp().Logger()
}
