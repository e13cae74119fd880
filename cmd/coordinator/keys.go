package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/kronfed/kronfed/fed"
	"github.com/kronfed/kronfed/fed/fedpb"
	"github.com/kronfed/kronfed/secure"
)

func runInit(args []string, stdout io.Writer) error {
	fs := newFlags("init")
	dir := fs.String("dir", "", "folder to create for the coordinator's keys (required)")
	name := fs.String("name", "coordinator", "coordinator name (its certificate's CN)")
	hosts := fs.String("hosts", "localhost,127.0.0.1,::1", "comma-separated host names and IPs the coordinator's certificate is valid for")
	ageKind := fs.String("age", "hybrid", "upload encryption: hybrid (ML-KEM-768+X25519, post-quantum) or x25519")
	sign := fs.String("sign", "Ed25519", "signature scheme of broadcasts: Ed25519, ML-DSA-65 or Ed25519-Dilithium2")
	validity := fs.Duration("validity", 365*24*time.Hour, "certificate validity")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("init: --dir is required")
	}
	var hs []string
	for _, h := range strings.Split(*hosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			hs = append(hs, h)
		}
	}
	if err := secure.InitDir(*dir, secure.InitOptions{Name: *name, Hosts: hs, AgeKind: *ageKind, SignScheme: *sign,
		Validity: *validity, Now: time.Now()}); err != nil {
		return fmt.Errorf("init: %w", err)
	}
	fmt.Fprintf(stdout, "initialized %s: CA, TLS certificate for %s, %s age identity, %s signing key, gossip key\n",
		*dir, strings.Join(hs, ", "), *ageKind, *sign)
	return nil
}

func runEnroll(args []string, stdout io.Writer) error {
	fs := newFlags("enroll")
	dir := fs.String("dir", "", "the coordinator's folder from init (required)")
	name := fs.String("name", "", "client name (required; letters, digits, '.', '_', '-')")
	out := fs.String("out", "", "bundle file to write (default NAME.bundle)")
	addr := fs.String("coordinator", "", "coordinator address to record in the bundle (optional)")
	validity := fs.Duration("validity", 365*24*time.Hour, "client certificate validity")
	operator := fs.Bool("operator", false, "issue an operator bundle: sees the full status (members, cohorts, uploads), does not train")
	pemDir := fs.String("pem-dir", "", "also write the certificate, key and CA as PEM files (ca.pem, cert.pem, key.pem) to this folder, for a metrics scraper or curl")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *dir == "" || *name == "" {
		return errors.New("enroll: --dir and --name are required")
	}
	enroll, role := (*secure.Coordinator).Enroll, "client"
	if *operator {
		enroll, role = (*secure.Coordinator).EnrollOperator, "operator"
	}
	if *out == "" {
		*out = *name + ".bundle"
	}
	co, err := secure.LoadDir(*dir)
	if err != nil {
		return fmt.Errorf("enroll: %w", err)
	}
	b, err := enroll(co, *name, *validity, time.Now())
	if err != nil {
		return fmt.Errorf("enroll: %w", err)
	}
	b.Coordinator = *addr
	if err := b.WriteFile(*out); err != nil {
		return fmt.Errorf("enroll: %w", err)
	}
	fmt.Fprintf(stdout, "enrolled %s %s: wrote %s (keep it secret: it holds the %s's private key)\n", role, *name, *out, role)
	if *pemDir != "" {
		if err := writePEMs(*pemDir, b); err != nil {
			return fmt.Errorf("enroll: %w", err)
		}
		fmt.Fprintf(stdout, "wrote ca.pem, cert.pem and key.pem (0600) to %s\n", *pemDir)
	}
	return nil
}

