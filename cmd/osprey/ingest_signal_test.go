package main

import (
	"bufio"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestIngestSignal runs osprey ingest on inputs that never end, a FIFO no one writes to and
// /dev/zero (one endless line of NULs), sends SIGINT or SIGTERM once it reads, and checks that
// it ends within a bounded wait, says it was interrupted, and exits with status 1 (not killed
// by the signal, not crashed).
func TestIngestSignal(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, input := range []string{fifo, "/dev/zero"} {
		for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
			t.Run(filepath.Base(input)+"/"+sig.String(), func(t *testing.T) {
				lake := filepath.Join(t.TempDir(), "lake")
				cmd := exec.Command("osprey", "--lake", lake, "ingest", "--log-type", "Panther.Audit", input)
				stderr, err := cmd.StderrPipe()
				if err != nil {
					t.Fatal(err)
				}
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				defer cmd.Process.Kill()
				// The line comes once the signals are handled, before the input is opened.
				ready := make(chan struct{})
				done := make(chan error, 1)
				var out strings.Builder // written by the goroutine until done
				go func() {
					sc := bufio.NewScanner(stderr)
					for sc.Scan() {
						out.WriteString(sc.Text() + "\n")
						if strings.Contains(sc.Text(), "until it ends; Ctrl-C stops") {
							close(ready)
						}
					}
					done <- cmd.Wait()
				}()
				timeout := time.After(time.Minute)
				select {
				case <-ready:
				case err := <-done:
					t.Fatalf("osprey ingest %s ended before the signal: %v\n%s", input, err, out.String())
				case <-timeout:
					cmd.Process.Kill()
					<-done
					t.Fatalf("osprey ingest %s did not say it reads it:\n%s", input, out.String())
				}
				if err := cmd.Process.Signal(sig); err != nil {
					t.Fatal(err)
				}
				select {
				case err = <-done:
				case <-timeout:
					cmd.Process.Kill()
					<-done
					t.Fatalf("osprey ingest %s still runs a minute after %v:\n%s", input, sig, out.String())
				}
				var exit *exec.ExitError
				if !errors.As(err, &exit) || exit.ExitCode() != 1 {
					t.Errorf("osprey ingest %s after %v: %v, want exit status 1\n%s", input, sig, err, out.String())
				}
				if !strings.Contains(out.String(), "interrupted; ingested") {
					t.Errorf("osprey ingest %s after %v does not say it was interrupted:\n%s", input, sig, out.String())
				}
			})
		}
	}
}
