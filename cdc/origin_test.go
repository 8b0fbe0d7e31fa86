package cdc

import "testing"

func TestOriginNameRoundTrip(t *testing.T) {
	t.Parallel()
	if n := OriginName("crm"); n != "cdcd:crm" {
		t.Errorf("OriginName(crm) = %q", n)
	}
	if s := OriginSystem(OriginName("crm")); s != "crm" {
		t.Errorf("OriginSystem(OriginName(crm)) = %q", s)
	}
	if s := OriginSystem("pgl_sub_1"); s != "pgl_sub_1" {
		t.Errorf("another tool's origin = %q, want it whole", s)
	}
}
