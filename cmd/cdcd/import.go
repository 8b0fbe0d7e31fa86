package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"

	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/daemon"
	"github.com/cdcd-dev/cdcd/jobs"
	"github.com/cdcd-dev/cdcd/sources/imports"
	"github.com/cdcd-dev/cdcd/store"
)

func importCommand() *cobra.Command {
	var (
		path   string
		detach bool
		every  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "import PIPELINE",
		Short: "Bring every record a system holds into the table of an inbound pipeline",
		Long: `import starts a job that pages through the system's list API (HubSpot,
Salesforce, Shopify inventory levels, or an http system with a list: section) and applies every record
as the inbound pipeline PIPELINE applies the system's webhooks: matched,
linked, decided by its conflict policy, and never sent back to the system.

A running cdcd (cdcd run, with this config) takes the job and saves its
cursor after every page, so an import stopped or killed resumes where it
stopped. import follows the job until it ends (a progress line a second; on
a terminal, one line redrawn) and exits 0 when it is done, 1 when it failed;
with --detach it prints the job's id and returns at once.`,
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
				return usageError(err)
			}
			return withStore(cmd, path, func(ctx context.Context, _ *config.Config, s *store.Store) error {
				js := jobs.NewStore(s.Pool())
				job, err := js.Create(ctx, jobs.Spec{Kind: imports.Kind, Pipeline: args[0], RequestedBy: "cli"})
				if err != nil {
					return err
				}
				out := cmd.OutOrStdout()
				if detach {
					fmt.Fprintln(out, job.ID)
					return nil
				}
				return follow(ctx, js, job.ID, out, every)
			})
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "cdcd.yaml", "config file")
	cmd.Flags().BoolVar(&detach, "detach", false, "print the job's id and return without following it")
	cmd.Flags().DurationVar(&every, "every", time.Second, "how often to show progress")
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
		w, err := cfg.NewWriter(daemon.Components(), p.From, config.Env{})
		if err != nil {
			return fmt.Errorf("pipeline %s: system %s: %w", name, p.From, err)
		}
		if _, ok := w.(imports.Lister); !ok {
			return fmt.Errorf("pipeline %s: system %s (type %s) cannot list its records; hubspot, salesforce, shopify (with a location_id) and http (with a list: section) can", name, p.From, cfg.Systems[p.From].Type)
		}
		return nil
	}
	return fmt.Errorf("no pipeline is named %q", name)
}

// follow shows the job's progress until it ends: exit 0 when done, 1
// otherwise.
func follow(ctx context.Context, js *jobs.Store, id int64, out io.Writer, every time.Duration) error {
	tty := false
	if f, ok := out.(*os.File); ok {
		tty = isatty.IsTerminal(f.Fd())
	}
	t := time.NewTicker(every)
	defer t.Stop()
	start, waited := time.Now(), false
	for {
		j, err := js.Get(ctx, id)
		if err != nil {
			return err
		}
		line := fmt.Sprintf("import %s: job %d %s, %d records", j.Pipeline, j.ID, j.Status, j.Processed)
		if j.Errors > 0 {
			line += fmt.Sprintf(", %d errors", j.Errors)
		}
		if j.Status == jobs.Running && j.Rate > 0 {
			line += fmt.Sprintf(", %.0f/s", j.Rate)
		}
		if tty {
			fmt.Fprintf(out, "\r\033[K%s", line)
		} else {
			fmt.Fprintln(out, line)
		}
		if j.Status.Finished() {
			if tty {
				fmt.Fprintln(out)
			}
			if j.Status != jobs.Done {
				return fmt.Errorf("import job %d %s: %s; fix the cause, then resume it (cdcd jobs resume %d)", j.ID, j.Status, j.Error, j.ID)
			}
			return nil
		}
		if j.Status == jobs.Queued && !waited && time.Since(start) > 5*time.Second {
			waited = true
			fmt.Fprintf(out, "\njob %d is queued: a running cdcd (cdcd run with this config) takes it\n", j.ID)
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), fmt.Errorf("stopped following job %d; it goes on in cdcd", j.ID))
		case <-t.C:
		}
	}
}
