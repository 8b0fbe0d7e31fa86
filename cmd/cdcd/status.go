package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/health"
	"github.com/cdcd-dev/cdcd/statuspage"
)

// statusUnknown is the exit status of `cdcd status` when the daemon could
// not be asked (as monitoring plugins use 3).
const statusUnknown = 3

func statusCommand() *cobra.Command {
	var (
		path, url, token string
		asJSON, watch    bool
		every            time.Duration
	)
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the health of a running cdcd: pipelines, systems, capture, jobs",
		Long: `status asks a running cdcd (GET /api/status) for the state of every
pipeline, system and the capture, with its reason and figures, and prints
them as a table (--json: as JSON).

Its exit status is cdcd's overall state: 0 ok, 1 degraded, 2 unhealthy,
3 when the daemon could not be asked (not running, wrong token, bad flags).

The daemon's address and token come from the config (http.listen, and
http.read_token or else http.admin_token; only the http section is read,
so vendor secrets need not be set); --url and --token (or the CDCD_TOKEN
variable) reach another one.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if every <= 0 {
				return &exitError{statusUnknown, fmt.Errorf("--interval must be more than 0")}
			}
			base, tok, err := statusTarget(path, url, token, cmd.Flags().Changed("config"))
			if err != nil {
				return &exitError{statusUnknown, err}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			out := cmd.OutOrStdout()
			for {
				st, err := fetchStatus(ctx, base, tok)
				if err != nil {
					if watch && ctx.Err() != nil {
						return nil
					}
					return &exitError{statusUnknown, err}
				}
				if watch {
					fmt.Fprint(out, "\033[H\033[2J")
				}
				if asJSON {
					enc := json.NewEncoder(out)
					enc.SetIndent("", "  ")
					if err := enc.Encode(st); err != nil {
						return &exitError{statusUnknown, err}
					}
				} else {
					printStatus(out, st)
				}
				if !watch {
					if code := st.State.ExitCode(); code != 0 {
						return &exitError{code, fmt.Errorf("%s: %s", st.State, st.Reason)}
					}
					return nil
				}
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(every):
				}
			}
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "cdcd.yaml", "config file (for http.listen and the token)")
	cmd.Flags().StringVar(&url, "url", "", "address of the cdcd to ask (http://host:port); default from the config")
	cmd.Flags().StringVar(&token, "token", "", "read or admin token (default $CDCD_TOKEN, else from the config)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "print again every --interval until interrupted")
	cmd.Flags().DurationVar(&every, "interval", 2*time.Second, "how often --watch asks")
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &exitError{statusUnknown, err} })
	return cmd
}

// statusTarget is where the daemon answers and the token to show it: the
// flags, then CDCD_TOKEN, then the config (which must exist when named).
func statusTarget(path, url, token string, named bool) (string, string, error) {
	if token == "" {
		token = os.Getenv("CDCD_TOKEN")
	}
	if url != "" && token != "" {
		return strings.TrimSuffix(url, "/"), token, nil
	}
	if _, err := os.Stat(path); err != nil && !named && url != "" {
		return strings.TrimSuffix(url, "/"), token, nil
	}
	h, err := config.LoadHTTP(path)
	if err != nil {
		return "", "", fmt.Errorf("find the daemon in the config (or give --url and --token): %w", err)
	}
	if url == "" {
		host, port, _ := net.SplitHostPort(h.Listen)
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "127.0.0.1"
		}
		url = "http://" + net.JoinHostPort(host, port)
	}
	if token == "" {
		token = h.ReadToken
	}
	if token == "" {
		token = h.AdminToken
	}
	return strings.TrimSuffix(url, "/"), token, nil
}

func fetchStatus(ctx context.Context, base, token string) (*statuspage.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/status", nil)
	if err != nil {
		return nil, fmt.Errorf("--url %q: %w", base, err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ask cdcd at %s (is it running? http.listen, --url): %w", base, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("read the status from %s: %w", base, err)
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		return nil, errors.New("cdcd refused the token: give http.read_token or http.admin_token (--token or CDCD_TOKEN)")
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("cdcd at %s answered %s: %s", base, resp.Status, strings.TrimSpace(string(body)))
	}
	var st statuspage.Status
	if err := json.Unmarshal(body, &st); err != nil {
		return nil, fmt.Errorf("read the status from %s: %w", base, err)
	}
	return &st, nil
}

func printStatus(w io.Writer, st *statuspage.Status) {
	fmt.Fprintf(w, "cdcd %s: %s\n\n", st.State, st.Reason)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tNAME\tSTATE\tSINCE\tBACKLOG\tDELIVERED 1H\tERROR RATE 1H\tDEAD\tCONFLICTS\tREASON")
	for _, s := range st.Subjects {
		if s.Kind == health.KindCDCD {
			continue
		}
		state := s.State.String()
		if s.Pending != nil {
			state += " (" + s.Pending.State.String() + "?)"
		}
		f := s.Figures
		row := []string{s.Kind, s.Name, state, sinceText(s.Since, st.At), "", "", "", "", "", s.Reason}
		switch s.Kind {
		case health.KindPipeline:
			row[4] = fmt.Sprintf("%.0f", f["backlog"])
			row[5] = fmt.Sprintf("%.0f", f["delivered_1h"])
			row[6] = fmt.Sprintf("%.1f%%", 100*f["error_rate_1h"])
			row[7] = fmt.Sprintf("%.0f", f["dead_letters"])
			row[8] = fmt.Sprintf("%.0f/%.0f", f["conflicts_open"], f["conflicts_escalated"])
		case health.KindCapture:
			row[4] = fmt.Sprintf("%.0fB", f["lag_bytes"])
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	tw.Flush()
	if len(st.Jobs) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "JOB\tKIND\tPIPELINE\tSTATUS\tPROCESSED\tTOTAL\tERRORS")
		for _, j := range st.Jobs {
			total := "?"
			if j.Total != nil {
				total = fmt.Sprint(*j.Total)
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\t%d\n", j.ID, j.Kind, j.Pipeline, j.Status, j.Processed, total, j.Errors)
		}
		tw.Flush()
	}
	for _, p := range st.Problems {
		fmt.Fprintln(w, "problem:", p)
	}
}

func sinceText(t, now time.Time) string {
	if t.IsZero() {
		return "start"
	}
	return now.Sub(t).Round(time.Second).String()
}
