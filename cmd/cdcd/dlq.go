package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/store"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
)

// dlqOpenTimeout bounds connecting to the database, so that an unreachable
// host fails the command instead of hanging it.
const dlqOpenTimeout = 15 * time.Second

func dlqCommand() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "List, inspect, replay and discard dead letters",
		Long: `dlq works on the dead-letter store in schema cdcd of the database named by
postgres.url: changes a system refused for good, or whose retries ran out.

A dead letter is dead until an operator marks it for replay (dlq replay) or
discards it (dlq discard). A running cdcd takes the ones marked for replay
and delivers them through their pipeline's normal path; a replay that fails
again puts the letter back to dead with the new error.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError(fmt.Errorf("unknown command %q for %s; use list, show, replay or discard", args[0], cmd.CommandPath()))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SetOut(cmd.ErrOrStderr())
			_ = cmd.Help()
			return usageError(errors.New("dlq needs a command: list, show, replay or discard"))
		},
	}
	cmd.PersistentFlags().StringVarP(&path, "config", "c", "cdcd.yaml", "config file (for postgres.url)")
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError(err) })
	cmd.AddCommand(dlqListCommand(&path), dlqShowCommand(&path), dlqReplayCommand(&path), dlqDiscardCommand(&path))
	return cmd
}

func dlqListCommand(path *string) *cobra.Command {
	var (
		f      store.DeadLetterFilter
		status string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List dead letters, newest first",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if status != "" {
				if !slices.Contains(store.LetterStatuses(), store.LetterStatus(status)) {
					return usageError(fmt.Errorf("--status %q is not one of %s", status, statusNames()))
				}
				f.Status = store.LetterStatus(status)
			}
			if f.Limit <= 0 {
				return usageError(fmt.Errorf("--limit must be positive, got %d", f.Limit))
			}
			return withStore(cmd, *path, func(ctx context.Context, _ *config.Config, s *store.Store) error {
				letters, err := s.ListDeadLetters(ctx, f)
				if err != nil {
					return err
				}
				if asJSON {
					return printJSON(cmd.OutOrStdout(), letterList(letters))
				}
				printLetterTable(cmd.OutOrStdout(), cmd.ErrOrStderr(), letters, f)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&f.Pipeline, "pipeline", "", "only this pipeline's dead letters")
	cmd.Flags().StringVar(&status, "status", "", "only dead letters with this status: "+statusNames())
	cmd.Flags().IntVar(&f.Limit, "limit", 50, "at most this many")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	return cmd
}

func dlqShowCommand(path *string) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show everything stored about a dead letter: error, record, event, attempts, times",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError(fmt.Errorf("%s takes one dead letter id, got %d arguments", cmd.CommandPath(), len(args)))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ids, err := parseIDs(args)
			if err != nil {
				return err
			}
			return withStore(cmd, *path, func(ctx context.Context, _ *config.Config, s *store.Store) error {
				l, err := s.GetDeadLetter(ctx, ids[0])
				if errors.Is(err, store.ErrNotFound) {
					return fmt.Errorf("no dead letter %d (see cdcd dlq list)", ids[0])
				}
				if err != nil {
					return err
				}
				if asJSON {
					return printJSON(cmd.OutOrStdout(), toLetterJSON(l))
				}
				printLetter(cmd.OutOrStdout(), l)
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON object")
	return cmd
}

func dlqReplayCommand(path *string) *cobra.Command {
	var (
		pipeline string
		all      bool
	)
	cmd := &cobra.Command{
		Use:   "replay (ID... | --pipeline P --all)",
		Short: "Mark dead letters for replay by the running cdcd",
		Long: `replay marks dead letters for replay. It does not deliver them itself: the
