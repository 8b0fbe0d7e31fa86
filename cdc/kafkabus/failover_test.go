package kafkabus

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/cdc/cdctest"
)

// The failover tests run one member of a consumer group in a child process
// (this test binary, re-run with memberEnv set) so that it can be killed
// for real: SIGKILL leaves the group silent, SIGTERM leaves it cleanly.
const (
	memberEnv   = "CDCD_TEST_GROUP_MEMBER" // "brokers|group|topic" in the child
	failoverKey = 30                       // distinct keys, spread over the partitions
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(memberEnv); spec != "" {
		os.Exit(runMember(spec))
	}
	os.Exit(m.Run())
}

// runMember consumes as one group member until SIGTERM, printing a line per
// delivered event.
func runMember(spec string) int {
	parts := strings.Split(spec, "|")
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	out := &printSink{w: bufio.NewWriter(os.Stdout)}
	c, err := NewConsumer(ConsumerConfig{Brokers: strings.Split(parts[0], ","), Group: parts[1], Topics: []string{parts[2]}, System: "erp"},
		out, zerolog.New(os.Stderr), nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := c.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

type printSink struct {
	mu sync.Mutex
	w  *bufio.Writer
}

func (s *printSink) Write(_ context.Context, events []cdc.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range events {
		fmt.Fprintf(s.w, "delivered %s\n", e.ID())
	}
	return s.w.Flush()
}

func (s *printSink) Close(context.Context) error { return nil }

// startMember starts a group member in a child process and returns it with
// a channel that is closed after its first delivery.
func startMember(t *testing.T, brokers []string, group, topic string) (*exec.Cmd, <-chan struct{}) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), memberEnv+"="+strings.Join(brokers, ",")+"|"+group+"|"+topic)
	cmd.Stderr = zerolog.NewTestWriter(t)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	delivered := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		once := sync.Once{}
		for sc.Scan() {
			once.Do(func() { close(delivered) })
		}
	}()
	return cmd, delivered
}

// publishRound publishes one event for each of failoverKey keys, tagged
// with round in the commit position so that rounds are told apart.
func publishRound(t *testing.T, brokers []string, round int) {
	t.Helper()
	publishRoundTo(t, brokers, round, 6)
}

// publishRoundTo is publishRound creating the topic, if it is missing,
// with partitions partitions.
func publishRoundTo(t *testing.T, brokers []string, round, partitions int) {
	t.Helper()
	p, err := New(Config{Brokers: brokers, CreateTopics: true, Partitions: partitions}, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	events := make([]cdc.Event, failoverKey)
	for k := range events {
		id := json.RawMessage(fmt.Sprint(k))
		events[k] = cdc.Event{
			Op: cdc.OpUpdate, Schema: "public", Table: "t",
			Key: cdc.Row{{Name: "id", Value: id}}, After: cdc.Row{{Name: "id", Value: id}},
			Pos: cdc.Position{CommitLSN: cdc.LSN(round*1000 + k + 1)},
		}
	}
	if err := p.Publish(context.Background(), events); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// roundKeys returns the keys of round the sink received.
func roundKeys(s *gateSink, round int) map[string]bool {
	keys := map[string]bool{}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range s.ids {
		lsn, err := cdc.ParseLSN(id[:strings.LastIndexByte(id, '/')]) // id is "<commit_lsn>/<index>"
		if err == nil && int(lsn)/1000 == round {
			keys[id] = true
		}
	}
	return keys
}

// failover runs two members of a group, one in a child process, stops the
// child with sig and returns how long after that the other member took
// over every partition.
func failover(t *testing.T, sig syscall.Signal) time.Duration {
	k := cdctest.StartKafka(t, kfake.NumBrokers(1))
	const group, topic = "cdcd.failover", "cdcd.public.t"
	publishRound(t, k.Brokers(), 0)
	child, childDelivered := startMember(t, k.Brokers(), group, topic)
	select {
	case <-childDelivered:
	case <-time.After(60 * time.Second):
		t.Fatal("the child member delivered nothing in 60s")
	}
	sink := &gateSink{}
	runConsumer(t, ConsumerConfig{Brokers: k.Brokers(), Group: group, Topics: []string{topic}, System: "erp"}, sink)
	cdctest.Eventually(t, 60*time.Second, "the group to split the partitions between both members", func() bool {
		return len(assignedTo(k.Brokers(), group)) == 2
	})

	if err := child.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	publishRound(t, k.Brokers(), 2)
	cdctest.Eventually(t, 60*time.Second, "every key of the round after the stop at the surviving member", func() bool {
		return len(roundKeys(sink, 2)) == failoverKey
	})
	return time.Since(stopped)
}

// assignedTo returns the members of group the coordinator lists.
func assignedTo(brokers []string, group string) []string {
	c := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 5 * time.Second}
	res, err := c.DescribeGroups(context.Background(), &kafka.DescribeGroupsRequest{GroupIDs: []string{group}})
	if err != nil || len(res.Groups) == 0 {
		return nil
	}
	var ids []string
	for _, m := range res.Groups[0].Members {
		if len(m.MemberAssignments.Topics) > 0 {
			ids = append(ids, m.MemberID)
		}
	}
	return ids
}

func TestKilledMembersPartitionsMoveWithinTenSeconds(t *testing.T) {
	took := failover(t, syscall.SIGKILL)
	t.Logf("the surviving member delivered everything %v after the SIGKILL", took.Round(time.Millisecond))
	if took > 10*time.Second {
		t.Errorf("took %v after the SIGKILL, want within 10s", took.Round(time.Millisecond))
	}
}

func TestStoppedMemberLeavesItsGroupAtOnce(t *testing.T) {
	took := failover(t, syscall.SIGTERM)
	t.Logf("the surviving member delivered everything %v after the SIGTERM", took.Round(time.Millisecond))
	if took >= defaultSessionTimeout {
		t.Errorf("took %v after the SIGTERM: the group waited for the session timeout (%v) instead of the member leaving", took.Round(time.Millisecond), defaultSessionTimeout)
	}
}

func TestConsumerReadsPartitionsAddedWhileRunning(t *testing.T) {
	k := cdctest.StartKafka(t, kfake.NumBrokers(1))
	const topic = "cdcd.public.t"
	publishRoundTo(t, k.Brokers(), 0, 2)
	sink := &gateSink{}
	runConsumer(t, ConsumerConfig{Brokers: k.Brokers(), Group: "cdcd.grow", Topics: []string{topic}, System: "erp", PartitionWatch: 500 * time.Millisecond}, sink)
	cdctest.Eventually(t, 60*time.Second, "every key of the first round", func() bool { return len(roundKeys(sink, 0)) == failoverKey })

	c := &kafka.Client{Addr: kafka.TCP(k.Brokers()...), Timeout: 10 * time.Second}
	res, err := c.CreatePartitions(context.Background(), &kafka.CreatePartitionsRequest{Topics: []kafka.TopicPartitionsConfig{{Name: topic, Count: 8}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Errors[topic]; err != nil {
		t.Fatal(err)
	}
	publishRoundTo(t, k.Brokers(), 1, 8) // a new producer spreads the keys over 8 partitions
	cdctest.Eventually(t, 60*time.Second, "every key of the round after the partitions were added", func() bool {
		return len(roundKeys(sink, 1)) == failoverKey
	})
}
