package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
)

// counter is a reverse proxy between rotor and the Vault server that
// counts what reaches Vault: requests by kind, and the TCP connections
// rotor opens. It counts the whole command (store, audit chain, binding),
// which a counting transport inside one package cannot. Its own pool to
// Vault is large, so Vault's CPU behind it is not rotor's: the counting run
// is not the CPU run.
type counter struct {
	prefix string // the store's path prefix in the KV mount

	mu    sync.Mutex
	n     map[string]int
	conns int
}

func newCounter(prefix string) *counter { return &counter{prefix: prefix, n: map[string]int{}} }

// serve proxies to target from a loopback listener and returns its
// address and a function that stops it.
func (c *counter) serve(target string) (string, func(), error) {
	u, err := url.Parse(target)
	if err != nil {
		return "", nil, err
	}
	p := httputil.NewSingleHostReverseProxy(u)
	p.Transport = &http.Transport{MaxIdleConnsPerHost: 256}
	p.ModifyResponse = func(r *http.Response) error {
		c.count(r.Request.Method, r.Request.URL, r.StatusCode)
		return nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: p, ConnState: func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			c.mu.Lock()
			c.conns++
			c.mu.Unlock()
		}
	}}
	go srv.Serve(l)
	return "http://" + l.Addr().String(), func() { srv.Close() }, nil
}

// reset forgets what was counted so far.
func (c *counter) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n, c.conns = map[string]int{}, 0
}

func (c *counter) count(method string, u *url.URL, status int) {
	k := c.kind(method, u, status)
	c.mu.Lock()
	c.n[k]++
	c.mu.Unlock()
}

// kind names a request by what rotor does with it.
func (c *counter) kind(method string, u *url.URL, status int) string {
	p := strings.TrimPrefix(u.Path, "/v1/")
	op := "read"
	switch {
	case method == "LIST" || u.Query().Get("list") == "true":
		op = "list"
	case method == http.MethodPatch:
		op = "patch"
	case method == http.MethodPut || method == http.MethodPost:
		op = "write"
	case method == http.MethodDelete:
		op = "delete"
	}
	mount, rest, _ := strings.Cut(p, "/")
	area, rest, _ := strings.Cut(rest, "/")
	if mount != "secret" || !strings.HasPrefix(rest, c.prefix+"/") && rest != c.prefix {
		return "other: " + method + " " + p
	}
	rest = strings.TrimPrefix(strings.TrimPrefix(rest, c.prefix), "/")
	switch {
	case area == "data" && rest == "_audit/head":
		return "audit chain head " + op
	case area == "data" && strings.HasPrefix(rest, "_audit/checkpoint/"):
		if op == "read" && status == http.StatusNotFound {
			return "audit saves checkpoint read (none there)"
		}
		return "audit saves checkpoint " + op
	case area == "data" && strings.HasPrefix(rest, "_audit/records/"):
		if op == "read" && status == http.StatusNotFound {
			return "audit chain batch read (none there)"
		}
		return "audit chain batch " + op
	case area == "data":
		if op == "read" && status == http.StatusNotFound {
			return "KV data read (none there)"
		}
		return "KV data " + op
	case area == "metadata":
		return "KV metadata " + op
	}
	return "other: " + method + " " + p
}

// total is how many requests reached Vault since the last reset.
func (c *counter) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.n {
		n += v
	}
	return n
}

// report prints the counts per rotation of n secrets.
func (c *counter) report(w io.Writer, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	kinds := make([]string, 0, len(c.n))
	total := 0
	for k, v := range c.n {
		kinds = append(kinds, k)
		total += v
	}
	slices.Sort(kinds)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "requests reaching Vault, %d rotations\tper rotation\n", n)
	for _, k := range kinds {
		fmt.Fprintf(tw, "%s\t%.2f\n", k, float64(c.n[k])/float64(n))
	}
	fmt.Fprintf(tw, "all requests\t%.2f\n", float64(total)/float64(n))
	fmt.Fprintf(tw, "new TCP connections from rotor\t%.2f\n", float64(c.conns)/float64(n))
	tw.Flush()
}
