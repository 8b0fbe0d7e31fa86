package deploy

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
)

var (
	// metricLiteral is a metric name as cdcd's code registers it.
	metricLiteral = regexp.MustCompile(`"(cdcd_[a-z0-9_]+)"`)
	// metricUse is a metric name in a PromQL expression.
	metricUse = regexp.MustCompile(`\bcdcd_[a-z0-9_]+\b`)
)

// registeredMetrics returns the metric names written in cdcd's Go code
// outside tests (every collector's Name or NewDesc), from the repository
// root.
func registeredMetrics(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != ".." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if !strings.Contains(string(b), "prometheus") {
			return nil
		}
		for _, m := range metricLiteral.FindAllStringSubmatch(string(b), -1) {
			names[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// known reports whether a name in an expression is a registered metric,
// or a histogram's series of one.
func known(names map[string]bool, use string) bool {
	if names[use] {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(use, suffix); ok && names[base] {
			return true
		}
	}
	return false
}

// The Grafana dashboard and the Prometheus alert rules use only metrics
// cdcd registers, so that a renamed metric fails here instead of leaving a
// silent panel or an alert that never fires.
func TestDashboardAndAlertsUseCdcdMetrics(t *testing.T) {
	t.Parallel()
	names := registeredMetrics(t)
	if !names["cdcd_health_state"] || !names["cdcd_sink_events_total"] {
		t.Fatalf("found %d metric names in cdcd's code, not cdcd_health_state or cdcd_sink_events_total", len(names))
	}

	var exprs []string
	b, err := os.ReadFile("grafana/cdcd-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Query any `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("grafana/cdcd-dashboard.json: %v", err)
	}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("dashboard panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		if q, ok := v.Query.(string); ok {
			exprs = append(exprs, q)
		}
	}

	b, err = os.ReadFile("prometheus/cdcd-alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &rules); err != nil {
		t.Fatalf("prometheus/cdcd-alerts.yaml: %v", err)
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || r.Expr == "" {
				t.Errorf("alert rule %q has no name or no expr", r.Alert)
			}
			exprs = append(exprs, r.Expr)
		}
	}

	used := 0
	for _, e := range exprs {
		for _, m := range metricUse.FindAllString(e, -1) {
			used++
			if !known(names, m) {
				t.Errorf("%s is used in %q but cdcd registers no such metric", m, e)
			}
		}
	}
	if used < 20 {
		t.Errorf("only %d metric uses found; the dashboard or the rules were not read", used)
	}
}
