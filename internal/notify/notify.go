// Package notify tells the crisis cell what happens in a run, through the
// graph's `notify` targets: webhooks (a JSON POST signed with HMAC-SHA256)
// and commands (an SMS or radio gateway's CLI, fed the JSON on stdin).
//
// Delivery never blocks or slows the run: Send only puts the message in a
// bounded queue (a full queue drops it and says so in the journal), and
// each target has its own queue and a few delivery goroutines, which try
// its messages in order, each retried with exponential backoff for a
// bounded time. A target that is down or failing thus costs a few
// attempts per backoff period, however many messages wait for it, and
// gets them in order once it is back. Every delivery and every failure is
// journaled through Options.Record.
package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/reprise-si/reprise/graphs"
)

// SignatureHeader carries "sha256=" and the hex HMAC-SHA256 of the body,
// keyed with the target's secret.
const SignatureHeader = "X-Reprise-Signature"

// Message is what a target is told, as JSON.
type Message struct {
	Event   graphs.NotifyEvent `json:"event"`
	Time    time.Time          `json:"time"`
	Run     string             `json:"run"`
	Graph   string             `json:"graph,omitempty"`
	Node    string             `json:"node,omitempty"`
	Zone    string             `json:"zone,omitempty"` // zone-certified
	Title   string             `json:"title,omitempty"`
	State   string             `json:"state,omitempty"`
	Text    string             `json:"message"`
	Owner   string             `json:"owner,omitempty"`
	Contact string             `json:"contact,omitempty"`
	Runbook string             `json:"runbook,omitempty"`
}

// Outcome is what became of one delivery attempt, for the journal.
type Outcome struct {
	Target  string // the target's label
	Event   graphs.NotifyEvent
	Node    string
	Attempt int
	OK      bool
	Final   bool   // no more attempts: delivered, given up, or dropped
	Detail  string // "HTTP 200", or the error
}

// Options tunes a Notifier; zero values take the defaults.
type Options struct {
	// Record journals an outcome (called from delivery goroutines).
	Record func(Outcome)
	// QueueSize bounds the messages waiting (default 1024).
	QueueSize int
	// RetryFor is how long a delivery is retried (default 10m).
	RetryFor time.Duration
	// FirstDelay is the first retry's delay, doubled each time up to a
	// minute (default 1s).
	FirstDelay time.Duration
	// Timeout bounds one attempt (default 10s).
	Timeout time.Duration
	// Getenv resolves ${env:…} and ${secret:…} (default os.Getenv).
	Getenv func(string) string
}

// perTarget is how many deliveries to one target may be in flight.
const perTarget = 4

// queued is a message waiting for one target.
type queued struct {
	m     Message
	body  []byte
	since time.Time // when it was queued: its retries end RetryFor after
}

// Notifier delivers messages to a graph's targets.
type Notifier struct {
	targets []graphs.Notify
	opts    Options
	queue   chan Message
	perQ    []chan queued // one per target
	client  *http.Client
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.Mutex
	dropped int
}

