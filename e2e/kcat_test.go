package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/cdc/cdctest"
	"github.com/cdcd-dev/cdcd/cdc/kafkabus"
)

// kcatRecord is one line of `kcat -C -J`.
type kcatRecord struct {
	Partition int32    `json:"partition"`
	Offset    int64    `json:"offset"`
	Key       *string  `json:"key"`
	Payload   *string  `json:"payload"`
	Headers   []string `json:"headers"` // name, value, name, value...
}

// readWithKcat reads every record of topic with kcat (librdkafka), a client
// that shares no code with cdcd's producer (kafka-go) nor with the test
// reader (franz-go). .ci/run installs it (apt-get install kcat).
func readWithKcat(t *testing.T, brokers []string, topic string) []kcatRecord {
	t.Helper()
	bin, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatalf("kcat is not installed (apt-get install kcat); .ci/run installs it")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-C", "-b", strings.Join(brokers, ","), "-t", topic,
		"-o", "beginning", "-e", "-J", "-q", "-X", "api.version.request=true")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kcat -C -t %s: %v: %s", topic, err, stderr.String())
	}
	var recs []kcatRecord
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var r kcatRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("kcat output line %q: %v", sc.Text(), err)
		}
		recs = append(recs, r)
	}
	return recs
}

// checkSameAsKcat asserts that kcat reads exactly the records the test's
// own reader read from topic: same partitions, offsets, keys, values and
// event id headers.
func checkSameAsKcat(t *testing.T, brokers []string, topic string) {
	t.Helper()
	ours := cdctest.ReadTopic(t, brokers, topic)
	theirs := readWithKcat(t, brokers, topic)
	type at struct {
		p int32
		o int64
	}
	byPos := make(map[at]kcatRecord, len(theirs))
	for _, r := range theirs {
		byPos[at{r.Partition, r.Offset}] = r
	}
	if len(theirs) != len(ours) {
		t.Fatalf("%s: kcat read %d records, franz-go %d", topic, len(theirs), len(ours))
	}
	for _, r := range ours {
		k, ok := byPos[at{r.Partition, r.Offset}]
		if !ok {
			t.Fatalf("%s partition %d offset %d: not read by kcat", topic, r.Partition, r.Offset)
		}
		if k.Key == nil || *k.Key != string(r.Key) {
			t.Errorf("%s partition %d offset %d: kcat key %v, want %q", topic, r.Partition, r.Offset, k.Key, r.Key)
		}
		if r.Value == nil && k.Payload != nil {
			t.Errorf("%s partition %d offset %d: kcat reads a value where the tombstone is", topic, r.Partition, r.Offset)
		}
		if r.Value != nil && (k.Payload == nil || *k.Payload != string(r.Value)) {
			t.Errorf("%s partition %d offset %d: kcat value differs", topic, r.Partition, r.Offset)
		}
		id, _ := r.Header(kafkabus.HeaderEventID)
		if got := kcatHeader(k.Headers, kafkabus.HeaderEventID); id == "" || got != id {
			t.Errorf("%s partition %d offset %d: kcat header %s=%q, want %q", topic, r.Partition, r.Offset, kafkabus.HeaderEventID, got, id)
		}
	}
}

func kcatHeader(h []string, name string) string {
	for i := 0; i+1 < len(h); i += 2 {
		if h[i] == name {
			return h[i+1]
		}
	}
	return ""
}
