// Command controlplane runs an envtest-style Kubernetes control plane in one
// process: an embedded etcd plus kube-apiserver (linked in from
// k8s.io/kubernetes/cmd/kube-apiserver/app), with freshly generated
// certificates and an admin kubeconfig. No controller-manager, scheduler or
// nodes: Pods stay Pending, and nothing creates ServiceAccounts or tokens.
//
// Protocol for a parent process (e.g. a Rust e2e test):
//   - stdout carries exactly one line, once /readyz answers OK:
//     READY kubeconfig=PATH host=https://127.0.0.1:PORT dir=WORKDIR etcd=URL startup=DURATION
//   - everything else goes to stderr;
//   - it stops cleanly on SIGTERM/SIGINT, or when its stdin reaches EOF (so keep
//     a pipe to its stdin open while using it: if the parent dies, the pipe
//     closes and the control plane exits);
//   - exit status 0 after a clean stop, non-zero on any failure.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"go.etcd.io/etcd/server/v3/embed"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/client-go/rest"
	basecompatibility "k8s.io/component-base/compatibility"
	logsapi "k8s.io/component-base/logs/api/v1"
	utilversion "k8s.io/component-base/version"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
	"k8s.io/kubernetes/cmd/kube-apiserver/app/options"
)

type config struct {
	kubeconfigOut string
	keep          bool
	verbose       bool
	verbosity     int
	timeout       time.Duration
	stopTimeout   time.Duration
	watchStdin    bool
	extraArgs     []string
}

func main() {
	// The real stdout is reserved for the READY line; anything a library
	// prints through os.Stdout lands on stderr instead.
	readyOut := os.Stdout
	os.Stdout = os.Stderr

	var cfg config
	fs := pflag.NewFlagSet("controlplane", pflag.ContinueOnError)
	fs.SortFlags = false
	fs.StringVar(&cfg.kubeconfigOut, "kubeconfig-out", "", "write the admin kubeconfig here (default: WORKDIR/kubeconfig)")
	fs.BoolVar(&cfg.keep, "keep", false, "keep the work dir (certs, etcd data, logs) on exit")
	fs.BoolVar(&cfg.verbose, "verbose", false, "send all kube-apiserver and etcd logs to stderr (default: warnings and errors only; kube-apiserver info lines go to WORKDIR/kube-apiserver.log)")
	fs.IntVarP(&cfg.verbosity, "v", "v", 0, "kube-apiserver klog verbosity")
	fs.DurationVar(&cfg.timeout, "timeout", 120*time.Second, "give up if /readyz is not OK within this time")
	fs.DurationVar(&cfg.stopTimeout, "stop-timeout", 30*time.Second, "exit with an error if a clean stop takes longer than this")
	fs.BoolVar(&cfg.watchStdin, "exit-on-stdin-eof", true, "stop when stdin reaches EOF (ignored when stdin is /dev/null)")
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "Usage: %s [flags] [-- extra kube-apiserver flags]\n\n"+
			"Runs embedded etcd + kube-apiserver %s on 127.0.0.1 and prints one line on stdout when ready:\n"+
			"  READY kubeconfig=PATH host=https://127.0.0.1:PORT dir=WORKDIR etcd=URL startup=DURATION\n\n",
			os.Args[0], utilversion.Get().GitVersion)
		fs.PrintDefaults()
	}
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "controlplane:", err)
		os.Exit(2)
	}
	cfg.extraArgs = fs.Args()

	os.Exit(run(cfg, readyOut))
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "controlplane: "+format+"\n", args...)
}

