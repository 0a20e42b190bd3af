package natsx_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"blogplatform/chassis/config"
	"blogplatform/chassis/natsx"
	"blogplatform/chassis/runtime"
	"blogplatform/devkit/wait"
)

// pki is a throw-away certificate authority written to a test directory.
type pki struct {
	t      *testing.T
	dir    string
	caCert *x509.Certificate
	caKey  *ecdsa.PrivateKey
	caFile string
	serial int64
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	p := &pki{t: t, dir: t.TempDir()}
	key := p.key()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	p.caCert, _ = x509.ParseCertificate(der)
	p.caKey, p.serial = key, 1
	p.caFile = p.write("ca.pem", "CERTIFICATE", der)
	return p
}

func (p *pki) key() *ecdsa.PrivateKey {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		p.t.Fatal(err)
	}
	return key
}

func (p *pki) write(name, kind string, der []byte) string {
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		p.t.Fatal(err)
	}
	return path
}

// issue writes a certificate signed by the CA for the DNS names (a server's)
// or, with none, a client certificate; it returns the cert and key files.
func (p *pki) issue(name string, dnsNames ...string) (certFile, keyFile string) {
	p.serial++
	key := p.key()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(p.serial), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if len(dnsNames) > 0 {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.DNSNames = dnsNames
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, &key.PublicKey, p.caKey)
	if err != nil {
		p.t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		p.t.Fatal(err)
	}
	return p.write(name+".pem", "CERTIFICATE", der), p.write(name+"-key.pem", "PRIVATE KEY", keyDER)
}

// startServerWith starts a nats-server on a random loopback port with the
// options edit sets.
func startServerWith(t *testing.T, edit func(o *server.Options)) *server.Server {
	t.Helper()
	o := &server.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true}
	edit(o)
	s, err := server.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(5 * time.Second) {
		t.Fatal("nats server not ready")
	}
	t.Cleanup(s.Shutdown)
	return s
}

func loopbackPort(s *server.Server) string {
	return net.JoinHostPort("127.0.0.1", itoa(s.Addr().(*net.TCPAddr).Port))
}

func itoa(n int) string { return big.NewInt(int64(n)).String() }

// echoWorks asks the echo service through a natsx client on nc.
func echoWorks(t *testing.T, nc *nats.Conn) error {
	t.Helper()
	client := natsx.NewClient(nc, natsx.ClientOptions{Timeout: 2 * time.Second, Breaker: natsx.BreakerOptions{Disabled: true}, Logger: slog.New(slog.DiscardHandler)})
	var out echoResp
	if err := client.Request(context.Background(), "auth.echo", echoReq{Value: "v"}, &out); err != nil {
		return err
	}
	if out.Echo != "v" {
		t.Fatalf("echo answered %q", out.Echo)
	}
	return nil
}

