package s3test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// Moto is a moto_server (the AWS emulator) started for a test on a free loopback port.
type Moto struct {
	URL string
}

// StartMoto starts moto_server for the test and stops it when the test ends. It skips the test,
// saying why, when moto_server is not installed.
func StartMoto(t testing.TB) *Moto {
	t.Helper()
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		t.Skip("moto_server is not installed (pip install 'moto[server]'): skipping the test against it")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-H", "127.0.0.1", "-p", fmt.Sprint(port))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = cmd.Stderr
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start moto_server: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
	})
	// moto_server says when it listens; wait for that line (or for it to exit).
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		var out []string
		for sc.Scan() {
			out = append(out, sc.Text())
			if strings.Contains(sc.Text(), "Running on") {
				ready <- nil
				for sc.Scan() { // keep draining, or moto blocks on a full pipe
				}
				return
			}
		}
		ready <- fmt.Errorf("moto_server exited: %s", strings.Join(out, "\n"))
	}()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("moto_server did not start within a minute")
	}
	return &Moto{URL: fmt.Sprintf("http://127.0.0.1:%d", port)}
}

// Config returns an AWS configuration for clients of the server (give them BaseEndpoint URL).
func (m *Moto) Config() aws.Config {
	return aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
		Retryer:     func() aws.Retryer { return aws.NopRetryer{} },
	}
}
