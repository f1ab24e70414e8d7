package main

// osprey-bench s3: osprey ingest of gzipped CloudTrail objects from an S3 emulator (moto_server
// on loopback) against the same files from local disk, in the same run.

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

func benchS3(args []string) error {
	fs := flag.NewFlagSet("s3", flag.ExitOnError)
	size := fs.String("size", "1GiB", "total size of the gzipped CloudTrail objects")
	perObject := fs.Int("events", 2000, "events per object")
	runs := fs.Int("runs", 3, "runs of each side (the median is reported)")
	dir := fs.String("dir", filepath.Join(os.TempDir(), "osprey-bench"), "working directory (objects, lakes)")
	osprey := fs.String("osprey", "bin/osprey", "the osprey binary to measure")
	moto := fs.String("moto", "moto_server", "the moto_server command (the S3 emulator)")
	fs.Parse(args)
	n, err := parseSize(*size)
	if err != nil {
		return err
	}
	if _, err := os.Stat(*osprey); err != nil {
		return fmt.Errorf("%s: build it first (make build): %w", *osprey, err)
	}
	objDir := filepath.Join(*dir, fmt.Sprintf("cloudtrail-%d-%d", n, *perObject))
	files, events, err := generateTrail(objDir, n, *perObject)
	if err != nil {
		return err
	}
	var total int64
	for _, f := range files {
		if info, err := os.Stat(f); err == nil {
			total += info.Size()
		}
		warm(f)
	}
	fmt.Printf("input: %d gzipped CloudTrail objects in %s, %d events, %s (page cache warmed)\n", len(files), objDir, events, human(total))

	url, stop, err := startMoto(*moto)
	if err != nil {
		return err
	}
	defer stop()
	if err := upload(url, "bench", files); err != nil {
		return err
	}
	fmt.Printf("uploaded to %s (moto_server), bucket bench\n", url)

	env := append(os.Environ(), "AWS_ACCESS_KEY_ID=bench", "AWS_SECRET_ACCESS_KEY=bench", "AWS_EC2_METADATA_DISABLED=true")
	var local, remote []result
	for i := range *runs {
		lakeDir := filepath.Join(*dir, "lake-local")
		os.RemoveAll(lakeDir)
		l, err := measureEnv(env, *osprey, append([]string{"ingest", "--lake", lakeDir, "--log-type", "AWS.CloudTrail", "--objects", "--progress", "never", "--quiet"}, files...)...)
		if err != nil {
			return fmt.Errorf("osprey ingest (local): %w", err)
		}
		local = append(local, l)
		lakeDir = filepath.Join(*dir, "lake-s3")
		os.RemoveAll(lakeDir)
		r, err := measureEnv(env, *osprey, "ingest", "--lake", lakeDir, "--log-type", "AWS.CloudTrail", "--endpoint", url, "--path-style",
			"--region", "us-east-1", "--progress", "never", "--quiet", "s3://bench/")
		if err != nil {
			return fmt.Errorf("osprey ingest (s3): %w", err)
		}
		remote = append(remote, r)
		fmt.Printf("run %d: local %6.2fs  s3 %6.2fs\n", i+1, l.elapsed.Seconds(), r.elapsed.Seconds())
	}
	l, r := median(local), median(remote)
	lrs, rrs := float64(events)/l.elapsed.Seconds(), float64(events)/r.elapsed.Seconds()
	fmt.Printf("\n%-46s %12s %10s %10s %12s\n", "", "events/s", "MB/s gz", "seconds", "peak RSS")
	fmt.Printf("%-46s %12.0f %10.1f %10.2f %12s\n", "osprey ingest --objects FILES (local disk)", lrs, float64(total)/1e6/l.elapsed.Seconds(), l.elapsed.Seconds(), human(l.maxRSS))
	fmt.Printf("%-46s %12.0f %10.1f %10.2f %12s\n", "osprey ingest s3://bench/ (moto_server)", rrs, float64(total)/1e6/r.elapsed.Seconds(), r.elapsed.Seconds(), human(r.maxRSS))
	fmt.Printf("\nratio s3/local: %.2f of the local speed (median of %d runs each; target 0.80)\n", rrs/lrs, *runs)
	return nil
}

func measureEnv(env []string, name string, args ...string) (result, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	start := time.Now()
	err := cmd.Run()
	elapsed := time.Since(start)
	var rss int64
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rss = ru.Maxrss << 10
	}
	if err != nil {
		return result{}, err
	}
	return result{elapsed: elapsed, maxRSS: rss}, nil
}

