// Package session signs people into the console: a Kubernetes bearer token (a
// ServiceAccount token or an OIDC id_token) is checked by asking the API server who it
// belongs to, as that person, and kept in a sealed, HTTP-only cookie. The console holds no
// rights of its own: every later call is made with the person's token. Mutating requests
// carry the session's CSRF token in a header.
package session

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Cookie is the session cookie's name; CSRFHeader the header mutating requests carry.
const (
	Cookie     = "croupier_session"
	CSRFHeader = "X-CSRF-Token"
)

// Identity is who the API server says a token belongs to.
type Identity struct {
	User   string   `json:"user"`
	Groups []string `json:"groups,omitempty"`
}

// Session is what the cookie holds, sealed.
type Session struct {
	Token   string   `json:"t"`
	User    string   `json:"u"`
	Groups  []string `json:"g,omitempty"`
	CSRF    string   `json:"c"`
	Expires int64    `json:"e"`
}

// Verifier asks the API server, with the token itself, whose it is (a refused token is
// an error wrapping ErrRefused).
type Verifier func(ctx context.Context, token string) (Identity, error)

// ErrRefused means the API server did not accept the token.
var ErrRefused = errors.New("the API server refused the token")

// Manager issues and reads sessions.
type Manager struct {
	aead cipher.AEAD
	// Verify checks a token at sign-in.
	Verify Verifier
	// Lifetime bounds a session (8h when zero); a token that expires earlier ends it
	// earlier at the API server.
	Lifetime time.Duration
	// Insecure leaves the Secure attribute off the cookie: only for a console served over
	// plain HTTP to someone other than loopback, which it should not be.
	Insecure bool
	Now      func() time.Time
}

// NewManager seals sessions with key (32 bytes; a random one when nil, so sessions end
// with the process).
func NewManager(key []byte, verify Verifier) (*Manager, error) {
	if key == nil {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
	}
	if len(key) != 32 {
		return nil, fmt.Errorf("session key: %d bytes, want 32", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Manager{aead: aead, Verify: verify}, nil
}

func (m *Manager) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

func (m *Manager) lifetime() time.Duration {
	if m.Lifetime > 0 {
		return m.Lifetime
	}
	return 8 * time.Hour
}

// seal encodes s for the cookie; the cookie's name is the additional data.
func (m *Manager) seal(s *Session) (string, error) {
	plain, err := json.Marshal(s)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, m.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(m.aead.Seal(nonce, nonce, plain, []byte(Cookie))), nil
}

func (m *Manager) open(v string) (*Session, error) {
	b, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil || len(b) < m.aead.NonceSize() {
		return nil, errors.New("session cookie: not one of this console's")
	}
	n := m.aead.NonceSize()
	plain, err := m.aead.Open(nil, b[:n], b[n:], []byte(Cookie))
	if err != nil {
		return nil, errors.New("session cookie: not one of this console's")
	}
	var s Session
	if err := json.Unmarshal(plain, &s); err != nil {
		return nil, errors.New("session cookie: unreadable")
	}
	if m.now().Unix() >= s.Expires {
		return nil, errors.New("session expired: sign in again")
	}
	return &s, nil
}

type ctxKey struct{}

// From is the request's session (nil outside Require).
func From(ctx context.Context) *Session {
	s, _ := ctx.Value(ctxKey{}).(*Session)
	return s
}

// WithSession is ctx carrying s (for handlers tested without a cookie).
func WithSession(ctx context.Context, s *Session) context.Context {
	return context.WithValue(ctx, ctxKey{}, s)
}

// Me is what the console's front end learns about the signed-in person.
type Me struct {
	User    string    `json:"user"`
	Groups  []string  `json:"groups,omitempty"`
	CSRF    string    `json:"csrf"`
	Expires time.Time `json:"expires"`
}

func me(s *Session) Me {
	return Me{User: s.User, Groups: s.Groups, CSRF: s.CSRF, Expires: time.Unix(s.Expires, 0).UTC()}
}

// maxSignIn bounds a sign-in body (an OIDC id_token is a few KB).
const maxSignIn = 64 << 10

// SignIn serves POST: {"token": "..."} -> the session cookie and Me. The token travels in
// the body, never in a URL.
func (m *Manager) SignIn(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		WriteProblem(w, http.StatusForbidden, "cross-site request refused")
		return
	}
	var req struct {
		Token string `json:"token"`
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSignIn))
	if err != nil {
		WriteProblem(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("token: the body is over %d bytes", maxSignIn))
		return
	}
	if err := json.Unmarshal(body, &req); err != nil {
		WriteProblem(w, http.StatusBadRequest, "body: not JSON with a token field")
		return
	}
	token := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(req.Token), "Bearer "))
	if token == "" {
		WriteProblem(w, http.StatusBadRequest, "token: required (a ServiceAccount token or an OIDC id_token)")
		return
	}
	id, err := m.Verify(r.Context(), token)
	if errors.Is(err, ErrRefused) {
		WriteProblem(w, http.StatusUnauthorized, "token: refused by the Kubernetes API server (expired, revoked or not a token of this cluster)")
		return
	}
	if err != nil {
		WriteProblem(w, http.StatusBadGateway, "the Kubernetes API server could not be asked: "+err.Error())
		return
	}
	csrf := make([]byte, 24)
	if _, err := rand.Read(csrf); err != nil {
		WriteProblem(w, http.StatusInternalServerError, "session: no randomness")
		return
	}
	s := &Session{Token: token, User: id.User, Groups: id.Groups, CSRF: base64.RawURLEncoding.EncodeToString(csrf),
		Expires: m.now().Add(m.lifetime()).Unix()}
	v, err := m.seal(s)
	if err != nil {
		WriteProblem(w, http.StatusInternalServerError, "session: "+err.Error())
		return
	}
	http.SetCookie(w, m.cookie(v, int(m.lifetime().Seconds())))
	WriteJSON(w, http.StatusOK, me(s))
}

