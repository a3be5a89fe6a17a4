package web_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/reprise-si/reprise/engine"
	"github.com/reprise-si/reprise/engine/state"
	"github.com/reprise-si/reprise/graphs"
	"github.com/reprise-si/reprise/internal/auth"
	"github.com/reprise-si/reprise/internal/enginetest"
	"github.com/reprise-si/reprise/internal/graphgen"
	"github.com/reprise-si/reprise/internal/web"
)

// BenchmarkPages10k: the overview and the graph page (aggregated) of a
// finished 10,000-node run, as a logged-in browser gets them (the issue
// asks < 1.5 s for the first page).
func BenchmarkPages10k(b *testing.B) {
	dir := b.TempDir()
	var buf bytes.Buffer
	if err := graphgen.Generate(graphgen.Options{Nodes: 10000}).WriteYAML(&buf); err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(dir, "g.yaml")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		b.Fatal(err)
	}
	g, err := graphs.Load(path)
	if err != nil {
		b.Fatal(err)
	}
	st, err := state.Open(filepath.Join(dir, "reprise.db"), state.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	res, err := engine.New(st, &enginetest.FakeHost{}, engine.Options{Parallelism: 64}).Start(context.Background(), g)
	if err != nil {
		b.Fatal(err)
	}
	op, tok, _ := auth.NewOperator("wall", auth.RoleViewer, "bench", time.Now())
	if err := st.PutOperator(op); err != nil {
		b.Fatal(err)
	}
	st.Close()
	s, err := web.New(web.Options{StatePath: filepath.Join(dir, "reprise.db")})
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(s)
	defer ts.Close()
	defer s.Close()
	c := (&fixture{}).browser()
	resp, err := c.PostForm(ts.URL+"/login", url.Values{"token": {tok}})
	if err != nil || resp.StatusCode != 303 {
		b.Fatalf("login: %v", err)
	}
	resp.Body.Close()
	for _, page := range []string{"", "/graph"} {
		b.Run("page="+page, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				r, err := c.Get(ts.URL + "/runs/" + res.RunID + page)
				if err != nil || r.StatusCode != http.StatusOK {
					b.Fatalf("GET: %v %v", r, err)
				}
				var sink bytes.Buffer
				_, _ = sink.ReadFrom(r.Body)
				r.Body.Close()
			}
		})
	}
}
