// Package config is osprey's configuration file (osprey.yml): the lake, what osprey serve
// listens on, how it flushes, and its sources. Every field has a default, so an empty file (or
// none) is a working local setup: the lake in ./osprey-data and HTTP on 127.0.0.1:8080.
//
//	lake: ./osprey-data          # the lake directory, or s3://bucket/prefix (see below)
//	state: ""                    # a lake in S3: its local directory (WAL, alert state,
//	                             # tokens, cache); default ~/.local/state/osprey/s3/<bucket>/<prefix>
//	lakeS3:                      # a lake in S3: how to reach its bucket, as an S3 source;
//	  region: ""                 # without them, the AWS SDK's standard configuration
//	  endpoint: ""               # (AWS_REGION, AWS_ENDPOINT_URL_S3, credentials, profiles)
//	  pathStyle: false
//	  roleARN: ""
//	  externalID: ""
//	catalog:                     # the lake's Iceberg catalog
//	  type: sqlite               # sqlite (embedded in the lake's directory), postgres, or
//	                             # glue (a lake in S3; what Athena and EMR read)
//	  dsnEnv: OSPREY_CATALOG_DSN # postgres: the variable holding its postgres:// URL (or dsn:)
//	  catalogID: ""              # glue: the catalog's account, when not the caller's
//	  uri: ""                    # rest (Polaris, Nessie, Lakekeeper, S3 Tables): its base URI
//	  warehouse: ""              # rest: the server's warehouse (Polaris's catalog name)
//	  credentialEnv: ""          # rest: a variable holding an OAuth2 client_id:secret
//	  tokenEnv: ""               # rest: or one holding a bearer token
//	  sigV4: ""                  # rest: sign for this AWS service (s3tables, glue)
//	listen: 127.0.0.1:8080       # HTTP sources (/http/<id>), /v1/query, /healthz and /metrics
//	http:                        # how the HTTP server treats its clients (see HTTP)
//	  readHeaderTimeout: 10s     # to send a request's headers
//	  readTimeout: 1m            # to send a whole request, body included
//	  writeTimeout: 2m           # to be answered, from the end of the headers (the query
//	                             # API gives a query its own timeout and a minute more)
//	  idleTimeout: 1m            # a keep-alive connection idle this long is closed
//	  maxConns: 1024             # connections at once; past it the longest idle one is
//	                             # closed, or the new one answered 503
//	  maxSourceRequests: 64      # requests of one HTTP source at once; past it 503
//	  bodyMemory: 512MiB         # request bodies (as sent and decoded) in memory at once,
//	                             # all requests together; past it 503
//	metrics:
//	  auth: none                 # none, or token: GET /metrics needs an API token
//	                             # (Authorization: Bearer, osprey token create)
//	workers: 0                   # parsing workers; 0: one per CPU
//	schemas: ""                  # a directory of custom log schemas
//	flush:
//	  age: 60s                   # records wait at most this long before they are queryable
//	  bytes: 256MiB              # or until this much is waiting
//	  maxBacklog: 1GiB           # past this much not yet parsed, sources answer 429
//	sources:
//	  - id: fluentbit            # the URL path /http/fluentbit; p_source_id of its rows
//	    type: http               # http or syslog
//	    label: Fluent Bit        # p_source_label; default the id
//	    logTypes: [Linux.Auditd] # the candidates each record is classified against
//	    stream: json             # auto, lines, json, jsonarray or cloudwatch (http)
//	    envelope: ""             # jsonarray: the field holding the array, such as Records
//	    auth:                    # http: none, header, hmac, bearer or basic
//	      type: header
//	      header: x-sender-header
//	      secretEnv: FLUENTBIT_SECRET   # or secret: (inline), secretFile: (a file) or
//	                                    # secretSHA256: (hex SHA-256; not for hmac)
//	      # hmac only: a header with the request's Unix time; the signature is then over
//	      # "<timestamp>.<body>", and a request more than window away from now gets 401
//	      timestampHeader: ""
//	      window: 5m
//	    maxBody: 10MiB           # http: request body limit (413 past it)
//	    maxRecords: 100000       # http: records per request (413 past it)
//	    dropOffAlarm: 24h        # alarm when no event comes for this long; 0 or off: never;
//	                             # default 24h, off for a source of Panther.Audit only
//	  - id: syslog
//	    type: syslog
//	    listen: [udp://127.0.0.1:5514, tcp://127.0.0.1:5514]
//	    logTypes: [Syslog.RFC5424, Syslog.RFC3164]
//	    syslog:                  # limits, each optional
//	      maxMessage: 64KiB      # longer messages are cut to it (counted, logged); 480B to 16MiB
//	      maxConnections: 1024   # TCP connections open at once; past it new ones are closed
//	      idleTimeout: 5m        # a TCP connection that sends nothing for so long is closed
//	  - id: trail                # S3 objects named by an SQS queue's notifications
//	    type: s3
//	    logTypes: [AWS.CloudTrail]  # of keys no prefix rule matches
//	    s3:
//	      bucket: my-trail-bucket
//	      prefix: AWSLogs/         # only keys under it (optional)
//	      prefixes:                # the longest matching prefix wins
//	        - {prefix: AWSLogs/o-123/app/, logTypes: [Panther.Audit]}
//	        - {prefix: AWSLogs/123456789012/CloudTrail-Digest/, exclude: true}
//	      queue: https://sqs.us-east-1.amazonaws.com/123456789012/osprey  # S3 events (direct or
//	                               # through SNS) or CloudTrail's SNS notifications
//	      region: us-east-1
//	      endpoint: ""             # an S3-compatible store (and its SQS), such as http://127.0.0.1:9000
//	      pathStyle: false         # endpoint/bucket/key addressing (most S3-compatible stores)
//	      roleARN: ""              # assumed over the SDK's default credential chain
//	      externalID: ""
//	      kmsKey: ""               # the SSE-KMS key of the objects: S3 decrypts on read if the
//	                               # credentials may kms:Decrypt with it (named in errors)
//	      maxAttempts: 5           # tries of an object before it goes to source_errors
//	      visibility: 5m           # how long a message is hidden, extended while it is read
//	  - id: rapid7                 # Rapid7 InsightIDR audit logs, pulled
//	    type: rapid7               # logTypes default to [Rapid7.AuditLog]
//	    rapid7:
//	      region: us3              # the data storage region
//	      apiKeyEnv: RAPID7_API_KEY   # or apiKeyFile: a file; never inline
//	      logIDs: []               # the audit logs; default those named *audit*
//	      interval: 1m             # between polls
//	      delay: 1m                # how far behind now reading stops (late indexing)
//	      since: 1h                # how far back the first poll reads
//	detections:
//	  dirs: [./detections]       # rules, scheduled queries and scheduled rules (osprey detect)
//	  builtin: false             # also the built-in detection pack (osprey detect list)
//	  maxDelay: 250ms            # an event waits at most this long before rules see it
//	destinations:                # where alerts go; see package dest for every key
//	  - id: alerts-file
//	    type: file               # file, stdout, webhook or slack
//	    path: /var/log/osprey/alerts.jsonl
//	  - id: soar
//	    type: webhook
//	    url: https://soar.example.com/hooks/osprey
//	    secretEnv: SOAR_HMAC_KEY  # signs each request: X-Osprey-Signature
//
// Secrets are never logged, nor written back in plain text. Sizes take KiB, MiB, GiB (or KB,
// MB, GB, or plain bytes); durations take Go's units (s, m, h) and d for days.
//
// Sources added with osprey source add are kept in the lake, in _osprey/sources.yml (mode
// 0600), which keeps no secret in plain text: a header secret, bearer token or basic password
// given inline is stored as its SHA-256 (secretSHA256) and requests are checked by comparing
// hashes in constant time; an HMAC key, which signs and cannot be hashed, stays outside the
// lake, named by secretEnv or secretFile (a file of mode 0600), and an inline one is refused
// (ErrHMACKeyInLake). A file written by an older osprey with plain secrets still loads; the
// next write hashes them, and refuses while an hmac source still holds its key inline (re-add
// that source with --secret-env or --secret-file, or remove it). The file and the lake's
// tokens (tokens.go) are replaced durably under a lock (package durable).
package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/ospreyhq/osprey/durable"
	"github.com/ospreyhq/osprey/internal/awsx"
	"github.com/ospreyhq/osprey/lake"
	"github.com/ospreyhq/osprey/lake/iceberg"
	"github.com/ospreyhq/osprey/lake/objstore"
	"github.com/ospreyhq/osprey/units"
)

