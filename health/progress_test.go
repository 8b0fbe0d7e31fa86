package health

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Every health.progress the log has a line per pipeline with what it
// delivered since the last line and a capture line with its position and
// lag; at debug level, a line whenever a pipeline starts retrying,
// delivering or goes idle.
func TestProgressAndActivityLines(t *testing.T) {
	t.Parallel()
	f := newFakeDelivery()
	lsn := prometheus.NewGauge(prometheus.GaugeOpts{Name: "cdcd_capture_confirmed_lsn"})
	lag := prometheus.NewGauge(prometheus.GaugeOpts{Name: "cdcd_capture_lag_bytes"})
	f.reg.MustRegister(lsn, lag)
	lsn.Set(0x16B3748)
	lag.Set(4096)
	var buf bytes.Buffer
	log := zerolog.New(&buf).Level(zerolog.DebugLevel)
	cfg := testHealth()
	cfg.Progress = time.Minute
	m, err := New(cfg, []Pipeline{{Name: "contacts", System: "crm"}}, f.reg, nil, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	for s := 0; s <= 60; s += 5 {
		if s == 30 {
			f.fail("contacts")
		} else {
			f.deliver("contacts", 2)
		}
		m.Evaluate(context.Background(), t0.Add(time.Duration(s)*time.Second))
	}
	var progress, capture map[string]any
	var activities []string
	for line := range strings.Lines(buf.String()) {
		var l map[string]any
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		switch l["message"] {
		case "pipeline progress":
			progress = l
		case "capture progress":
			capture = l
		case "pipeline activity changed":
			activities = append(activities, l["activity"].(string))
		}
	}
	if progress == nil || progress["delivered"] != 24.0 || progress["interval_seconds"] != 60.0 || progress["confirmed_lsn"] != "0/16B3748" {
		t.Errorf("progress line %v, want 24 delivered (all since the start) at 0/16B3748", progress)
	}
	if capture == nil || capture["lag_bytes"] != 4096.0 || capture["confirmed_lsn"] != "0/16B3748" {
		t.Errorf("capture line %v, want lag_bytes 4096 at 0/16B3748", capture)
	}
	if got := strings.Join(activities, ","); got != "idle,delivering,retrying,delivering" {
		t.Errorf("activities %s, want idle (at the start), delivering, retrying, delivering", got)
	}
}
