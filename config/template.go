package config

import "github.com/cdcd-dev/cdcd/syncapi"

// TemplateChecker is implemented by the config of a writer whose templates
// read a record (URLs, bodies, messages). CheckTemplates renders every
// template over rec, a sample record of a pipeline's mapping, and returns
// a FieldError for each template that names something rec cannot hold (a
// field outside the mapping, a typo like {{.ID}}), its Path under the
// system ("update.url"). Errors that depend on the values are not its
// concern: rec holds placeholders.
type TemplateChecker interface {
	CheckTemplates(rec *syncapi.Record) []FieldError
}