// Config is osprey's configuration.
type Config struct {
	Lake string `yaml:"lake"`
	// State is the local directory of a lake in S3 (see lake.Options.Dir).
	State string `yaml:"state,omitempty"`
	// LakeS3 says how to reach the bucket of a lake in S3.
	LakeS3 LakeS3 `yaml:"lakeS3,omitempty"`
	// Catalog is the lake's Iceberg catalog.
	Catalog Catalog `yaml:"catalog,omitempty"`

	Listen  string   `yaml:"listen,omitempty"`
	Workers int      `yaml:"workers"`
	Schemas string   `yaml:"schemas"`
	Flush   Flush    `yaml:"flush"`
	Sources []Source `yaml:"sources"`
	// HTTP is how osprey serve's HTTP server treats its clients.
	HTTP HTTP `yaml:"http"`
	// Metrics is who may read GET /metrics.
	Metrics Metrics `yaml:"metrics"`
	// Detections are the rules osprey serve runs on the events it ingests, and its schedules.
	Detections Detections `yaml:"detections"`
	// Destinations receive alerts (package dest sends them).
	Destinations []Destination `yaml:"destinations"`
	// Retention is how long the lake keeps rows, by database or table ("panther_logs",
	// "panther_logs.aws_cloudtrail"): osprey serve (hourly) and osprey lake expire drop the
	// data files whose every row's p_event_time is older. A table's own entry wins over its
	// database's; without either, rows are kept forever (the default: an audit lake is often
	// kept for years, and Panther's own default for audit logs is five years).
	Retention map[string]Duration `yaml:"retention"`
}

// LakeS3 says how to reach the bucket of a lake in S3, as an S3 source's options do.
type LakeS3 struct {
	Region     string `yaml:"region,omitempty"`
	Endpoint   string `yaml:"endpoint,omitempty"`
	PathStyle  bool   `yaml:"pathStyle,omitempty"`
	RoleARN    string `yaml:"roleARN,omitempty"`
	ExternalID string `yaml:"externalID,omitempty"`
}

// Catalog is a lake's Iceberg catalog: sqlite (the default, in the lake's directory: one
// writer machine), postgres (several processes or machines on one lake), glue (a lake in S3,
// read by Athena and EMR; region and role those of lakeS3, the endpoint the AWS SDK's) or
// rest (an Iceberg REST catalog: Polaris, Nessie, Lakekeeper, S3 Tables).
type Catalog struct {
	Type string `yaml:"type,omitempty"`
	// CatalogID is a Glue catalog's account, when not the caller's.
	CatalogID string `yaml:"catalogID,omitempty"`
	// URI, Warehouse, CredentialEnv, TokenEnv and SigV4 reach an Iceberg REST catalog (see
	// iceberg.RESTOptions); the secrets are read from the variables named.
	URI           string `yaml:"uri,omitempty"`
	Warehouse     string `yaml:"warehouse,omitempty"`
	CredentialEnv string `yaml:"credentialEnv,omitempty"`
	TokenEnv      string `yaml:"tokenEnv,omitempty"`
	SigV4         string `yaml:"sigV4,omitempty"`
	// DSN is the PostgreSQL database (postgres://user@host:5432/db); DSNEnv names a variable
	// that holds it, to keep a password out of the file.
	DSN    string `yaml:"dsn,omitempty"`
	DSNEnv string `yaml:"dsnEnv,omitempty"`
}

