package cluster

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"strconv"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/reprise-si/reprise/graphs"
)

// chunkSize keeps each graph chunk well under etcd's request size limit
// (1.5 MiB by default).
const chunkSize = 512 << 10

// publishGraph writes g under Keys.Graph(hash) in chunks, once (hash is
// g.Hash()): a graph already there (same hash, same content) is left as it
// is. What is written is g's JSON rendition when it has one (see
// publishedForm), else its source.
func publishGraph(ctx context.Context, cli *clientv3.Client, k Keys, g *graphs.Graph, hash string) error {
	prefix := k.Graph(hash)
	got, err := cli.Get(ctx, prefix+"count")
	if err != nil {
		return fmt.Errorf("publish graph %s for the agents: %w", g.Name, err)
	}
	if len(got.Kvs) > 0 {
		return nil
	}
	body, form := publishedForm(g)
	src := packGraph(body)
	// The warmSpec goes with the first chunk (warm.go): agents start the
	// plugins of their zone while they fetch and parse the graph.
	var spec []byte
	if g.File != "" {
		ws := warmSpecOf(g)
		if form != "" && len(ws.Plugins) > 0 {
			// A graph read from its rendition has no positions: the
			// agent compares the plugins published here with its own.
			ws.Plugins = maps.Clone(ws.Plugins)
			for name, p := range ws.Plugins {
				p.Pos = graphs.Position{}
				ws.Plugins[name] = p
			}
		}
		if b, err := json.Marshal(ws); err == nil && len(b) <= maxWarmSpec {
			spec = b
		}
	}
	n := 0
	for off := 0; off < len(src) || n == 0; off += chunkSize {
		end := min(off+chunkSize, len(src))
		put := clientv3.OpPut(fmt.Sprintf("%s%06d", prefix, n), string(src[off:end]))
		var err error
		if n == 0 && spec != nil {
			_, err = cli.Txn(ctx).Then(clientv3.OpPut(warmKey(k, hash), string(spec)), put).Commit()
		} else {
			_, err = cli.Do(ctx, put)
		}
		if err != nil {
			return fmt.Errorf("publish graph %s for the agents: %w", g.Name, err)
		}
		n++
	}
	// The count last: an agent that reads it reads every chunk. The file
	// name after it lets agents fetch the graph as soon as it is published
	// (Agent.prefetch).
	if _, err := cli.Put(ctx, prefix+"count", fmt.Sprintf("%d%s\n%s", n, form, g.File)); err != nil {
		return fmt.Errorf("publish graph %s for the agents: %w", g.Name, err)
	}
	return nil
}

// A graph is published as its JSON rendition (graphs.Rendition) when it
// has one and its source is not JSON already: an agent reads JSON several
// times faster than YAML (a 10,000-node graph in about 20 ms on one core
// instead of 60 to 80 ms on two), and every agent process reads it, while
// the coordinator renders it once (6 to 10 ms for that graph, whose
// entries are one-line flow mappings; a full YAML reading otherwise). The
// count key then says so on its first line, after the number of chunks:
// "json" and the sha256 of the rendition, which the agent checks as it
// checks the source's hash; the graph keeps its source's hash, its name.
// The agent cannot check that hash against a rendition: it takes the
// coordinator's word that the rendition is that source's, as it takes its
// word on the steps to run. The source is published as it is (with a
// count key of the chunks alone, as earlier versions did) when it is JSON,
// or has no rendition (a YAML .inf or .nan).
//
// An agent of an earlier version refuses a rendition (its hash is not the
// graph's): it also spoke protocol 0, and a coordinator of this version
// offers it nothing (protocol.go).
const renditionForm = "json"

// publishedForm returns what to publish of g and how the count key names
// its form: "" for the source, " json SHA256" for the rendition.
func publishedForm(g *graphs.Graph) ([]byte, string) {
	r, err := graphs.Rendition(g.File, g.Source)
	if err != nil || bytes.Equal(r, g.Source) {
		return g.Source, ""
	}
	sum := sha256.Sum256(r)
	return r, " " + renditionForm + " " + hex.EncodeToString(sum[:])
}

