package web_test

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	neturl "net/url"
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

// TestServeResumeOnEtcdTLS: `reprise serve` (bin/reprise) on an etcd state
// whose member requires client certificates, given them by --etcd-cacert/
// --etcd-cert/--etcd-key (no ETCDCTL_* in the environment). A resume
// started from the dashboard runs as a reprise process of its own: it gets
// the same files and reaches etcd, so the run is resumed and finishes; the
// journal says who resumed it.
func TestServeResumeOnEtcdTLS(t *testing.T) {
	bin := repriseBinary(t)
	if err := buildtest.Build("etcd"); err != nil {
		t.Fatal(err)
	}
	root, err := buildtest.Root()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certs := writeTestCerts(t, filepath.Join(dir, "certs"))
	client, peer := freeLoopback(t), freeLoopback(t)
	member := exec.Command(filepath.Join(root, "bin", "etcd"), "--name", "tls0", "--data-dir", filepath.Join(dir, "etcd-data"),
		"--listen-peer-urls", "http://"+peer, "--initial-advertise-peer-urls", "http://"+peer,
		"--listen-client-urls", "https://"+client, "--advertise-client-urls", "https://"+client,
		"--initial-cluster", "tls0=http://"+peer, "--cert-file", certs.serverCert, "--key-file", certs.serverKey,
		"--trusted-ca-file", certs.ca, "--client-cert-auth", "--log-level", "error")
	logf, err := os.Create(filepath.Join(dir, "etcd.log"))
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
	env := append(os.Environ(), "REPRISE_STATE="+url, "ETCDCTL_CACERT=", "ETCDCTL_CERT=", "ETCDCTL_KEY=")
	tlsArgs := []string{"--etcd-cacert", certs.ca, "--etcd-cert", certs.clientCert, "--etcd-key", certs.clientKey}
	command := func(args ...string) *exec.Cmd {
		cmd := exec.Command(bin, append(args, tlsArgs...)...)
		cmd.Dir, cmd.Env = dir, env
		return cmd
	}
	run := func(args ...string) (string, string, int) {
		t.Helper()
		cmd := command(args...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return out.String(), errb.String(), ee.ExitCode()
		} else if err != nil {
			t.Fatalf("reprise %v: %v", args, err)
		}
		return out.String(), errb.String(), 0
	}
	graph := filepath.Join(dir, "graph.yaml")
	if err := os.WriteFile(graph, []byte(`version: 1
name: tls-web
defaults: {retries: 0}
nodes:
  - {id: tape, kind: data, plugin: exec, with: {restore: [sh, -c, 'echo tape >> ran.txt; test -f fixed']}}
  - {id: db, kind: application, plugin: exec, depends_on: [tape], with: {restore: [sh, -c, 'echo db >> ran.txt']}}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	var code int
	var errs string
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(300 * time.Millisecond) {
		if _, errs, code = run("run", "--quiet", graph); code == 3 { // tape failed
			break
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "etcd.log"))
			t.Fatalf("run on the TLS member: exit %d\n%s\netcd: %s", code, errs, b)
		}
	}
	status := func() (runID, st string) {
		out, errs, code := run("status", "--json")
		var s struct {
			Run    string `json:"run"`
			Status string `json:"status"`
		}
		if code != 0 || json.Unmarshal([]byte(out), &s) != nil {
			t.Fatalf("status: exit %d\n%s%s", code, out, errs)
		}
		return s.Run, s.Status
	}
	runID, _ := status()
	out, errs, code := run("operators", "add", "otto", "--role", "operator")
	token := strings.TrimSpace(out)
	if code != 0 || !strings.HasPrefix(token, "rpr_") {
		t.Fatalf("operators add: exit %d\n%s%s", code, out, errs)
	}

	srv := command("serve", "--listen", "127.0.0.1:0")
	stdout, err := srv.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var srvErr bytes.Buffer
	srv.Stderr = &srvErr
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Process.Signal(os.Interrupt); srv.Wait() }()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	base := regexp.MustCompile(`http://[0-9.:]+`).FindString(line)
	if err != nil || base == "" {
		t.Fatalf("serve's first line %q: %v", line, err)
	}
	go io.Copy(io.Discard, stdout)

	if err := os.WriteFile(filepath.Join(dir, "fixed"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", base+"/api/v1/runs/"+runID+"/resume", strings.NewReader(`{}`))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("resume from the dashboard: %d %s\nresume log: %s", resp.StatusCode, body, readResumeLog(dir))
	}
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(300 * time.Millisecond) {
		if _, st := status(); st == "succeeded" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the resumed run never succeeded (answer %s)\nresume log: %s", body, readResumeLog(dir))
		}
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "ran.txt")); string(got) != "tape\ntape\ndb\n" {
		t.Errorf("steps ran: %q", got)
	}
	if out, errs, code := run("log", runID); code != 0 || !strings.Contains(out, "by otto") {
		t.Errorf("the journal does not say who resumed: exit %d\n%s%s", code, out, errs)
	}

	// The same from the page's Resume button: the session's token goes to
	// the resume process (through a pipe), which the state's operators
	// authorize as otto.
	if err := os.Remove(filepath.Join(dir, "fixed")); err != nil {
		t.Fatal(err)
	}
	env = append(env, "REPRISE_TOKEN="+token) // run needs it now that the state has operators
	if _, errs, code := run("run", "--quiet", graph); code != 3 {
		t.Fatalf("second run: exit %d, want 3 (tape failed)\n%s", code, errs)
	}
	env = env[:len(env)-1]
	run2, _ := status()
	if err := os.WriteFile(filepath.Join(dir, "fixed"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	if resp, err := browser.PostForm(base+"/login", neturl.Values{"token": {token}}); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("log in: %v %v", resp, err)
	}
	_, page, _ := get(t, browser, base+"/runs/"+run2)
	csrf := csrfRE.FindStringSubmatch(page)
	if csrf == nil {
		t.Fatalf("no CSRF token in the run page:\n%s", page)
	}
	resp, err = browser.PostForm(base+"/runs/"+run2+"/resume", neturl.Values{"csrf": {csrf[1]}})
	if err != nil {
		t.Fatal(err)
	}
	page2, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page2), "resumed by otto") {
		t.Fatalf("resume from the page: %d\n%s\nresume log: %s", resp.StatusCode, page2, readResumeLog(dir))
	}
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(300 * time.Millisecond) {
		if r, st := status(); r == run2 && st == "succeeded" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the run resumed from the page never succeeded\nresume log: %s", readResumeLog(dir))
		}
	}
	out, errs, code = run("log", run2)
	if code != 0 || !strings.Contains(out, "by otto") {
		t.Errorf("the journal does not say who resumed from the page: exit %d\n%s%s", code, out, errs)
	}
	if strings.Contains(out, token) || strings.Contains(readResumeLog(dir), token) {
		t.Error("the operator's token is in the journal or the resume log")
	}
}

// readResumeLog is the output of the resumes serve started (in the
// working directory: serve's log path of an etcd state).
func readResumeLog(dir string) string {
	matches, _ := filepath.Glob(filepath.Join(dir, "*.resume.log"))
	var b strings.Builder
	for _, m := range matches {
		c, _ := os.ReadFile(m)
		b.Write(c)
	}
	return b.String()
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
