package dns

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	miekg "github.com/miekg/dns"
)

// FuzzHandler feeds raw wire bytes to the handler as miekg/dns would: any
// message that unpacks is served; the answer must pack, match the query's
// ID and fit the client's UDP buffer. Two bits of the message ID pick the
// transport and whether the client is on the LAN, two more the acceptance
// and uplink states, so that every path is reached.
func FuzzHandler(f *testing.F) {
	for _, q := range seedQueries(f) {
		f.Add(q)
	}
	s, clock, acc, up := memServer(f, nil)
	f.Fuzz(func(t *testing.T, wire []byte) {
		q := new(miekg.Msg)
		if err := q.Unpack(wire); err != nil {
			return
		}
		client := "192.168.50.10"
		if q.Id&2 != 0 {
			client = "203.0.113.9"
		}
		remote := udpFrom(client)
		if q.Id&1 != 0 {
			remote = tcpFrom(client)
		}
		acc.Set(remoteAddr(remote), q.Id&4 != 0)
		up.down.Store(q.Id&8 != 0)
		if q.Id&16 != 0 {
			clock.Advance(time.Hour)
		}
		w := &fakeWriter{remote: remote}
		s.serveDNS(w, q.Copy())
		checkReply(t, q, w)
	})
}

// FuzzUpstreamAnswer feeds hostile upstream answers through the forwarder
// and the cache: fresh, then from cache, then stale with the upstream
// gone. Seeds are the test upstream's answers to testdata/queries.txt.
func FuzzUpstreamAnswer(f *testing.F) {
	for _, wire := range seedQueries(f) {
		q := new(miekg.Msg)
		if err := q.Unpack(wire); err != nil {
			f.Fatal(err)
		}
		a, err := upstreamAnswer(q).Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(a)
	}
	f.Fuzz(fuzzUpstreamAnswer)
}

func fuzzUpstreamAnswer(t *testing.T, answer []byte) {
	var fail atomic.Bool
	s, clock, _, _ := memServer(t, func(_ context.Context, m *miekg.Msg, _ string) (*miekg.Msg, error) {
		if fail.Load() {
			return nil, errors.New("link cut")
		}
		r := new(miekg.Msg)
		if err := r.Unpack(answer); err != nil {
			return nil, err
		}
		// Make it answer the query so that it reaches the cache.
		r.Id, r.Response = m.Id, true
		if len(m.Question) == 1 && len(r.Question) == 1 {
			r.Question[0] = m.Question[0]
		}
		return r, nil
	})
	r := new(miekg.Msg)
	if err := r.Unpack(answer); err != nil || len(r.Question) != 1 {
		return
	}
	q := new(miekg.Msg)
	q.SetQuestion(r.Question[0].Name, r.Question[0].Qtype)
	q.SetEdns0(1232, true)
	for _, step := range []time.Duration{0, time.Second, 48 * time.Hour} {
		clock.Advance(step)
		fail.Store(step > time.Hour)
		for _, remote := range []net.Addr{udpFrom("192.168.50.10"), tcpFrom("192.168.50.10")} {
			w := &fakeWriter{remote: remote}
			s.serveDNS(w, q.Copy())
			checkReply(t, q, w)
		}
	}
}
