package sim

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

// GeneratePKI writes a small PKI into dir: root.pem, issuing.pem (signed by
// the root) and servers/APP.pem, one server certificate per application for
// APP.chsf.local, signed by the issuing CA. Keys are not kept: the restore
// only needs to check the chain.
func GeneratePKI(dir string) error {
	now := time.Now().Add(-time.Hour)
	rootKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	root := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "CHSF Root CA", Organization: []string{"CHSF (example)"}},
		NotBefore: now, NotAfter: now.AddDate(20, 0, 0), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	rootDER, err := x509.CreateCertificate(rand.Reader, root, root, &rootKey.PublicKey, rootKey)
	if err != nil {
		return err
	}
	rootCert, _ := x509.ParseCertificate(rootDER)
	issKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	iss := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "CHSF Issuing CA", Organization: []string{"CHSF (example)"}},
		NotBefore: now, NotAfter: now.AddDate(10, 0, 0), IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	issDER, err := x509.CreateCertificate(rand.Reader, iss, rootCert, &issKey.PublicKey, rootKey)
	if err != nil {
		return err
	}
	issCert, _ := x509.ParseCertificate(issDER)
	if err := os.MkdirAll(filepath.Join(dir, "servers"), 0o755); err != nil {
		return err
	}
	if err := writePEM(filepath.Join(dir, "root.pem"), rootDER); err != nil {
		return err
	}
	if err := writePEM(filepath.Join(dir, "issuing.pem"), issDER); err != nil {
		return err
	}
	for i, a := range Apps {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		host := a.ID + ".chsf.local"
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(int64(100 + i)), Subject: pkix.Name{CommonName: host},
			DNSNames: []string{host}, NotBefore: now, NotAfter: now.AddDate(2, 0, 0),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, issCert, &key.PublicKey, issKey)
		if err != nil {
			return err
		}
		if err := writePEM(filepath.Join(dir, "servers", a.ID+".pem"), der); err != nil {
			return err
		}
	}
	return nil
}

func writePEM(path string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

func readCert(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s: no PEM certificate", path)
	}
	return x509.ParseCertificate(blk.Bytes)
}

// checkPKI verifies every application's server certificate up to the root,
// for its DNS name, now; and that the name resolves in the restored DNS.
func checkPKI(env Env) (string, error) {
	dir := env.Data("pki")
	root, err := readCert(filepath.Join(dir, "root.pem"))
	if err != nil {
		return "", err
	}
	iss, err := readCert(filepath.Join(dir, "issuing.pem"))
	if err != nil {
		return "", err
	}
	z, err := LoadZone(filepath.Join(env.Data("dns"), "chsf.local.zone"))
	if err != nil {
		return "", fmt.Errorf("dns (restore it first): %w", err)
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(root)
	inter.AddCert(iss)
	var problems []error
	for _, a := range Apps {
		host := a.ID + ".chsf.local"
		c, err := readCert(filepath.Join(dir, "servers", a.ID+".pem"))
		if err != nil {
			problems = append(problems, err)
			continue
		}
		if _, err := c.Verify(x509.VerifyOptions{DNSName: host, Roots: roots, Intermediates: inter}); err != nil {
			problems = append(problems, fmt.Errorf("certificate of %s: %w", host, err))
		}
		if _, err := z.Resolve(host); err != nil {
			problems = append(problems, err)
		}
	}
	if err := errors.Join(problems...); err != nil {
		return "", err
	}
	return fmt.Sprintf("%d server certificates verify up to %q", len(Apps), root.Subject.CommonName), nil
}