// LakeOptions returns where the configured lake is, for lake.OpenWith.
func (c *Config) LakeOptions() (lake.Options, error) {
	o := lake.Options{Dir: c.Lake,
		AWS: awsx.AWS{Region: c.LakeS3.Region, Endpoint: c.LakeS3.Endpoint, PathStyle: c.LakeS3.PathStyle, RoleARN: c.LakeS3.RoleARN, ExternalID: c.LakeS3.ExternalID}}
	if objstore.IsRemote(c.Lake) {
		o.Location, o.Dir = c.Lake, c.State
		if o.Dir == "" {
			dir, err := lake.DefaultStateDir(c.Lake)
			if err != nil {
				return o, err
			}
			o.Dir = dir
		}
	}
	switch c.Catalog.Type {
	case "", string(iceberg.SQLite):
	case string(iceberg.Postgres):
		o.Catalog, o.CatalogDSN = iceberg.Postgres, c.Catalog.DSN
		if c.Catalog.DSNEnv != "" {
			o.CatalogDSN = os.Getenv(c.Catalog.DSNEnv)
		}
		if o.CatalogDSN == "" {
			return o, fmt.Errorf("catalog: type postgres needs a dsn (or dsnEnv naming a variable that is set)")
		}
	case string(iceberg.Glue):
		if o.Location == "" {
			return o, errors.New("catalog: type glue needs the lake in S3 (lake: s3://bucket/prefix)")
		}
		o.Catalog, o.GlueCatalogID = iceberg.Glue, c.Catalog.CatalogID
	case string(iceberg.REST):
		if o.Location == "" {
			return o, errors.New("catalog: type rest needs the lake in S3 (lake: s3://bucket/prefix)")
		}
		if c.Catalog.URI == "" {
			return o, errors.New("catalog: type rest needs its uri")
		}
		o.Catalog = iceberg.REST
		o.REST = iceberg.RESTOptions{URI: c.Catalog.URI, Warehouse: c.Catalog.Warehouse, SigV4: c.Catalog.SigV4}
		if c.Catalog.CredentialEnv != "" {
			o.REST.Credential = os.Getenv(c.Catalog.CredentialEnv)
		}
		if c.Catalog.TokenEnv != "" {
			o.REST.Token = os.Getenv(c.Catalog.TokenEnv)
		}
	default:
		return o, fmt.Errorf("catalog: unknown type %q (want sqlite, postgres, glue or rest)", c.Catalog.Type)
	}
	return o, nil
}

// ValidateRetention checks a retention section: its keys are databases or tables of the lake,
// its durations at least an hour (or 0, forever).
func ValidateRetention(r map[string]Duration) error {
	for key, d := range r {
		db, table, _ := strings.Cut(key, ".")
		if lake.CheckName(db) != nil || table != "" && lake.CheckName(table) != nil || !slices.Contains(lake.Databases, db) {
			return fmt.Errorf("retention: %q is not a database or table of the lake (want one of %s, or database.table)", key, strings.Join(lake.Databases, ", "))
		}
		if d < 0 || d > 0 && time.Duration(d) < time.Hour {
			return fmt.Errorf("retention of %s: %s is less than an hour", key, time.Duration(d))
		}
	}
	return nil
}

// RetentionOf returns how long rows of db.table are kept; 0 means forever.
func (c *Config) RetentionOf(db, table string) time.Duration {
	if d, ok := c.Retention[db+"."+table]; ok {
		return time.Duration(d)
	}
	return time.Duration(c.Retention[db])
}

// HTTP bounds what clients of osprey serve's HTTP server may hold: time, connections and
// memory. The defaults suit log shippers on a network of ordinary speed: a 10 MiB body must
// arrive within readTimeout (at 175 KB/s or more), and a client that sends its headers or
// body slowly, or holds connections idle, is cut off rather than left to take file
// descriptors and memory.
type HTTP struct {
	// ReadHeaderTimeout is how long a client has to send a request's headers.
	ReadHeaderTimeout Duration `yaml:"readHeaderTimeout"`
	// ReadTimeout is how long a client has to send a whole request, body included; past it
	// the request gets 408 and its connection is closed.
	ReadTimeout Duration `yaml:"readTimeout"`
	// WriteTimeout is how long answering may take, counted from the end of the headers (so
	// it includes the body and the handling). POST /v1/query has a query's own timeout and
	// a minute more.
	WriteTimeout Duration `yaml:"writeTimeout"`
	// IdleTimeout is how long a keep-alive connection may wait for its next request.
	IdleTimeout Duration `yaml:"idleTimeout"`
	// MaxConns caps the connections open at once. A connection past it closes the one
	// idle the longest, or when none is idle is answered 503 and closed.
	MaxConns int `yaml:"maxConns"`
	// MaxSourceRequests caps the requests of one HTTP source served at once; past it, 503
	// with Retry-After.
	MaxSourceRequests int `yaml:"maxSourceRequests"`
	// BodyMemory caps the bytes of request bodies, as sent and decoded, held in memory by
	// all requests at once (a gzip bomb takes its share only as it expands); past it, 503
	// with Retry-After. Every HTTP source's largest request must fit in it.
	BodyMemory Size `yaml:"bodyMemory"`
}

