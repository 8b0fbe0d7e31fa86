package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cdcd-dev/cdcd/backfill"
	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/jobs"
	"github.com/cdcd-dev/cdcd/store"
)

func jobsCommand() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "jobs",
		Short: "List, inspect, pause, resume and cancel backfills, exports and imports",
		Long: `jobs works on cdcd.jobs in the database named by postgres.url. A job is run
by a running cdcd (cdcd run), one at a time whatever the number of cdcd
processes; it saves its cursor after every chunk or page, so a job whose
cdcd stopped or died goes on from there. A paused, failed or cancelled job
goes on from its cursor when resumed.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError(fmt.Errorf("unknown command %q for %s; use list, show, pause, resume or cancel", args[0], cmd.CommandPath()))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SetOut(cmd.ErrOrStderr())
			_ = cmd.Help()
			return usageError(errors.New("jobs needs a command: list, show, pause, resume or cancel"))
		},
	}
	cmd.PersistentFlags().StringVarP(&path, "config", "c", "cdcd.yaml", "config file (for postgres.url)")
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError(err) })
	cmd.AddCommand(jobsListCommand(&path), jobsShowCommand(&path),
		jobsChangeCommand(&path, "pause", "Pause a queued or running job", (*jobs.Store).Pause),
		jobsChangeCommand(&path, "resume", "Queue a paused, failed or cancelled job again, from its cursor", (*jobs.Store).Resume),
		jobsChangeCommand(&path, "cancel", "Stop a job for good", (*jobs.Store).Cancel))
	return cmd
}

// withJobs opens the jobs store of the config's database.
func withJobs(cmd *cobra.Command, path string, fn func(context.Context, *config.Config, *jobs.Store) error) error {
	return withStore(cmd, path, func(ctx context.Context, cfg *config.Config, s *store.Store) error {
		return fn(ctx, cfg, jobs.NewStore(s.Pool()))
	})
}

var jobStatuses = []jobs.Status{jobs.Queued, jobs.Running, jobs.Paused, jobs.Done, jobs.Failed, jobs.Cancelled}

func jobsListCommand(path *string) *cobra.Command {
	var (
		status, kind string
		limit        int
		asJSON       bool
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List jobs, newest first",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if status != "" && !validStatus(status) {
				return usageError(fmt.Errorf("--status %q is not one of %v", status, jobStatuses))
			}
			return withJobs(cmd, *path, func(ctx context.Context, _ *config.Config, s *jobs.Store) error {
				list, err := s.List(ctx, jobs.Filter{Status: jobs.Status(status), Kind: kind, Limit: limit})
				if err != nil {
					return err
				}
				if asJSON {
					if list == nil {
						list = []*jobs.Job{}
					}
					return printJSON(cmd.OutOrStdout(), list)
				}
				printJobs(cmd.OutOrStdout(), list)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&status, "status", "", "only jobs in this status (queued, running, paused, done, failed, cancelled)")
	cmd.Flags().StringVar(&kind, "kind", "", "only jobs of this kind (backfill, export, import)")
	cmd.Flags().IntVar(&limit, "limit", 50, "at most this many jobs")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func validStatus(s string) bool {
	for _, st := range jobStatuses {
		if string(st) == s {
			return true
		}
	}
	return false
}

func printJobs(w io.Writer, list []*jobs.Job) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tKIND\tPIPELINE\tSTATUS\tPROCESSED\tTOTAL\tERRORS\tRATE/S\tUPDATED")
	for _, j := range list {
		total := "-"
		if j.Total != nil {
			total = strconv.FormatInt(*j.Total, 10)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\t%d\t%.0f\t%s\n", j.ID, j.Kind, orDash(j.Pipeline), j.Status,
			j.Processed, total, j.Errors, j.Rate, j.UpdatedAt.UTC().Format(time.RFC3339))
	}
	_ = tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func jobsShowCommand(path *string) *cobra.Command {
	var errorsLimit int
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Print one job as JSON, with its record errors",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseJobID(args[0])
			if err != nil {
				return err
			}
			return withJobs(cmd, *path, func(ctx context.Context, _ *config.Config, s *jobs.Store) error {
				j, err := s.Get(ctx, id)
				if err != nil {
					return err
				}
				errs, err := s.Errors(ctx, id, errorsLimit)
				if err != nil {
					return err
				}
				if errs == nil {
					errs = []jobs.RecordErr{}
				}
				return printJSON(cmd.OutOrStdout(), struct {
					*jobs.Job
					RecordErrors []jobs.RecordErr `json:"record_errors"`
				}{j, errs})
			})
		},
	}
	cmd.Flags().IntVar(&errorsLimit, "errors", 20, "at most this many record errors")
	return cmd
}

func jobsChangeCommand(path *string, use, short string, change func(*jobs.Store, context.Context, int64) (*jobs.Job, error)) *cobra.Command {
	return &cobra.Command{
		Use:   use + " ID",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseJobID(args[0])
			if err != nil {
				return err
			}
			return withJobs(cmd, *path, func(ctx context.Context, _ *config.Config, s *jobs.Store) error {
				j, err := change(s, ctx, id)
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), progressLine(j, false))
				return nil
			})
		},
	}
}

func parseJobID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, usageError(fmt.Errorf("job id %q is not a positive number", s))
	}
	return id, nil
}

// startJobCommand is cdcd backfill and cdcd export: they queue a job for
// the running cdcd and follow it until it ends.
func startJobCommand(kind string) *cobra.Command {
	var (
		path, table, where string
		detach             bool
	)
	cmd := &cobra.Command{
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := backfill.Request{Kind: kind, Table: table, Where: where, By: "cli"}
			if len(args) == 1 {
				req.Pipeline = args[0]
			}
			if u, err := user.Current(); err == nil && u.Username != "" {
				req.By = "cli:" + u.Username
			}
			return withJobs(cmd, path, func(ctx context.Context, cfg *config.Config, s *jobs.Store) error {
				spec, err := backfill.NewSpec(cfg, req)
				if err != nil {
					return usageError(err)
				}
				j, err := s.Create(ctx, spec)
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
	switch kind {
	case "backfill":
		cmd.Use = "backfill [PIPELINE]"
		cmd.Short = "Send a table's existing rows to a pipeline, or to all pipelines of a table"
		cmd.Long = `backfill queues a job that the running cdcd runs: it reads the pipeline's
