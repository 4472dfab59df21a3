package dns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	miekg "github.com/miekg/dns"
)

var errNoUpstream = errors.New("no upstream resolver configured")

// flight is one resolution upstream, shared by every client asking the
// same question meanwhile. msg and err are set before done is closed.
type flight struct {
	done chan struct{}
	msg  *miekg.Msg
	err  error
}

// start returns the running resolution of key, starting one if there is
// none; nil when too many are running. A resolution runs to its end even
// when the clients that wanted it have been answered from stale data: it
// refreshes the cache.
func (s *Server) start(key cacheKey) *flight {
	s.flightMu.Lock()
	defer s.flightMu.Unlock()
	if f, ok := s.flights[key]; ok {
		return f
	}
	if len(s.flights) >= maxInflight {
		return nil
	}
	f := &flight{done: make(chan struct{})}
	s.flights[key] = f
	ctx := s.runCtx
	go func() {
		f.msg, f.err = s.resolve(ctx, key)
		s.flightMu.Lock()
		delete(s.flights, key)
		s.flightMu.Unlock()
		close(f.done)
	}()
	return f
}

// resolve asks the upstreams in order and caches the first usable answer.
func (s *Server) resolve(ctx context.Context, key cacheKey) (*miekg.Msg, error) {
	q := miekg.Question{Name: key.name, Qtype: key.qtype, Qclass: key.qclass}
	errs := []error{}
	reached := false // an upstream answered, if only SERVFAIL: the link works
	if len(s.upstreams) == 0 {
		errs = append(errs, errNoUpstream)
	}
	for _, up := range s.upstreams {
		if ctx.Err() != nil {
			errs = append(errs, ctx.Err())
			break
		}
		m := new(miekg.Msg)
		m.Id = miekg.Id()
		m.RecursionDesired = true
		m.Question = []miekg.Question{q}
		m.SetEdns0(ourUDPSize, key.do)
		s.counters.upstreamQueries.Add(1)
		resp, err := s.exchange(ctx, m, up)
		if err == nil {
			reached = true
			err = checkAnswer(m, resp)
		}
		if err != nil {
			s.counters.upstreamErr.Add(1)
			errs = append(errs, fmt.Errorf("%s: %w", up, err))
			continue
		}
		if s.upstreamDown.Swap(false) {
			s.log.Info("upstream resolvers answer again", "upstream", up)
		}
		if c, ttl, ok := cacheable(resp); ok {
			if wire, err := c.Pack(); err == nil {
				s.cache.put(key, wire, ttl, s.now())
			}
			// The first client reads what the next ones will (e.g. the
			// negative TTL in the SOA).
			return c, nil
		}
		return resp, nil
	}
	s.cache.failed(key, s.now())
	err := fmt.Errorf("resolve %s %s: %w", key.name, miekg.Type(key.qtype), errors.Join(errs...))
	if len(s.upstreams) > 0 && !reached && ctx.Err() == nil {
		s.upstreamDown.Store(true)
		s.throttle.log(s.log, slog.LevelWarn, "upstream", "upstream resolvers do not answer; serving stale answers where cached", "err", err)
	}
	return nil, err
}

// checkAnswer refuses an upstream message that does not answer m, or that
// says the upstream could not resolve it (SERVFAIL, REFUSED…): the next
// upstream, or stale data, may do better.
func checkAnswer(m, resp *miekg.Msg) error {
	if resp == nil {
		return errors.New("no answer")
	}
	if !resp.Response || resp.Id != m.Id || len(resp.Question) != 1 {
		return errors.New("answer does not match the query")
	}
	got, want := resp.Question[0], m.Question[0]
	if !strings.EqualFold(got.Name, want.Name) || got.Qtype != want.Qtype || got.Qclass != want.Qclass {
		return fmt.Errorf("answer is for %s %s, not the query", got.Name, miekg.Type(got.Qtype))
	}
	if resp.Rcode != miekg.RcodeSuccess && resp.Rcode != miekg.RcodeNameError {
		return fmt.Errorf("upstream answered %s", miekg.RcodeToString[resp.Rcode])
	}
	return nil
}

// exchangeNet sends m over UDP and again over TCP when the answer comes
// back truncated.
func (s *Server) exchangeNet(ctx context.Context, m *miekg.Msg, upstream string) (*miekg.Msg, error) {
	c := &miekg.Client{Net: "udp", Timeout: s.cfg.UpstreamTimeout, UDPSize: ourUDPSize}
	resp, _, err := c.ExchangeContext(ctx, m, upstream)
	if err != nil {
		return nil, fmt.Errorf("udp: %w", err)
	}
	if resp.Truncated {
		c.Net = "tcp"
		if resp, _, err = c.ExchangeContext(ctx, m, upstream); err != nil {
			return nil, fmt.Errorf("tcp: %w", err)
		}
	}
	return resp, nil
}
