package cluster

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/crypto/nacl/box"
)

// CommandKeys is the prefix where each coordinator serving commands
// publishes its public key (under its lease), for the operators' tokens.
func (k Keys) CommandKeys() string { return k.Root + "commandkeys/" }

// sealKey is a coordinator's published key.
type sealKey struct {
	Name   string `json:"name"`
	Public string `json:"public"` // base64 of the X25519 public key
}

// sealed is what a seal holds: the token, and what binds it to one
// command (a seal copied onto another command does not open for it).
type sealed struct {
	Token  string `json:"token"`
	Digest string `json:"digest"`
}

// bindDigest is the SHA-256 of a command's key and of what it asks.
func bindDigest(key string, cmd Command) string {
	b := struct {
		Key, Op, Run, Node, Zone, By, Comment, From, At string
		Downstream                                      bool
		Lease                                           int64
	}{key, cmd.Op, cmd.Run, cmd.Node, cmd.Zone, cmd.By, cmd.Comment, cmd.From, cmd.At.UTC().Format("2006-01-02T15:04:05.000000000Z"), cmd.Downstream, cmd.Lease}
	j, _ := json.Marshal(b)
	sum := sha256.Sum256(j)
	return hex.EncodeToString(sum[:])
}

// sealToken seals token, bound to the command at key, for every
// coordinator that published a key.
func sealToken(ctx context.Context, cli *clientv3.Client, k Keys, key string, cmd Command, token string) (map[string]string, error) {
	resp, err := cli.Get(ctx, k.CommandKeys(), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("read the coordinators' keys: %w", err)
	}
	msg, _ := json.Marshal(sealed{Token: token, Digest: bindDigest(key, cmd)})
	seals := map[string]string{}
	for _, kv := range resp.Kvs {
		var sk sealKey
		pub, err := decodeKey(kv.Value, &sk)
		if err != nil {
			continue // not a key: nothing to seal for
		}
		out, err := box.SealAnonymous(nil, msg, pub, rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("seal the token for coordinator %s: %w", sk.Name, err)
		}
		seals[sk.Name] = base64.StdEncoding.EncodeToString(out)
	}
	return seals, nil
}

func decodeKey(val []byte, sk *sealKey) (*[32]byte, error) {
	if err := json.Unmarshal(val, sk); err != nil {
		return nil, err
	}
	raw, err := base64.StdEncoding.DecodeString(sk.Public)
	if err != nil || len(raw) != 32 || sk.Name == "" {
		return nil, errors.New("bad key")
	}
	var pub [32]byte
	copy(pub[:], raw)
	return &pub, nil
}

// sealer is a serving coordinator's key pair, kept in its memory only.
type sealer struct {
	name        string
	pub, secret *[32]byte
}

func newSealer(name string) (*sealer, error) {
	pub, secret, err := box.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("key pair for the operators' tokens: %w", err)
	}
	return &sealer{name: name, pub: pub, secret: secret}, nil
}

func (s *sealer) published() string {
	j, _ := json.Marshal(sealKey{Name: s.name, Public: base64.StdEncoding.EncodeToString(s.pub[:])})
	return string(j)
}

// open returns the token sealed for this coordinator in cmd (at key):
// "" when cmd carries no seal at all; an error when it carries seals but
// none opens for this command here.
func (s *sealer) open(key string, cmd Command) (string, error) {
	if len(cmd.Seals) == 0 {
		return "", nil
	}
	enc, ok := cmd.Seals[s.name]
	if !ok {
		return "", fmt.Errorf("the operator's token was sealed for other coordinators, not for %s (sent while it was starting): send the command again", s.name)
	}
	raw, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return "", errors.New("the operator's sealed token is not base64")
	}
	msg, ok := box.OpenAnonymous(nil, raw, s.pub, s.secret)
	if !ok {
		return "", errors.New("the operator's sealed token does not open with this coordinator's key")
	}
	var sd sealed
	if json.Unmarshal(msg, &sd) != nil || subtle.ConstantTimeCompare([]byte(sd.Digest), []byte(bindDigest(key, cmd))) != 1 {
		return "", errors.New("the operator's sealed token was made for another command")
	}
	return sd.Token, nil
}
