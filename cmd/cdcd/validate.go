package main

import (
	"fmt"

	"github.com/cdcd-dev/cdcd/config"
	"github.com/spf13/cobra"
)

func validateCommand() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check a config file without connecting to anything",
		Long: `validate loads the config file, interpolates ${ENV} variables, and reports
every problem at once with its file, line and key path. It never connects to
Postgres, Kafka or any other system. Exit status 0 means valid, 2 invalid.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(path)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: valid (%d systems, %d pipelines, bus: %s)\n",
				path, len(cfg.Systems), len(cfg.Pipelines), busName(cfg))
			return nil
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "cdcd.yaml", "config file")
	return cmd
}

func loadConfig(path string) (*config.Config, error) {
	cfg, err := config.Load(path, components())
	if err != nil {
		return nil, usageError(err)
	}
	return cfg, nil
}

func busName(cfg *config.Config) string {
	if cfg.Kafka != nil {
		return "kafka"
	}
	return "in-process"
}