// parseCount reads a graph's count key: the number of chunks and, for a
// rendition, its sha256 ("" for a source).
func parseCount(val string) (n int, digest string, err error) {
	line, _, _ := strings.Cut(val, "\n")
	f := strings.Fields(line)
	if len(f) == 0 {
		return 0, "", errors.New("empty count")
	}
	if n, err = strconv.Atoi(f[0]); err != nil || n < 0 {
		return 0, "", fmt.Errorf("bad count %q", f[0])
	}
	switch {
	case len(f) == 1:
		return n, "", nil
	case len(f) == 3 && f[1] == renditionForm && isSHA256Hex(f[2]):
		return n, f[2], nil
	}
	return 0, "", fmt.Errorf("published in a form this agent does not read (%q)", line)
}

func isSHA256Hex(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil && strings.ToLower(s) == s
}

// graphCache fetches the graphs an agent needs, by hash. Concurrent gets
// of one graph fetch and parse it once: the others wait for that one (an
// agent that claims a batch of steps of a new graph would otherwise parse
// it once per step, at once). The parsed graphs are shared by the agents
// of the process (parsedGraphs) while something uses them: a graph's
// content is its hash, so the agents of one process (one per zone on a
// small site) share one parse.
type graphCache struct {
	cli *clientv3.Client
	k   Keys
	// parsed, if set, sees each graph get returns, before it returns it
	// (the agent checks the plugins it started before the parse: warm.go).
	parsed func(hash, file string, g *graphs.Graph)
}

// parsedGraphs are the graphs fetched by the agents of this process, by
// hash and file name, while something holds them.
//
// A call holds its graph while it runs (graphCache.hold), and a plugin
// host the graph it serves until it is closed (holdParsed). A graph that
// nothing holds and that no call took for the idle period of the agent
// that looks (AgentOptions.HostIdle, closeIdle) is let go: that is when
// its last host is closed as idle, and a later call fetches and parses it
// again. Over a months-long rebuild each edit of a graph is a new hash,
// and a 10,000-node graph is tens of MB parsed: kept for the process's
// life they would pile up. Not an LRU bound: a count bounds neither the
// memory (graphs differ in size a hundredfold) nor the parses (with more
// graphs in use than the bound, steps would parse theirs again and again);
// use says when a graph can go. An agent that stops lets go at once of
// those nothing holds: a process embedding agents goes on without them.
var parsedGraphs struct {
	mu sync.Mutex
	m  map[string]*graphEntry
}

// graphEntry is a graph fetched, or being fetched (ready is closed once g
// or err is set).
type graphEntry struct {
	ready chan struct{}
	g     *graphs.Graph
	err   error
	// users counts the holds (calls, plugin hosts, gets waiting for the
	// fetch); used is when a call last took or let go of the graph
	// (parsedGraphs.mu).
	users int
	used  time.Time
}

// let lets go of a hold on e; a call's (touch) counts as a use.
func (e *graphEntry) let(touch bool) {
	pg := &parsedGraphs
	pg.mu.Lock()
	defer pg.mu.Unlock()
	e.users--
	if touch {
		e.used = time.Now()
	}
}

// get returns the graph of hash hash, parsed under file name file (so
// that relative plugin paths and scripts resolve as the graph says, on
// this machine). The source is checked against hash. A failed fetch is not
// kept: the next get tries again. The graph is not held (see hold).
func (c *graphCache) get(ctx context.Context, hash, file string) (*graphs.Graph, error) {
	g, release, err := c.hold(ctx, hash, file)
	if err == nil {
		release()
	}
	return g, err
}

// hold is get, and the function that lets the graph go: until then it
// stays parsed.
func (c *graphCache) hold(ctx context.Context, hash, file string) (*graphs.Graph, func(), error) {
	e, err := c.load(ctx, hash, file)
	if err != nil {
		return nil, nil, err
	}
	if c.parsed != nil {
		c.parsed(hash, file, e.g)
	}
	var once sync.Once
	return e.g, func() { once.Do(func() { e.let(true) }) }, nil
}

// holdParsed takes a hold on g, the graph of hash hash parsed under file,
// for the plugin host built from it, and returns the function that lets it
// go; nil when g is not the graph parsedGraphs holds (one made elsewhere).
func holdParsed(hash, file string, g *graphs.Graph) func() {
	pg := &parsedGraphs
	pg.mu.Lock()
	defer pg.mu.Unlock()
	e := pg.m[hash+"\x00"+file]
	if e == nil {
		return nil
	}
	select {
	case <-e.ready:
	default:
		return nil
	}
	if e.g != g {
		return nil
	}
	e.users++
	return func() { e.let(false) }
}

