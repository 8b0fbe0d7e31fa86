package main

import (
	"net"
	"net/http"
	"sync/atomic"
)

// noop is a local HTTP endpoint that accepts everything with 204 and
// counts what it got.
type noop struct {
	url      string
	requests atomic.Int64
	srv      *http.Server
}

func startNoop() *noop {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	n := &noop{url: "http://" + l.Addr().String()}
	n.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		n.requests.Add(1)
		w.WriteHeader(http.StatusNoContent)
	})}
	go n.srv.Serve(l)
	return n
}

func (n *noop) close() { n.srv.Close() }
