package cdctest

import (
	"net"
	"strconv"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Kafka is an in-process Kafka-protocol cluster (kfake) listening on
// loopback TCP, reached by real clients at Brokers. Its state is persisted
// in a temporary directory so that Stop and Restart simulate a broker outage
// without losing topics or records.
type Kafka struct {
	t     testing.TB
	opts  []kfake.Opt
	ports []int

	mu sync.Mutex
	c  *kfake.Cluster // nil while stopped
}

// StartKafka starts a cluster for the test and closes it when the test
// ends. opts are passed to kfake: by default the cluster has three brokers
// and refuses to create topics on metadata requests, so a client's own topic
// creation is exercised; kfake.AllowAutoTopicCreation() allows it.
func StartKafka(t testing.TB, opts ...kfake.Opt) *Kafka {
	t.Helper()
	opts = append(opts[:len(opts):len(opts)], kfake.DataDir(t.TempDir()))
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatalf("start kfake: %v", err)
	}
	k := &Kafka{t: t, opts: opts, c: c}
	for _, addr := range c.ListenAddrs() {
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			c.Close()
			t.Fatalf("kfake listen address %q: %v", addr, err)
		}
		n, _ := strconv.Atoi(port)
		k.ports = append(k.ports, n)
	}
	t.Cleanup(k.Stop)
	return k
}

// Brokers returns the bootstrap addresses ("127.0.0.1:port"). They stay the
// same across Stop and Restart.
func (k *Kafka) Brokers() []string {
	addrs := make([]string, len(k.ports))
	for i, p := range k.ports {
		addrs[i] = net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
	}
	return addrs
}

// Cluster returns the running kfake cluster, for fault injection
// (Cluster().Fault) and control functions, or nil while stopped.
func (k *Kafka) Cluster() *kfake.Cluster {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.c
}

// Stop shuts every broker down: open connections are closed and new ones
// are refused until Restart. State is kept on disk. Stopping a stopped
// cluster does nothing.
func (k *Kafka) Stop() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.c != nil {
		k.c.Close()
		k.c = nil
	}
}

// Restart starts the brokers again on the same ports with the state they had
// when stopped (topics, records, committed offsets). It must be called from
// the test's goroutine.
func (k *Kafka) Restart() {
	k.t.Helper()
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.c != nil {
		return
	}
	opts := append(k.opts[:len(k.opts):len(k.opts)], kfake.Ports(k.ports...))
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		k.t.Fatalf("restart kfake on ports %v: %v", k.ports, err)
	}
	k.c = c
}
