package store

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// crashHelperEnv names the store file TestHelperProcess writes to; when it
// is unset TestHelperProcess does nothing.
const crashHelperEnv = "KRONFED_STORE_CRASH_HELPER"

// crashUpload is the i-th upload the helper accepts: 8 clients a round and
// records of 1 KiB to about 300 KiB, so that some commits span many pages
// and the kill often lands in the middle of one.
func crashUpload(i int) (round uint64, client string, rec []byte) {
	round = uint64(i / 8)
	client = fmt.Sprintf("client-%03d", i%8)
	return round, client, record(round, client, 1024+(i*37%300)*1024)
}

// TestHelperProcess is the child of TestCrashKeepsAcknowledgedUploads: it
// accepts uploads in a loop, with sync on, each with a snapshot counting the
// uploads accepted so far, and prints "ack i" once AcceptUpload returned.
// It continues from the snapshot of an earlier (killed) run.
func TestHelperProcess(t *testing.T) {
	path := os.Getenv(crashHelperEnv)
	if path == "" {
		t.Skip("helper process of TestCrashKeepsAcknowledgedUploads")
	}
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(3)
	}
	s, err := Open(path, Options{Timeout: 10 * time.Second})
	if err != nil {
		fail(err)
	}
	n := 0
	if st, ok, err := s.State(); err != nil {
		fail(err)
	} else if ok {
		if n, err = strconv.Atoi(string(st)); err != nil {
			fail(err)
		}
	}
	for i := n; ; i++ {
		round, client, rec := crashUpload(i)
		if err := s.AcceptUpload(round, client, rec, []byte(strconv.Itoa(i+1))); err != nil {
			fail(err)
		}
		if _, err := fmt.Fprintf(os.Stdout, "ack %d\n", i); err != nil { // os.Stdout is unbuffered
			fail(err)
		}
	}
}

// TestCrashKeepsAcknowledgedUploads kills a process writing the store with
// SIGKILL after about 50 acknowledged uploads, three times on the same
// file, and checks after each kill that the file passes bbolt's consistency
// check, that every acknowledged upload is there byte for byte, and that the
// snapshot agrees exactly with the uploads stored.
func TestCrashKeepsAcknowledgedUploads(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	path := filepath.Join(t.TempDir(), "state.db")
	acked := -1 // highest acknowledged index so far
	for run := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashHelperEnv+"="+path)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		watchdog := time.AfterFunc(60*time.Second, func() { cmd.Process.Kill() })
		acks, killed := 0, false
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			rest, ok := strings.CutPrefix(line, "ack ")
			if !ok {
				continue // the test framework's own output
			}
			i, err := strconv.Atoi(rest)
			if err != nil {
				t.Fatalf("run %d: bad line %q", run, line)
			}
			if i != acked+1 {
				t.Fatalf("run %d: acknowledgement %d follows %d", run, i, acked)
			}
			acked = i
			if acks++; acks == 50 && !killed {
				// Vary the instant of the kill from run to run.
				time.Sleep(time.Duration(run) * 1500 * time.Microsecond)
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				killed = true
			}
		}
		err = cmd.Wait()
		watchdog.Stop()
		var ee *exec.ExitError
		if !killed || !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("run %d: helper ended with %v after %d acknowledgements (killed %v); stderr:\n%s", run, err, acks, killed, stderr.String())
		}
		n := verifyCrashedStore(t, path, acked)
		committed := acked
		acked = n - 1 // the next run continues after what was committed
		t.Logf("run %d: killed after %d acknowledgements, %d in all, %d more committed unacknowledged", run, acks, committed+1, n-committed-1)
	}
}

// verifyCrashedStore checks the file a killed helper left behind and
// returns the number of uploads it holds.
func verifyCrashedStore(t *testing.T, path string, acked int) int {
	t.Helper()
	// bbolt's own consistency check on the raw file, before anything else
	// opens it for writing.
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.View(func(tx *bolt.Tx) error {
		var first error
		for err := range tx.Check() { // drain: the checker sends them all
			if first == nil {
				first = err
			}
		}
		return first
	}); err != nil {
		t.Fatalf("bbolt check after the kill: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	st, ok, err := s.State()
	if err != nil || !ok {
		t.Fatalf("state after the kill: ok %v, %v", ok, err)
	}
	n, err := strconv.Atoi(string(st))
	if err != nil {
		t.Fatal(err)
	}
	// The snapshot may count uploads committed but not yet printed when the
	// kill landed, never fewer than were acknowledged.
	if n < acked+1 {
		t.Fatalf("snapshot counts %d uploads, %d were acknowledged", n, acked+1)
	}
	if stats := s.Stats(); stats.Uploads != n {
		t.Fatalf("snapshot counts %d uploads, the file holds %d", n, stats.Uploads)
	}
	for i := range n {
		round, client, want := crashUpload(i)
		got, err := s.Upload(round, client)
		if err != nil {
			t.Fatalf("upload %d (acknowledged: %v): %v", i, i <= acked, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("upload %d: %d bytes differ from the %d written", i, len(got), len(want))
		}
	}
	return n
}
