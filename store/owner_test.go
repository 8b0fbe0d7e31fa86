package store

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Schema cdcd has one owner: its tables are made and changed only by the
// migrations (store/migrate.go applies them), and cdcd.links is written
// only by store/links.go. A package that made its table at run time, or
// wrote links its own way, drifted from the schema before.
func TestSchemaCdcdHasOneOwner(t *testing.T) {
	t.Parallel()
	ddl := regexp.MustCompile(`(?i)(CREATE|ALTER|DROP)\s+(TABLE|INDEX|UNIQUE\s+INDEX|SCHEMA|SEQUENCE|VIEW)\s+(IF\s+(NOT\s+)?EXISTS\s+)?(\S+\s+ON\s+)?cdcd\b`)
	links := regexp.MustCompile(`(?i)(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+cdcd\.links\b`)
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if m := ddl.Find(b); m != nil && rel != filepath.Join("store", "migrate.go") {
			t.Errorf("%s changes schema cdcd (%q): add a migration in store/migrations instead", rel, m)
		}
		if m := links.Find(b); m != nil && rel != filepath.Join("store", "links.go") {
			t.Errorf("%s writes cdcd.links (%q): use store's link functions instead", rel, m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