func run(cfg config, readyOut io.Writer) (code int) {
	start := time.Now()

	dir, err := os.MkdirTemp("", "rampart-controlplane-")
	if err != nil {
		logf("ERROR: creating work dir: %v", err)
		return 1
	}
	var cleanupOnce sync.Once
	cleanup := func() (ok bool) {
		ok = true
		cleanupOnce.Do(func() {
			if cfg.keep {
				logf("kept work dir %s", dir)
			} else if err := os.RemoveAll(dir); err != nil {
				logf("ERROR: removing work dir: %v", err)
				ok = false
			}
		})
		return ok
	}
	// kube-apiserver exits through klog.Fatal on some errors (e.g. a failed
	// post-start hook): still remove the work dir then.
	klog.OsExit = func(c int) {
		cleanup()
		os.Exit(c)
	}
	var logFile *os.File
	defer func() {
		klog.Flush()
		if logFile != nil {
			_ = logFile.Close()
		}
		if !cleanup() {
			code = 1
		}
	}()

	// stopCtx ends on SIGINT/SIGTERM/SIGHUP or on EOF of stdin. ctx, which
	// kube-apiserver runs with, is only cancelled once it is ready (or failed):
	// cancelling it during start-up makes post-start hooks fail fatally.
	stopCtx, requestStop := context.WithCancelCause(context.Background())
	defer requestStop(nil)
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	sigCh := make(chan os.Signal, 2)
	signal.Notify(sigCh, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		s := <-sigCh
		requestStop(fmt.Errorf("received %v", s))
		s = <-sigCh
		logf("received %v again, exiting immediately", s)
		cleanup()
		os.Exit(1)
	}()
	if cfg.watchStdin && stdinIsDevNull() {
		logf("stdin is /dev/null: not watching it for EOF (stop with SIGTERM/SIGINT)")
		cfg.watchStdin = false
	}
	if cfg.watchStdin {
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			requestStop(errors.New("stdin closed"))
		}()
	}

	p, err := generatePKI(filepath.Join(dir, "pki"))
	if err != nil {
		logf("ERROR: generating certificates: %v", err)
		return 1
	}

	// --- etcd -------------------------------------------------------------
	etcdLog := filepath.Join(dir, "etcd.log")
	etcd, etcdURL, err := startEtcd(stopCtx, filepath.Join(dir, "etcd"), etcdLog, cfg.verbose)
	if err != nil && stopCtx.Err() != nil {
		logf("stopped while starting etcd: %v", context.Cause(stopCtx))
		return 0
	}
	if err != nil {
		logf("ERROR: starting etcd: %v", err)
		dumpTail(etcdLog, 30)
		return 1
	}
	var closeEtcd sync.Once
	stopEtcd := func() { closeEtcd.Do(etcd.Close) }
	defer stopEtcd()
	logf("etcd ready at %s after %v", etcdURL, time.Since(start).Round(time.Millisecond))

	// --- kube-apiserver ---------------------------------------------------
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		logf("ERROR: listening for kube-apiserver: %v", err)
		return 1
	}
	port := ln.Addr().(*net.TCPAddr).Port
	host := fmt.Sprintf("https://127.0.0.1:%d", port)

	if cfg.kubeconfigOut == "" {
		cfg.kubeconfigOut = filepath.Join(dir, "kubeconfig")
	}
	if err := writeKubeconfig(cfg.kubeconfigOut, host, p); err != nil {
		logf("ERROR: writing kubeconfig: %v", err)
		return 1
	}

	var logSink io.Writer = os.Stderr
	if !cfg.verbose {
		logFile, err = os.Create(filepath.Join(dir, "kube-apiserver.log"))
		if err != nil {
			logf("ERROR: %v", err)
			return 1
		}
		logSink = &klogFilter{all: logFile, important: os.Stderr, benign: benignKlog}
	}

	args := apiserverArgs(cfg, dir, port, etcdURL, p)
	apiErr := make(chan error, 1)
	go func() { apiErr <- runAPIServer(ctx, ln, args, logSink) }()

	// --- readiness --------------------------------------------------------
	if exited, err := waitReady(ctx, host, p, cfg.timeout, apiErr); err != nil {
		logf("ERROR: kube-apiserver did not become ready: %v", err)
		if logFile != nil {
			dumpTail(logFile.Name(), 60)
		}
		dumpTail(etcdLog, 20)
		cancel(err)
		if !exited {
			waitStopped(apiErr, cfg.stopTimeout)
		}
		return 1
	}
	startup := time.Since(start).Round(time.Millisecond)
	logf("kube-apiserver %s ready at %s after %v", utilversion.Get().GitVersion, host, startup)
	if stopCtx.Err() != nil {
		// Told to stop while starting: no READY line, but still a clean stop.
		readyOut = io.Discard
	}
	if _, err := fmt.Fprintf(readyOut, "READY kubeconfig=%s host=%s dir=%s etcd=%s startup=%v\n",
		cfg.kubeconfigOut, host, dir, etcdURL, startup); err != nil {
		logf("ERROR: writing READY line: %v", err)
		cancel(err)
		waitStopped(apiErr, cfg.stopTimeout)
		return 1
	}

	// --- run until told to stop -------------------------------------------
	select {
	case <-stopCtx.Done():
		logf("stopping: %v", context.Cause(stopCtx))
		cancel(context.Cause(stopCtx))
		stopStart := time.Now()
		if !waitStopped(apiErr, cfg.stopTimeout) {
			return 1
		}
		stopEtcd()
		logf("stopped cleanly in %v", time.Since(stopStart).Round(time.Millisecond))
		return 0
	case err := <-apiErr:
		logf("ERROR: kube-apiserver exited unexpectedly: %v", err)
		return 1
	case err := <-etcd.Err():
		logf("ERROR: etcd failed: %v", err)
		cancel(err)
		waitStopped(apiErr, cfg.stopTimeout)
		return 1
	}
}