// Defaults of HTTP.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = time.Minute
	DefaultWriteTimeout      = 2 * time.Minute
	DefaultIdleTimeout       = time.Minute
	DefaultMaxConns          = 1024
	DefaultMaxSourceRequests = 64
	DefaultBodyMemory        = 512 << 20
)

// Metrics says who may read GET /metrics.
type Metrics struct {
	// Auth is none (the default: anyone who can reach the listen address, as Prometheus
	// scrapers expect, the address being loopback by default) or token (an API token of
	// osprey token create, in Authorization: Bearer).
	Auth string `yaml:"auth"`
}

// Metrics auth values.
const (
	MetricsAuthNone  = "none"
	MetricsAuthToken = "token"
)

// Validate checks the HTTP settings and fills the defaults of those not set.
func (h *HTTP) Validate() error {
	for _, f := range []struct {
		v   *Duration
		def time.Duration
	}{
		{&h.ReadHeaderTimeout, DefaultReadHeaderTimeout}, {&h.ReadTimeout, DefaultReadTimeout},
		{&h.WriteTimeout, DefaultWriteTimeout}, {&h.IdleTimeout, DefaultIdleTimeout},
	} {
		if *f.v < 0 {
			return errors.New("http: timeouts must not be negative")
		}
		if *f.v == 0 {
			*f.v = Duration(f.def)
		}
	}
	if h.MaxConns < 0 || h.MaxSourceRequests < 0 || h.BodyMemory < 0 {
		return errors.New("http: maxConns, maxSourceRequests and bodyMemory must not be negative")
	}
	if h.MaxConns == 0 {
		h.MaxConns = DefaultMaxConns
	}
	if h.MaxSourceRequests == 0 {
		h.MaxSourceRequests = DefaultMaxSourceRequests
	}
	if h.BodyMemory == 0 {
		h.BodyMemory = DefaultBodyMemory
	}
	if h.ReadHeaderTimeout > h.ReadTimeout {
		return errors.New("http: readHeaderTimeout must not be longer than readTimeout (which includes the headers)")
	}
	if h.WriteTimeout < h.ReadTimeout {
		return errors.New("http: writeTimeout must be at least readTimeout: a request is answered after its body is read")
	}
	return nil
}

// Detections says which detection specs osprey serve loads and how soon rules see events.
type Detections struct {
	// Dirs are directories of detection specs (rules, scheduled queries, scheduled rules).
	Dirs []string `yaml:"dirs"`
	// Builtin loads osprey's built-in detection pack too.
	Builtin bool `yaml:"builtin"`
	// MaxDelay is how long an event waits at most before streaming rules see it; default 250ms.
	MaxDelay Duration `yaml:"maxDelay"`
}

// DefaultMaxDelay is the default of Detections.MaxDelay.
const DefaultMaxDelay = 250 * time.Millisecond

// Flush is osprey serve's flush policy.
type Flush struct {
	Age        Duration `yaml:"age"`
	Bytes      Size     `yaml:"bytes"`
	MaxBacklog Size     `yaml:"maxBacklog"`
}

// Source types.
const (
	SourceHTTP   = "http"
	SourceSyslog = "syslog"
	SourceS3     = "s3"
	SourceRapid7 = "rapid7"
)

// Source is a source of records.
type Source struct {
	ID           string    `yaml:"id"`
	Type         string    `yaml:"type"`
	Label        string    `yaml:"label,omitempty"`
	LogTypes     []string  `yaml:"logTypes"`
	Stream       string    `yaml:"stream,omitempty"`
	Envelope     string    `yaml:"envelope,omitempty"`
	Auth         Auth      `yaml:"auth,omitempty"`
	MaxBody      Size      `yaml:"maxBody,omitempty"`
	MaxRecords   int       `yaml:"maxRecords,omitempty"`
	Listen       Strings   `yaml:"listen,omitempty"`
	DropOffAlarm *Duration `yaml:"dropOffAlarm,omitempty"` // nil: the default (see AlarmAfter)
	S3           *S3       `yaml:"s3,omitempty"`
	Rapid7       *Rapid7   `yaml:"rapid7,omitempty"`
	Syslog       *Syslog   `yaml:"syslog,omitempty"`
}

// Syslog holds a syslog source's limits, which bound what a sender can make osprey hold;
// zero (or no syslog settings) means the default. See Limits.
type Syslog struct {
	// MaxMessage is the longest message kept whole: a longer one is kept cut to it, the rest
	// of its bytes dropped as they are read, counted and logged.
	MaxMessage Size `yaml:"maxMessage,omitempty"`
	// MaxConnections caps the TCP connections open at once (over the source's addresses);
	// past it a new connection is closed at once.
	MaxConnections int `yaml:"maxConnections,omitempty"`
	// IdleTimeout closes a TCP connection that sends nothing for so long.
	IdleTimeout Duration `yaml:"idleTimeout,omitempty"`
}

// Defaults and bounds of Syslog.
const (
	DefaultSyslogMaxMessage     = 64 << 10
	DefaultSyslogMaxConnections = 1024
	DefaultSyslogIdleTimeout    = 5 * time.Minute
	// MinSyslogMaxMessage is the least RFC 5424 lets a receiver accept (section 6.1).
	MinSyslogMaxMessage = 480
	// MaxSyslogMaxMessage is the most: each TCP connection may hold a message this long.
	MaxSyslogMaxMessage = 16 << 20
)

