// Package awsx builds AWS clients the way every part of osprey reaches AWS (or an
// S3-compatible store): the SDK's default configuration, as the AWS CLI reads it (environment
// variables such as AWS_REGION, AWS_ENDPOINT_URL_S3 and the credentials, shared config and
// credentials files, profiles, instance and task roles), with osprey's options on top: a
// region, an endpoint, path-style addressing and a role to assume.
package awsx

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// AWS says how to reach AWS (or an S3-compatible store) and with which credentials.
type AWS struct {
	Region string
	// Endpoint, when set, replaces the AWS endpoints of the clients built (MinIO, moto,
	// LocalStack). Without it, the SDK's own variables (AWS_ENDPOINT_URL_S3, ...) apply.
	Endpoint string
	// PathStyle addresses buckets as endpoint/bucket rather than bucket.endpoint.
	PathStyle bool
	// RoleARN, when set, is assumed (with ExternalID) over the default credential chain.
	RoleARN    string
	ExternalID string
}

// Config loads the SDK's default configuration with the region and the role.
func (a AWS) Config(ctx context.Context) (aws.Config, error) {
	opts := []func(*awsconfig.LoadOptions) error{}
	if a.Region != "" {
		opts = append(opts, awsconfig.WithRegion(a.Region))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("aws configuration: %w", err)
	}
	if a.RoleARN != "" {
		stsClient := sts.NewFromConfig(cfg, func(o *sts.Options) {
			if a.Endpoint != "" {
				o.BaseEndpoint = aws.String(a.Endpoint)
			}
		})
		cfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(stsClient, a.RoleARN, func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = "osprey"
			if a.ExternalID != "" {
				o.ExternalID = aws.String(a.ExternalID)
			}
		}))
	}
	return cfg, nil
}

// S3 returns an S3 client of cfg with the endpoint and addressing. An endpoint set only in
// the environment (AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL) also gets path-style addressing
// when pathStyleForEnv is set: S3-compatible stores on a host and port rarely resolve
// bucket.host names.
func (a AWS) S3(cfg aws.Config, pathStyleForEnv bool) *s3.Client {
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.UsePathStyle = a.PathStyle || pathStyleForEnv && a.Endpoint == "" && EnvEndpoint() != ""
		// S3-compatible stores often send no checksum; the SDK would log each such object.
		o.DisableLogOutputChecksumValidationSkipped = true
		if a.Endpoint != "" {
			o.BaseEndpoint = aws.String(a.Endpoint)
		}
	})
}

// EnvEndpoint returns the S3 endpoint the environment sets, if any.
func EnvEndpoint() string {
	if e := os.Getenv("AWS_ENDPOINT_URL_S3"); e != "" {
		return e
	}
	return os.Getenv("AWS_ENDPOINT_URL")
}

// Clients returns S3 and SQS clients: credentials from the SDK's default chain (environment,
// shared files, instance or task role), or an assumed role.
func (a AWS) Clients(ctx context.Context) (*s3.Client, *sqs.Client, error) {
	cfg, err := a.Config(ctx)
	if err != nil {
		return nil, nil, err
	}
	sqsc := sqs.NewFromConfig(cfg, func(o *sqs.Options) {
		if a.Endpoint != "" {
			o.BaseEndpoint = aws.String(a.Endpoint)
		}
	})
	return a.S3(cfg, false), sqsc, nil
}