// generateTrail writes gzipped CloudTrail log files ({"Records":[...]}) of perObject events
// until they total size bytes, or reuses those of an earlier run.
func generateTrail(dir string, size int64, perObject int) ([]string, int, error) {
	done := filepath.Join(dir, "DONE")
	if b, err := os.ReadFile(done); err == nil {
		var events int
		fmt.Sscan(string(b), &events)
		files, _ := filepath.Glob(filepath.Join(dir, "*.json.gz"))
		sort.Strings(files)
		return files, events, nil
	}
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, 0, err
	}
	rng := rand.New(rand.NewPCG(7, 11))
	names := []string{"AssumeRole", "GetObject", "PutObject", "DescribeInstances", "ConsoleLogin", "CreateUser", "AttachRolePolicy",
		"GetCallerIdentity", "ListBuckets", "Decrypt", "GenerateDataKey", "RunInstances", "UpdateFunctionCode", "PutBucketPolicy",
		"DeleteTrail", "StopLogging", "CreateAccessKey", "GetSecretValue", "DescribeSecurityGroups", "AuthorizeSecurityGroupIngress"}
	sources := []string{"sts.amazonaws.com", "s3.amazonaws.com", "ec2.amazonaws.com", "signin.amazonaws.com", "iam.amazonaws.com", "kms.amazonaws.com", "lambda.amazonaws.com", "secretsmanager.amazonaws.com"}
	agents := []string{"aws-cli/2.15.30 Python/3.11.8 Linux/6.1.0 exe/x86_64.debian.12", "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#6.1.0 lang/python#3.11.8",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36", "terraform/1.7.5 (+https://www.terraform.io) aws-sdk-go-v2/1.25.3"}
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var files []string
	var written int64
	events := 0
	for i := 0; written < size; i++ {
		var raw bytes.Buffer
		raw.WriteString(`{"Records":[`)
		for j := range perObject {
			if j > 0 {
				raw.WriteByte(',')
			}
			t := start.Add(time.Duration(events) * 150 * time.Millisecond)
			acct := fmt.Sprintf("%012d", 100000000000+rng.IntN(20))
			user := fmt.Sprintf("user-%d", rng.IntN(500))
			name := names[rng.IntN(len(names))]
			fmt.Fprintf(&raw, `{"eventVersion":"1.09","userIdentity":{"type":"AssumedRole","principalId":"AROA%012d:%s","arn":"arn:aws:sts::%s:assumed-role/Admin/%s","accountId":"%s","accessKeyId":"ASIA%016d","sessionContext":{"sessionIssuer":{"type":"Role","principalId":"AROA%012d","arn":"arn:aws:iam::%s:role/Admin","accountId":"%s","userName":"Admin"},"attributes":{"creationDate":"%s","mfaAuthenticated":"false"}}},`,
				rng.IntN(1e9), user, acct, user, acct, rng.Int64N(1e15), rng.IntN(1e9), acct, acct, t.Add(-time.Hour).Format(time.RFC3339))
			fmt.Fprintf(&raw, `"eventTime":"%s","eventSource":"%s","eventName":"%s","awsRegion":"us-east-1","sourceIPAddress":"%d.%d.%d.%d","userAgent":"%s",`,
				t.Format(time.RFC3339), sources[rng.IntN(len(sources))], name, 1+rng.IntN(223), rng.IntN(256), rng.IntN(256), 1+rng.IntN(254), agents[rng.IntN(len(agents))])
			fmt.Fprintf(&raw, `"requestParameters":{"bucketName":"logs-%d","key":"AWSLogs/%s/obj-%d.json","roleArn":"arn:aws:iam::%s:role/app-%d","durationSeconds":3600},"responseElements":null,`,
				rng.IntN(50), acct, rng.IntN(1e6), acct, rng.IntN(30))
			fmt.Fprintf(&raw, `"requestID":"%016X","eventID":"%08x-%04x-4%03x-a%03x-%012x","readOnly":%v,"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"%s","eventCategory":"Management","tlsDetails":{"tlsVersion":"TLSv1.3","cipherSuite":"TLS_AES_128_GCM_SHA256","clientProvidedHostHeader":"%s"}}`,
				rng.Uint64(), rng.Uint32(), rng.IntN(1<<16), rng.IntN(1<<12), rng.IntN(1<<12), rng.Int64N(1<<48), rng.IntN(2) == 0, acct, sources[rng.IntN(len(sources))])
			events++
		}
		raw.WriteString("]}\n")
		path := filepath.Join(dir, fmt.Sprintf("%06d_CloudTrail_us-east-1_%s.json.gz", i, start.Add(time.Duration(events)*150*time.Millisecond).Format("20060102T1504Z")))
		f, err := os.Create(path)
		if err != nil {
			return nil, 0, err
		}
		zw := gzip.NewWriter(f)
		zw.Write(raw.Bytes())
		if err := zw.Close(); err != nil {
			f.Close()
			return nil, 0, err
		}
		info, _ := f.Stat()
		f.Close()
		written += info.Size()
		files = append(files, path)
	}
	if err := os.WriteFile(done, []byte(fmt.Sprint(events)), 0o644); err != nil {
		return nil, 0, err
	}
	return files, events, nil
}

// startMoto starts moto_server on a free loopback port and returns its URL.
func startMoto(bin string) (string, func(), error) {
	url, _, stop, err := startMotoCmd(bin)
	return url, stop, err
}

// startMotoCmd is startMoto that also returns the server's process.
func startMotoCmd(bin string) (string, *exec.Cmd, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-H", "127.0.0.1", "-p", fmt.Sprint(port))
	out, err := cmd.StderrPipe()
	if err != nil {
		cancel()
		return "", nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		cancel()
		return "", nil, nil, fmt.Errorf("start %s (pip install 'moto[server]'): %w", bin, err)
	}
	stop := func() { cancel(); cmd.Wait() }
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "Running on") {
			go func() {
				for sc.Scan() {
				}
			}()
			return fmt.Sprintf("http://127.0.0.1:%d", port), cmd, stop, nil
		}
	}
	stop()
	return "", nil, nil, fmt.Errorf("%s exited before listening", bin)
}

func upload(url, bucket string, files []string) error {
	c := s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(url), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider("bench", "bench", "")})
	ctx := context.Background()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		return err
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("AWSLogs/" + filepath.Base(f)), Body: bytes.NewReader(b)}); err != nil {
			return fmt.Errorf("upload %s: %w", f, err)
		}
	}
	return nil
}