// forgetIdleGraphs lets go of the parsed graphs that nothing holds and no
// call took for idle, and returns their hashes.
func forgetIdleGraphs(now time.Time, idle time.Duration) []string {
	pg := &parsedGraphs
	pg.mu.Lock()
	defer pg.mu.Unlock()
	var gone []string
	for key, e := range pg.m {
		if e.users == 0 && now.Sub(e.used) >= idle { // not being fetched: the fetch holds it
			delete(pg.m, key)
			hash, _, _ := strings.Cut(key, "\x00")
			gone = append(gone, hash)
		}
	}
	return gone
}

// parsedAlready reports whether the graph of hash hash is parsed under
// file in this process.
func parsedAlready(hash, file string) bool {
	pg := &parsedGraphs
	pg.mu.Lock()
	e := pg.m[hash+"\x00"+file]
	pg.mu.Unlock()
	if e == nil {
		return false
	}
	select {
	case <-e.ready:
		return e.err == nil
	default:
		return false
	}
}

// load returns the entry of the graph, fetched and parsed, held once
// more for the caller (without the parsed hook).
func (c *graphCache) load(ctx context.Context, hash, file string) (*graphEntry, error) {
	key := hash + "\x00" + file
	pg := &parsedGraphs
	pg.mu.Lock()
	if pg.m == nil {
		pg.m = map[string]*graphEntry{}
	}
	e, ok := pg.m[key]
	if !ok {
		e = &graphEntry{ready: make(chan struct{})}
		pg.m[key] = e
	}
	e.users++
	e.used = time.Now()
	pg.mu.Unlock()
	if ok {
		select {
		case <-e.ready:
			if e.err != nil {
				return c.load(ctx, hash, file) // the fetcher failed and forgot it: try again
			}
			return e, nil
		case <-ctx.Done():
			e.let(false)
			return nil, fmt.Errorf("fetch graph %s: %w", hash, ctx.Err())
		}
	}
	e.g, e.err = c.fetch(ctx, hash, file)
	if e.err != nil {
		pg.mu.Lock()
		if pg.m[key] == e {
			delete(pg.m, key)
		}
		pg.mu.Unlock()
	}
	close(e.ready)
	if e.err != nil {
		return nil, e.err
	}
	return e, nil
}

// prefetch fetches and parses, in the background, the graphs published
// from now on (one at a time), so that the first steps of a new run do not
// wait for their graph: parsing a 10,000-node graph takes a fifth of a
// second.
func (a *Agent) prefetch(ctx context.Context) {
	prefix := a.opts.Keys.Root + "work/graphs/"
	for ctx.Err() == nil {
		a.prefetchFrom(ctx, prefix)
		sleep(ctx, time.Second) // the watch broke: from the current revision again
	}
}

func (a *Agent) prefetchFrom(ctx context.Context, prefix string) {
	wch := a.opts.Client.Watch(ctx, prefix, clientv3.WithPrefix(), clientv3.WithFilterDelete())
	for wr := range wch {
		if wr.Err() != nil {
			return
		}
		for _, ev := range wr.Events {
			name := strings.TrimPrefix(string(ev.Kv.Key), prefix)
			if hash, ok := strings.CutSuffix(name, warmSuffix); ok && !strings.Contains(hash, "/") {
				val := ev.Kv.Value
				a.goWarm(ctx, hash, func() { a.warmEarly(ctx, hash, val) }) // while the graph is fetched and parsed
				continue
			}
			hash, ok := strings.CutSuffix(name, "/count")
			if !ok || strings.Contains(hash, "/") {
				continue
			}
			_, file, ok := strings.Cut(string(ev.Kv.Value), "\n")
			if !ok || file == "" {
				continue
			}
			g, release, err := a.graphs.hold(ctx, hash, file)
			if err != nil {
				if ctx.Err() == nil {
					a.log.Warn("fetch a graph just published (its steps fetch it again)", zap.String("graph", hash), zap.Error(err))
				}
				continue
			}
			if a.warmedEarly(hash, file) || !a.goWarm(ctx, hash, func() { defer release(); a.warm(ctx, g, hash) }) {
				release() // its plugins are started (or starting) already, or the agent stops
			}
		}
	}
}

