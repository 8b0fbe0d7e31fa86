package statuspage

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/cdcd-dev/cdcd/health"
)

//go:embed page.html
var pageHTML string

var pageTemplate = template.Must(template.New("page").Funcs(template.FuncMap{
	"spark":   spark,
	"percent": func(v float64) string { return fmt.Sprintf("%.1f%%", 100*v) },
	"count":   func(v float64) string { return fmt.Sprintf("%.0f", v) },
	"bytes":   bytesText,
	"ago":     ago,
	"lsn":     health.LSNText,
	"progress": func(done int64, total *int64) string {
		if total == nil || *total <= 0 {
			return fmt.Sprintf("%d", done)
		}
		return fmt.Sprintf("%d of %d (%.0f%%)", done, *total, 100*float64(done)/float64(*total))
	},
}).Parse(pageHTML))

// view is what the template renders.
type view struct {
	Status
	Now       time.Time
	Refresh   int
	Capture   []health.Status
	Systems   []health.Status
	Jobs      []health.Status
	Pipelines []health.Status
}

func (h *Handler) page(w http.ResponseWriter, r *http.Request) {
	v := view{Status: h.Status(r.Context()), Now: time.Now(), Refresh: int(h.refresh.Seconds())}
	for _, s := range v.Subjects {
		switch s.Kind {
		case health.KindCapture:
			v.Capture = append(v.Capture, s)
		case health.KindSystem:
			v.Systems = append(v.Systems, s)
		case health.KindJobs:
			v.Jobs = append(v.Jobs, s)
		case health.KindPipeline:
			v.Pipelines = append(v.Pipelines, s)
		}
	}
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, v); err != nil {
		h.log.Error().Err(err).Msg("rendering the status page")
		http.Error(w, "the status page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:")
	w.Write(buf.Bytes())
}

// spark draws values as a small inline SVG line, scaled to its maximum;
// its title tells the last value and the maximum.
func spark(values []float64, unit string) template.HTML {
	const w, h = 120.0, 24.0
	if len(values) < 2 {
		return template.HTML(`<svg class="spark" width="120" height="24" role="img"><title>not enough data yet</title></svg>`)
	}
	top := 0.0
	for _, v := range values {
		top = math.Max(top, v)
	}
	var pts strings.Builder
	for i, v := range values {
		x := w * float64(i) / float64(len(values)-1)
		y := h - 1
		if top > 0 {
			y = h - 1 - (h-2)*v/top
		}
		fmt.Fprintf(&pts, "%.1f,%.1f ", x, y)
	}
	last := values[len(values)-1]
	return template.HTML(fmt.Sprintf(`<svg class="spark" width="120" height="24" viewBox="0 0 120 24" role="img"><title>last %s%s, highest %s%s in the last hour</title><polyline fill="none" stroke="currentColor" stroke-width="1.5" points="%s"/></svg>`,
		num(last), unit, num(top), unit, strings.TrimSpace(pts.String())))
}

func num(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

func bytesText(b float64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.1f GiB", b/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", b/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", b/(1<<10))
	}
	return fmt.Sprintf("%.0f B", b)
}

// ago writes how long before now t was, coarsely.
func ago(t time.Time) string {
	if t.IsZero() {
		return "start"
	}
	d := time.Since(t)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm ago", int(d.Hours()), int(d.Minutes())%60)
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}
