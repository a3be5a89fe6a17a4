package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/reprise-si/reprise/plugins/sdk"
)

// Version is the plugin's version, reported by Describe.
const Version = "0.3.0"

// Plugin restores the studies of an imaging archive from a backup folder.
// It keeps no state between calls, so it is safe for concurrent nodes.
type Plugin struct{}

// Compile-time checks: the capabilities this plugin offers.
var (
	_ sdk.Plugin    = (*Plugin)(nil)
	_ sdk.Checker   = (*Plugin)(nil)
	_ sdk.Verifier  = (*Plugin)(nil)
	_ sdk.Validator = (*Plugin)(nil)
)

// Config is a node's `with` mapping. Relative paths resolve from the graph
// file's folder.
type Config struct {
	Backup   string `json:"backup" required:"true" desc:"folder holding the backed-up studies (STUDY/FILE)"`
	Target   string `json:"target" required:"true" desc:"archive folder to restore into"`
	Manifest string `json:"manifest" required:"true" desc:"SHA-256 manifest of the backup (sha256sum format)"`
}

// Describe says what the plugin is.
func (*Plugin) Describe(context.Context) (sdk.Info, error) {
	return sdk.Info{
		Name:        "pacs",
		Version:     Version,
		Description: "restores imaging studies from a backup folder, checked against a SHA-256 manifest",
		Kinds:       []string{"application", "data"},
		Fields:      sdk.FieldsOf(Config{}),
	}, nil
}

// config decodes and resolves a node's config.
func config(req *sdk.Request) (Config, error) {
	var c Config
	if err := req.Decode(&c); err != nil {
		return c, err
	}
	for _, p := range []*string{&c.Backup, &c.Target, &c.Manifest} {
		if !filepath.IsAbs(*p) && req.WorkDir != "" {
			*p = filepath.Join(req.WorkDir, *p)
		}
	}
	if filepath.Clean(c.Backup) == filepath.Clean(c.Target) {
		return c, fmt.Errorf("with.target: must differ from with.backup (%s)", c.Backup)
	}
	return c, nil
}

// Validate reports config problems without touching any file: at planning
// time the backup may not be mounted yet.
func (*Plugin) Validate(_ context.Context, req *sdk.Request) ([]string, error) {
	if _, err := config(req); err != nil {
		return strings.Split(err.Error(), "\n"), nil // one problem a line
	}
	return nil, nil
}

// Restore copies every manifest file from the backup to the target, checking
// the backup copy's hash first; files already in place with the right hash
// are kept. Outputs: studies, files, bytes (and copied, the files written).
func (*Plugin) Restore(ctx context.Context, req *sdk.Request, s *sdk.Stream) error {
	c, err := config(req)
	if err != nil {
		return err
	}
	entries, err := readManifest(c.Manifest)
	if err != nil {
		return err
	}
	s.Logf("restoring %d files from %s to %s", len(entries), c.Backup, c.Target)
	studies := map[string]bool{}
	var bytes int64
	copied := 0
	for i, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		src := filepath.Join(c.Backup, filepath.FromSlash(e.Path))
		dst := filepath.Join(c.Target, filepath.FromSlash(e.Path))
		if sum, n, err := hashFile(dst); err == nil && sum == e.SHA256 {
			bytes += n // already restored (an earlier attempt)
		} else {
			sum, n, err := hashFile(src)
			if err != nil {
				return fmt.Errorf("backup file %s: %w", e.Path, err)
			}
			if sum != e.SHA256 {
				return fmt.Errorf("backup file %s is corrupt: sha256 %s, manifest line %d says %s", e.Path, sum, e.Line, e.SHA256)
			}
			if !req.DryRun {
				if err := copyFile(ctx, src, dst); err != nil {
					return fmt.Errorf("restore %s: %w", e.Path, err)
				}
			}
			bytes += n
			copied++
		}
		if !studies[e.Study()] {
			studies[e.Study()] = true
			s.Logf("study %s", e.Study())
		}
		s.Progress(float64(i+1)*100/float64(len(entries)), fmt.Sprintf("%d/%d files", i+1, len(entries)))
	}
	s.Output("studies", strconv.Itoa(len(studies)))
	s.Output("files", strconv.Itoa(len(entries)))
	s.Output("bytes", strconv.FormatInt(bytes, 10))
	s.Output("copied", strconv.Itoa(copied))
	verb := "restored"
	if req.DryRun {
		verb = "dry run: would restore"
	}
	s.SetMessage(fmt.Sprintf("%s %d studies (%d files, %d bytes, %d copied)", verb, len(studies), len(entries), bytes, copied))
	return nil
}

