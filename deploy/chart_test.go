package deploy

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"text/template"

	"github.com/goccy/go-yaml"
)

// renderChart renders the chart's templates with values merged over its
// values.yaml, and returns the manifests, one YAML document each. It uses
// helm when it is installed, and otherwise text/template with the few
// Helm and Sprig functions the chart uses.
func renderChart(dir string, values map[string]any) ([]string, error) {
	if helm, err := exec.LookPath("helm"); err == nil {
		return renderWithHelm(helm, dir, values)
	}
	var chart struct {
		Name       string `yaml:"name"`
		Version    string `yaml:"version"`
		AppVersion string `yaml:"appVersion"`
	}
	if err := readYAML(filepath.Join(dir, "Chart.yaml"), &chart); err != nil {
		return nil, err
	}
	defaults := map[string]any{}
	if err := readYAML(filepath.Join(dir, "values.yaml"), &defaults); err != nil {
		return nil, err
	}
	files, err := filepath.Glob(filepath.Join(dir, "templates", "*"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	root := template.New(chart.Name).Option("missingkey=error")
	root.Funcs(chartFuncs(root))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		if _, err := root.New(filepath.Base(f)).Parse(string(b)); err != nil {
			return nil, err
		}
	}
	data := map[string]any{
		"Values":  mergeValues(defaults, values),
		"Release": map[string]any{"Name": "test", "Namespace": "default", "Service": "Helm"},
		"Chart":   map[string]any{"Name": chart.Name, "Version": chart.Version, "AppVersion": chart.AppVersion},
	}
	var docs []string
	for _, f := range files {
		name := filepath.Base(f)
		if strings.HasPrefix(name, "_") || !strings.HasSuffix(name, ".yaml") {
			continue
		}
		var b bytes.Buffer
		if err := root.ExecuteTemplate(&b, name, data); err != nil {
			return nil, err
		}
		docs = append(docs, splitDocuments(b.String())...)
	}
	return docs, nil
}

func renderWithHelm(helm, dir string, values map[string]any) ([]string, error) {
	b, err := yaml.Marshal(mergeValues(map[string]any{}, values))
	if err != nil {
		return nil, err
	}
	f, err := os.CreateTemp("", "values-*.yaml")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		return nil, err
	}
	f.Close()
	if out, err := exec.Command(helm, "lint", "--strict", dir, "-f", f.Name()).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("helm lint: %v\n%s", err, out)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(helm, "template", "test", dir, "-f", f.Name())
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("helm template: %v\n%s", err, stderr.Bytes())
	}
	return splitDocuments(string(out)), nil
}

func splitDocuments(s string) []string {
	var docs []string
	for doc := range strings.SplitSeq(s, "\n---") {
		if strings.TrimSpace(doc) != "" {
			docs = append(docs, doc)
		}
	}
	return docs
}

func readYAML(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// mergeValues returns over merged into base, maps merged key by key.
func mergeValues(base, over map[string]any) map[string]any {
	out := maps.Clone(base)
	for k, v := range over {
		bm, ok1 := out[k].(map[string]any)
		om, ok2 := v.(map[string]any)
		if ok1 && ok2 {
			out[k] = mergeValues(bm, om)
		} else {
			out[k] = v
		}
	}
	return out
}

// chartFuncs are the Helm and Sprig functions the chart uses, as Helm
// defines them.
func chartFuncs(root *template.Template) template.FuncMap {
	indent := func(n int, s string) string {
		pad := strings.Repeat(" ", n)
		return pad + strings.ReplaceAll(s, "\n", "\n"+pad)
	}
	return template.FuncMap{
		"include": func(name string, data any) (string, error) {
			var b bytes.Buffer
			err := root.ExecuteTemplate(&b, name, data)
			return b.String(), err
		},
		"toYaml": func(v any) (string, error) {
			b, err := yaml.Marshal(v)
			return strings.TrimSuffix(string(b), "\n"), err
		},
		"indent":  indent,
		"nindent": func(n int, s string) string { return "\n" + indent(n, s) },
		"quote": func(vs ...any) string {
			var out []string
			for _, v := range vs {
				if v != nil {
					out = append(out, fmt.Sprintf("%q", fmt.Sprint(v)))
				}
			}
			return strings.Join(out, " ")
		},
		"default": func(d any, given ...any) any {
			if len(given) == 0 || given[0] == nil || given[0] == "" {
				return d
			}
			return given[0]
		},
		"dict": func(kv ...any) map[string]any {
			m := map[string]any{}
			for i := 0; i+1 < len(kv); i += 2 {
				m[fmt.Sprint(kv[i])] = kv[i+1]
			}
			return m
		},
		"sha256sum": func(s string) string {
			h := sha256.Sum256([]byte(s))
			return hex.EncodeToString(h[:])
		},
		"b64enc":     func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) },
		"contains":   func(sub, s string) bool { return strings.Contains(s, sub) },
		"trimSuffix": func(suffix, s string) string { return strings.TrimSuffix(s, suffix) },
		"trunc": func(n int, s string) string {
			if len(s) > n {
				return s[:n]
			}
			return s
		},
	}
}
