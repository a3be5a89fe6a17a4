package scan

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"strings"
	"time"
)

// Type is a scanner's kind.
type Type string

// The scanner types.
const (
	TypeIOC     Type = "ioc"
	TypeEntropy Type = "entropy"
	TypeYARA    Type = "yara"
	TypeClamAV  Type = "clamav"
)

// Types lists every Type in a stable order (for messages).
var Types = []Type{TypeIOC, TypeEntropy, TypeYARA, TypeClamAV}

// Defaults of the entropy scanner.
const (
	// DefaultThreshold is the share of examined files that must look
	// encrypted for the verdict to be Encrypted (fewer, but some, make it
	// Suspicious).
	DefaultThreshold = 0.10
	// DefaultMinEntropy is the Shannon entropy, in bits per byte, from
	// which a file's sample looks encrypted (random data: ~7.8 on 1 KiB,
	// ~8.0 on 64 KiB; text: 4–5; machine code: 5–6.5).
	DefaultMinEntropy = 7.5
	// MinEntropySize is the smallest file the entropy scanner examines:
	// below it, entropy says too little.
	MinEntropySize = 1024
	// EntropySample is how much of each file's head the entropy scanner
	// reads: ransomware that encrypts only part of each file
	// ("intermittent" encryption) starts at the head.
	EntropySample = 64 << 10
)

// Spec declares one scanner, as written under the graph's `scanners:`.
type Spec struct {
	Name string
	Type Type
	// HashLists are text files of SHA-256 hashes, one a line (ioc). Blank
	// lines and lines starting with '#' are skipped; a line may carry a
	// file name after the hash (sha256sum's output); MD5 and SHA-1 lines
	// (32 or 40 hex digits) of mixed feeds are ignored.
	HashLists []string
	// Names are file-name patterns (ioc: ransom notes), matched
	// case-insensitively against each file's base name with path.Match
	// ("*README*DECRYPT*", "*.lockbit").
	Names []string
	// Threshold is the share (0 < t ≤ 1) of examined files that must look
	// encrypted for an Encrypted verdict (entropy; zero: DefaultThreshold).
	Threshold float64
	// MinEntropy is in bits per byte (entropy; zero: DefaultMinEntropy).
	MinEntropy float64
	// Rules are YARA rules files (yara). A rule tagged "suspicious" makes
	// the point Suspicious; any other match makes it Compromised.
	Rules []string
	// Database is a ClamAV signature file or folder (clamav).
	Database string
}

// Options tune a Set. The zero value is ready to use.
type Options struct {
	// Workers is how many files are read at once (zero: GOMAXPROCS); the
	// yara command gets as many threads.
	Workers int
	// MaxFindings caps the findings kept per scanner (zero: 100); the
	// count in ScannerResult stays exact.
	MaxFindings int
}

// Set is a compiled list of scanners. It is immutable once built and safe
// for concurrent Scans.
type Set struct {
	specs  []Spec
	hashes map[[32]byte]struct{} // union of every ioc scanner's lists
	owners map[[32]byte][]int    // which ioc scanners list each hash
	opts   Options
}

// Install says how to get each external scanner's command.
var Install = map[Type]string{
	TypeYARA:   "install Debian's yara package: apt-get install yara",
	TypeClamAV: "install Debian's clamav package: apt-get install clamav (reprise never runs freshclam: name your own database)",
}

// Command is the program each external scanner runs; tests may point it
// elsewhere only by PATH.
var Command = map[Type]string{TypeYARA: "yara", TypeClamAV: "clamscan"}

