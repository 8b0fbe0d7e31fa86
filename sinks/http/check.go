package http

import (
	"github.com/cdcd-dev/cdcd/config"
	"github.com/cdcd-dev/cdcd/sinks/tmpl"
	"github.com/cdcd-dev/cdcd/syncapi"
)

// CheckTemplates renders the URL and body of each request over rec, as
// the request's op, and reports those that name what rec cannot hold.
func (c *Config) CheckTemplates(rec *syncapi.Record) []config.FieldError {
	var errs []config.FieldError
	for _, r := range []struct {
		op  string
		req *Request
	}{{"create", c.Create}, {"update", c.Update}, {"delete", c.Delete}} {
		if r.req == nil {
			continue
		}
		v := newView(r.op, rec, true)
		if t, err := parseURLTemplate(r.op+".url", r.req.URL); err == nil {
			if err := tmpl.Check(t, v); err != nil {
				errs = append(errs, config.FieldError{Path: r.op + ".url", Msg: err.Error()})
			}
		}
		if r.req.Body == "" {
			continue
		}
		if t, err := parseBodyTemplate(r.op+".body", r.req.Body); err == nil {
			if err := tmpl.Check(t, v); err != nil {
				errs = append(errs, config.FieldError{Path: r.op + ".body", Msg: err.Error()})
			}
		}
	}
	return errs
}