table in primary-key order, in chunks, each in a short transaction, while
changes keep streaming; a row read never overwrites a newer change of the
same key. The rows go through the pipeline's mapping, filters, rate limits,
links and dead letters as op "r" events. With --table, every pipeline of the
table receives them; --where narrows the rows with an SQL condition.
The command follows the job until it ends (Ctrl-C stops following, not the
job); --detach only queues it.`
		cmd.Flags().StringVar(&table, "table", "", "fill every pipeline of this table (schema.table)")
	case "export":
		cmd.Use = "export PIPELINE"
		cmd.Short = "Send a table's rows to a system: create, or update where linked"
		cmd.Long = `export is a backfill of one pipeline to a system: every row of its table
(or those --where selects) goes through the pipeline, which creates the
record in the system or updates the one it is linked to. The command follows
the job until it ends; --detach only queues it.`
	}
	cmd.Flags().StringVarP(&path, "config", "c", "cdcd.yaml", "config file")
	cmd.Flags().StringVar(&where, "where", "", "SQL condition on the table's rows")
	cmd.Flags().BoolVar(&detach, "detach", false, "queue the job and return")
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError(err) })
	return cmd
}

// followJob shows a job's progress until it ends; a job that failed or
// was cancelled is an error.
func followJob(ctx context.Context, w io.Writer, s *jobs.Store, id int64) error {
	v := &progressView{w: w, tty: isTerminalWriter(w)}
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		j, err := s.Get(ctx, id)
		if err != nil {
			return err
		}
		v.show(j)
		switch j.Status {
		case jobs.Done:
			return nil
		case jobs.Failed, jobs.Cancelled:
			return fmt.Errorf("job %d %s; see cdcd jobs show %d", id, j.Status, id)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

func isTerminalWriter(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && isTerminal(f)
}
