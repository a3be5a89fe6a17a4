package sim

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/reprise-si/reprise/examples/hospital/internal/archive"
)

// Service is one simulated application: its restored data (checked against
// its manifest at start), an HTTP API and an MLLP listener. Safe for
// concurrent use; one per process.
type Service struct {
	env Env
	app App

	mu      sync.RWMutex
	tables  map[string]*Table
	loadErr error
	summary archive.Summary
	data    string // SHA-256 of the loaded data's manifest
	journal *os.File
}

// NewService returns the service of app; call Load before serving.
func NewService(env Env, app App) *Service {
	return &Service{env: env, app: app, tables: map[string]*Table{}}
}

// Load verifies the app's restored data against its manifest, loads its CSV
// tables and replays the rows written to it since (its journal). A failure is
// kept: /health then answers 503 with the reason.
func (s *Service) Load() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loadErr = s.load()
	return s.loadErr
}

func (s *Service) load() error {
	dir := s.env.Data(s.app.ID)
	sum, err := archive.VerifyRestored(dir)
	if err != nil {
		return err
	}
	s.summary = sum
	s.data = dataFingerprint(s.env, s.app)
	files, err := filepath.Glob(filepath.Join(dir, "*.csv"))
	if err != nil {
		return err
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".csv")
		t, err := ReadCSV(name, f)
		if err != nil {
			return err
		}
		s.tables[name] = t
	}
	if err := s.extraChecks(); err != nil {
		return err
	}
	return s.replay()
}

// extraChecks are the per-application start checks beyond the manifest.
func (s *Service) extraChecks() error {
	switch s.app.ID {
	case "pacs":
		return checkPACSImages(s.env, s.tables["studies"])
	case "eai":
		_, err := s.routes()
		return err
	case "gam":
		for key := range s.tables["patients"].Rows {
			if err := CheckINS(key); err != nil {
				return fmt.Errorf("gam patients: %w", err)
			}
		}
	}
	return nil
}

type journalEntry struct {
	Table string `json:"table"`
	Key   string `json:"key"`
	Row   Row    `json:"row"`
}

func (s *Service) replay() error {
	path := s.env.StateFile(s.app.ID)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if f, err := os.Open(path); err == nil {
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		line := 0
		for sc.Scan() {
			line++
			var e journalEntry
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				f.Close()
				return fmt.Errorf("%s:%d: %w", path, line, err)
			}
			s.put(e.Table, e.Key, e.Row)
		}
		f.Close()
		if err := sc.Err(); err != nil {
			return err
		}
	}
	j, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	s.journal = j
	return nil
}

// put stores row under key in table, creating the table. Callers hold mu.
func (s *Service) put(table, key string, row Row) {
	t := s.tables[table]
	if t == nil {
		cols := make([]string, 0, len(row))
		for c := range row {
			cols = append(cols, c)
		}
		sort.Strings(cols)
		t = &Table{Name: table, Columns: cols, Rows: map[string]Row{}}
		s.tables[table] = t
	}
	t.Rows[key] = row
}

// Put stores a row and journals it so that a restarted service keeps it.
func (s *Service) Put(table, key string, row Row) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.loadErr != nil {
		return s.loadErr
	}
	b, _ := json.Marshal(journalEntry{Table: table, Key: key, Row: row})
	if _, err := s.journal.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("journal %s: %w", s.app.ID, err)
	}
	s.put(table, key, row)
	return nil
}

// Get returns a copy of one row.
func (s *Service) Get(table, key string) (Row, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	t := s.tables[table]
	if t == nil {
		return nil, false
	}
	r, ok := t.Rows[key]
	if !ok {
		return nil, false
	}
	out := Row{}
	for k, v := range r {
		out[k] = v
	}
	return out, true
}

// Rows returns a copy of a table's rows in key order.
func (s *Service) Rows(table string) []Row {
	s.mu.RLock()
	defer s.mu.RUnlock()
	t := s.tables[table]
	if t == nil {
		return nil
	}
	return t.Sorted()
}

// Health is the body of /health.
type Health struct {
	App      string         `json:"app"`
	Verified bool           `json:"verified"`
	Files    int            `json:"files,omitempty"`
	Bytes    int64          `json:"bytes,omitempty"`
	Tables   map[string]int `json:"tables,omitempty"`
	Error    string         `json:"error,omitempty"`
	Pid      int            `json:"pid"`
	Work     string         `json:"work"` // the work folder it serves, absolute
	// Data is the SHA-256 of the manifest of the data it loaded: a service
	// whose data was restored again since it started is restarted.
	Data string `json:"data,omitempty"`
}

func (s *Service) health() (Health, int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	h := Health{App: s.app.ID, Pid: os.Getpid(), Work: absPath(s.env.Work)}
	if s.loadErr != nil {
		h.Error = s.loadErr.Error()
		return h, http.StatusServiceUnavailable
	}
	h.Verified, h.Files, h.Bytes, h.Data = true, s.summary.Files, s.summary.Bytes, s.data
	h.Tables = map[string]int{}
	for n, t := range s.tables {
		h.Tables[n] = len(t.Rows)
	}
	return h, http.StatusOK
}

