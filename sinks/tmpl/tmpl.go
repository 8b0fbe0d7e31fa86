// Package tmpl renders the text templates that notification writers (Slack,
// PagerDuty, SMTP) build their messages from.
package tmpl

import (
	"encoding/json"
	"errors"
	"io"
	"math"
	"strings"
	"text/template"

	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/syncapi"
)

// Data is the dot of every template: {{.Fields.sku}}, {{.Op}},
// {{.Table}}. Op is create, update, delete or read. A field a record lacks
// is an error, so a typo in a template dead-letters the record instead of
// sending "<no value>".
type Data struct {
	Op         string
	Object     string
	Key        string
	ExternalID string
	EventID    string
	Schema     string
	Table      string
	Fields     map[string]any
}

var funcs = template.FuncMap{
	// json renders a value as JSON, for templates that produce JSON.
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
}

// Parse compiles a template; a field the record lacks is an error when it runs.
func Parse(name, text string) (*template.Template, error) {
	return template.New(name).Funcs(funcs).Option("missingkey=error").Parse(text)
}

// Render runs t over d.
func Render(t *template.Template, d *Data) (string, error) {
	var b strings.Builder
	if err := t.Execute(&b, d); err != nil {
		return "", err
	}
	return b.String(), nil
}

var opNames = map[byte]string{'c': "create", 'u': "update", 'd': "delete", 'r': "read", 't': "truncate"}

// NewData is the dot of a record's templates.
func NewData(r *syncapi.Record) *Data {
	d := &Data{
		Op:         opNames[byte(r.Op)],
		Object:     r.Object,
		Key:        r.Key,
		ExternalID: r.ExternalID,
		Fields:     make(map[string]any, len(r.Fields)),
	}
	if e := r.Event; e != nil {
		d.EventID, d.Schema, d.Table = e.ID(), e.Schema, e.Table
	}
	for k, v := range r.Fields {
		d.Fields[k] = wholeNumber(v)
	}
	return d
}

// wholeNumber turns an integral float64 into an int64 so that 1000000
// renders as 1000000, not 1e+06.
func wholeNumber(v any) any {
	if f, ok := v.(float64); ok && f == math.Trunc(f) && math.Abs(f) < 1<<53 {
		return int64(f)
	}
	return v
}

// CannotExist reports whether err, from running a template, says that the
// template names a field or map key that the data does not hold, as
// opposed to a value it could not use.
func CannotExist(err error) bool {
	if err == nil {
		return false
	}
	s := err.Error()
	return strings.Contains(s, "map has no entry for key") || strings.Contains(s, "can't evaluate field")
}

// Check runs t over d and returns the error when it names something d
// cannot hold (see CannotExist), or nil.
func Check(t *template.Template, d any) error {
	if err := t.Execute(io.Discard, d); CannotExist(err) {
		return errors.New(strings.TrimPrefix(err.Error(), "template: "))
	}
	return nil
}

// Named is a template's text and its path in the system's config.
type Named struct{ Path, Text string }

// CheckRecord runs each template over NewData(rec) and returns a
// FieldError for each that names what rec cannot hold (see
// config.TemplateChecker). Empty and unparsable templates are Validate's
// concern.
func CheckRecord(rec *syncapi.Record, templates ...Named) []config.FieldError {
	d := NewData(rec)
	var errs []config.FieldError
	for _, n := range templates {
		if n.Text == "" {
			continue
		}
		if t, err := Parse(n.Path, n.Text); err == nil {
			if err := Check(t, d); err != nil {
				errs = append(errs, config.FieldError{Path: n.Path, Msg: err.Error()})
			}
		}
	}
	return errs
}
