package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/conflict"
	"github.com/cdcd-dev/cdcd/daemon"
	"github.com/cdcd-dev/cdcd/store"
)

func conflictsCommand() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "conflicts",
		Short: "List, inspect and resolve conflicts",
		Long: `conflicts works on cdcd.conflicts in the database named by postgres.url:
records changed both locally and in a system since they were last in sync.

A conflict a rule decided is kept as the record of that decision. One no
rule decided (pending, or escalated by the manual rule) holds its record
until it is resolved here or through POST /api/conflicts/{id}/resolve. The
resolution is written to the local row and, captured like any change, goes
from there to every system, the one in conflict included.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError(fmt.Errorf("unknown command %q for %s; use list, show or resolve", args[0], cmd.CommandPath()))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SetOut(cmd.ErrOrStderr())
			_ = cmd.Help()
			return usageError(errors.New("conflicts needs a command: list, show or resolve"))
		},
	}
	cmd.PersistentFlags().StringVarP(&path, "config", "c", "cdcd.yaml", "config file (for postgres.url)")
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError(err) })
	cmd.AddCommand(conflictsListCommand(&path), conflictsShowCommand(&path), conflictsResolveCommand(&path))
	return cmd
}

func conflictsListCommand(path *string) *cobra.Command {
	var (
		status string
		limit  int
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List conflicts, newest first",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !slices.Contains(daemon.ConflictStatuses, status) {
				return usageError(fmt.Errorf("--status %q is not one of %s", status, strings.Join(daemon.ConflictStatuses, ", ")))
			}
			if limit <= 0 {
				return usageError(fmt.Errorf("--limit must be positive, got %d", limit))
			}
			if status == "all" {
				status = ""
			}
			return withStore(cmd, *path, func(ctx context.Context, _ *config.Config, s *store.Store) error {
				cs, err := s.ListConflicts(ctx, status, limit)
				if err != nil {
					return err
				}
				if asJSON {
					return printJSON(cmd.OutOrStdout(), cs)
				}
				printConflictTable(cmd.OutOrStdout(), cs)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&status, "status", "open", "open (pending and escalated), pending, escalated, resolved or all")
	cmd.Flags().IntVar(&limit, "limit", 100, "most conflicts to list")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func conflictsShowCommand(path *string) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show a conflict with its fields side by side: local | base | remote",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := conflictID(args[0])
			if err != nil {
				return err
			}
			return withStore(cmd, *path, func(ctx context.Context, _ *config.Config, s *store.Store) error {
				c, err := s.GetConflict(ctx, id)
				if err != nil {
					return err
				}
				if asJSON {
					return printJSON(cmd.OutOrStdout(), c)
				}
				printConflict(cmd.OutOrStdout(), c)
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func conflictsResolveCommand(path *string) *cobra.Command {
	var (
		values []string
		by     string
	)
	cmd := &cobra.Command{
		Use:   "resolve ID local|remote|merged",
		Short: "Resolve a conflict: keep the local values, take the remote ones, or set merged ones",
		Long: `resolve decides an open conflict. local keeps the local values, remote takes
the system's, merged sets each conflicting field to a value given with
--value field=<JSON> (for example --value 'phone="+1 555 0100"'). The
result is written to the local row and sent on to every system.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := conflictID(args[0])
			if err != nil {
				return err
			}
			choice := args[1]
			if !slices.Contains([]string{conflict.ChoiceLocal, conflict.ChoiceRemote, conflict.ChoiceMerged}, choice) {
				return usageError(fmt.Errorf("%q is not local, remote or merged", choice))
			}
			merged, err := parseValues(values)
			if err != nil {
				return err
			}
			if choice != conflict.ChoiceMerged && len(merged) > 0 {
				return usageError(errors.New("--value is only for merged"))
			}
			if by == "" {
				by = operatorName()
			}
			return withStore(cmd, *path, func(ctx context.Context, _ *config.Config, s *store.Store) error {
				c, err := s.ResolveConflict(ctx, id, choice, merged, by)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "conflict %d resolved (%s) by %s\n", c.ID, c.Rule, c.ResolvedBy)
				return nil
			})
		},
	}
	cmd.Flags().StringArrayVar(&values, "value", nil, "field=<JSON value>, for merged (repeat per field)")
	cmd.Flags().StringVar(&by, "by", "", "who resolves it (default: the OS user)")
	return cmd
}

func conflictID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, usageError(fmt.Errorf("%q is not a conflict id (a positive integer, as cdcd conflicts list shows)", s))
	}
	return id, nil
}

// parseValues reads field=<JSON> pairs.
func parseValues(pairs []string) (conflict.Values, error) {
	v := conflict.Values{}
	for _, p := range pairs {
		f, raw, ok := strings.Cut(p, "=")
		if !ok || f == "" {
			return nil, usageError(fmt.Errorf("--value %q: want field=<JSON value>", p))
		}
		if !json.Valid([]byte(raw)) {
			return nil, usageError(fmt.Errorf("--value %q: %s is not JSON (quote strings: %s='\"text\"')", p, raw, f))
		}
		v[f] = json.RawMessage(raw)
	}
	return v, nil
}

func operatorName() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "cli"
}

func printConflictTable(w io.Writer, cs []store.Conflict) {
	if len(cs) == 0 {
		fmt.Fprintln(w, "no conflicts")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tPIPELINE\tRECORD\tFIELDS\tRULE\tDETECTED")
	for _, c := range cs {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s %s\t%s\t%s\t%s\n", c.ID, c.Status, c.Pipeline, c.System, c.ExternalID,
			clip(strings.Join(c.Fields, ","), 40), c.Rule, when(c.DetectedAt))
	}
	tw.Flush()
}

// printConflict prints a conflict with its fields side by side.
func printConflict(w io.Writer, c store.Conflict) {
	fmt.Fprintf(w, "conflict %d: %s\n", c.ID, c.Status)
	fmt.Fprintf(w, "pipeline  %s\nrecord    %s %s %s  <->  %s %s\nrule      %s\ndetected  %s\n",
		c.Pipeline, c.System, c.Object, c.ExternalID, c.LocalTable, c.LocalKey, c.Rule, when(c.DetectedAt))
	if c.ResolvedAt != nil {
		fmt.Fprintf(w, "resolved  %s by %s\n", when(*c.ResolvedAt), c.ResolvedBy)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	header := "FIELD\tLOCAL\tBASE\tREMOTE"
	if c.Result != nil {
		header += "\tRESULT"
	}
	if c.Proposal != nil {
		header += "\tPROPOSED"
	}
	fmt.Fprintln(tw, header)
	fields := slices.Sorted(maps.Keys(c.Columns))
	if len(fields) == 0 {
		fields = c.Fields
	}
	for _, f := range fields {
		line := fmt.Sprintf("%s\t%s\t%s\t%s", f, show(c.Local, f), show(c.Base, f), show(c.Remote, f))
		if c.Result != nil {
			line += "\t" + show(c.Result, f)
		}
		if c.Proposal != nil {
			line += "\t" + show(c.Proposal, f)
		}
		fmt.Fprintln(tw, line)
	}
	tw.Flush()
}

func show(v conflict.Values, f string) string {
	raw, ok := v[f]
	if !ok {
		return "-"
	}
	return clip(string(raw), 40)
}
