package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/cdcd-dev/cdcd/jobs"
)

// progressView shows a job's progress: one line redrawn in place with a
// bar, rate and ETA on a terminal, a plain line per update otherwise.
type progressView struct {
	w    io.Writer
	tty  bool
	last string
}

func (v *progressView) show(j *jobs.Job) {
	line := progressLine(j, v.tty)
	if line == v.last {
		return
	}
	v.last = line
	if v.tty {
		fmt.Fprintf(v.w, "\r\033[K%s", line)
		if j.Status.Finished() {
			fmt.Fprintln(v.w)
		}
		return
	}
	fmt.Fprintln(v.w, line)
}

// progressLine is "job 7 backfill contacts-to-hubspot running [====>  ] 45% 12345/27000 3210/s ETA 4s".
func progressLine(j *jobs.Job, bar bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "job %d %s", j.ID, j.Kind)
	if j.Pipeline != "" {
		b.WriteString(" " + j.Pipeline)
	}
	b.WriteString(" " + string(j.Status))
	if j.Total != nil && *j.Total > 0 {
		pct := min(100, float64(j.Processed)*100/float64(*j.Total))
		if bar {
			const width = 24
			n := int(pct / 100 * width)
			b.WriteString(" [" + strings.Repeat("=", n) + strings.Repeat(" ", width-n) + "]")
		}
		fmt.Fprintf(&b, " %.0f%% %d/%d", pct, j.Processed, *j.Total)
	} else {
		fmt.Fprintf(&b, " %d", j.Processed)
	}
	if j.Status == jobs.Running && j.Rate > 0 {
		fmt.Fprintf(&b, " %.0f/s", j.Rate)
		if j.Total != nil && *j.Total > j.Processed {
			eta := time.Duration(float64(*j.Total-j.Processed) / j.Rate * float64(time.Second))
			fmt.Fprintf(&b, " ETA %s", eta.Round(time.Second))
		}
	}
	if j.Errors > 0 {
		fmt.Fprintf(&b, " errors %d", j.Errors)
	}
	if j.Error != "" {
		b.WriteString(": " + j.Error)
	}
	return b.String()
}