// fetch reads and parses the graph of hash hash.
func (c *graphCache) fetch(ctx context.Context, hash, file string) (*graphs.Graph, error) {
	prefix := c.k.Graph(hash)
	resp, err := c.cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return nil, fmt.Errorf("fetch graph %s: %w", hash, err)
	}
	var buf bytes.Buffer
	count, digest := -1, ""
	for _, kv := range resp.Kvs {
		if string(kv.Key) == prefix+"count" {
			if count, digest, err = parseCount(string(kv.Value)); err != nil {
				return nil, fmt.Errorf("fetch graph %s: %w", hash, err)
			}
			continue
		}
		buf.Write(kv.Value)
	}
	if count < 0 || len(resp.Kvs) != count+1 {
		return nil, fmt.Errorf("fetch graph %s: not published (or incomplete) under %s", hash, prefix)
	}
	src, err := unpackGraph(buf.Bytes())
	if err != nil {
		return nil, fmt.Errorf("fetch graph %s: %w", hash, err)
	}
	sum := sha256.Sum256(src)
	want, what := hash, "content"
	if digest != "" {
		want, what = digest, "rendition"
	}
	if got := hex.EncodeToString(sum[:]); got != want {
		return nil, fmt.Errorf("fetch graph %s: %s hash is %s, want %s", hash, what, got, want)
	}
	if f := testBeforeParse.Load(); f != nil {
		(*f)(hash)
	}
	var g *graphs.Graph
	if digest != "" {
		// Parsed under the file's name, so that paths resolve as in the
		// file; g.Hash() is the file's, hash.
		g, err = graphs.ParseRendition(file, src, hash)
	} else {
		g, err = graphs.Parse(file, src)
	}
	if err != nil {
		return nil, fmt.Errorf("fetch graph %s: %w", hash, err)
	}
	return g, nil
}

// warm starts, in the background, the plugins of the nodes this agent may
// run in a graph just published (its zone's, and those without a zone),
// their binaries checked as a step would (hostOf): the first steps of the
// run do not wait for their plugin to start, and a pin that does not match
// on this machine is logged before any step comes.
func (a *Agent) warm(ctx context.Context, g *graphs.Graph, hash string) {
	seen := map[string]bool{}
	for _, n := range g.Nodes {
		if seen[n.Plugin] || n.Zone != "" && n.Zone != a.opts.Zone {
			continue
		}
		seen[n.Plugin] = true
		h, release, err := a.hostOf(ctx, g, hash, n.Plugin)
		if err == nil {
			if rd, ok := h.(interface {
				Ready(context.Context, string) error
			}); ok {
				err = rd.Ready(ctx, n.Plugin)
			}
			release()
		}
		if err != nil && ctx.Err() == nil {
			a.log.Warn("start a plugin of a graph just published (its steps will fail or try again)", zap.String("graph", hash), zap.String("plugin", n.Plugin), zap.Error(err))
		}
	}
}

// A graph is published gzip-compressed when that saves (a graph file of
// YAML or JSON text shrinks about tenfold): a 10,000-node graph of 800 KB
// goes through Raft, to three members, and to each agent as about 60 KB.
// The hash that names it is its source's. A graph file is text and never
// starts with gzip's magic bytes, so that one published plain (small, or
// by an earlier version) reads as it is.

// packGraph returns what to publish for graph source src.
func packGraph(src []byte) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	zw.Write(src)
	zw.Close()
	if buf.Len() >= len(src) {
		return src
	}
	return buf.Bytes()
}

// unpackGraph returns the source published as data; a compressed one is
// read up to graphs.MaxFileSize, no further.
func unpackGraph(data []byte) ([]byte, error) {
	if len(data) < 2 || data[0] != 0x1f || data[1] != 0x8b {
		return data, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("compressed graph: %w", err)
	}
	src, err := io.ReadAll(io.LimitReader(zr, graphs.MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("compressed graph: %w", err)
	}
	if len(src) > graphs.MaxFileSize {
		return nil, fmt.Errorf("compressed graph: over %d bytes once uncompressed", graphs.MaxFileSize)
	}
	return src, nil
}
