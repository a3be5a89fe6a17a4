// Package auth holds the crisis room's operators: their roles, the tokens
// they log in with, and the check of a token against the state file.
//
// A token reads "rpr_<id>_<secret>". The id (public, random) finds the
// operator's record; the secret is kept only as an argon2id hash (RFC 9106
// parameters chosen as OWASP's second recommended set: 19 MiB, 2 passes,
// 1 lane), so a stolen state file gives no way into the dashboard. A token
// is printed once, when the operator is added, and never stored or logged.
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/reprise-si/reprise/engine/state"
)

// Role is what an operator may do.
type Role string

// The roles. Every role sees the runs; an operator also retries, marks and
// resumes; an approver opens gates (and certifies zones); an admin may do
// everything, and manage operators.
const (
	RoleViewer   Role = "viewer"
	RoleOperator Role = "operator"
	RoleApprover Role = "approver"
	RoleAdmin    Role = "admin"
)

// Roles lists the roles, least to most powerful.
var Roles = []Role{RoleViewer, RoleOperator, RoleApprover, RoleAdmin}

// Action is something a role may be allowed to do.
type Action string

// The actions checked by the dashboard and its API.
const (
	ActView    Action = "view"
	ActRetry   Action = "retry"
	ActMark    Action = "mark"
	ActResume  Action = "resume"
	ActApprove Action = "approve"
	ActCertify Action = "certify"
	ActManage  Action = "manage operators"
	// ActRestorePoint: choose a node's restore point over its scan
	// verdict (restore-point --use); ActCleanup: close a drill for good
	// (cleanup). The commands', not the dashboard's.
	ActRestorePoint Action = "override a restore point's verdict"
	ActCleanup      Action = "clean up a drill"
)

var grants = map[Role][]Action{
	RoleViewer:   {ActView},
	RoleOperator: {ActView, ActRetry, ActMark, ActResume},
	RoleApprover: {ActView, ActApprove, ActCertify},
	RoleAdmin:    {ActView, ActRetry, ActMark, ActResume, ActApprove, ActCertify, ActManage, ActRestorePoint, ActCleanup},
}

// ParseRole checks a role's name.
func ParseRole(s string) (Role, error) {
	for _, r := range Roles {
		if string(r) == s {
			return r, nil
		}
	}
	return "", fmt.Errorf("unknown role %q (want viewer, operator, approver or admin)", s)
}

// Can reports whether role r may do a.
func (r Role) Can(a Action) bool {
	for _, x := range grants[r] {
		if x == a {
			return true
		}
	}
	return false
}

// ValidName checks an operator's name: 1 to 64 letters, digits, '.', '_',
// '-' or '@', starting with a letter or digit (it appears in the journal and
// in URLs).
func ValidName(s string) error {
	if len(s) == 0 || len(s) > 64 {
		return fmt.Errorf("operator name %q: want 1 to 64 characters", s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case (c == '.' || c == '_' || c == '-' || c == '@') && i > 0:
		default:
			return fmt.Errorf("operator name %q: want letters, digits, '.', '_', '-' or '@', starting with a letter or digit", s)
		}
	}
	return nil
}

// argon2id parameters (see the package comment).
const (
	argonTime    = 2
	argonMemory  = 19 * 1024 // KiB
	argonThreads = 1
	argonKeyLen  = 32
	saltLen      = 16
	secretLen    = 32
	idLen        = 8
	tokenPrefix  = "rpr_"
)

// NewOperator makes the record of a new operator and the token to hand
// them (shown once: only its hash is in the record).
func NewOperator(name string, role Role, by string, now time.Time) (state.Operator, string, error) {
	if err := ValidName(name); err != nil {
		return state.Operator{}, "", err
	}
	if _, err := ParseRole(string(role)); err != nil {
		return state.Operator{}, "", err
	}
	id := make([]byte, idLen)
	secret := make([]byte, secretLen)
	if _, err := rand.Read(id); err != nil {
		return state.Operator{}, "", fmt.Errorf("token for %s: %w", name, err)
	}
	if _, err := rand.Read(secret); err != nil {
		return state.Operator{}, "", fmt.Errorf("token for %s: %w", name, err)
	}
	sec := base64.RawURLEncoding.EncodeToString(secret)
	hash, err := hashSecret(sec)
	if err != nil {
		return state.Operator{}, "", err
	}
	op := state.Operator{Name: name, Role: string(role), TokenID: hex.EncodeToString(id), Hash: hash,
		Created: now.UTC(), CreatedBy: by}
	return op, tokenPrefix + op.TokenID + "_" + sec, nil
}

func hashSecret(secret string) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("salt: %w", err)
	}
	key := argon2.IDKey([]byte(secret), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// checkSecret compares secret with a PHC-encoded argon2id hash.
func checkSecret(secret, encoded string) bool {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var v int
	var m uint32
	var t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return false
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m == 0 || m > 1<<20 || t == 0 || t > 16 || p == 0 {
		return false
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	want, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 || len(want) > 64 {
		return false
	}
	got := argon2.IDKey([]byte(secret), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// ErrBadToken is returned for a token that matches no operator.
var ErrBadToken = errors.New("unknown or revoked token")

// splitToken returns a token's id and secret.
func splitToken(token string) (id, secret string, ok bool) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(token), tokenPrefix)
	if !ok {
		return "", "", false
	}
	id, secret, ok = strings.Cut(rest, "_")
	if !ok || len(id) != 2*idLen || secret == "" || len(secret) > 128 {
		return "", "", false
	}
	return id, secret, true
}

// Fingerprint is a short, non-reversible name of a token for caches and
// sessions (never the token itself).
func Fingerprint(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}
