package delivery_test

import (
	"testing"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/delivery"
	"github.com/cdcd-dev/cdcd/syncstate"
)

// After a crash, changes from the last confirmed position come again. One
// older than the change the system already holds (its link's commit LSN)
// is skipped, so the system never moves back, even for a moment; the
// re-sent change of the same transaction and newer ones are written.
func TestResentOlderChangeIsSkippedNotWritten(t *testing.T) {
	t.Parallel()
	v := newVendor()
	h := newHarness(t, delivery.PipelineConfig{}, v)
	h.write(t, ev(5, 0, 1, cdc.OpCreate, "email=old@x"))
	h.write(t, ev(7, 0, 1, cdc.OpUpdate, "email=new@x"))
	writes := len(v.appliedTo(1))

	// the re-send, in one batch and alone
	h.write(t, ev(5, 0, 1, cdc.OpCreate, "email=old@x"), ev(7, 0, 1, cdc.OpUpdate, "email=new@x"))
	h.write(t, ev(5, 0, 1, cdc.OpCreate, "email=old@x"))
	if f := v.fields(1); f["email"] != "new@x" {
		t.Fatalf("the system holds %v after the re-send, want the newer email", f)
	}
	applied := v.appliedTo(1)
	for _, id := range applied[writes:] {
		if id == (cdc.Position{CommitLSN: 5}).String() {
			t.Fatalf("the older change was written again: %v", applied)
		}
	}
	out := h.audit.Outcomes(cdc.Position{CommitLSN: 5}.String())
	if last := out[len(out)-1]; last.Status != syncstate.StatusSkipped || last.Error != "older than the change the system holds" {
		t.Errorf("audit of the re-sent older change: %+v", last)
	}

	// a newer change is written as usual
	h.write(t, ev(9, 0, 1, cdc.OpUpdate, "email=newest@x"))
	if f := v.fields(1); f["email"] != "newest@x" {
		t.Fatalf("the system holds %v, want the newest email", f)
	}
}