// Compile checks every spec and loads its files: hash lists are read,
// yara rules and ClamAV databases are loaded once by their command against
// an empty input, and a missing command is an ErrMissingCommand saying how
// to install it. Every problem is reported (errors.Join), each naming the
// scanner.
func Compile(ctx context.Context, specs []Spec, opts Options) (*Set, error) {
	s := &Set{specs: specs, opts: opts, hashes: map[[32]byte]struct{}{}, owners: map[[32]byte][]int{}}
	var errs []error
	seen := map[string]bool{}
	for i, sp := range specs {
		if sp.Name == "" {
			errs = append(errs, fmt.Errorf("scanner %d: %w: missing name", i, ErrBadSpec))
			continue
		}
		if seen[sp.Name] {
			errs = append(errs, fmt.Errorf("scanner %q: %w: declared twice", sp.Name, ErrBadSpec))
		}
		seen[sp.Name] = true
		if err := s.compile(ctx, i, sp); err != nil {
			errs = append(errs, fmt.Errorf("scanner %q: %w", sp.Name, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Set) compile(ctx context.Context, i int, sp Spec) error {
	switch sp.Type {
	case TypeIOC:
		if len(sp.HashLists) == 0 && len(sp.Names) == 0 {
			return fmt.Errorf("%w: ioc needs hash lists or name patterns", ErrBadSpec)
		}
		for _, p := range sp.Names {
			if _, err := path.Match(strings.ToLower(p), ""); err != nil {
				return fmt.Errorf("%w: bad name pattern %q: %w", ErrBadSpec, p, err)
			}
		}
		for _, f := range sp.HashLists {
			if err := loadHashList(f, func(h [32]byte) {
				s.hashes[h] = struct{}{}
				if o := s.owners[h]; len(o) == 0 || o[len(o)-1] != i {
					s.owners[h] = append(o, i)
				}
			}); err != nil {
				return err
			}
		}
	case TypeEntropy:
		if sp.Threshold < 0 || sp.Threshold > 1 {
			return fmt.Errorf("%w: threshold %g out of range (want more than 0, at most 1)", ErrBadSpec, sp.Threshold)
		}
		if sp.MinEntropy < 0 || sp.MinEntropy > 8 {
			return fmt.Errorf("%w: min_entropy %g out of range (want 0 to 8 bits per byte)", ErrBadSpec, sp.MinEntropy)
		}
	case TypeYARA:
		if len(sp.Rules) == 0 {
			return fmt.Errorf("%w: yara needs at least one rules file", ErrBadSpec)
		}
		if err := lookCommand(sp.Type); err != nil {
			return err
		}
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := withEmptyFile(func(f string) error { _, err := runYARA(cctx, sp, f, 1); return err }); err != nil {
			return fmt.Errorf("load rules: %w", err)
		}
	case TypeClamAV:
		if sp.Database == "" {
			return fmt.Errorf("%w: clamav needs a signature database (a file or folder)", ErrBadSpec)
		}
		if err := lookCommand(sp.Type); err != nil {
			return err
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		defer cancel()
		if err := withEmptyFile(func(f string) error { _, err := runClamAV(cctx, sp, f); return err }); err != nil {
			return fmt.Errorf("load database: %w", err)
		}
	default:
		return fmt.Errorf("%w: unknown type %q (want %s)", ErrBadSpec, sp.Type, joinTypes())
	}
	return nil
}

// withEmptyFile calls fn with the path of an empty temporary file, for a
// command to load its rules against.
func withEmptyFile(fn func(string) error) error {
	f, err := os.CreateTemp("", "reprise-scan-*")
	if err != nil {
		return fmt.Errorf("make an empty file to load against: %w", err)
	}
	defer os.Remove(f.Name())
	if err := f.Close(); err != nil {
		return fmt.Errorf("make an empty file to load against: %w", err)
	}
	return fn(f.Name())
}

func lookCommand(t Type) error {
	if _, err := exec.LookPath(Command[t]); err != nil {
		return fmt.Errorf("%w: %s is not on PATH (%s)", ErrMissingCommand, Command[t], Install[t])
	}
	return nil
}

func joinTypes() string {
	s := make([]string, len(Types))
	for i, t := range Types {
		s[i] = string(t)
	}
	return strings.Join(s, ", ")
}

// Specs returns the scanners the set was compiled from.
func (s *Set) Specs() []Spec { return s.specs }
