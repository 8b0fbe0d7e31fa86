package main

import (
	"fmt"

	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/daemon"
	"github.com/cdcd-dev/cdcd/transform"
	"github.com/spf13/cobra"
)

func validateCommand() *cobra.Command {
	var (
		path    string
		checkDB bool
	)
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check a config file without connecting to anything",
		Long: `validate loads the config file, interpolates ${ENV} variables, and reports
every problem at once with its file, line and key path, including template
fields (URLs, bodies, messages) that no record of a pipeline's mapping
holds, found by rendering every template over a sample record. It never connects to
Postgres, Kafka or any other system, unless --check-db asks it to connect to
postgres.url and check that every table and column the pipelines name
exists, that the tables inbound pipelines write to have a primary key and
a unique index on their match columns, and that every captured table has
a replica identity (or pipelines that take inserts only). Exit status 0
means valid, 2 invalid.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			reg := daemon.Components()
			if checkDB {
				reg.Checker(transform.CheckSchema(cmd.Context()))
				reg.Checker(daemon.CheckIdentity(cmd.Context()))
			}
			cfg, err := config.Load(path, reg)
			if err != nil {
				return usageError(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: valid (%d systems, %d pipelines, bus: %s)\n",
				path, len(cfg.Systems), len(cfg.Pipelines), daemon.BusName(cfg))
			return nil
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "cdcd.yaml", "config file")
	cmd.Flags().BoolVar(&checkDB, "check-db", false, "also connect to Postgres and check that referenced tables and columns exist")
	return cmd
}

func loadConfig(path string) (*config.Config, error) {
	cfg, err := config.Load(path, daemon.Components())
	if err != nil {
		return nil, usageError(err)
	}
	return cfg, nil
}
