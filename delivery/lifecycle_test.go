package delivery_test

import (
	"testing"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/delivery"
	"github.com/cdcd-dev/cdcd/syncstate"
)

// Regression: a row inserted and deleted before delivery was written as a
// delete without an external id, which the http writer dead-lettered
// ("empty value in a URL path"). It is skipped and counted instead.
func TestCreatedAndDeletedBeforeDeliveryIsSkipped(t *testing.T) {
	t.Parallel()
	v := newVendor()
	h := newHarness(t, delivery.PipelineConfig{Coalesce: true}, v)
	events := []cdc.Event{ev(1, 0, 1, cdc.OpCreate, "a=1"), ev(1, 1, 1, cdc.OpUpdate, "a=2"), ev(1, 2, 1, cdc.OpDelete), ev(1, 3, 2, cdc.OpCreate, "a=other")}
	h.write(t, events...)
	for _, r := range v.records() {
		if r.Key == keyOf(1) {
			t.Fatalf("a record that lived and died before delivery was written: %+v", r)
		}
	}
	if outs := h.audit.Outcomes(events[2].ID()); len(outs) != 1 || outs[0].Status != syncstate.StatusSkipped || outs[0].Error != "created and deleted before delivery" {
		t.Errorf("the delete audited %+v, want skipped: created and deleted before delivery", outs)
	}
	if n := len(h.dead.Letters()); n != 0 {
		t.Errorf("%d dead letters, want none", n)
	}
	if n := h.counter(t, "cdcd_sink_events_total", map[string]string{"result": "skipped"}); n != 3 {
		t.Errorf("skipped metric %v, want 3", n)
	}
}

// A create already delivered (linked) and sent again after a restart, then
// deleted, is deleted in the system: only a record the system never got
// is skipped.
func TestRedeliveredCreateThenDeleteIsDeleted(t *testing.T) {
	t.Parallel()
	v := newVendor()
	h := newHarness(t, delivery.PipelineConfig{Coalesce: true}, v)
	h.links.Seed(syncstate.Link{System: "crm", Object: "contacts", Table: "public.contacts", Key: keyOf(1), ExternalID: "ext-0", Base: map[string]any{"a": "1"}})
	v.state["ext-0"], v.byKey[keyOf(1)] = map[string]any{"a": "1"}, "ext-0"
	h.write(t, ev(1, 0, 1, cdc.OpCreate, "a=1"), ev(1, 1, 1, cdc.OpDelete))
	recs := v.records()
	if len(recs) != 1 || recs[0].Op != cdc.OpDelete || recs[0].ExternalID != "ext-0" {
		t.Fatalf("written %+v, want one delete of ext-0", recs)
	}
}

// Regression: an update that changed only a column the mapping leaves out
// sent the same PUT again; it sends nothing, whatever the writer.
func TestUpdateChangingNoMappedFieldSendsNothing(t *testing.T) {
	t.Parallel()
	v := newVendor()
	h := newHarness(t, delivery.PipelineConfig{}, v)
	h.write(t, ev(0x10, 0, 1, cdc.OpCreate, "a=1", "b=2"))
	h.write(t, ev(0x20, 0, 1, cdc.OpUpdate, "a=1", "b=2"))
	if n := len(v.records()); n != 1 {
		t.Fatalf("%d writes, want the create alone", n)
	}
	if outs := h.audit.Outcomes("0/20/0"); len(outs) != 1 || outs[0].Status != syncstate.StatusSkipped {
		t.Fatalf("the update audited %+v, want skipped", outs)
	}
	h.write(t, ev(0x30, 0, 1, cdc.OpUpdate, "a=1", "b=3"))
	recs := v.records()
	if len(recs) != 2 || recs[1].Fields["b"] != "3" || recs[1].Fields["a"] != "1" {
		t.Fatalf("writes %+v, want the changed update with all its fields", recs)
	}
}