// Handler is the service's HTTP API:
//
//	GET /health                   200 once the data verified, else 503
//	GET /tables/NAME              rows, in key order
//	GET|PUT /tables/NAME/KEY      one row (PUT: JSON object, journaled)
//	POST /hl7/send                build a test message from this app's data and send it through the EAI
//	GET /hprim/export             (lab-middleware) pending results as HPRIM
//	POST /hprim/import            (lis) load an HPRIM results file
//	GET /worklist                 (ris) the DICOM modality worklist
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		h, code := s.health()
		writeJSON(w, code, h)
	})
	mux.HandleFunc("GET /tables/{table}", func(w http.ResponseWriter, r *http.Request) {
		if !s.ready(w) {
			return
		}
		writeJSON(w, http.StatusOK, s.Rows(r.PathValue("table")))
	})
	mux.HandleFunc("GET /tables/{table}/{key}", func(w http.ResponseWriter, r *http.Request) {
		if !s.ready(w) {
			return
		}
		row, ok := s.Get(r.PathValue("table"), r.PathValue("key"))
		if !ok {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		writeJSON(w, http.StatusOK, row)
	})
	mux.HandleFunc("PUT /tables/{table}/{key}", func(w http.ResponseWriter, r *http.Request) {
		if !s.ready(w) {
			return
		}
		var row Row
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&row); err != nil {
			http.Error(w, "bad row: "+err.Error(), http.StatusBadRequest)
			return
		}
		if err := s.Put(r.PathValue("table"), r.PathValue("key"), row); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /hl7/send", s.handleSend)
	mux.HandleFunc("GET /hprim/export", s.handleHPRIMExport)
	mux.HandleFunc("POST /hprim/import", s.handleHPRIMImport)
	mux.HandleFunc("GET /worklist", s.handleWorklist)
	return mux
}

func (s *Service) ready(w http.ResponseWriter) bool {
	s.mu.RLock()
	err := s.loadErr
	s.mu.RUnlock()
	if err != nil {
		http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// Listen binds the app's HTTP and MLLP ports on loopback; a port already in
// use is an error that names it and the way out.
func Listen(env Env, app App) (httpLn, mllpLn net.Listener, err error) {
	httpLn, err = net.Listen("tcp", env.HTTPAddr(app))
	if err != nil {
		return nil, nil, portError(env, app, env.HTTPAddr(app), "HTTP", err)
	}
	mllpLn, err = net.Listen("tcp", env.MLLPAddr(app))
	if err != nil {
		httpLn.Close()
		return nil, nil, portError(env, app, env.MLLPAddr(app), "MLLP", err)
	}
	return httpLn, mllpLn, nil
}

func portError(env Env, app App, addr, what string, err error) error {
	if what != "" {
		what += " "
	}
	return fmt.Errorf("%s %sport %s is taken (%w): stop what uses it or set HOSPITAL_PORT_BASE (now %d) to another free range of 100 ports",
		app.ID, what, addr, err, env.PortBase)
}

// Run serves the app until ctx ends: loads its data (a failed load is served
// as an unhealthy /health, so that the failure is visible), then answers HTTP
// and MLLP.
func Run(ctx context.Context, env Env, appID string) error {
	app, err := FindApp(appID)
	if err != nil {
		return err
	}
	httpLn, mllpLn, err := Listen(env, app)
	if err != nil {
		return err
	}
	s := NewService(env, app)
	if err := s.Load(); err != nil {
		fmt.Fprintf(os.Stderr, "%s: data not verified: %v\n", app.ID, err)
	}
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(httpLn) }()
	go func() { errc <- serveMLLP(ctx, s, mllpLn) }()
	fmt.Fprintf(os.Stderr, "%s: serving http://%s and mllp://%s (pid %d)\n", app.ID, env.HTTPAddr(app), env.MLLPAddr(app), os.Getpid())
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	shut, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = srv.Shutdown(shut)
	mllpLn.Close()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// dataFingerprint is the SHA-256 of app's restored manifest ("" if none).
func dataFingerprint(env Env, app App) string {
	h, err := archive.HashFile(filepath.Join(env.Data(app.ID), archive.ManifestName))
	if err != nil {
		return ""
	}
	return h
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// CheckINS checks the form of a (fictitious) INS: 15 digits whose last two
// are the key 97 - (first 13 mod 97), as for the NIR.
func CheckINS(ins string) error {
	if len(ins) != 15 || strings.Trim(ins, "0123456789") != "" {
		return fmt.Errorf("INS %q: want 15 digits", ins)
	}
	n, _ := strconv.ParseUint(ins[:13], 10, 64)
	key, _ := strconv.Atoi(ins[13:])
	if want := 97 - int(n%97); key != want {
		return fmt.Errorf("INS %q: key %02d, want %02d", ins, key, want)
	}
	return nil
}
