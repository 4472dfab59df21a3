package syncthing

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// errNotFound is a 404 from the API.
var errNotFound = errors.New("syncthing api: not found")

// restClient talks to one Syncthing process's REST API on loopback or a
// Unix socket. It is local, so it does not go through the WAN scheduler.
type restClient struct {
	http *http.Client
	base string
	key  string
}

func newRESTClient(guiAddr, socket, key string) *restClient {
	tr := &http.Transport{
		Proxy:               nil, // never a proxy for a local API
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     time.Minute,
	}
	base := "http://" + guiAddr
	if guiAddr == "" {
		base = "http://syncthing"
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		}
	}
	return &restClient{http: &http.Client{Transport: tr}, base: base, key: key}
}

func (c *restClient) close() {
	c.http.CloseIdleConnections()
}

// do sends one request; body (if not nil) is sent as JSON and the answer
// decoded into out (if not nil). A 404 is errNotFound.
func (c *restClient) do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("syncthing api %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return fmt.Errorf("syncthing api %s %s: %w", method, path, err)
	}
	req.Header.Set("X-API-Key", c.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("syncthing api %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return errNotFound
	case resp.StatusCode/100 != 2:
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		detail := fmt.Sprintf("%s %s: %s %s", method, path, resp.Status, strings.TrimSpace(string(msg)))
		return newError(CodeAPI, detail, nil)
	}
	if out == nil {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 32<<20)).Decode(out); err != nil {
		return fmt.Errorf("syncthing api %s %s: decode: %w", method, path, err)
	}
	return nil
}