// Limits returns the limits with the defaults filled in (all of them when s is nil).
func (s *Syslog) Limits() Syslog {
	var l Syslog
	if s != nil {
		l = *s
	}
	if l.MaxMessage == 0 {
		l.MaxMessage = DefaultSyslogMaxMessage
	}
	if l.MaxConnections == 0 {
		l.MaxConnections = DefaultSyslogMaxConnections
	}
	if l.IdleTimeout == 0 {
		l.IdleTimeout = Duration(DefaultSyslogIdleTimeout)
	}
	return l
}

func (s *Syslog) validate(id string) error {
	switch {
	case s == nil:
		return nil
	case s.MaxMessage != 0 && (s.MaxMessage < MinSyslogMaxMessage || s.MaxMessage > MaxSyslogMaxMessage):
		return fmt.Errorf("source %s: syslog.maxMessage %d: want %d bytes to 16MiB", id, s.MaxMessage, MinSyslogMaxMessage)
	case s.MaxConnections < 0:
		return fmt.Errorf("source %s: syslog.maxConnections must not be negative", id)
	case s.IdleTimeout != 0 && time.Duration(s.IdleTimeout) < time.Second:
		return fmt.Errorf("source %s: syslog.idleTimeout must be at least 1s", id)
	}
	return nil
}

// S3 is an S3 source: a bucket whose new objects an SQS queue's notifications name.
type S3 struct {
	Bucket      string     `yaml:"bucket"`
	Prefix      string     `yaml:"prefix,omitempty"`
	Prefixes    []S3Prefix `yaml:"prefixes,omitempty"`
	Queue       string     `yaml:"queue,omitempty"`
	Region      string     `yaml:"region,omitempty"`
	Endpoint    string     `yaml:"endpoint,omitempty"`
	PathStyle   bool       `yaml:"pathStyle,omitempty"`
	RoleARN     string     `yaml:"roleARN,omitempty"`
	ExternalID  string     `yaml:"externalID,omitempty"`
	KMSKey      string     `yaml:"kmsKey,omitempty"`
	MaxAttempts int        `yaml:"maxAttempts,omitempty"`
	Visibility  Duration   `yaml:"visibility,omitempty"`
}

// S3Prefix routes the keys under a prefix: to its log types, or nowhere (exclude).
type S3Prefix struct {
	Prefix   string   `yaml:"prefix"`
	LogTypes []string `yaml:"logTypes,omitempty"`
	Exclude  bool     `yaml:"exclude,omitempty"`
}

// Rapid7 is a Rapid7 InsightIDR audit log puller.
type Rapid7 struct {
	Region     string   `yaml:"region"`
	APIKeyEnv  string   `yaml:"apiKeyEnv,omitempty"`
	APIKeyFile string   `yaml:"apiKeyFile,omitempty"`
	LogIDs     []string `yaml:"logIDs,omitempty"`
	Interval   Duration `yaml:"interval,omitempty"`
	Delay      Duration `yaml:"delay,omitempty"`
	Since      Duration `yaml:"since,omitempty"`
	// BaseURL replaces https://<region>.api.insight.rapid7.com (a proxy, or a test server).
	BaseURL string `yaml:"baseURL,omitempty"`
}

// APIKey returns the Rapid7 API key, from its environment variable or file.
func (r *Rapid7) APIKey() (string, error) {
	a := Auth{SecretEnv: r.APIKeyEnv, SecretFile: r.APIKeyFile}
	v, err := a.SecretValue()
	if err != nil {
		return "", fmt.Errorf("rapid7 api key: %w", err)
	}
	return v, nil
}

// IsPull reports whether the source pulls (s3, rapid7) rather than receives.
func (s *Source) IsPull() bool { return s.Type == SourceS3 || s.Type == SourceRapid7 }

// DefaultDropOffAlarm is how long a source may go without events before an alarm, unless it
// says otherwise.
const DefaultDropOffAlarm = 24 * time.Hour

// AlarmAfter returns how long the source may go without events before a drop-off alarm, or 0
// for never. The default is DefaultDropOffAlarm, except for a source of Panther's audit log
// only, which is quiet whenever nobody works in Panther.
func (s *Source) AlarmAfter() time.Duration {
	if s.DropOffAlarm != nil {
		return time.Duration(*s.DropOffAlarm)
	}
	for _, lt := range s.LogTypes {
		if lt != "Panther.Audit" {
			return DefaultDropOffAlarm
		}
	}
	return 0
}

// Auth is an HTTP source's authentication.
type Auth struct {
	Type       string `yaml:"type,omitempty"`
	Header     string `yaml:"header,omitempty"`
	Username   string `yaml:"username,omitempty"`
	Encoding   string `yaml:"encoding,omitempty"`
	Secret     string `yaml:"secret,omitempty"`
	SecretEnv  string `yaml:"secretEnv,omitempty"`
	SecretFile string `yaml:"secretFile,omitempty"`
	// SecretSHA256 is the hex SHA-256 of a header secret, bearer token or basic password: how
	// the lake's sources file keeps a secret given inline (see SaveLakeSources).
	SecretSHA256 string `yaml:"secretSHA256,omitempty"`
	// TimestampHeader (hmac) names a header with the request's Unix time, signed with the
	// body as "<timestamp>.<body>" and checked against Window (default 5m).
	TimestampHeader string   `yaml:"timestampHeader,omitempty"`
	Window          Duration `yaml:"window,omitempty"`
}

// Defaults.
const (
	DefaultLake   = "osprey-data"
	DefaultListen = "127.0.0.1:8080"
)

