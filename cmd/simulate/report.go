package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/kronfed/kronfed/internal/cli"
	"github.com/kronfed/kronfed/simulate"
)

// runReport is `simulate report RUN...`: one results page (Markdown and
// self-contained HTML) over run folders of forgetting, run and sweep.
func runReport(args []string, stdout io.Writer) error {
	fs := newFlags("report")
	out := fs.String("out", "", "folder for report.md, report.html and the plots (default runs/report-TIME)")
	if err := fs.Parse(args); err != nil { // the run folders follow the flags
		return err
	}
	if fs.NArg() == 0 {
		return errors.New("report: give one or more run folders (runs/forgetting-…, runs/run-…, runs/sweep-…)")
	}
	for _, a := range fs.Args() {
		if strings.HasPrefix(a, "-") {
			return fmt.Errorf("report: %s after the run folders: flags go first (simulate report --out DIR RUN...)", a)
		}
	}
	var runs []*simulate.ReportRun
	for _, dir := range fs.Args() {
		r, err := simulate.ReadReportRun(dir)
		if err != nil {
			return err
		}
		runs = append(runs, r)
	}
	if *out == "" {
		*out = filepath.Join("runs", "report-"+time.Now().Format("20060102-150405"))
	}
	meta := simulate.ReportMeta{Generated: time.Now().UTC().Format("2006-01-02 15:04 UTC"), Version: version(), Machine: machine()}
	if err := simulate.WriteReport(*out, runs, meta); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "report of %d run(s): %s, %s\n", len(runs), filepath.Join(*out, "report.md"), filepath.Join(*out, "report.html"))
	return nil
}

// version is the program's version (cli.VersionString: the release stamp
// or the build's VCS revision), else — under go run, which stamps nothing —
// the working tree's git HEAD ("+dirty" with uncommitted changes), or
// "(unknown version)".
func version() string {
	if v := cli.VersionString(); v != "(devel)" {
		return v + " (" + runtime.Version() + ")"
	}
	out, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		return "(unknown version, " + runtime.Version() + ")"
	}
	rev := fmt.Sprintf("%.12s", strings.TrimSpace(string(out)))
	if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
		rev += "+dirty"
	}
	return rev + " (" + runtime.Version() + ")"
}

// machine names the CPU (/proc/cpuinfo's model name and family) and the
// cores Go sees.
func machine() string {
	name, family := runtime.GOARCH, ""
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), ":")
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			switch {
			case !ok:
			case k == "model name" && name == runtime.GOARCH:
				name = v
			case k == "cpu family" && family == "":
				family = " (family " + v + ")"
			}
		}
	}
	return fmt.Sprintf("%s%s, %d cores", name, family, runtime.NumCPU())
}