// apiserverArgs are the kube-apiserver flags, modelled on envtest's defaults
// (sigs.k8s.io/controller-runtime/pkg/internal/testing/controlplane).
func apiserverArgs(cfg config, dir string, port int, etcdURL string, p *pki) []string {
	args := []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		"--cert-dir=" + filepath.Join(dir, "pki"),
		"--tls-cert-file=" + p.ServingCert,
		"--tls-private-key-file=" + p.ServingKey,
		"--client-ca-file=" + p.CACert,
		"--authorization-mode=RBAC",
		"--allow-privileged=true",
		"--service-cluster-ip-range=10.0.0.0/24",
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file=" + p.SAPub,
		"--service-account-signing-key-file=" + p.SAKey,
		// As in envtest: with no controller-manager nobody creates the "default"
		// ServiceAccount, and the ServiceAccount admission plugin would reject
		// every Pod that names none. Webhook and policy admission plugins
		// (MutatingAdmissionWebhook, ValidatingAdmissionWebhook,
		// ValidatingAdmissionPolicy, MutatingAdmissionPolicy) keep their defaults.
		"--disable-admission-plugins=ServiceAccount",
		// No Endpoints/EndpointSlices for the "kubernetes" Service: 127.0.0.1 is
		// not a routable endpoint and there is a single apiserver.
		"--endpoint-reconciler-type=none",
		"--profiling=false",
		"--v=" + strconv.Itoa(cfg.verbosity),
	}
	return append(args, cfg.extraArgs...)
}

// runAPIServer does what NewAPIServerCommand's RunE does, but with our own
// context (NewAPIServerCommand installs its own signal handler, which may only
// happen once per process) and a pre-bound listener (no port race).
func runAPIServer(ctx context.Context, ln net.Listener, args []string, logSink io.Writer) error {
	s := options.NewServerRunOptions()
	featureGate := s.GenericServerRunOptions.ComponentGlobalsRegistry.FeatureGateFor(basecompatibility.DefaultKubeComponent)

	fs := pflag.NewFlagSet("kube-apiserver", pflag.ContinueOnError)
	namedFlagSets := s.Flags()
	for _, f := range namedFlagSets.FlagSets {
		fs.AddFlagSet(f)
	}
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("kube-apiserver flags: %w", err)
	}
	s.SecureServing.Listener = ln

	if err := s.GenericServerRunOptions.ComponentGlobalsRegistry.Set(); err != nil {
		return err
	}
	// kube-apiserver loopback clients should not log self-issued warnings.
	rest.SetDefaultWarningHandler(rest.NoWarnings{})

	if err := logsapi.ValidateAndApplyWithOptions(s.Logs,
		&logsapi.LoggingOptions{ErrorStream: logSink, InfoStream: logSink}, featureGate); err != nil {
		return err
	}
	completed, err := s.Complete(ctx)
	if err != nil {
		return err
	}
	if errs := completed.Validate(); len(errs) != 0 {
		return utilerrors.NewAggregate(errs)
	}
	return app.Run(ctx, completed)
}

// startEtcd starts a single-member etcd on free loopback ports. Its logs go to
// logPath (warnings and errors) or, when verbose, to stderr (everything).
func startEtcd(ctx context.Context, dataDir, logPath string, verbose bool) (*embed.Etcd, string, error) {
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		clientPort, err := freePort()
		if err != nil {
			return nil, "", err
		}
		peerPort, err := freePort()
		if err != nil {
			return nil, "", err
		}
		clientURL := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", clientPort)}
		peerURL := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", peerPort)}

		c := embed.NewConfig()
		c.Name = "controlplane"
		c.Dir = dataDir
		c.ListenClientUrls = []url.URL{clientURL}
		c.AdvertiseClientUrls = []url.URL{clientURL}
		c.ListenPeerUrls = []url.URL{peerURL}
		c.AdvertisePeerUrls = []url.URL{peerURL}
		c.InitialCluster = c.InitialClusterFromName(c.Name)
		c.Logger = "zap"
		// At shutdown etcd logs "setting up serving from embedded etcd failed"
		// errors for its closed listeners; keep them off stderr by default.
		c.LogOutputs = []string{logPath}
		c.LogLevel = "warn"
		if verbose {
			c.LogOutputs = []string{"stderr"}
			c.LogLevel = "info"
		}
		// Throw-away data: skip fsync, it is the slowest part of etcd writes.
		c.UnsafeNoFsync = true

		e, err := embed.StartEtcd(c)
		if err != nil {
			lastErr = err
			_ = os.RemoveAll(dataDir)
			if strings.Contains(err.Error(), "address already in use") {
				continue
			}
			return nil, "", err
		}
		select {
		case <-e.Server.ReadyNotify():
			return e, clientURL.String(), nil
		case err := <-e.Err():
			e.Close()
			return nil, "", err
		case <-time.After(60 * time.Second):
			e.Close()
			return nil, "", errors.New("etcd not ready after 60s")
		case <-ctx.Done():
			e.Close()
			return nil, "", context.Cause(ctx)
		}
	}
	return nil, "", lastErr
}

