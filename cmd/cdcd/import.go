package main

import (
	"context"
	"fmt"
	"os/user"

	"github.com/spf13/cobra"

	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/jobs"
	"github.com/cdcd-dev/cdcd/sources/imports"
)

func importCommand() *cobra.Command {
	var (
		path   string
		detach bool
	)
	cmd := &cobra.Command{
		Use:   "import PIPELINE",
		Short: "Bring every record a system holds into the table of an inbound pipeline",
		Long: `import queues a job that pages through the system's list API (HubSpot,
Salesforce, Shopify inventory levels, or an http system with a list: section)
and applies every record as the inbound pipeline PIPELINE applies the
system's webhooks: matched, linked, decided by its conflict policy, and never
sent back to the system.

The running cdcd (cdcd run, with this config) runs the job and saves its
cursor after every page, so an import stopped or killed resumes where it
stopped. The command follows the job until it ends (Ctrl-C stops following,
not the job); --detach only queues it.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError(fmt.Errorf("%s takes one inbound pipeline's name, got %d arguments", cmd.CommandPath(), len(args)))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(path)
			if err != nil {
				return err
			}
			if err := importable(cfg, args[0]); err != nil {
				return usageError(err) // before connecting to anything
			}
			by := "cli"
			if u, err := user.Current(); err == nil && u.Username != "" {
				by = "cli:" + u.Username
			}
			return withJobs(cmd, path, func(ctx context.Context, _ *config.Config, s *jobs.Store) error {
				j, err := s.Create(ctx, jobs.Spec{Kind: imports.Kind, Pipeline: args[0], RequestedBy: by})
				if err != nil {
					return err
				}
				if detach {
					fmt.Fprintln(cmd.OutOrStdout(), progressLine(j, false))
					return nil
				}
				return followJob(ctx, cmd.OutOrStdout(), s, j.ID)
			})
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "cdcd.yaml", "config file")
	cmd.Flags().BoolVar(&detach, "detach", false, "queue the job and return")
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError(err) })
	return cmd
}

// importable checks, offline, that name is an inbound pipeline whose
// system's type can list records.
func importable(cfg *config.Config, name string) error {
	for _, p := range cfg.Pipelines {
		if p.Name != name {
			continue
		}
		if !cfg.IsInbound(p) {
			return fmt.Errorf("pipeline %s reads %s: import brings a system's records into a table, so name a pipeline whose from: is a system", name, p.From)
		}
		if l, ok := cfg.Systems[p.From].Config.(config.Lister); !ok || !l.Lists() {
			return fmt.Errorf("pipeline %s: system %s (type %s) cannot list its records; hubspot, salesforce, shopify (with a location_id) and http (with a list: section) can", name, p.From, cfg.Systems[p.From].Type)
		}
		return nil
	}
	return fmt.Errorf("no pipeline is named %q", name)
}
