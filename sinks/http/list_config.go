package http

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"text/template"

	"github.com/cdcd-dev/cdcd/config"
)

// Pagination styles of a List.
const (
	PageCursor = "cursor" // the answer names the next page's cursor, sent back in Param
	PageOffset = "offset" // Param counts the records listed before the page
	PagePage   = "page"   // Param numbers the pages from 1
	PageURL    = "url"    // the answer holds the next page's URL at NextPath
	PageLink   = "link"   // the Link header's rel="next" URL
)

// List is how the system's records are listed, for imports: GET URL,
// then each next page as Pagination says, until the answer says there
// is no more.
type List struct {
	// URL is the first page's URL, a text/template over {{.Object}}
	// (path-escaped), with any fixed parameters (?limit=100).
	URL string `yaml:"url"`
	// Pagination is cursor, offset, page, url or link.
	Pagination string `yaml:"pagination"`
	// Param is the query parameter that carries the cursor, the offset or
	// the page number. Defaults cursor, offset and page.
	Param string `yaml:"param"`
	// NextPath locates the next cursor (cursor) or the next page's URL
	// (url) in the answer, as dot-separated keys. A missing, null or
	// empty value ends the listing.
	NextPath string `yaml:"next_path"`
	// HasMorePath, when set, locates a boolean in the answer; false ends
	// the listing, and true on an answer without a next page fails it.
	HasMorePath string `yaml:"has_more_path"`
	// RecordsPath locates the array of records in the answer; empty means
	// the answer is the array. An empty page ends the listing unless
	// HasMorePath says true there.
	RecordsPath string `yaml:"records_path"`
	// IDPath locates a record's id in it. Default "id".
	IDPath string `yaml:"id_path"`
	// UpdatedAtPath, when set, locates when the record last changed: an
	// RFC 3339 string or a Unix time in seconds or milliseconds.
	UpdatedAtPath string `yaml:"updated_at_path"`
}

func (l *List) validate() error {
	var errs []error
	bad := func(path, msg string) { errs = append(errs, config.FieldError{Path: "list." + path, Msg: msg}) }
	if l.URL == "" {
		bad("url", "required: the first page's URL")
	} else if _, err := l.template(); err != nil {
		bad("url", err.Error())
	} else if u, err := url.Parse(literalPrefix(l.URL)); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("url", "must start with http:// or https:// and a host")
	}
	switch l.Pagination {
	case PageCursor, PageURL:
		if l.NextPath == "" {
			bad("next_path", fmt.Sprintf("required with pagination %s: where the answer holds the next %s", l.Pagination, map[string]string{PageCursor: "cursor", PageURL: "page's URL"}[l.Pagination]))
		}
	case PageOffset, PagePage, PageLink:
	default:
		bad("pagination", fmt.Sprintf("%q: want cursor, offset, page, url or link", l.Pagination))
	}
	for key, p := range map[string]string{"next_path": l.NextPath, "has_more_path": l.HasMorePath, "records_path": l.RecordsPath, "id_path": l.IDPath, "updated_at_path": l.UpdatedAtPath} {
		if p != "" && slices.Contains(strings.Split(p, "."), "") {
			bad(key, fmt.Sprintf("%q is not a path (keys joined by single dots)", p))
		}
	}
	return errors.Join(errs...)
}

func (l *List) template() (*template.Template, error) {
	t, err := template.New("list.url").Option("missingkey=error").Parse(l.URL)
	if err != nil {
		return nil, fmt.Errorf("template: %w", err)
	}
	return t, nil
}

// param is the query parameter of the pagination.
func (l *List) param() string {
	if l.Param != "" {
		return l.Param
	}
	return l.Pagination
}

// Lists reports whether the system has a list: section (config.Lister).
func (c *Config) Lists() bool { return c.List != nil }