func (m *Manager) cookie(v string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: Cookie, Value: v, Path: "/", MaxAge: maxAge, HttpOnly: true, Secure: !m.Insecure, SameSite: http.SameSiteStrictMode}
}

// SignOut serves DELETE: the cookie is cleared.
func (m *Manager) SignOut(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, m.cookie("", -1))
	w.WriteHeader(http.StatusNoContent)
}

// Me serves GET (behind Require).
func (m *Manager) Me(w http.ResponseWriter, r *http.Request) {
	WriteJSON(w, http.StatusOK, me(From(r.Context())))
}

// Require passes requests with a valid session on, with the session in the context;
// requests that change anything must also carry its CSRF token and come from the
// console's own origin.
func (m *Manager) Require(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(Cookie)
		if err != nil {
			WriteProblem(w, http.StatusUnauthorized, "not signed in")
			return
		}
		s, err := m.open(c.Value)
		if err != nil {
			http.SetCookie(w, m.cookie("", -1))
			WriteProblem(w, http.StatusUnauthorized, err.Error())
			return
		}
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
		default:
			got := r.Header.Get(CSRFHeader)
			if !sameOrigin(r) || got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(s.CSRF)) != 1 {
				WriteProblem(w, http.StatusForbidden, "CSRF token missing or wrong: reload the console")
				return
			}
		}
		next.ServeHTTP(w, r.WithContext(WithSession(r.Context(), s)))
	})
}

// sameOrigin refuses a request whose Origin (sent by browsers on every POST) is not the
// console's own host.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return r.Header.Get("Sec-Fetch-Site") != "cross-site"
	}
	_, host, ok := strings.Cut(o, "://")
	return ok && host == r.Host
}

// WriteJSON answers v as JSON, never cached.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// Problem is an error answer: what failed and why.
type Problem struct {
	Error string `json:"error"`
}

// WriteProblem answers an error: what failed and why.
func WriteProblem(w http.ResponseWriter, code int, msg string) {
	WriteJSON(w, code, Problem{Error: msg})
}