// New starts a notifier for targets (nil when there are none).
func New(targets []graphs.Notify, opts Options) *Notifier {
	if len(targets) == 0 {
		return nil
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 1024
	}
	if opts.RetryFor <= 0 {
		opts.RetryFor = 10 * time.Minute
	}
	if opts.FirstDelay <= 0 {
		opts.FirstDelay = time.Second
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	if opts.Record == nil {
		opts.Record = func(Outcome) {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &Notifier{targets: targets, opts: opts, queue: make(chan Message, opts.QueueSize),
		client: &http.Client{Timeout: opts.Timeout}, ctx: ctx, cancel: cancel}
	n.perQ = make([]chan queued, len(targets))
	for i := range targets {
		n.perQ[i] = make(chan queued, opts.QueueSize)
		for k := 0; k < perTarget; k++ {
			n.wg.Add(1)
			go n.worker(i)
		}
	}
	n.wg.Add(1)
	go n.dispatch()
	return n
}

// Send queues m for every target that wants its event. It never blocks:
// when the queue is full the message is dropped (and journaled as such).
func (n *Notifier) Send(m Message) {
	if n == nil {
		return
	}
	select {
	case n.queue <- m:
	default:
		n.mu.Lock()
		n.dropped++
		n.mu.Unlock()
		n.opts.Record(Outcome{Target: "all", Event: m.Event, Node: m.Node, Final: true,
			Detail: fmt.Sprintf("dropped: %d messages already wait for delivery", cap(n.queue))})
	}
}

// Close stops taking messages and waits up to grace for deliveries in
// progress (retries included); those still pending then are given up and
// journaled so.
func (n *Notifier) Close(grace time.Duration) {
	if n == nil {
		return
	}
	close(n.queue)
	done := make(chan struct{})
	go func() { n.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		n.cancel()
		<-done
	}
	n.cancel()
}

func (n *Notifier) dispatch() {
	defer n.wg.Done()
	defer func() {
		for _, q := range n.perQ {
			close(q)
		}
	}()
	for m := range n.queue {
		body, err := json.Marshal(m)
		if err != nil {
			continue
		}
		for i := range n.targets {
			t := &n.targets[i]
			if !t.Wants(m.Event) {
				continue
			}
			select {
			case n.perQ[i] <- queued{m: m, body: body, since: time.Now()}:
			default:
				n.opts.Record(Outcome{Target: t.Label(i), Event: m.Event, Node: m.Node, Final: true,
					Detail: fmt.Sprintf("dropped: %d messages already wait for this target", cap(n.perQ[i]))})
			}
		}
	}
}

// worker delivers target i's messages in turn; once the notifier is
// stopped, those still waiting are given up (and journaled so).
func (n *Notifier) worker(i int) {
	defer n.wg.Done()
	t := &n.targets[i]
	for q := range n.perQ[i] {
		if n.ctx.Err() != nil {
			n.opts.Record(Outcome{Target: t.Label(i), Event: q.m.Event, Node: q.m.Node, Final: true,
				Detail: "given up: reprise stopped before it could be sent"})
			continue
		}
		n.deliver(i, t, q.m, q.body, q.since)
	}
}

// deliver tries one message on one target until it is delivered, RetryFor
// has passed, or the notifier is closed.
func (n *Notifier) deliver(i int, t *graphs.Notify, m Message, body []byte, since time.Time) {
	label := t.Label(i)
	deadline := since.Add(n.opts.RetryFor)
	delay := n.opts.FirstDelay
	for attempt := 1; ; attempt++ {
		detail, err := n.attempt(t, m, body)
		out := Outcome{Target: label, Event: m.Event, Node: m.Node, Attempt: attempt, OK: err == nil, Detail: detail}
		if err == nil {
			out.Final = true
			n.opts.Record(out)
			return
		}
		out.Detail = err.Error()
		if n.ctx.Err() != nil {
			out.Final = true
			out.Detail = "given up: reprise stopped before the target answered (" + out.Detail + ")"
			n.opts.Record(out)
			return
		}
		next := time.Now().Add(delay)
		if next.After(deadline) || errors.Is(err, errPermanent) {
			out.Final = true
			out.Detail += fmt.Sprintf("; given up after %d attempts", attempt)
			n.opts.Record(out)
			return
		}
		out.Detail += fmt.Sprintf("; retrying in %s", delay)
		n.opts.Record(out)
		select {
		case <-time.After(delay):
		case <-n.ctx.Done():
			n.opts.Record(Outcome{Target: label, Event: m.Event, Node: m.Node, Attempt: attempt, Final: true,
				Detail: "given up: reprise stopped before the target answered"})
			return
		}
		if delay *= 2; delay > time.Minute {
			delay = time.Minute
		}
	}
}

var errPermanent = errors.New("permanent")

func (n *Notifier) attempt(t *graphs.Notify, m Message, body []byte) (string, error) {
	ctx, cancel := context.WithTimeout(n.ctx, n.opts.Timeout)
	defer cancel()
	var key []byte
	if t.Secret != "" {
		k, err := resolve(t.Secret, n.opts.Getenv)
		if err != nil {
			return "", fmt.Errorf("%w (%w)", err, errPermanent)
		}
		key = k
	}
	if t.Webhook != "" {
		return n.post(ctx, t.Webhook, m, body, key)
	}
	return runCommand(ctx, t.Command, m, body, key)
}

// Sign returns the signature header value of body under key.
func Sign(key, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

func (n *Notifier) post(ctx context.Context, url string, m Message, body, key []byte) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("%w (%w)", err, errPermanent)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "reprise-notify/1")
	req.Header.Set("X-Reprise-Event", string(m.Event))
	if key != nil {
		req.Header.Set(SignatureHeader, Sign(key, body))
	}
	resp, err := n.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("POST: %s", redactURL(err.Error(), url))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return "", fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return fmt.Sprintf("HTTP %d", resp.StatusCode), nil
}

// redactURL keeps a webhook URL's query (often a token) out of messages.
func redactURL(msg, url string) string {
	if i := strings.IndexByte(url, '?'); i >= 0 {
		msg = strings.ReplaceAll(msg, url[i:], "?[redacted]")
	}
	return msg
}

func runCommand(ctx context.Context, argv []string, m Message, body, key []byte) (string, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin = bytes.NewReader(body)
	cmd.Env = append(os.Environ(), "REPRISE_EVENT="+string(m.Event), "REPRISE_RUN="+m.Run, "REPRISE_NODE="+m.Node,
		"REPRISE_ZONE="+m.Zone, "REPRISE_MESSAGE="+m.Text)
	if key != nil {
		cmd.Env = append(cmd.Env, "REPRISE_SIGNATURE="+Sign(key, body))
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		tail := strings.TrimSpace(out.String())
		if len(tail) > 200 {
			tail = tail[len(tail)-200:]
		}
		if tail != "" {
			return "", fmt.Errorf("%s: %v: %s", argv[0], err, tail)
		}
		return "", fmt.Errorf("%s: %v", argv[0], err)
	}
	return "exit 0", nil
}

// resolve reads a ${secret:NAME}, ${secret:file:PATH} or ${env:NAME} key.
func resolve(ref string, getenv func(string) string) ([]byte, error) {
	inner := strings.TrimSuffix(strings.TrimPrefix(ref, "${"), "}")
	kind, name, _ := strings.Cut(inner, ":")
	if kind == "secret" {
		if path, ok := strings.CutPrefix(name, "file:"); ok {
			b, err := os.ReadFile(path)
			if err != nil {
				return nil, fmt.Errorf("notification key %s: %w", ref, err)
			}
			return bytes.TrimRight(b, "\r\n"), nil
		}
	}
	v := getenv(name)
	if v == "" {
		return nil, fmt.Errorf("notification key %s: %s is not set", ref, name)
	}
	return []byte(v), nil
}
