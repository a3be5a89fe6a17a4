package etcdconn

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.etcd.io/etcd/server/v3/embed"

	"github.com/reprise-si/reprise/internal/etcdtest"
)

func TestDial(t *testing.T) {
	c := etcdtest.Start(t, 3)
	u, err := Parse(c.URL("dialtest"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cli, err := Dial(ctx, u, Options{})
	if err != nil {
		t.Fatalf("Dial(%s): %v", u, err)
	}
	if _, err := cli.Put(ctx, u.Key("x"), "1"); err != nil {
		t.Fatal(err)
	}
	cli.Close()

	// One member left of three: it answers (no quorum, but reachable).
	c.Stop(0)
	c.Stop(1)
	cli, err = Dial(ctx, u, Options{DialTimeout: 3 * time.Second})
	if err != nil {
		t.Fatalf("Dial with one member up: %v", err)
	}
	cli.Close()
	c.Stop(2)

	// None left: a clear error naming every endpoint, within the timeout.
	start := time.Now()
	_, err = Dial(ctx, u, Options{DialTimeout: time.Second})
	took := time.Since(start)
	var ue *UnreachableError
	if !errors.As(err, &ue) {
		t.Fatalf("Dial with every member down: %v, want *UnreachableError", err)
	}
	for _, ep := range u.Endpoints {
		if !strings.Contains(err.Error(), ep) {
			t.Errorf("error %q does not name endpoint %s", err, ep)
		}
	}
	if took > 5*time.Second {
		t.Errorf("Dial took %s with a 1s dial timeout", took)
	}
}

func TestTLSConfigErrors(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		tls   TLS
		err   string
		usage bool
	}{
		{name: "cert without key", tls: TLS{Cert: junk}, err: "--etcd-cert", usage: true},
		{name: "key without cert", tls: TLS{Key: junk}, err: "--etcd-key", usage: true},
		{name: "missing CA", tls: TLS{CACert: filepath.Join(dir, "nope.pem")}, err: "nope.pem"},
		{name: "CA not PEM", tls: TLS{CACert: junk}, err: "junk.pem: no PEM certificate"},
		{name: "bad pair", tls: TLS{Cert: junk, Key: junk}, err: "junk.pem"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.tls.Config()
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("Config() = %v, want an error containing %q", err, tt.err)
			}
			var ue *UsageError
			if errors.As(err, &ue) != tt.usage {
				t.Errorf("usage error: %v, want %v", errors.As(err, &ue), tt.usage)
			}
		})
	}
	if cfg, err := (TLS{}).Config(); cfg != nil || err != nil {
		t.Errorf("no files: %v, %v; want nil, nil", cfg, err)
	}
}

func TestTLSFromEnv(t *testing.T) {
	t.Setenv(EnvCACert, "/env/ca.pem")
	t.Setenv(EnvCert, "/env/cert.pem")
	t.Setenv(EnvKey, "/env/key.pem")
	got := TLS{CACert: "/flag/ca.pem"}.WithEnv()
	want := TLS{CACert: "/flag/ca.pem", Cert: "/env/cert.pem", Key: "/env/key.pem"}
	if got != want {
		t.Fatalf("WithEnv() = %+v, want %+v (flags win over the environment)", got, want)
	}
}

// TestDialTLS dials a real etcd member that requires client certificates:
// with them it answers; without them Dial fails naming the endpoint.
func TestDialTLS(t *testing.T) {
	dir := t.TempDir()
	files := writeCerts(t, dir)
	addr := freeAddr(t)
	cfg := embed.NewConfig()
	cfg.Name = "tls0"
	cfg.Dir = filepath.Join(dir, "data")
	peer := url.URL{Scheme: "http", Host: freeAddr(t)}
	client := url.URL{Scheme: "https", Host: addr}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
	cfg.InitialCluster = "tls0=" + peer.String()
	cfg.ClientTLSInfo = transport.TLSInfo{CertFile: files.serverCert, KeyFile: files.serverKey,
		TrustedCAFile: files.ca, ClientCertAuth: true}
	cfg.LogLevel = "error"
	cfg.LogOutputs = []string{filepath.Join(dir, "etcd.log")}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(30 * time.Second):
		t.Fatal("etcd with TLS not ready")
	}
	u, err := Parse("etcd://" + addr + "/tls")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	t.Setenv(EnvCACert, files.ca)
	t.Setenv(EnvCert, files.clientCert)
	t.Setenv(EnvKey, files.clientKey)
	cli, err := Dial(ctx, u, Options{TLS: TLS{}.WithEnv()})
	if err != nil {
		t.Fatalf("Dial with client certificates from ETCDCTL_*: %v", err)
	}
	if _, err := cli.Put(ctx, u.Key("k"), "v"); err != nil {
		t.Fatal(err)
	}
	cli.Close()
	_, err = Dial(ctx, u, Options{DialTimeout: time.Second})
	if err == nil || !strings.Contains(err.Error(), addr) {
		t.Fatalf("Dial without TLS to a TLS member: %v, want an error naming %s", err, addr)
	}
}

type certFiles struct{ ca, serverCert, serverKey, clientCert, clientKey string }

func writeCerts(t *testing.T, dir string) certFiles {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "reprise test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	f := certFiles{ca: filepath.Join(dir, "ca.pem")}
	writePEM(t, f.ca, "CERTIFICATE", caDER)
	leaf := func(serial int64, name string, usage x509.ExtKeyUsage) (string, string) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kb, _ := x509.MarshalECPrivateKey(key)
		cert, keyFile := filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
		writePEM(t, cert, "CERTIFICATE", der)
		writePEM(t, keyFile, "EC PRIVATE KEY", kb)
		return cert, keyFile
	}
	f.serverCert, f.serverKey = leaf(2, "server", x509.ExtKeyUsageServerAuth)
	f.clientCert, f.clientKey = leaf(3, "client", x509.ExtKeyUsageClientAuth)
	return f
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
