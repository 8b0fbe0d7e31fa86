package cdctest

import (
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Kafka is an in-process Kafka-protocol cluster (kfake) listening on
// loopback TCP, reached by real clients at Brokers. Its state is persisted
// in a temporary directory so that Stop and Restart simulate a broker outage
// without losing topics or records.
//
// With CDCD_KAFKA_BROKERS set (host:port, comma-separated), it is that
// cluster instead (see KafkaBrokersEnv).
type Kafka struct {
	t        testing.TB
	opts     []kfake.Opt
	ports    []int
	external []string // CDCD_KAFKA_BROKERS

	mu sync.Mutex
	c  *kfake.Cluster // nil while stopped
}

// StartKafka starts a cluster for the test and closes it when the test
// ends. opts are passed to kfake: by default the cluster has three brokers
// and refuses to create topics on metadata requests, so a client's own topic
// creation is exercised; kfake.AllowAutoTopicCreation() allows it.
func StartKafka(t testing.TB, opts ...kfake.Opt) *Kafka {
	t.Helper()
	if brokers := os.Getenv(KafkaBrokersEnv); brokers != "" {
		return useExternalKafka(t, strings.Split(brokers, ","))
	}
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
	if k.external != nil {
		return k.external
	}
	addrs := make([]string, len(k.ports))
	for i, p := range k.ports {
		addrs[i] = net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
	}
	return addrs
}

// needFake skips the test on an external cluster: it injects faults,
// stops brokers or controls requests, which only kfake can.
func (k *Kafka) needFake() {
	if k.external != nil {
		k.t.Helper()
		k.t.Skipf("needs the in-process cluster to inject faults; %s is set", KafkaBrokersEnv)
	}
}

// Cluster returns the running kfake cluster, for fault injection
// (Cluster().Fault) and control functions, or nil while stopped. On an
// external cluster it skips the test, as Stop and Restart do.
func (k *Kafka) Cluster() *kfake.Cluster {
	k.needFake()
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.c
}

// Stop shuts every broker down: open connections are closed and new ones
// are refused until Restart. State is kept on disk. Stopping a stopped
// cluster does nothing.
func (k *Kafka) Stop() {
	k.needFake()
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
	k.needFake()
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
