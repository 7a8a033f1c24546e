package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// pki holds the paths (and the PEM bytes needed for the kubeconfig) of every
// certificate and key the control plane uses. Everything is ECDSA P-256,
// generated with Go's crypto: no openssl is needed.
type pki struct {
	Dir string

	CACert string // CA certificate: --client-ca-file, and the kubeconfig's CA
	CAKey  string

	ServingCert string // --tls-cert-file (127.0.0.1, ::1, localhost, 10.0.0.1, kubernetes.default.svc...)
	ServingKey  string // --tls-private-key-file

	SAPub string // --service-account-key-file (PKIX public key)
	SAKey string // --service-account-signing-key-file (PKCS#8 private key)

	AdminCert string // client cert, CN=rampart-e2e-admin, O=system:masters
	AdminKey  string

	caPEM, adminCertPEM, adminKeyPEM []byte
}

type keyPair struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func newKey() (*ecdsa.PrivateKey, error) {
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
}

func writePEM(path, typ string, der []byte, mode os.FileMode) ([]byte, error) {
	b := pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
	if err := os.WriteFile(path, b, mode); err != nil {
		return nil, err
	}
	return b, nil
}

func writeKey(path string, key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return writePEM(path, "PRIVATE KEY", der, 0o600)
}

// sign creates a certificate for tmpl signed by parent (self-signed when parent is nil).
func sign(tmpl *x509.Certificate, parent *keyPair) (*keyPair, []byte, error) {
	key, err := newKey()
	if err != nil {
		return nil, nil, err
	}
	sn, err := serial()
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl.SerialNumber = sn
	tmpl.NotBefore = now.Add(-time.Hour) // tolerate small clock skew
	tmpl.NotAfter = now.Add(365 * 24 * time.Hour)
	tmpl.BasicConstraintsValid = true

	issuer, signer := tmpl, crypto.Signer(key)
	if parent != nil {
		issuer, signer = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, key.Public(), signer)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	return &keyPair{cert: cert, key: key}, der, nil
}

// generatePKI writes a fresh CA, serving certificate, service-account key pair
// and admin client certificate into dir.
func generatePKI(dir string) (*pki, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	p := &pki{
		Dir:         dir,
		CACert:      filepath.Join(dir, "ca.crt"),
		CAKey:       filepath.Join(dir, "ca.key"),
		ServingCert: filepath.Join(dir, "apiserver.crt"),
		ServingKey:  filepath.Join(dir, "apiserver.key"),
		SAPub:       filepath.Join(dir, "sa.pub"),
		SAKey:       filepath.Join(dir, "sa.key"),
		AdminCert:   filepath.Join(dir, "admin.crt"),
		AdminKey:    filepath.Join(dir, "admin.key"),
	}

	// CA
	ca, caDER, err := sign(&x509.Certificate{
		Subject:  pkix.Name{CommonName: "rampart-e2e-ca"},
		IsCA:     true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("CA: %w", err)
	}
	if p.caPEM, err = writePEM(p.CACert, "CERTIFICATE", caDER, 0o644); err != nil {
		return nil, err
	}
	if _, err = writeKey(p.CAKey, ca.key); err != nil {
		return nil, err
	}

	// Serving certificate. 10.0.0.1 is the first IP of --service-cluster-ip-range
	// (the in-cluster "kubernetes" Service), kept so in-cluster style clients verify too.
	srv, srvDER, err := sign(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver"},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
			"kubernetes.default.svc.cluster.local"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.IPv6loopback, net.ParseIP("10.0.0.1")},
	}, ca)
	if err != nil {
		return nil, fmt.Errorf("serving cert: %w", err)
	}
	if _, err = writePEM(p.ServingCert, "CERTIFICATE", srvDER, 0o644); err != nil {
		return nil, err
	}
	if _, err = writeKey(p.ServingKey, srv.key); err != nil {
		return nil, err
	}

	// Service-account token signing key pair.
	saKey, err := newKey()
	if err != nil {
		return nil, err
	}
	if _, err = writeKey(p.SAKey, saKey); err != nil {
		return nil, err
	}
	saPubDER, err := x509.MarshalPKIXPublicKey(saKey.Public())
	if err != nil {
		return nil, err
	}
	if _, err = writePEM(p.SAPub, "PUBLIC KEY", saPubDER, 0o644); err != nil {
		return nil, err
	}

	// Admin client certificate: O=system:masters is bound to cluster-admin by
	// the bootstrap RBAC policy (and short-circuits authorization entirely).
	adm, admDER, err := sign(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "rampart-e2e-admin", Organization: []string{"system:masters"}},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, ca)
	if err != nil {
		return nil, fmt.Errorf("admin cert: %w", err)
	}
	if p.adminCertPEM, err = writePEM(p.AdminCert, "CERTIFICATE", admDER, 0o644); err != nil {
		return nil, err
	}
	if p.adminKeyPEM, err = writeKey(p.AdminKey, adm.key); err != nil {
		return nil, err
	}
	return p, nil
}