func stdinIsDevNull() bool {
	in, err := os.Stdin.Stat()
	if err != nil {
		return false
	}
	null, err := os.Stat(os.DevNull)
	return err == nil && os.SameFile(in, null)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitReady polls /readyz with the admin client certificate. exited reports
// that kube-apiserver's Run already returned (its result was consumed).
func waitReady(ctx context.Context, host string, p *pki, timeout time.Duration, apiErr <-chan error) (exited bool, err error) {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(p.caPEM)
	cert, err := tls.X509KeyPair(p.adminCertPEM, p.adminKeyPEM)
	if err != nil {
		return false, err
	}
	client := &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			Proxy:           nil,
			TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}},
		},
	}
	defer client.CloseIdleConnections()

	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	last := "no answer yet"
	for {
		select {
		case <-ctx.Done():
			return false, context.Cause(ctx)
		case err := <-apiErr:
			if err == nil {
				err = errors.New("exited without error")
			}
			return true, fmt.Errorf("kube-apiserver stopped: %w", err)
		case <-deadline.C:
			return false, fmt.Errorf("timed out after %v; last /readyz answer: %s", timeout, last)
		case <-tick.C:
		}
		resp, err := client.Get(host + "/readyz")
		if err != nil {
			last = err.Error()
			continue
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return false, nil
		}
		last = fmt.Sprintf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
}

// waitStopped waits for kube-apiserver's Run to return after the context was
// cancelled. It reports whether it stopped cleanly in time.
func waitStopped(apiErr <-chan error, timeout time.Duration) bool {
	select {
	case err := <-apiErr:
		if err != nil {
			logf("ERROR: kube-apiserver stopped with: %v", err)
			return false
		}
		return true
	case <-time.After(timeout):
		logf("ERROR: kube-apiserver did not stop within %v", timeout)
		return false
	}
}

func writeKubeconfig(path, host string, p *pki) error {
	b64 := base64.StdEncoding.EncodeToString
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: rampart-e2e
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: rampart-e2e-admin
  user:
    client-certificate-data: %s
    client-key-data: %s
contexts:
- name: rampart-e2e
  context:
    cluster: rampart-e2e
    user: rampart-e2e-admin
    namespace: default
current-context: rampart-e2e
`, host, b64(p.caPEM), b64(p.adminCertPEM), b64(p.adminKeyPEM))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(kc), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// benignKlog are warnings/errors every start of this control plane logs; they
// go to the log file only.
var benignKlog = []string{
	"because it has no resources.",                 // "Skipping API x/v1beta1 ...": disabled beta/alpha versions
	"The manifest file is empty",                   // no static manifests for the apiserver's own config
	"Found stale data, removed previous endpoints", // --endpoint-reconciler-type=none on a fresh etcd
	`namespaces \"kube-system\" not found`,         // controllers racing the system-namespace bootstrap
	"Unable to remove peer endpoint leases",        // at stop, when the lease was never written
}

// klogFilter receives kube-apiserver's klog text output (one entry per Write)
// and copies every entry to all, and warnings/errors ("W", "E", "F" headers)
// that are not known to be benign to important as well.
type klogFilter struct {
	mu        sync.Mutex
	all       io.Writer
	important io.Writer
	benign    []string
}

func (f *klogFilter) Write(b []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, _ = f.all.Write(b)
	if len(b) == 0 || (b[0] != 'W' && b[0] != 'E' && b[0] != 'F') {
		return len(b), nil
	}
	for _, s := range f.benign {
		if bytes.Contains(b, []byte(s)) {
			return len(b), nil
		}
	}
	_, _ = f.important.Write(b)
	return len(b), nil
}

func dumpTail(path string, n int) {
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) == 0 {
		return
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	logf("last %d lines of %s:", len(lines), path)
	for _, l := range lines {
		fmt.Fprintln(os.Stderr, "  | "+l)
	}
}
