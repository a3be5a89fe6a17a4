package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reprise-si/reprise/internal/buildtest"
)

// TestServeResumeOnEtcdTLS: `reprise serve` on an etcd state whose member
// requires client certificates, given them by --etcd-cacert/--etcd-cert/
// --etcd-key (no ETCDCTL_* in the environment). A resume started from the
// dashboard runs as a reprise process of its own: it gets the same files
// and reaches etcd, so the run is resumed and finishes; the journal says
// who resumed it.
func TestServeResumeOnEtcdTLS(t *testing.T) {
	t.Parallel() // waits on an etcd member more than it works
	if err := buildtest.Build("etcd"); err != nil {
		t.Fatal(err)
	}
	root, err := buildtest.Root()
	if err != nil {
		t.Fatal(err)
	}
	d := newCLIDir(t)
	certs := writeTestCerts(t, d.path("certs"))
	client, peer := freeLoopback(t), freeLoopback(t)
	member := exec.Command(filepath.Join(root, "bin", "etcd"), "--name", "tls0", "--data-dir", d.path("etcd-data"),
		"--listen-peer-urls", "http://"+peer, "--initial-advertise-peer-urls", "http://"+peer,
		"--listen-client-urls", "https://"+client, "--advertise-client-urls", "https://"+client,
		"--initial-cluster", "tls0=http://"+peer, "--cert-file", certs.serverCert, "--key-file", certs.serverKey,
		"--trusted-ca-file", certs.ca, "--client-cert-auth", "--log-level", "error")
	logf, err := os.Create(d.path("etcd.log"))
	if err != nil {
		t.Fatal(err)
	}
	member.Stdout, member.Stderr = logf, logf
	member.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := member.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { member.Process.Kill(); member.Wait(); logf.Close() })

	url := "etcd://" + client + "/tlsweb"
	// No ETCDCTL_* for any process of this test: the flags are the only way in.
	d.env = append(d.env, "REPRISE_STATE="+url, "ETCDCTL_CACERT=", "ETCDCTL_CERT=", "ETCDCTL_KEY=")
	tlsArgs := []string{"--etcd-cacert", certs.ca, "--etcd-cert", certs.clientCert, "--etcd-key", certs.clientKey}
	g := d.write("graph.yaml", `version: 1
name: tls-web
defaults: {retries: 0}
nodes:
  - {id: tape, kind: data, plugin: exec, with: {restore: [sh, -c, 'echo tape >> ran.txt; test -f fixed']}}
  - {id: db, kind: application, plugin: exec, depends_on: [tape], with: {restore: [sh, -c, 'echo db >> ran.txt']}}
`)
	var code int
	var errs string
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(300 * time.Millisecond) {
		if _, errs, code = d.run(append([]string{"run", "--quiet", g}, tlsArgs...)...); code == exitFailedNodes {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("run on the TLS member: exit %d\n%s\netcd: %s", code, errs, tail(readFile(t, d.path("etcd.log")), 2000))
		}
	}
	run := d.status(tlsArgs...).Run
	token := strings.TrimSpace(d.mustRun(0, append([]string{"operators", "add", "otto", "--role", "operator"}, tlsArgs...)...))

	srv := d.command(append([]string{"serve", "--listen", "127.0.0.1:0"}, tlsArgs...)...)
	out, err := srv.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var srvErr strings.Builder
	srv.Stderr = &srvErr
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Process.Signal(os.Interrupt); srv.Wait() }()
	line, err := bufio.NewReader(out).ReadString('\n')
	base := regexp.MustCompile(`http://[0-9.:]+`).FindString(line)
	if err != nil || base == "" {
		t.Fatalf("serve's first line %q: %v\n%s", line, err, srvErr.String())
	}
	go io.Copy(io.Discard, out)

	d.write("fixed", "")
	req, _ := http.NewRequest("POST", base+"/api/v1/runs/"+run+"/resume", strings.NewReader(`{}`))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("resume from the dashboard: %d %s\nresume log: %s", resp.StatusCode, body, readResumeLog(d))
	}
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(300 * time.Millisecond) {
		if s := d.status(append([]string{run}, tlsArgs...)...); s.Status == "succeeded" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the resumed run never succeeded (answer %s)\nresume log: %s", body, readResumeLog(d))
		}
	}
	if got := readFile(t, d.path("ran.txt")); got != "tape\ntape\ndb\n" {
		t.Errorf("steps ran: %q", got)
	}
	if out := d.mustRun(0, append([]string{"log", run}, tlsArgs...)...); !strings.Contains(out, "by otto") {
		t.Errorf("the journal does not say who resumed:\n%s", tail(out, 2000))
	}
}

// readResumeLog is the output of the resumes serve started (in the
// working directory: serve's log path of an etcd state).
func readResumeLog(d *cliDir) string {
	matches, _ := filepath.Glob(d.path("*.resume.log"))
	var b strings.Builder
	for _, m := range matches {
		c, _ := os.ReadFile(m)
		b.Write(c)
	}
	return tail(b.String(), 3000)
}

func freeLoopback(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

type testCerts struct{ ca, serverCert, serverKey, clientCert, clientKey string }

// writeTestCerts makes a CA, a server certificate for 127.0.0.1 and a
// client certificate, as PEM files under dir.
func writeTestCerts(t *testing.T, dir string) testCerts {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "reprise test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(2 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	writePEMFile := func(path, typ string, der []byte) {
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c := testCerts{ca: filepath.Join(dir, "ca.pem")}
	writePEMFile(c.ca, "CERTIFICATE", caDER)
	leaf := func(serial int64, name string, usage x509.ExtKeyUsage) (string, string) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(2 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kb, _ := x509.MarshalECPrivateKey(key)
		cert, keyFile := filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
		writePEMFile(cert, "CERTIFICATE", der)
		writePEMFile(keyFile, "EC PRIVATE KEY", kb)
		return cert, keyFile
	}
	c.serverCert, c.serverKey = leaf(2, "server", x509.ExtKeyUsageServerAuth)
	c.clientCert, c.clientKey = leaf(3, "client", x509.ExtKeyUsageClientAuth)
	return c
}
