package daemon

import (
	"testing"

	"github.com/cdcd-dev/cdcd/config"
)

// Recent writes to a system are remembered only when a pipeline brings
// that system's changes in: nothing else reads them.
func TestBringsIn(t *testing.T) {
	cfg := &config.Config{
		Systems: map[string]*config.System{"crm": {Type: "hubspot"}, "erp": {Type: "http"}},
		Pipelines: []*config.Pipeline{
			{Name: "contacts-to-crm", From: "public.contacts", To: "crm"},
			{Name: "contacts-from-crm", From: "crm", To: "public.contacts"},
			{Name: "items-to-erp", From: "public.items", To: "erp"},
		},
	}
	if !bringsIn(cfg, "crm") {
		t.Error("crm: a pipeline brings its changes in")
	}
	if bringsIn(cfg, "erp") {
		t.Error("erp: no pipeline brings its changes in")
	}
}