pipelines of a running cdcd take the marked letters and deliver them through
their normal path (mapping, rate limits, retries, links, audit). Only dead
letters with status dead are marked.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case all && len(args) > 0:
				return usageError(errors.New("give dead letter ids or --pipeline P --all, not both"))
			case all && pipeline == "":
				return usageError(errors.New("--all needs --pipeline"))
			case !all && pipeline != "":
				return usageError(errors.New("--pipeline goes with --all (to replay every dead letter of the pipeline)"))
			case !all && len(args) == 0:
				return usageError(errors.New("give dead letter ids, or --pipeline P --all"))
			}
			ids, err := parseIDs(args)
			if err != nil {
				return err
			}
			return withStore(cmd, *path, func(ctx context.Context, cfg *config.Config, s *store.Store) error {
				out := cmd.OutOrStdout()
				if all {
					if !slices.ContainsFunc(cfg.Pipelines, func(p *config.Pipeline) bool { return p.Name == pipeline }) {
						fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s has no pipeline %s; its dead letters replay only once a cdcd runs a pipeline of that name\n", *path, pipeline)
					}
					n, err := s.RequestReplayAll(ctx, pipeline)
					if err != nil {
						return err
					}
					if n == 0 {
						fmt.Fprintf(out, "pipeline %s has no dead letters with status dead; nothing marked\n", pipeline)
						return nil
					}
					fmt.Fprintf(out, "marked %s of pipeline %s for replay\n%s\n", plural(n, "dead letter"), pipeline, replayNote)
					return nil
				}
				n, err := s.RequestReplay(ctx, ids)
				if err != nil {
					return err
				}
				if n == 0 {
					return fmt.Errorf("marked none of %s for replay: none exists with status dead (see cdcd dlq list)", plural(len(ids), "dead letter"))
				}
				fmt.Fprintf(out, "marked %s for replay\n%s\n", plural(n, "dead letter"), replayNote)
				if n < len(ids) {
					fmt.Fprintf(cmd.ErrOrStderr(), "%d of the ids given were not marked: they do not exist or are not dead (see cdcd dlq show ID)\n", len(ids)-n)
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&pipeline, "pipeline", "", "the pipeline whose dead letters --all marks")
	cmd.Flags().BoolVar(&all, "all", false, "mark every dead letter of --pipeline")
	return cmd
}

const replayNote = "the running cdcd's pipelines pick them up and deliver them through the normal path; follow with: cdcd dlq list --status replaying"

func dlqDiscardCommand(path *string) *cobra.Command {
	return &cobra.Command{
		Use:   "discard ID...",
		Short: "Discard dead letters: keep them for the record, never replay them",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError(fmt.Errorf("%s needs dead letter ids", cmd.CommandPath()))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ids, err := parseIDs(args)
			if err != nil {
				return err
			}
			return withStore(cmd, *path, func(ctx context.Context, _ *config.Config, s *store.Store) error {
				n, err := s.Discard(ctx, ids)
				if err != nil {
					return err
				}
				if n == 0 {
					return fmt.Errorf("discarded none of %s: none exists with status dead or replay (see cdcd dlq list)", plural(len(ids), "dead letter"))
				}
				fmt.Fprintf(cmd.OutOrStdout(), "discarded %s\n", plural(n, "dead letter"))
				if n < len(ids) {
					fmt.Fprintf(cmd.ErrOrStderr(), "%d of the ids given were not discarded: they do not exist, or are being replayed or already resolved\n", len(ids)-n)
				}
				return nil
			})
		},
	}
}

// withStore loads the config at path, opens the store and runs fn with them.
func withStore(cmd *cobra.Command, path string, fn func(context.Context, *config.Config, *store.Store) error) error {
	cfg, err := loadConfig(path)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	log := zerolog.New(zerolog.ConsoleWriter{Out: cmd.ErrOrStderr(), NoColor: true}).Level(zerolog.WarnLevel)
	octx, cancel := context.WithTimeout(ctx, dlqOpenTimeout)
	s, err := store.Open(octx, cfg.Postgres.URL, log)
	cancel()
	if err != nil {
		var ce *pgconn.ConnectError
		if errors.As(err, &ce) || errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("database unreachable: %w\ncheck that Postgres is running and that postgres.url in %s points to it", err, path)
		}
		return fmt.Errorf("open cdcd's state in the database of postgres.url (%s): %w", path, err)
	}
	defer s.Close()
	return fn(ctx, cfg, s)
}

// parseIDs parses dead letter ids, dropping repeats.
func parseIDs(args []string) ([]int64, error) {
	ids := make([]int64, 0, len(args))
	for _, a := range args {
		id, err := strconv.ParseInt(a, 10, 64)
		if err != nil || id <= 0 {
			return nil, usageError(fmt.Errorf("%q is not a dead letter id (a positive integer, as cdcd dlq list shows)", a))
		}
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

func statusNames() string {
	var names []string
	for _, s := range store.LetterStatuses() {
		names = append(names, string(s))
	}
	return strings.Join(names, ", ")
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
