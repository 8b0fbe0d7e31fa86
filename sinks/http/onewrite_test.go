package http

import (
	"bytes"
	"context"
	"net"
	"testing"
	"time"

	"github.com/cdcd-dev/cdcd/cdc"
	"github.com/cdcd-dev/cdcd/syncapi"
)

// A request's headers and body reach the system in one write. Regression:
// a body of a type the transport does not know to be in memory made it
// flush the headers on their own, two writes (and system calls) a request.
func TestRequestIsOneWrite(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	first := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			first <- nil
			return
		}
		defer c.Close()
		buf := make([]byte, 64<<10)
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, _ := c.Read(buf)
		first <- buf[:n]
		_, _ = c.Write([]byte("HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 10\r\nConnection: close\r\n\r\n{\"id\":\"7\"}"))
	}()
	c := NewConfig()
	c.Create = &Request{Method: "POST", URL: "http://" + ln.Addr().String() + "/items"}
	c.IDPath = "id"
	w := newWriter(t, c)
	rec := syncapi.Record{Event: &cdc.Event{DeliveryID: "ev-1"}, Op: cdc.OpCreate, Object: "items", Key: `{"id":1}`,
		Fields: map[string]any{"name": "the last field of the body"}}
	res, err := w.Write(context.Background(), []syncapi.Record{rec})
	if err != nil || res[0].Err != nil || res[0].ExternalID != "7" {
		t.Fatalf("write: %v %+v", err, res)
	}
	got := <-first
	if !bytes.HasSuffix(got, []byte(`{"name":"the last field of the body"}`)) {
		t.Fatalf("the system's first read was %q, not the whole request", got)
	}
}