// copyFile copies src to dst through a temporary file renamed into place,
// so that a cancelled copy never leaves a half file under the final name.
func copyFile(ctx context.Context, src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".restore-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename: nothing left to remove
	_, err = io.Copy(tmp, &ctxReader{ctx: ctx, r: in})
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}

// ctxReader stops a copy when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// tally counts what the manifest lists.
type tally struct {
	files, studies int
	bytes          int64
}

// mismatches lists the manifest files missing or different in the target,
// and counts the manifest's files, studies and bytes in place.
func mismatches(ctx context.Context, c Config) ([]string, tally, error) {
	entries, err := readManifest(c.Manifest)
	if err != nil {
		return nil, tally{}, err
	}
	var bad []string
	t := tally{files: len(entries)}
	studies := map[string]bool{}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return nil, tally{}, err
		}
		studies[e.Study()] = true
		sum, n, err := hashFile(filepath.Join(c.Target, filepath.FromSlash(e.Path)))
		switch {
		case errors.Is(err, os.ErrNotExist):
			bad = append(bad, e.Path+" missing")
		case err != nil:
			bad = append(bad, e.Path+": "+err.Error())
		case sum != e.SHA256:
			bad = append(bad, e.Path+" differs")
		default:
			t.bytes += n
		}
	}
	t.studies = len(studies)
	return bad, t, nil
}

func summary(bad []string, total int) string {
	const show = 3
	s := fmt.Sprintf("%d of %d files missing or different: %s", len(bad), total, strings.Join(bad[:min(show, len(bad))], ", "))
	if len(bad) > show {
		s += ", …"
	}
	return s
}

// Check tells whether the target already matches the manifest.
func (*Plugin) Check(ctx context.Context, req *sdk.Request) (sdk.CheckResult, error) {
	c, err := config(req)
	if err != nil {
		return sdk.CheckResult{}, err
	}
	bad, t, err := mismatches(ctx, c)
	if err != nil {
		return sdk.CheckResult{}, err
	}
	if len(bad) > 0 {
		return sdk.CheckResult{Message: summary(bad, t.files)}, nil
	}
	// The outputs Restore sets, so that the steps using them can go on
	// when a resume finds the archive already in place.
	return sdk.CheckResult{Restored: true, Message: fmt.Sprintf("all %d files match the manifest", t.files),
		Outputs: map[string]string{"studies": strconv.Itoa(t.studies), "files": strconv.Itoa(t.files),
			"bytes": strconv.FormatInt(t.bytes, 10), "copied": "0"}}, nil
}

// Verify re-hashes every restored file against the manifest.
func (*Plugin) Verify(ctx context.Context, req *sdk.Request) (sdk.Result, error) {
	c, err := config(req)
	if err != nil {
		return sdk.Result{}, err
	}
	bad, t, err := mismatches(ctx, c)
	if err != nil {
		return sdk.Result{}, err
	}
	if len(bad) > 0 {
		return sdk.Result{}, errors.New(summary(bad, t.files))
	}
	return sdk.Result{Message: fmt.Sprintf("%d files verified", t.files),
		Outputs: map[string]string{"verified": strconv.Itoa(t.files)}}, nil
}