// TestTLSWithClientCertificates: a server that requires TLS and verifies
// client certificates accepts the services' connections made with
// NATS_TLS_CA, NATS_TLS_CERT and NATS_TLS_KEY (a micro service answers
// through it), refuses one without a client certificate, and
// NATS_TLS_SERVER_NAME checks a certificate issued for another name than
// the address dialled.
func TestTLSWithClientCertificates(t *testing.T) {
	p := newPKI(t)
	serverCert, serverKey := p.issue("server", "nats.internal")
	clientCert, clientKey := p.issue("client")
	tlsConfig, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: serverCert, KeyFile: serverKey, CaFile: p.caFile, Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	s := startServerWith(t, func(o *server.Options) {
		o.TLS, o.TLSVerify, o.TLSConfig, o.TLSTimeout = true, true, tlsConfig, 2
	})
	url := "tls://" + loopbackPort(s)
	quiet := slog.New(slog.DiscardHandler)
	full := natsx.TLSOptions{CAFile: p.caFile, CertFile: clientCert, KeyFile: clientKey, ServerName: "nats.internal"}

	// Read through the services' configuration, as a replica would.
	base := runtime.LoadBase(config.FromMap(map[string]string{
		"NATS_URL": url, "NATS_TLS_CA": p.caFile, "NATS_TLS_CERT": clientCert, "NATS_TLS_KEY": clientKey,
		"NATS_TLS_SERVER_NAME": "nats.internal",
	}), runtime.Defaults{ServiceName: "auth"})
	if base.NATSTLS != full {
		t.Fatalf("NATS_TLS_* read as %+v", base.NATSTLS)
	}
	authConn, err := natsx.Connect(base.NATSConnOptions(quiet))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(authConn.Close)
	wait.Eventually(t, 5*time.Second, "a TLS connection with a client certificate", authConn.IsConnected)
	if state, err := authConn.TLSConnectionState(); err != nil || len(state.PeerCertificates) == 0 || state.PeerCertificates[0].DNSNames[0] != "nats.internal" {
		t.Fatalf("not on TLS with the server's certificate: %v", err)
	}
	newEchoService(t, authConn, nil)
	blogConn, err := natsx.Connect(natsx.ConnOptions{URL: url, TLS: full, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(blogConn.Close)
	wait.Eventually(t, 5*time.Second, "a second TLS client", blogConn.IsConnected)
	if err := echoWorks(t, blogConn); err != nil {
		t.Fatalf("micro request over TLS: %v", err)
	}

	// Refusals, each made without retrying so the reason is visible.
	for _, tc := range []struct {
		name string
		tls  natsx.TLSOptions
		want string
	}{
		// TLS 1.3 refuses a missing client certificate after the
		// handshake: the client sees "certificate required" or, when its
		// next write comes first, a closed connection.
		{"no client certificate", natsx.TLSOptions{CAFile: p.caFile, ServerName: "nats.internal"}, "tls"},
		{"server name not in the certificate", natsx.TLSOptions{CAFile: p.caFile, CertFile: clientCert, KeyFile: clientKey}, "127.0.0.1"},
		{"unknown CA", natsx.TLSOptions{CertFile: clientCert, KeyFile: clientKey, ServerName: "nats.internal"}, "unknown authority"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nc, err := natsx.Connect(natsx.ConnOptions{URL: url, TLS: tc.tls, Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			var last error
			// Retrying in the background: the error shows in LastError.
			if !wait.For(5*time.Second, func() bool { last = nc.LastError(); return last != nil }) {
				t.Fatalf("no connection error (connected: %v)", nc.IsConnected())
			}
			if nc.IsConnected() || !strings.Contains(last.Error(), tc.want) {
				t.Fatalf("connected %v, last error %v; want an error mentioning %q", nc.IsConnected(), last, tc.want)
			}
		})
	}
}

// operator is a NATS operator with one account, as nsc would set it up,
// issuing user credentials files.
type operator struct {
	t          *testing.T
	claims     *jwt.OperatorClaims
	account    nkeys.KeyPair
	accountJWT string
	system     string
	systemJWT  string
}

func newOperator(t *testing.T) *operator {
	t.Helper()
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	okp, err := nkeys.CreateOperator()
	must(err)
	opub, _ := okp.PublicKey()
	o := &operator{t: t, claims: jwt.NewOperatorClaims(opub)}
	o.claims.Name = "test-operator"
	account := func(name string) (nkeys.KeyPair, string, string) {
		akp, err := nkeys.CreateAccount()
		must(err)
		apub, _ := akp.PublicKey()
		ac := jwt.NewAccountClaims(apub)
		ac.Name = name
		encoded, err := ac.Encode(okp)
		must(err)
		return akp, apub, encoded
	}
	o.account, _, o.accountJWT = account("platform")
	_, o.system, o.systemJWT = account("SYS")
	o.claims.SystemAccount = o.system
	_, err = o.claims.Encode(okp) // validates the operator claims
	must(err)
	return o
}

// resolver serves the account JWTs from memory (the server's MEMORY
// resolver).
func (o *operator) configure(opts *server.Options) {
	r := &server.MemAccResolver{}
	apub, _ := o.account.PublicKey()
	if err := r.Store(apub, o.accountJWT); err != nil {
		o.t.Fatal(err)
	}
	if err := r.Store(o.system, o.systemJWT); err != nil {
		o.t.Fatal(err)
	}
	opts.TrustedOperators = []*jwt.OperatorClaims{o.claims}
	opts.AccountResolver = r
	opts.SystemAccount = o.system
}

// user writes a credentials file for a user of the account with the given
// allow lists (responses to received requests allowed when it may
// subscribe to requests).
func (o *operator) user(name string, pub, sub []string, respond bool) string {
	ukp, err := nkeys.CreateUser()
	if err != nil {
		o.t.Fatal(err)
	}
	upub, _ := ukp.PublicKey()
	uc := jwt.NewUserClaims(upub)
	uc.Name = name
	uc.Pub.Allow.Add(pub...)
	uc.Sub.Allow.Add(sub...)
	if respond {
		uc.Resp = &jwt.ResponsePermission{MaxMsgs: 1, Expires: time.Minute}
	}
	encoded, err := uc.Encode(o.account)
	if err != nil {
		o.t.Fatal(err)
	}
	seed, _ := ukp.Seed()
	creds, err := jwt.FormatUserConfig(encoded, seed)
	if err != nil {
		o.t.Fatal(err)
	}
	path := filepath.Join(o.t.TempDir(), name+".creds")
	if err := os.WriteFile(path, creds, 0o600); err != nil {
		o.t.Fatal(err)
	}
	return path
}

// TestCredentialsFileOnAnOperatorServer: a server in operator (JWT) mode
// with a memory resolver; each service connects with its own credentials
// file (NATS_CREDS) whose permissions allow only its subjects and its own
// inbox, "_INBOX_<service name>": requests, micro replies and discovery all
// work, which they would not if the inbox prefix were the shared default.
func TestCredentialsFileOnAnOperatorServer(t *testing.T) {
	op := newOperator(t)
	s := startServerWith(t, op.configure)
	url := s.ClientURL()
	authCreds := op.user("auth", []string{"$SRV.>"}, []string{"auth.>", "$SRV.>", "_INBOX_auth.>"}, true)
	blogCreds := op.user("blog", []string{"auth.>", "$SRV.>"}, []string{"_INBOX_blog.>"}, false)
	quiet := slog.New(slog.DiscardHandler)

	connect := func(service, creds string) *nats.Conn {
		base := runtime.LoadBase(config.FromMap(map[string]string{"NATS_URL": url, "NATS_CREDS": creds, "NATS_SERVICE_NAME": service}),
			runtime.Defaults{ServiceName: service})
		nc, err := natsx.Connect(base.NATSConnOptions(quiet))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		wait.Eventually(t, 5*time.Second, service+" connects with its credentials file", nc.IsConnected)
		return nc
	}
	auth, blog := connect("auth", authCreds), connect("blog", blogCreds)
	newEchoService(t, auth, nil)
	if !strings.HasPrefix(blog.NewRespInbox(), "_INBOX_blog.") {
		t.Fatalf("blog's inbox %q", blog.NewRespInbox())
	}
	if err := echoWorks(t, blog); err != nil {
		t.Fatalf("blog -> auth with credentials files: %v", err)
	}
	if _, err := blog.Request("$SRV.PING", nil, 2*time.Second); err != nil {
		t.Fatalf("micro discovery: %v", err)
	}

	// The permissions are real: blog may not publish elsewhere.
	if err := blog.Publish("blog.secret", nil); err == nil {
		_ = blog.Flush()
		wait.Eventually(t, 2*time.Second, "the server refuses blog's publish", func() bool {
			err := blog.LastError()
			return err != nil && strings.Contains(err.Error(), "Permissions Violation")
		})
	}

	// A user/password connection is refused by an operator server.
	nc, err := natsx.Connect(natsx.ConnOptions{URL: url, User: "blog", Password: "x", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if !wait.For(5*time.Second, func() bool { return nc.LastError() != nil }) || nc.IsConnected() {
		t.Fatalf("password user accepted by an operator server (err %v)", nc.LastError())
	}
}

// TestConfigStopsOnBadNATSValues: the services' configuration reports each
// bad NATS variable as one line naming it, without repeating a password.
func TestConfigStopsOnBadNATSValues(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"NATS_URL": "nats://a:4222,nats://user:s3cret@b"}, "NATS_URL: server 2 (nats://***@b): want host:port"},
		{map[string]string{"NATS_URL": "nats://a:4222,http://b:80"}, "NATS_URL: server 2"},
		{map[string]string{"NATS_CREDS": missing}, "NATS_CREDS: \"" + missing + "\""},
		{map[string]string{"NATS_CREDS": missing, "NATS_USER": "blog", "NATS_PASSWORD": "s3cret"}, "NATS_CREDS: cannot be combined"},
		{map[string]string{"NATS_TLS_KEY": missing}, "NATS_TLS_CERT: NATS_TLS_CERT and NATS_TLS_KEY: set both or neither"},
		{map[string]string{"NATS_TLS_CA": missing}, "NATS_TLS_CA: \"" + missing + "\""},
		{map[string]string{"NATS_INBOX_PREFIX": "_INBOX.*"}, "NATS_INBOX_PREFIX: must be subject tokens"},
		{map[string]string{"NATS_SERVER_ORDER": "sorted"}, "NATS_SERVER_ORDER=\"sorted\": must be one of random, listed"},
	} {
		src := config.FromMap(tc.env)
		runtime.LoadBase(src, runtime.Defaults{DBName: "blog-db", ServiceName: "blog"})
		err := src.Err()
		if err == nil {
			t.Errorf("%v accepted", tc.env)
			continue
		}
		msg := err.Error()
		if strings.Count(msg, "\n") != 0 || !strings.Contains(msg, "invalid configuration: "+tc.want) || strings.Contains(msg, "s3cret") {
			t.Errorf("%v: %q, want one line with %q and no password", tc.env, msg, tc.want)
		}
	}
	src := config.FromMap(map[string]string{"NATS_URL": "nats://a:4222, tls://b:4443", "NATS_SERVER_ORDER": "listed"})
	b := runtime.LoadBase(src, runtime.Defaults{DBName: "blog-db", ServiceName: "blog"})
	if src.Err() != nil || !b.NATSConnOptions(nil).NoRandomize || b.NATSConnOptions(nil).Name != "blog" {
		t.Errorf("a good list: %v %+v", src.Err(), b.NATSConnOptions(nil))
	}
}
