package builtin

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/reprise-si/reprise/plugins/sdk"
)

// HTTP verifies an HTTP(S) endpoint: `with: {url: …, status: 200, body:
// REGEXP, timeout: 5s, interval: 1s, insecure: false}`. Restore polls until
// the endpoint is healthy or the node's deadline passes; Check and Verify
// probe once.
type HTTP struct{}

var (
	_ sdk.Plugin    = (*HTTP)(nil)
	_ sdk.Checker   = (*HTTP)(nil)
	_ sdk.Verifier  = (*HTTP)(nil)
	_ sdk.Validator = (*HTTP)(nil)
)

type httpConfig struct {
	URL      string        `json:"url" required:"true" desc:"the endpoint (http or https)"`
	Status   int           `json:"status" desc:"expected status code (default 200)"`
	Body     string        `json:"body" desc:"regular expression the response body must match"`
	Timeout  time.Duration `json:"timeout" desc:"timeout of one request (default 5s)"`
	Interval time.Duration `json:"interval" desc:"time between probes while restoring (default 1s)"`
	Insecure bool          `json:"insecure" desc:"accept any TLS certificate (a recovering site may lack its PKI)"`
}

// httpProbe is a decoded, checked config.
type httpProbe struct {
	cfg     httpConfig
	body    *regexp.Regexp
	display string // the URL without its password, for messages
}

// Describe says what http is.
func (*HTTP) Describe(context.Context) (sdk.Info, error) {
	return sdk.Info{Name: "http", Version: Version, Description: "waits for and verifies an HTTP(S) endpoint",
		Fields: sdk.FieldsOf(httpConfig{})}, nil
}

func decodeHTTP(req *sdk.Request) (*httpProbe, []string) {
	var cfg httpConfig
	if err := req.Decode(&cfg); err != nil {
		return nil, splitJoined(err)
	}
	var problems []string
	p := &httpProbe{cfg: cfg, display: cfg.URL}
	if strings.Contains(cfg.URL, "${") {
		// A placeholder (another node's output) is resolved just before the
		// step runs; a dry run or validation sees it unresolved.
		p.display = "the URL of with.url"
	} else if u, err := url.Parse(cfg.URL); cfg.URL != "" && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "") {
		// Not quoted: a URL may carry credentials.
		problems = append(problems, "with.url: not an http or https URL (want http://host[:port]/path or https://…)")
	} else if err == nil {
		p.display = u.Redacted()
	}
	if cfg.Status == 0 {
		cfg.Status = http.StatusOK
	} else if cfg.Status < 100 || cfg.Status > 599 {
		problems = append(problems, fmt.Sprintf("with.status: %d is not an HTTP status (want 100 to 599)", cfg.Status))
	}
	p.cfg.Status = cfg.Status
	if cfg.Body != "" {
		re, err := regexp.Compile(cfg.Body)
		if err != nil {
			problems = append(problems, fmt.Sprintf("with.body: invalid regular expression: %v", err))
		}
		p.body = re
	}
	if cfg.Timeout == 0 {
		p.cfg.Timeout = 5 * time.Second
	}
	if cfg.Interval == 0 {
		p.cfg.Interval = time.Second
	}
	if problems != nil {
		return nil, problems
	}
	return p, nil
}

// Validate checks the URL, status and body pattern.
func (*HTTP) Validate(_ context.Context, req *sdk.Request) ([]string, error) {
	_, problems := decodeHTTP(req)
	return problems, nil
}

// probe makes one request; nil means healthy.
func (p *httpProbe) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.cfg.URL, nil)
	if err != nil {
		return err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DisableKeepAlives = true
	if p.cfg.Insecure {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} // asked for by the graph
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("read body: %w", err)
	}
	if resp.StatusCode != p.cfg.Status {
		return fmt.Errorf("status %d, want %d; body: %s", resp.StatusCode, p.cfg.Status, excerpt(body))
	}
	if p.body != nil && !p.body.Match(body) {
		return fmt.Errorf("status %d, body does not match %q; body: %s", resp.StatusCode, p.cfg.Body, excerpt(body))
	}
	return nil
}

// Restore probes every interval until the endpoint is healthy or ctx ends.
func (*HTTP) Restore(ctx context.Context, req *sdk.Request, s *sdk.Stream) error {
	p, problems := decodeHTTP(req)
	if p == nil {
		return configError(problems)
	}
	if req.DryRun {
		s.SetMessage("dry run: would wait for " + p.display)
		return nil
	}
	start := time.Now()
	// seen is the last probe that completed: a probe cut short by the
	// deadline says nothing about the service, so the error keeps the one
	// before it (its status and body excerpt).
	var seen error
	for n := 1; ; n++ {
		err := p.probe(ctx)
		if err == nil {
			s.SetMessage(fmt.Sprintf("%s healthy after %d probe(s), %s", p.display, n, time.Since(start).Round(time.Millisecond)))
			return nil
		}
		if ctx.Err() != nil {
			if seen == nil {
				seen = err
			}
			return fmt.Errorf("%s not healthy: %w (last probe: %v)", p.display, ctx.Err(), seen)
		}
		seen = err
		s.Logf("probe %d of %s: %v", n, p.display, err)
		t := time.NewTimer(p.cfg.Interval)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s not healthy: %w (last probe: %v)", p.display, ctx.Err(), seen)
		}
	}
}

// Check probes once: healthy means restored.
func (*HTTP) Check(ctx context.Context, req *sdk.Request) (sdk.CheckResult, error) {
	p, problems := decodeHTTP(req)
	if p == nil {
		return sdk.CheckResult{}, configError(problems)
	}
	if err := p.probe(ctx); err != nil {
		return sdk.CheckResult{Message: fmt.Sprintf("%s: %v", p.display, err)}, nil
	}
	return sdk.CheckResult{Restored: true, Message: p.display + " healthy"}, nil
}

// Verify probes once.
func (*HTTP) Verify(ctx context.Context, req *sdk.Request) (sdk.Result, error) {
	p, problems := decodeHTTP(req)
	if p == nil {
		return sdk.Result{}, configError(problems)
	}
	if err := p.probe(ctx); err != nil {
		return sdk.Result{Failed: true, Message: fmt.Sprintf("%s: %v", p.display, err)}, nil
	}
	return sdk.Result{Message: p.display + " healthy"}, nil
}

// excerpt quotes the start of a response body for an error message: what a
// timed-out restore saw last says why the service was not healthy.
func excerpt(body []byte) string {
	const max = 200
	if len(body) == 0 {
		return "(empty)"
	}
	s := strings.Join(strings.Fields(string(body)), " ")
	if len(s) > max {
		s = s[:max] + "…"
	}
	return strconv.Quote(s)
}
