package webhook

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
)

// ackingBus acknowledges every published event, later, with err.
type ackingBus struct {
	err       error
	published []cdc.Event
}

func (b *ackingBus) Publish(_ context.Context, events []cdc.Event) error {
	b.published = append(b.published, events...)
	go func() {
		for i := range events {
			events[i].Settle(b.err)
		}
	}()
	return nil
}

func (b *ackingBus) Close(context.Context) error { return nil }

func TestPublishAcceptor(t *testing.T) {
	changes := []Change{{Event: cdc.Event{Op: cdc.OpUpdate, Schema: "hubspot", Table: "contacts", DeliveryID: "1", Partial: true}},
		{Event: cdc.Event{Op: cdc.OpCreate, Schema: "hubspot", Table: "contacts", DeliveryID: "2"}}}
	bus := &ackingBus{}
	if err := (PublishAcceptor{bus}).Accept(context.Background(), "hubspot", changes); err != nil {
		t.Fatal(err)
	}
	if len(bus.published) != 2 || bus.published[0].DeliveryID != "1" || !bus.published[0].Partial {
		t.Fatalf("published %+v", bus.published)
	}

	nack := &ackingBus{err: errors.New("broker down")}
	if err := (PublishAcceptor{nack}).Accept(context.Background(), "hubspot", changes); err == nil || err.Error() != "broker down" {
		t.Fatalf("nacked: %v", err)
	}

	silent := &silentBus{}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := (PublishAcceptor{silent}).Accept(ctx, "hubspot", changes); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("never acknowledged: %v", err)
	}
}

type silentBus struct{}

func (silentBus) Publish(context.Context, []cdc.Event) error { return nil }
func (silentBus) Close(context.Context) error                { return nil }
