package cdc

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
)

func TestTrackerConfirmsOnlyContiguousAckedTransactions(t *testing.T) {
	tr := NewTracker(100)
	a, b, c := tr.Open(), tr.Open(), tr.Open()
	a.Add(2)
	b.Add(1)
	c.Add(1)
	a.Seal(200)
	b.Seal(300)
	c.Seal(400)

	b.Ack(nil)
	c.Ack(nil)
	if got := tr.Confirmed(); got != 100 {
		t.Fatalf("confirmed %v with the first transaction unacked, want 100", got)
	}
	a.Ack(nil)
	if got := tr.Confirmed(); got != 100 {
		t.Fatalf("confirmed %v with one event of the first transaction unacked, want 100", got)
	}
	a.Ack(nil)
	if got := tr.Confirmed(); got != 400 {
		t.Fatalf("confirmed %v after all acks, want 400", got)
	}
	if tr.InFlight() != 0 {
		t.Fatalf("in flight %d, want 0", tr.InFlight())
	}
}

func TestTrackerWaitsForSealEvenWhenAllEventsAcked(t *testing.T) {
	tr := NewTracker(0)
	x := tr.Open()
	x.Add(1)
	x.Ack(nil) // acked before the commit arrived
	if tr.Confirmed() != 0 {
		t.Fatal("confirmed an unsealed transaction")
	}
	x.Seal(50)
	if tr.Confirmed() != 50 {
		t.Fatalf("confirmed %v, want 50", tr.Confirmed())
	}
}

func TestTrackerNackStopsConfirmation(t *testing.T) {
	tr := NewTracker(10)
	a, b := tr.Open(), tr.Open()
	a.Add(1)
	b.Add(1)
	a.Seal(20)
	b.Seal(30)
	boom := errors.New("broker down")
	a.Ack(boom)
	b.Ack(nil)
	select {
	case <-tr.Failed():
	default:
		t.Fatal("Failed not closed after a nack")
	}
	if !errors.Is(tr.Err(), boom) || tr.Confirmed() != 10 {
		t.Fatalf("err=%v confirmed=%v, want the nack and 10", tr.Err(), tr.Confirmed())
	}
}

func TestTrackerAdvanceIdle(t *testing.T) {
	tr := NewTracker(10)
	if !tr.AdvanceIdle(20) || tr.Confirmed() != 20 {
		t.Fatal("idle advance refused with nothing in flight")
	}
	x := tr.Open()
	x.Add(1)
	if tr.AdvanceIdle(30) || tr.Confirmed() != 20 {
		t.Fatal("idle advance passed an unacknowledged transaction")
	}
	x.Seal(25)
	x.Ack(nil)
	if tr.Confirmed() != 25 {
		t.Fatalf("confirmed %v, want 25", tr.Confirmed())
	}
}

func TestTrackerConcurrentAcksConfirmEverything(t *testing.T) {
	tr := NewTracker(0)
	const txns, per = 500, 20
	var acks []Acker
	for i := 1; i <= txns; i++ {
		x := tr.Open()
		x.Add(per)
		for range per {
			acks = append(acks, x)
		}
		x.Seal(LSN(i * 10))
	}
	rand.Shuffle(len(acks), func(i, j int) { acks[i], acks[j] = acks[j], acks[i] })
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(acks); i += 4 {
				acks[i].Ack(nil)
			}
		}()
	}
	wg.Wait()
	if got := tr.Confirmed(); got != txns*10 {
		t.Fatalf("confirmed %v, want %v", got, LSN(txns*10))
	}
}

func TestLSNRoundTrip(t *testing.T) {
	for _, s := range []string{"0/0", "0/19F4CD8", "16/B374D848", "FFFFFFFF/FFFFFFFF"} {
		l, err := ParseLSN(s)
		if err != nil || l.String() != s {
			t.Fatalf("ParseLSN(%q) = %v, %v", s, l, err)
		}
	}
	for _, s := range []string{"", "12", "x/1", "1/"} {
		if _, err := ParseLSN(s); err == nil {
			t.Fatalf("ParseLSN(%q) accepted", s)
		}
	}
	if got := (Position{CommitLSN: 0x19F4CD8, Index: 3}).String(); got != "0/19F4CD8/3" {
		t.Fatalf("event id %q", got)
	}
}

// LSN.String prints what fmt's %X/%X prints.
func TestLSNStringIsHex(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	lsns := []LSN{0, 1, 0xF, 0x10, 1 << 32, 0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF}
	for range 10000 {
		lsns = append(lsns, LSN(r.Uint64()>>r.IntN(64)))
	}
	for _, l := range lsns {
		if got, want := l.String(), fmt.Sprintf("%X/%X", uint32(l>>32), uint32(l)); got != want {
			t.Fatalf("LSN(%#x) = %q, want %q", uint64(l), got, want)
		}
	}
}
