package httpsrc

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Authentication methods.
const (
	AuthNone   = "none"
	AuthHeader = "header" // a shared secret in a named header
	AuthHMAC   = "hmac"   // HMAC-SHA256 of the body with a secret, in a named header
	AuthBearer = "bearer" // Authorization: Bearer <token>
	AuthBasic  = "basic"  // Authorization: Basic, username and password
)

// DefaultWindow is how far a signed request's timestamp may be from the server's clock, by
// default (as Slack and Stripe allow).
const DefaultWindow = 5 * time.Minute

// Auth is how a source authenticates requests.
type Auth struct {
	Type     string // one of the Auth constants; default none
	Header   string // header and hmac: the header carrying the secret or signature
	Secret   string // the shared secret, HMAC key, bearer token or basic password
	Username string // basic
	Encoding string // hmac: the signature's encoding, hex (default) or base64
	// TimestampHeader, for hmac, names the header carrying the request's time in Unix
	// seconds. When set, the signature is over "<timestamp>.<body>" (as Stripe signs), and a
	// request whose timestamp is missing or more than Window away from now is refused, so
	// that a captured request cannot be replayed after the window.
	TimestampHeader string
	Window          time.Duration // hmac with a timestamp header; default DefaultWindow

	// SecretHash is the SHA-256 of the shared secret, bearer token or basic password, for a
	// source that keeps the hash only; it is used when Secret is empty.
	SecretHash [sha256.Size]byte
}

// Validate checks an authentication method's settings.
func (a Auth) Validate() error {
	if a.Type != AuthHMAC && (a.TimestampHeader != "" || a.Window != 0) {
		return errors.New("a timestamp header and window are for auth hmac")
	}
	if a.Window < 0 {
		return errors.New("auth hmac: the timestamp window must not be negative")
	}
	switch a.Type {
	case "", AuthNone:
		return nil
	case AuthHeader, AuthHMAC:
		if a.Header == "" {
			return fmt.Errorf("auth %s needs a header", a.Type)
		}
		if a.Type == AuthHMAC && a.Encoding != "" && a.Encoding != "hex" && a.Encoding != "base64" {
			return fmt.Errorf("auth hmac: encoding %q (want hex or base64)", a.Encoding)
		}
		if a.Type == AuthHMAC && a.Window != 0 && a.TimestampHeader == "" {
			return errors.New("auth hmac: a window needs a timestamp header")
		}
	case AuthBearer:
	case AuthBasic:
		if a.Username == "" {
			return errors.New("auth basic needs a username")
		}
	default:
		return fmt.Errorf("unknown auth type %q (want none, header, hmac, bearer or basic)", a.Type)
	}
	if a.Secret == "" && (a.Type == AuthHMAC || a.SecretHash == [sha256.Size]byte{}) {
		return fmt.Errorf("auth %s needs a secret", a.Type)
	}
	return nil
}

// secretIs reports whether got is the source's secret, comparing SHA-256 hashes in constant
// time (so that a source may keep the hash only).
func (a Auth) secretIs(got string) bool {
	want := a.SecretHash
	if a.Secret != "" {
		want = sha256.Sum256([]byte(a.Secret))
	}
	sum := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(sum[:], want[:]) == 1
}

// BearerToken returns the token of a request's "Authorization: Bearer <token>" header. The
// scheme is matched in any case, as RFC 9110 (section 11.1) has it.
func BearerToken(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

func equal(got, want string) bool {
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// precheck reports whether a request passes what the method checks without the body: all of
// it for every method but hmac, and the timestamp for hmac with a timestamp header.
func (a Auth) precheck(r *http.Request, now time.Time) bool {
	switch a.Type {
	case "", AuthNone:
		return true
	case AuthHeader:
		return a.secretIs(r.Header.Get(a.Header))
	case AuthBearer:
		token, ok := BearerToken(r)
		return ok && a.secretIs(token)
	case AuthBasic:
		// net/http matches the Basic scheme in any case.
		user, pass, ok := r.BasicAuth()
		// Both compared, so that the time taken does not tell which was wrong.
		return ok && equal(user, a.Username) && a.secretIs(pass)
	case AuthHMAC:
		if a.TimestampHeader == "" {
			return true
		}
		ts, err := strconv.ParseInt(strings.TrimSpace(r.Header.Get(a.TimestampHeader)), 10, 64)
		if err != nil {
			return false
		}
		window := a.Window
		if window == 0 {
			window = DefaultWindow
		}
		skew := now.Sub(time.Unix(ts, 0))
		return skew <= window && skew >= -window
	}
	return false
}

// verify reports whether an hmac request's signature is that of its body (and timestamp);
// every other method passed in precheck.
func (a Auth) verify(r *http.Request, body []byte) bool {
	if a.Type != AuthHMAC {
		return true
	}
	mac := hmac.New(sha256.New, []byte(a.Secret))
	if a.TimestampHeader != "" {
		mac.Write([]byte(strings.TrimSpace(r.Header.Get(a.TimestampHeader))))
		mac.Write([]byte("."))
	}
	mac.Write(body)
	sum := mac.Sum(nil)
	got := r.Header.Get(a.Header)
	got = strings.TrimPrefix(got, "sha256=") // as GitHub and others write it
	var want []byte
	var err error
	if a.Encoding == "base64" {
		want, err = base64.StdEncoding.DecodeString(got)
	} else {
		want, err = hex.DecodeString(got)
	}
	return err == nil && hmac.Equal(sum, want)
}