// Default returns the configuration of an empty file.
func Default() *Config {
	return &Config{
		Lake:   DefaultLake,
		Listen: DefaultListen,
		Flush:  Flush{Age: Duration(60 * time.Second), Bytes: 256 << 20, MaxBacklog: 1 << 30},
		HTTP: HTTP{ReadHeaderTimeout: Duration(DefaultReadHeaderTimeout), ReadTimeout: Duration(DefaultReadTimeout),
			WriteTimeout: Duration(DefaultWriteTimeout), IdleTimeout: Duration(DefaultIdleTimeout),
			MaxConns: DefaultMaxConns, MaxSourceRequests: DefaultMaxSourceRequests, BodyMemory: DefaultBodyMemory},
		Metrics: Metrics{Auth: MetricsAuthNone},

		Detections: Detections{MaxDelay: Duration(DefaultMaxDelay)},
	}
}

// Load reads a configuration file over the defaults and checks it. Errors name the file and,
// where the YAML library knows it, the line.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data, path)
}

// Parse reads a configuration (named name in errors) over the defaults and checks it.
func Parse(data []byte, name string) (*Config, error) {
	c := Default()
	if len(strings.TrimSpace(string(data))) == 0 {
		return c, c.Validate()
	}
	if err := yaml.UnmarshalWithOptions(data, c, yaml.Strict()); err != nil {
		return nil, fmt.Errorf("%s: %s", name, yaml.FormatError(err, false, false))
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return c, nil
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// ValidID reports whether s may be the id of a source or destination: 1 to 64 letters, digits,
// '_', '.' or '-', starting with a letter or digit. Such an id is safe as a file name.
func ValidID(s string) bool { return idPattern.MatchString(s) }

// Validate checks the configuration and fills the defaults of its sources.
func (c *Config) Validate() error {
	if err := ValidateRetention(c.Retention); err != nil {
		return err
	}
	if c.Lake == "" {
		c.Lake = DefaultLake
	}
	if objstore.IsRemote(c.Lake) {
		if _, _, err := objstore.Parse(c.Lake); err != nil {
			return fmt.Errorf("lake: %w", err)
		}
	}
	if c.State != "" && !objstore.IsRemote(c.Lake) {
		return errors.New("state: only a lake in S3 has a separate local directory (the lake's directory is its state)")
	}
	switch c.Catalog.Type {
	case "", "sqlite", "postgres", "glue", "rest":
	default:
		return fmt.Errorf("catalog: unknown type %q (want sqlite, postgres, glue or rest)", c.Catalog.Type)
	}
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.Workers < 0 {
		return errors.New("workers must not be negative")
	}
	if c.Flush.Age <= 0 || c.Flush.Bytes <= 0 || c.Flush.MaxBacklog <= 0 {
		return errors.New("flush age, bytes and maxBacklog must be positive")
	}
	if err := c.HTTP.Validate(); err != nil {
		return err
	}
	switch c.Metrics.Auth {
	case "":
		c.Metrics.Auth = MetricsAuthNone
	case MetricsAuthNone, MetricsAuthToken:
	default:
		return fmt.Errorf("metrics: auth %q (want none or token)", c.Metrics.Auth)
	}
	seen := map[string]bool{}
	for i := range c.Sources {
		s := &c.Sources[i]
		if err := s.Validate(); err != nil {
			return fmt.Errorf("sources[%d]: %w", i, err)
		}
		if seen[s.ID] {
			return fmt.Errorf("sources[%d]: id %q is used twice", i, s.ID)
		}
		seen[s.ID] = true
	}
	if c.Detections.MaxDelay < 0 {
		return errors.New("detections: maxDelay must not be negative")
	}
	if c.Detections.MaxDelay == 0 {
		c.Detections.MaxDelay = Duration(DefaultMaxDelay)
	}
	for i, d := range c.Detections.Dirs {
		if d == "" {
			return fmt.Errorf("detections: dirs[%d] is empty", i)
		}
	}
	if err := validateDestinations(c.Destinations); err != nil {
		return err
	}
	return nil
}

// Validate checks a source and fills its defaults.
func (s *Source) Validate() error {
	if !idPattern.MatchString(s.ID) {
		return fmt.Errorf("id %q: want 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit", s.ID)
	}
	if s.Label == "" {
		s.Label = s.ID
	}
	if s.Type == SourceRapid7 && len(s.LogTypes) == 0 {
		s.LogTypes = []string{"Rapid7.AuditLog"}
	}
	if len(s.LogTypes) == 0 {
		return fmt.Errorf("source %s: logTypes is empty", s.ID)
	}
	if s.S3 != nil && s.Type != SourceS3 || s.Rapid7 != nil && s.Type != SourceRapid7 {
		return fmt.Errorf("source %s: s3 settings are for s3 sources, rapid7 settings for rapid7 sources", s.ID)
	}
	if s.Syslog != nil && s.Type != SourceSyslog {
		return fmt.Errorf("source %s: syslog settings are for syslog sources", s.ID)
	}
	if s.IsPull() && (s.Auth != (Auth{}) || s.Stream != "" || s.Envelope != "" || s.MaxBody != 0 || len(s.Listen) > 0) {
		return fmt.Errorf("source %s: auth, stream, envelope, maxBody and listen are for http and syslog sources", s.ID)
	}
	if s.MaxBody < 0 || s.MaxRecords < 0 || (s.DropOffAlarm != nil && *s.DropOffAlarm < 0) {
		return fmt.Errorf("source %s: limits must not be negative", s.ID)
	}
	switch s.Type {
	case SourceHTTP:
		if len(s.Listen) > 0 {
			return fmt.Errorf("source %s: an http source is served on the main listen address; listen is for syslog", s.ID)
		}
		switch s.Stream {
		case "", "auto", "lines", "json", "jsonarray", "cloudwatch":
		default:
			return fmt.Errorf("source %s: stream %q (want auto, lines, json, jsonarray or cloudwatch)", s.ID, s.Stream)
		}
		if s.Envelope != "" && s.Stream != "jsonarray" {
			return fmt.Errorf("source %s: envelope is for the jsonarray stream", s.ID)
		}
		n := 0
		for _, v := range []string{s.Auth.Secret, s.Auth.SecretEnv, s.Auth.SecretFile, s.Auth.SecretSHA256} {
			if v != "" {
				n++
			}
		}
		if n > 1 {
			return fmt.Errorf("source %s: give one of secret, secretEnv, secretFile and secretSHA256", s.ID)
		}
		if h := s.Auth.SecretSHA256; h != "" {
			if b, err := hex.DecodeString(h); err != nil || len(b) != sha256.Size {
				return fmt.Errorf("source %s: secretSHA256: want 64 hex digits", s.ID)
			}
			if !s.Auth.hashable() {
				return fmt.Errorf("source %s: auth %s cannot check a secret's hash; give its secret (secretEnv or secretFile)", s.ID, s.Auth.Type)
			}
		}
		if (s.Auth.TimestampHeader != "" || s.Auth.Window != 0) && s.Auth.Type != "hmac" {
			return fmt.Errorf("source %s: auth timestampHeader and window are for auth hmac", s.ID)
		}
		if s.Auth.Window < 0 || s.Auth.Window != 0 && s.Auth.TimestampHeader == "" {
			return fmt.Errorf("source %s: auth window: want a positive duration, with timestampHeader", s.ID)
		}
	case SourceSyslog:
		if len(s.Listen) == 0 {
			return fmt.Errorf("source %s: a syslog source needs listen addresses (udp://host:port or tcp://host:port)", s.ID)
		}
		for _, l := range s.Listen {
			if !strings.HasPrefix(l, "udp://") && !strings.HasPrefix(l, "tcp://") {
				return fmt.Errorf("source %s: listen %q: want udp://host:port or tcp://host:port", s.ID, l)
			}
		}
		if s.Auth != (Auth{}) || s.Stream != "" || s.Envelope != "" || s.MaxBody != 0 {
			return fmt.Errorf("source %s: auth, stream, envelope and maxBody are for http sources", s.ID)
		}
		return s.Syslog.validate(s.ID)
	case SourceS3:
		return s.S3.validate(s.ID)
	case SourceRapid7:
		r := s.Rapid7
		switch {
		case r == nil || r.Region == "" && r.BaseURL == "":
			return fmt.Errorf("source %s: a rapid7 source needs rapid7.region (such as us3)", s.ID)
		case (r.APIKeyEnv == "") == (r.APIKeyFile == ""):
			return fmt.Errorf("source %s: give one of rapid7.apiKeyEnv and rapid7.apiKeyFile (the key is never written in the file)", s.ID)
		case r.Interval < 0 || r.Delay < 0 || r.Since < 0:
			return fmt.Errorf("source %s: rapid7 durations must not be negative", s.ID)
		}
		if !regionPattern.MatchString(r.Region) && r.BaseURL == "" {
			return fmt.Errorf("source %s: rapid7 region %q: want a region code such as us, us3 or eu", s.ID, r.Region)
		}
	default:
		return fmt.Errorf("source %s: type %q (want http, syslog, s3 or rapid7)", s.ID, s.Type)
	}
	return nil
}

var regionPattern = regexp.MustCompile(`^[a-z]{2}[0-9]?$`)

func (c *S3) validate(id string) error {
	switch {
	case c == nil || c.Bucket == "":
		return fmt.Errorf("source %s: an s3 source needs s3.bucket", id)
	case strings.HasPrefix(c.Prefix, "/"):
		return fmt.Errorf("source %s: s3.prefix %q must not start with /", id, c.Prefix)
	case c.MaxAttempts < 0 || c.Visibility < 0:
		return fmt.Errorf("source %s: s3 maxAttempts and visibility must not be negative", id)
	case c.Visibility != 0 && time.Duration(c.Visibility) < 10*time.Second:
		return fmt.Errorf("source %s: s3.visibility must be at least 10s", id)
	}
	seen := map[string]bool{}
	for i, p := range c.Prefixes {
		switch {
		case p.Prefix == "":
			return fmt.Errorf("source %s: s3.prefixes[%d]: prefix is empty", id, i)
		case seen[p.Prefix]:
			return fmt.Errorf("source %s: s3.prefixes[%d]: prefix %q is given twice", id, i, p.Prefix)
		case p.Exclude == (len(p.LogTypes) > 0):
			return fmt.Errorf("source %s: s3.prefixes[%d]: give logTypes or exclude: true", id, i)
		case !strings.HasPrefix(p.Prefix, c.Prefix) && !strings.HasPrefix(c.Prefix, p.Prefix):
			return fmt.Errorf("source %s: s3.prefixes[%d]: %q is outside the prefix filter %q", id, i, p.Prefix, c.Prefix)
		}
		seen[p.Prefix] = true
	}
	return nil
}

// hashable reports whether the method compares the secret a request presents with the
// source's, so that the SHA-256 of the secret is enough to check it: header, bearer and basic.
// An HMAC key signs, and must be known.
func (a Auth) hashable() bool { return a.Type != "hmac" }

// SecretHash returns the SHA-256 of an HTTP source's secret when the source keeps the hash
// only (SecretSHA256), and zero otherwise.
func (a Auth) SecretHash() [sha256.Size]byte {
	var h [sha256.Size]byte
	if b, err := hex.DecodeString(a.SecretSHA256); err == nil && len(b) == len(h) {
		copy(h[:], b)
	}
	return h
}

// SecretValue returns an HTTP source's secret: inline, from an environment variable or from a
// file; empty when the source keeps its hash only (see SecretHash).
func (a Auth) SecretValue() (string, error) {
	switch {
	case a.SecretEnv != "":
		v, ok := os.LookupEnv(a.SecretEnv)
		if !ok || v == "" {
			return "", fmt.Errorf("environment variable %s (the secret) is not set", a.SecretEnv)
		}
		return v, nil
	case a.SecretFile != "":
		b, err := os.ReadFile(a.SecretFile)
		if err != nil {
			return "", fmt.Errorf("read the secret: %w", err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	return a.Secret, nil
}

// Size is a number of bytes, written 10MiB, 1GB or 4096 (units.ParseSize).
type Size int64

// UnmarshalYAML reads a size.
func (s *Size) UnmarshalYAML(b []byte) error {
	n, err := units.ParseSize(strings.Trim(strings.TrimSpace(string(b)), `"'`))
	if err != nil {
		return err
	}
	*s = Size(n)
	return nil
}

// Duration is a duration, written 60s, 5m, 24h, 7d or '7 days' (units.ParseDuration); 0 or
// "off" is zero.
type Duration time.Duration

// UnmarshalYAML reads a duration.
func (d *Duration) UnmarshalYAML(b []byte) error {
	text := strings.Trim(strings.TrimSpace(string(b)), `"'`)
	if text == "off" {
		*d = 0
		return nil
	}
	v, err := units.ParseDuration(text)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Strings is a list of strings that may be written as one string.
type Strings []string

// UnmarshalYAML reads a string or a list of strings.
func (s *Strings) UnmarshalYAML(b []byte) error {
	var one string
	if err := yaml.Unmarshal(b, &one); err == nil {
		*s = Strings{one}
		return nil
	}
	var many []string
	if err := yaml.Unmarshal(b, &many); err != nil {
		return errors.New("want a string or a list of strings")
	}
	*s = many
	return nil
}

// LakeSourcesFile is where osprey source add|remove keep sources, in the lake.
func LakeSourcesFile(lakeDir string) string {
	return lake.SourcesFile(lakeDir)
}

// LoadLakeSources reads the sources kept in a lake (none if it has no file).
func LoadLakeSources(lakeDir string) ([]Source, error) {
	path := LakeSourcesFile(lakeDir)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var f struct {
		Sources []Source `yaml:"sources"`
	}
	if err := yaml.UnmarshalWithOptions(data, &f, yaml.Strict()); err != nil {
		return nil, fmt.Errorf("%s: %s", path, yaml.FormatError(err, false, false))
	}
	for i := range f.Sources {
		if err := f.Sources[i].Validate(); err != nil {
			return nil, fmt.Errorf("%s: sources[%d]: %w", path, i, err)
		}
	}
	return f.Sources, nil
}

// ErrHMACKeyInLake refuses to keep an HMAC key in the lake's sources file: a key that signs
// cannot be kept as a hash, and the lake is no place for it.
var ErrHMACKeyInLake = errors.New("an hmac key is not kept in the lake: give secretEnv or secretFile (a file of mode 0600 outside the lake)")

// SaveLakeSources writes the sources kept in a lake, atomically and durably, readable by its
// owner only. A secret given inline is written as its SHA-256 (secretSHA256), which is all a
// header secret, bearer token or basic password needs; an inline HMAC key is refused
// (ErrHMACKeyInLake). A sources file of an older osprey that holds such secrets in plain text
// still loads, and the next save writes them hashed. The caller holds the file's lock
// (UpdateLakeSources takes it).
func SaveLakeSources(lakeDir string, sources []Source) error {
	kept := make([]Source, len(sources))
	for i, s := range sources {
		if s.Auth.Secret != "" {
			if !s.Auth.hashable() {
				return fmt.Errorf("source %s: %w", s.ID, ErrHMACKeyInLake)
			}
			sum := sha256.Sum256([]byte(s.Auth.Secret))
			s.Auth.Secret, s.Auth.SecretSHA256 = "", hex.EncodeToString(sum[:])
		}
		kept[i] = s
	}
	data, err := yaml.Marshal(struct {
		Sources []Source `yaml:"sources"`
	}{kept})
	if err != nil {
		return err
	}
	if err := durable.WriteFile(LakeSourcesFile(lakeDir), data, 0o600); err != nil {
		return fmt.Errorf("save sources: %w", err)
	}
	return nil
}

// UpdateLakeSources replaces the sources kept in a lake by what update makes of them, holding
// the lock of the sources file (_osprey/sources.yml.lock) from the read to the write, so that
// concurrent changes are not lost.
func UpdateLakeSources(lakeDir string, update func([]Source) ([]Source, error)) error {
	return locked(LakeSourcesFile(lakeDir), func() error {
		sources, err := LoadLakeSources(lakeDir)
		if err != nil {
			return err
		}
		if sources, err = update(sources); err != nil {
			return err
		}
		return SaveLakeSources(lakeDir, sources)
	})
}

// locked runs f holding the lock of the file at path (its directory made first): the read,
// change and write of f cannot interleave with another process's.
func locked(path string, f func() error) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	unlock, err := durable.Lock(path)
	if err != nil {
		return err
	}
	defer unlock()
	return f()
}

// MarshalYAML writes a size in bytes.
func (s Size) MarshalYAML() ([]byte, error) { return []byte(strconv.FormatInt(int64(s), 10)), nil }

// MarshalYAML writes a duration in Go's notation.
func (d Duration) MarshalYAML() ([]byte, error) {
	if d == 0 {
		return []byte("0"), nil
	}
	return []byte(time.Duration(d).String()), nil
}