func runStatus(args []string, stdout io.Writer) error {
	fs := newFlags("status")
	addr := fs.String("addr", "127.0.0.1:7070", "coordinator gRPC address")
	dir := fs.String("dir", "", "the coordinator's folder (an operator certificate is issued in memory from its CA)")
	bundle := fs.String("bundle", "", "a bundle to authenticate with, instead of --dir: an operator's (enroll --operator) sees everything, a client's only its own part")
	asJSON := fs.Bool("json", false, "print the status as JSON")
	timeout := fs.Duration("timeout", 10*time.Second, "give up after this long")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var b *secure.Bundle
	var err error
	switch {
	case (*dir == "") == (*bundle == ""):
		return errors.New("status: give exactly one of --dir or --bundle")
	case *dir != "":
		var co *secure.Coordinator
		if co, err = secure.LoadDir(*dir); err == nil {
			b, err = co.EnrollOperator("operator", time.Hour, time.Now())
		}
	default:
		b, err = secure.ReadBundle(*bundle)
	}
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	host, _, err := net.SplitHostPort(*addr)
	if err != nil {
		return fmt.Errorf("status: --addr %q: %w", *addr, err)
	}
	tlsConf, err := b.ClientTLS(host)
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	conn, err := fed.DialGRPC(*addr, tlsConf)
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	st, err := conn.Status(ctx)
	if err != nil && status.Code(err) == codes.Unavailable && *dir != "" {
		// No coordinator answers: read what the stopped one left in its store.
		offline, oerr := offlineStatus(*dir)
		if oerr != nil {
			return fmt.Errorf("status: %s: %w; and from the store: %v", *addr, err, oerr)
		}
		st, err = offline, nil
	}
	if err != nil {
		return fmt.Errorf("status: %s: %w", *addr, err)
	}
	if *asJSON {
		js, err := protojson.MarshalOptions{Multiline: true, EmitUnpopulated: true}.Marshal(st)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(stdout, string(js))
		return err
	}
	return printStatus(stdout, st)
}

// offlineStatus reads a stopped coordinator's status from its store.
func offlineStatus(dir string) (*fedpb.StatusResponse, error) {
	st, err := openStoreOffline(dir, "")
	if err != nil {
		return nil, err
	}
	defer st.Close()
	return fed.OfflineStatus(st)
}

func printStatus(w io.Writer, st *fedpb.StatusResponse) error {
	fmt.Fprintf(w, "coordinator %s: %s on %s\n", st.Coordinator, st.Adapter, st.Model)
	fmt.Fprintf(w, "round %d (%s), global version %d", st.Round, st.Phase, st.GlobalVersion)
	if st.DeadlineUnixMs > 0 {
		fmt.Fprintf(w, ", deadline in %s", time.Until(time.UnixMilli(st.DeadlineUnixMs)).Round(time.Second))
	}
	fmt.Fprintln(w)
	if st.Delta > 0 {
		budget := "no budget"
		if st.EpsilonBudget > 0 {
			budget = fmt.Sprintf("budget %.4g", st.EpsilonBudget)
		}
		fmt.Fprintf(w, "differential privacy: ε = %.4g spent at δ = %g (%s)\n", st.Epsilon, st.Delta, budget)
	}
	if st.SecureAggregation {
		fmt.Fprintln(w, "secure aggregation: on (SecAgg+: the coordinator sees only the sum of each round's updates)")
	}
	if len(st.Cohort) > 0 {
		fmt.Fprintf(w, "cohort: %s; uploaded: %s\n", strings.Join(st.Cohort, ", "), strings.Join(st.Accepted, ", "))
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nMEMBER\tLIVE\tEXAMPLES\tCAPABILITY\tLAST SEEN")
	for _, m := range st.Members {
		fmt.Fprintf(tw, "%s\t%v\t%d\t%s\t%s ago\n", m.Name, m.Live, m.Examples, m.Capability,
			time.Since(time.UnixMilli(m.LastSeenUnixMs)).Round(time.Second))
	}
	fmt.Fprintln(tw, "\nROUND\tOUTCOME\tCLIENTS\tEXAMPLES\tLOSS\tVAL ACC\tWIRE BYTES\tRAW BYTES\tAGG ERR\tAGG SECONDS\tε\tSECURE AGGREGATION")
	for _, r := range st.Results {
		sa := "-"
		if r.SecureAggregation != "" {
			sa = fmt.Sprintf("%s, %d survivors", r.SecureAggregation, r.Survivors)
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%.4f\t%.4f\t%d\t%d\t%.3g\t%.3f\t%.4g\t%s\n", r.Round, r.Outcome, len(r.Clients), r.Examples,
			r.TrainLoss, r.ValAccuracy, r.WireBytes, r.RawBytes, r.AggregationError, r.AggregateSeconds, r.Epsilon, sa)
	}
	return tw.Flush()
}

// writePEMs writes a bundle's CA certificate, certificate and private key as
// PEM files to dir (the key readable by its owner only).
func writePEMs(dir string, b *secure.Bundle) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		data []byte
		perm os.FileMode
	}{{"ca.pem", b.CAPEM, 0o644}, {"cert.pem", b.CertPEM, 0o644}, {"key.pem", b.KeyPEM, 0o600}} {
		path := filepath.Join(dir, f.name)
		if err := os.WriteFile(path, f.data, f.perm); err != nil {
			return err
		}
		if err := os.Chmod(path, f.perm); err != nil { // an existing file keeps its mode otherwise
			return err
		}
	}
	return nil
}
