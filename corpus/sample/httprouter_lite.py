"""Sample repository hrgc-samples/httprouter-lite (Apache-2.0): a small HTTP router and its pull requests."""

from __future__ import annotations

from corpus.sample.license_texts import APACHE_2_0
from corpus.sample.spec import (
    PullSpec,
    RepoSpec,
    append,
    at,
    edit,
    issue,
    on_line,
    review,
    write,
)

ROUTER_GO = r"""// Package router is a small HTTP request router with method-based dispatch.
package router

import "net/http"

// Router dispatches requests to handlers registered by method and path.
type Router struct {
    // NotFound is called when no route matches; http.NotFound is used when nil.
    NotFound http.Handler

    routes map[string]map[string]http.Handler
}

// New returns an empty Router.
func New() *Router {
    return &Router{routes: make(map[string]map[string]http.Handler)}
}

// Handle registers h for requests with the given method and path.
func (r *Router) Handle(method, path string, h http.Handler) {
    if r.routes[method] == nil {
        r.routes[method] = make(map[string]http.Handler)
    }
    r.routes[method][path] = h
}

// HandleFunc registers f for requests with the given method and path.
func (r *Router) HandleFunc(method, path string, f http.HandlerFunc) {
    r.Handle(method, path, f)
}

// ServeHTTP implements http.Handler.
func (r *Router) ServeHTTP(w http.ResponseWriter, req *http.Request) {
    if h, ok := r.routes[req.Method][req.URL.Path]; ok {
        h.ServeHTTP(w, req)
        return
    }
    if r.NotFound != nil {
        r.NotFound.ServeHTTP(w, req)
        return
    }
    http.NotFound(w, req)
}
"""

ROUTER_TEST_GO = r"""package router

import (
    "net/http"
    "net/http/httptest"
    "testing"
)

func serve(r http.Handler, method, path string) *httptest.ResponseRecorder {
    rec := httptest.NewRecorder()
    r.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
    return rec
}

func TestStaticRoute(t *testing.T) {
    r := New()
    r.HandleFunc(http.MethodGet, "/health", func(w http.ResponseWriter, _ *http.Request) {
        w.Write([]byte("ok"))
    })
    rec := serve(r, http.MethodGet, "/health")
    if rec.Code != http.StatusOK || rec.Body.String() != "ok" {
        t.Fatalf("got %d %q", rec.Code, rec.Body.String())
    }
}

func TestNotFound(t *testing.T) {
    r := New()
    if rec := serve(r, http.MethodGet, "/missing"); rec.Code != http.StatusNotFound {
        t.Fatalf("code = %d, want 404", rec.Code)
    }
}
"""

ROUTER_WITH_PARAMS_GO = r"""// Package router is a small HTTP request router with method-based dispatch
// and path parameters such as /users/:id.
package router

import (
    "context"
    "net/http"
    "strings"
)

// Router dispatches requests to handlers registered by method and path.
type Router struct {
    // NotFound is called when no route matches; http.NotFound is used when nil.
    NotFound http.Handler

    routes map[string][]route
}

type route struct {
    segments []string
    handler  http.Handler
}

// Params holds the values of path parameters matched for a request.
type Params map[string]string

type paramsKey struct{}

// ParamsFrom returns the path parameters stored in ctx by the Router.
func ParamsFrom(ctx context.Context) Params {
    p, _ := ctx.Value(paramsKey{}).(Params)
    return p
}

// New returns an empty Router.
func New() *Router {
    return &Router{routes: make(map[string][]route)}
}

// Handle registers h for requests with the given method and path. A path
// segment starting with ':' matches any value and is stored in Params.
func (r *Router) Handle(method, path string, h http.Handler) {
    r.routes[method] = append(r.routes[method], route{segments: split(path), handler: h})
}

// HandleFunc registers f for requests with the given method and path.
func (r *Router) HandleFunc(method, path string, f http.HandlerFunc) {
    r.Handle(method, path, f)
}

// ServeHTTP implements http.Handler. Routes are tried in registration order.
func (r *Router) ServeHTTP(w http.ResponseWriter, req *http.Request) {
    segs := split(req.URL.Path)
    for _, rt := range r.routes[req.Method] {
        if params, ok := match(rt.segments, segs); ok {
            ctx := context.WithValue(req.Context(), paramsKey{}, params)
            rt.handler.ServeHTTP(w, req.WithContext(ctx))
            return
        }
    }
    if r.NotFound != nil {
        r.NotFound.ServeHTTP(w, req)
        return
    }
    http.NotFound(w, req)
}

// split turns "/a/b/" into ["a", "b"].
func split(path string) []string {
    return strings.Split(strings.Trim(path, "/"), "/")
}

// match compares route segments with request segments and collects parameters.
func match(pattern, segs []string) (Params, bool) {
    if len(pattern) != len(segs) {
        return nil, false
    }
    params := Params{}
    for i, p := range pattern {
        if strings.HasPrefix(p, ":") {
            params[p[1:]] = segs[i]
            continue
        }
        if p != segs[i] {
            return nil, false
        }
    }
    return params, true
}
"""

CI_WORKFLOW = """name: go

on:
  push:
    branches: [main]
  pull_request:

jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-go@v5
        with:
          go-version: "1.21"
      - run: go vet ./...
      - run: go test -race ./...
"""

PULLS = (
    PullSpec(
        number=1,
        title="Support path parameters like /users/:id",
        author="ivan-p",
        created=at("2023-04-12 07:55"),
        merged=at("2023-04-18 13:20"),
        labels=("enhancement",),
        body=(
            "Routes can now contain `:name` segments. Matched values are stored in the request "
            "context and read with `ParamsFrom`:\n\n"
            '```go\nr.HandleFunc("GET", "/users/:id", func(w http.ResponseWriter, req *http.Request) {\n'
            '\tid := router.ParamsFrom(req.Context())["id"]\n\tfmt.Fprintln(w, id)\n})\n```\n\n'
            "Routes are matched in registration order, so static routes should be registered first."
        ),
        changes=(
            write("router.go", ROUTER_WITH_PARAMS_GO),
            append(
                "router_test.go",
                r"""
func TestPathParams(t *testing.T) {
    r := New()
    r.HandleFunc(http.MethodGet, "/users/:id/posts/:post", func(w http.ResponseWriter, req *http.Request) {
        p := ParamsFrom(req.Context())
        w.Write([]byte(p["id"] + "/" + p["post"]))
    })
    rec := serve(r, http.MethodGet, "/users/42/posts/7")
    if rec.Body.String() != "42/7" {
        t.Fatalf("body = %q, want 42/7", rec.Body.String())
    }
}
""",
            ),
        ),
        comments=(
            on_line(
                "hana-m",
                "router.go",
                "for _, rt := range r.routes[req.Method] {",
                "Linear scan is fine at our scale; if it shows up in profiles we can move to a tree later.",
                20,
            ),
            review("hana-m", "Nice and small. Approving.", 140),
        ),
    ),
    PullSpec(
        number=2,
        title="Reply 405 with an Allow header when only the method differs",
        author="jules-r",
        created=at("2023-04-20 10:30"),
        merged=at("2023-04-24 09:45"),
        labels=("enhancement",),
        body=(
            "RFC 9110 says a 405 response must list the allowed methods. Previously a `POST` to a "
            "`GET`-only route got a 404, which confused API clients."
        ),
        changes=(
            edit(
                "router.go",
                ('    "net/http"\n    "strings"\n', '    "net/http"\n    "sort"\n    "strings"\n'),
                (
                    "            return\n        }\n    }\n    if r.NotFound != nil {\n",
                    r"""            return
        }
    }
    if allowed := r.allowed(segs); len(allowed) > 0 {
        w.Header().Set("Allow", strings.Join(allowed, ", "))
        http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
        return
    }
    if r.NotFound != nil {
""",
                ),
                (
                    "// split turns",
                    r"""// allowed lists, sorted, the methods that have a route matching segs.
func (r *Router) allowed(segs []string) []string {
    var methods []string
    for method, routes := range r.routes {
        for _, rt := range routes {
            if _, ok := match(rt.segments, segs); ok {
                methods = append(methods, method)
                break
            }
        }
    }
    sort.Strings(methods)
    return methods
}

// split turns""",
                ),
            ),
            append(
                "router_test.go",
                r"""
func TestMethodNotAllowed(t *testing.T) {
    r := New()
    ok := func(w http.ResponseWriter, _ *http.Request) {}
    r.HandleFunc(http.MethodGet, "/items", ok)
    r.HandleFunc(http.MethodPut, "/items", ok)
    rec := serve(r, http.MethodPost, "/items")
    if rec.Code != http.StatusMethodNotAllowed {
        t.Fatalf("code = %d, want 405", rec.Code)
    }
    if got := rec.Header().Get("Allow"); got != "GET, PUT" {
        t.Fatalf("Allow = %q, want %q", got, "GET, PUT")
    }
}
""",
            ),
        ),
        comments=(
            on_line(
                "ivan-p",
                "router.go",
                "sort.Strings(methods)",
                "Sorting keeps the header stable across runs since map order is random. 👍",
                30,
            ),
        ),
    ),
    PullSpec(
        number=4,
        title="Reject nil handlers at registration",
        author="kemi-a",
        created=at("2023-05-08 12:00"),
        merged=at("2023-05-09 16:30"),
        labels=("bug",),
        body=(
            "Registering a nil handler (easy with an uninitialised variable) panicked at request time "
            "with a nil pointer dereference deep in `ServeHTTP`. Fail fast in `Handle` instead, as "
            "`http.ServeMux` does."
        ),
        changes=(
            edit(
                "router.go",
                (
                    "func (r *Router) Handle(method, path string, h http.Handler) {\n",
                    (
                        "func (r *Router) Handle(method, path string, h http.Handler) {\n"
                        "    if h == nil {\n"
                        '        panic("router: nil handler for " + method + " " + path)\n'
                        "    }\n"
                    ),
                ),
                (
                    "func (r *Router) HandleFunc(method, path string, f http.HandlerFunc) {\n",
                    (
                        "func (r *Router) HandleFunc(method, path string, f http.HandlerFunc) {\n"
                        "    // A nil func would become a non-nil Handler interface value.\n"
                        "    if f == nil {\n"
                        '        panic("router: nil handler for " + method + " " + path)\n'
                        "    }\n"
                    ),
                ),
            ),
            append(
                "router_test.go",
                r"""
func TestNilHandlerPanics(t *testing.T) {
    defer func() {
        if recover() == nil {
            t.Fatal("HandleFunc with a nil func did not panic")
        }
    }()
    New().HandleFunc(http.MethodGet, "/", nil)
}
""",
            ),
        ),
        comments=(
            on_line(
                "hana-m",
                "router.go",
                "if h == nil {",
                "`HandleFunc(m, p, nil)` still slips through: the nil func becomes a non-nil "
                "`http.HandlerFunc` interface value.",
                3,
            ),
            issue("kemi-a", "Right, added the same check to `HandleFunc` with a comment and a test.", 6),
        ),
    ),
    PullSpec(
        number=5,
        title="Add middleware with Use",
        author="lars-n",
        created=at("2023-05-22 09:15"),
        merged=at("2023-05-30 11:00"),
        labels=("enhancement",),
        body=(
            "`Use(mw...)` appends middleware that wraps every route registered afterwards. The first "
            "middleware passed is the outermost."
        ),
        changes=(
            edit(
                "router.go",
                (
                    "    routes map[string][]route\n}\n",
                    "    routes     map[string][]route\n    middleware []Middleware\n}\n",
                ),
                (
                    "type route struct {",
                    r"""// Middleware wraps a handler with extra behaviour such as logging or auth.
type Middleware func(http.Handler) http.Handler

// Use appends middleware applied to every route registered afterwards.
func (r *Router) Use(mw ...Middleware) {
    r.middleware = append(r.middleware, mw...)
}

type route struct {""",
                ),
                (
                    "    r.routes[method] = append(",
                    (
                        "    for i := len(r.middleware) - 1; i >= 0; i-- {\n"
                        "        h = r.middleware[i](h)\n"
                        "    }\n"
                        "    r.routes[method] = append("
                    ),
                ),
            ),
            write(
                "middleware_test.go",
                r"""package router

import (
    "net/http"
    "testing"
)

func TestMiddlewareOrder(t *testing.T) {
    var order []string
    tag := func(name string) Middleware {
        return func(next http.Handler) http.Handler {
            return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
                order = append(order, name)
                next.ServeHTTP(w, req)
            })
        }
    }
    r := New()
    r.Use(tag("outer"), tag("inner"))
    r.HandleFunc(http.MethodGet, "/", func(http.ResponseWriter, *http.Request) {
        order = append(order, "handler")
    })
    serve(r, http.MethodGet, "/")
    if len(order) != 3 || order[0] != "outer" || order[1] != "inner" || order[2] != "handler" {
        t.Fatalf("order = %v", order)
    }
}
""",
            ),
        ),
        comments=(
            issue("jules-r", "Should middleware also apply to the NotFound handler?", 30),
            issue("lars-n", "I'd leave that out for now, NotFound is user supplied and can wrap itself.", 34),
            review("hana-m", "Agreed. Merging.", 190),
        ),
    ),
    PullSpec(
        number=7,
        title="Move path matching into match.go",
        author="ivan-p",
        created=at("2023-06-14 14:20"),
        merged=at("2023-06-15 08:05"),
        labels=("refactor",),
        body="No behaviour change; `router.go` was getting long.",
        changes=(
            edit(
                "router.go",
                (
                    r"""

// split turns "/a/b/" into ["a", "b"].
func split(path string) []string {
    return strings.Split(strings.Trim(path, "/"), "/")
}

// match compares route segments with request segments and collects parameters.
func match(pattern, segs []string) (Params, bool) {
    if len(pattern) != len(segs) {
        return nil, false
    }
    params := Params{}
    for i, p := range pattern {
        if strings.HasPrefix(p, ":") {
            params[p[1:]] = segs[i]
            continue
        }
        if p != segs[i] {
            return nil, false
        }
    }
    return params, true
}
""",
                    "\n",
                ),
            ),
            write(
                "match.go",
                r"""package router

import "strings"

// split turns "/a/b/" into ["a", "b"].
func split(path string) []string {
    return strings.Split(strings.Trim(path, "/"), "/")
}

// match compares route segments with request segments and collects parameters.
func match(pattern, segs []string) (Params, bool) {
    if len(pattern) != len(segs) {
        return nil, false
    }
    params := Params{}
    for i, p := range pattern {
        if strings.HasPrefix(p, ":") {
            params[p[1:]] = segs[i]
            continue
        }
        if p != segs[i] {
            return nil, false
        }
    }
    return params, true
}
""",
            ),
        ),
    ),
    PullSpec(
        number=8,
        title="Skip the context allocation for routes without parameters",
        author="jules-r",
        created=at("2023-07-03 16:45"),
        merged=at("2023-07-06 10:30"),
        labels=("performance",),
        body=(
            "Static routes paid for an empty `Params` map plus `context.WithValue` and "
            "`req.WithContext` on every request.\n\n"
            "```\nname            old allocs/op  new allocs/op\nStaticRoute-8   4              0\n"
            "ParamRoute-8    4              4\n```"
        ),
        changes=(
            edit(
                "match.go",
                ("    params := Params{}\n", "    var params Params\n"),
                (
                    '        if strings.HasPrefix(p, ":") {\n            params[p[1:]] = segs[i]\n',
                    (
                        '        if strings.HasPrefix(p, ":") {\n'
                        "            if params == nil {\n"
                        "                params = make(Params, 1)\n"
                        "            }\n"
                        "            params[p[1:]] = segs[i]\n"
                    ),
                ),
                (
                    "// match compares route segments with request segments and collects parameters.\n",
                    (
                        "// match compares route segments with request segments and collects parameters.\n"
                        "// Params is nil when the pattern has none, so static routes do not allocate.\n"
                    ),
                ),
            ),
            edit(
                "router.go",
                (
                    (
                        "            ctx := context.WithValue(req.Context(), paramsKey{}, params)\n"
                        "            rt.handler.ServeHTTP(w, req.WithContext(ctx))\n"
                    ),
                    (
                        "            if params != nil {\n"
                        "                req = req.WithContext(context.WithValue(req.Context(), paramsKey{}, params))\n"
                        "            }\n"
                        "            rt.handler.ServeHTTP(w, req)\n"
                    ),
                ),
            ),
            append(
                "router_test.go",
                r"""
func BenchmarkStaticRoute(b *testing.B) {
    r := New()
    r.HandleFunc(http.MethodGet, "/health", func(http.ResponseWriter, *http.Request) {})
    req := httptest.NewRequest(http.MethodGet, "/health", nil)
    w := httptest.NewRecorder()
    b.ReportAllocs()
    for i := 0; i < b.N; i++ {
        r.ServeHTTP(w, req)
    }
}
""",
            ),
        ),
        comments=(
            on_line(
                "ivan-p",
                "router.go",
                "if params != nil {",
                "`ParamsFrom` returns nil for static routes now; reading from a nil map is fine, so "
                "handlers keep working.",
                5,
            ),
        ),
    ),
    PullSpec(
        number=9,
        title="Add CI workflow and check Write errors in tests",
        author="hana-m",
        created=at("2023-07-20 11:00"),
        merged=at("2023-07-20 15:10"),
        body=(
            "Runs `go vet` and `go test -race` on every push and pull request. errcheck also flagged "
            "the ignored `Write` results in the tests."
        ),
        changes=(
            write(".github/workflows/go.yml", CI_WORKFLOW),
            edit(
                "router_test.go",
                (
                    '        w.Write([]byte("ok"))\n',
                    '        if _, err := w.Write([]byte("ok")); err != nil {\n            t.Error(err)\n        }\n',
                ),
                (
                    '        w.Write([]byte(p["id"] + "/" + p["post"]))\n',
                    (
                        '        if _, err := w.Write([]byte(p["id"] + "/" + p["post"])); err != nil {\n'
                        "            t.Error(err)\n        }\n"
                    ),
                ),
            ),
        ),
    ),
    PullSpec(
        number=10,
        title="Add Recover middleware",
        author="kemi-a",
        created=at("2023-08-02 09:40"),
        merged=at("2023-08-08 14:00"),
        labels=("enhancement",),
        body="",
        changes=(
            write(
                "recover.go",
                r"""package router

import (
    "log"
    "net/http"
    "runtime/debug"
)

// Recover is middleware that turns a panicking handler into a 500 response
// and logs the stack trace.
func Recover(next http.Handler) http.Handler {
    return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
        defer func() {
            v := recover()
            if v == nil {
                return
            }
            // net/http uses ErrAbortHandler to abort a response on purpose.
            if v == http.ErrAbortHandler {
                panic(v)
            }
            log.Printf("router: panic serving %s %s: %v\n%s", req.Method, req.URL.Path, v, debug.Stack())
            http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
        }()
        next.ServeHTTP(w, req)
    })
}
""",
            ),
            write(
                "recover_test.go",
                r"""package router

import (
    "net/http"
    "testing"
)

func TestRecover(t *testing.T) {
    r := New()
    r.Use(Recover)
    r.HandleFunc(http.MethodGet, "/boom", func(http.ResponseWriter, *http.Request) {
        panic("boom")
    })
    if rec := serve(r, http.MethodGet, "/boom"); rec.Code != http.StatusInternalServerError {
        t.Fatalf("code = %d, want 500", rec.Code)
    }
}
""",
            ),
        ),
        comments=(
            on_line(
                "lars-n",
                "recover.go",
                "if v == http.ErrAbortHandler {",
                "Thanks for handling `ErrAbortHandler`; swallowing it would change net/http semantics.",
                50,
            ),
            review("hana-m", "LGTM", 140),
        ),
    ),
    PullSpec(
        number=12,
        title="Make route registration safe while serving",
        author="lars-n",
        created=at("2023-09-11 13:30"),
        merged=at("2023-09-14 10:00"),
        labels=("bug",),
        body=(
            "We register plugin routes after the server has started, and the race detector reports:\n\n"
            "```\nWARNING: DATA RACE\nWrite at 0x00c0001a2030 by goroutine 12:\n  router.(*Router).Handle()\n"
            "Previous read at 0x00c0001a2030 by goroutine 9:\n  router.(*Router).ServeHTTP()\n```\n\n"
            "Routes are now guarded by a `sync.RWMutex`; serving takes the read lock."
        ),
        changes=(
            edit(
                "router.go",
                ('    "strings"\n)\n', '    "strings"\n    "sync"\n)\n'),
                (
                    "    routes     map[string][]route\n",
                    "    mu         sync.RWMutex\n    routes     map[string][]route\n",
                ),
                (
                    "    for i := len(r.middleware) - 1; i >= 0; i-- {\n",
                    "    r.mu.Lock()\n    defer r.mu.Unlock()\n    for i := len(r.middleware) - 1; i >= 0; i-- {\n",
                ),
                (
                    "func (r *Router) Use(mw ...Middleware) {\n",
                    "func (r *Router) Use(mw ...Middleware) {\n    r.mu.Lock()\n    defer r.mu.Unlock()\n",
                ),
                (
                    "    segs := split(req.URL.Path)\n    for _, rt := range r.routes[req.Method] {\n",
                    (
                        "    segs := split(req.URL.Path)\n"
                        "    r.mu.RLock()\n"
                        "    routes := r.routes[req.Method]\n"
                        "    r.mu.RUnlock()\n"
                        "    for _, rt := range routes {\n"
                    ),
                ),
                (
                    "func (r *Router) allowed(segs []string) []string {\n",
                    "func (r *Router) allowed(segs []string) []string {\n    r.mu.RLock()\n    defer r.mu.RUnlock()\n",
                ),
            ),
        ),
        comments=(
            on_line(
                "jules-r",
                "router.go",
                "routes := r.routes[req.Method]",
                "Copying the slice header under the read lock and releasing it before calling the "
                "handler avoids holding the lock during slow handlers. Is it safe with `append` in "
                "`Handle`? I think yes, since append never mutates elements already visible.",
                20,
            ),
            issue("lars-n", "Yes: append writes past the old length or into a new array.", 22),
        ),
    ),
    PullSpec(
        number=13,
        title="Rename ParamsFrom to ParamsFromContext",
        author="ivan-p",
        created=at("2023-10-02 10:10"),
        merged=at("2023-10-03 09:00"),
        labels=("refactor",),
        body="Matches the naming of other context helpers. `ParamsFrom` stays as a deprecated alias.",
        changes=(
            edit(
                "router.go",
                (
                    r"""// ParamsFrom returns the path parameters stored in ctx by the Router.
func ParamsFrom(ctx context.Context) Params {
    p, _ := ctx.Value(paramsKey{}).(Params)
    return p
}
""",
                    r"""// ParamsFromContext returns the path parameters stored in ctx by the Router.
func ParamsFromContext(ctx context.Context) Params {
    p, _ := ctx.Value(paramsKey{}).(Params)
    return p
}

// ParamsFrom returns the path parameters stored in ctx.
//
// Deprecated: use ParamsFromContext.
func ParamsFrom(ctx context.Context) Params {
    return ParamsFromContext(ctx)
}
""",
                ),
            ),
            edit(
                "router_test.go",
                ("        p := ParamsFrom(req.Context())\n", "        p := ParamsFromContext(req.Context())\n"),
            ),
        ),
    ),
    PullSpec(
        number=15,
        title="Add Group for routes under a common prefix",
        author="jules-r",
        created=at("2023-11-06 15:00"),
        merged=at("2023-11-13 11:45"),
        labels=("enhancement",),
        body=(
            '```go\napi := r.Group("/api/v1")\napi.HandleFunc("GET", "/users/:id", getUser)\n```\n\n'
            "A trailing slash on the prefix is ignored."
        ),
        changes=(
            write(
                "group.go",
                r"""package router

import (
    "net/http"
    "strings"
)

// Group registers routes under a common path prefix.
type Group struct {
    router *Router
    prefix string
}

// Group returns a Group whose routes are registered under prefix.
func (r *Router) Group(prefix string) *Group {
    return &Group{router: r, prefix: strings.TrimSuffix(prefix, "/")}
}

// Handle registers h for method and the group's prefix followed by path.
func (g *Group) Handle(method, path string, h http.Handler) {
    g.router.Handle(method, g.prefix+path, h)
}

// HandleFunc registers f for method and the group's prefix followed by path.
func (g *Group) HandleFunc(method, path string, f http.HandlerFunc) {
    g.router.HandleFunc(method, g.prefix+path, f)
}
""",
            ),
            write(
                "group_test.go",
                r"""package router

import (
    "net/http"
    "testing"
)

func TestGroupPrefix(t *testing.T) {
    r := New()
    api := r.Group("/api/v1/")
    api.HandleFunc(http.MethodGet, "/users/:id", func(w http.ResponseWriter, req *http.Request) {
        if _, err := w.Write([]byte(ParamsFromContext(req.Context())["id"])); err != nil {
            t.Error(err)
        }
    })
    if rec := serve(r, http.MethodGet, "/api/v1/users/9"); rec.Body.String() != "9" {
        t.Fatalf("body = %q, want 9", rec.Body.String())
    }
}
""",
            ),
        ),
        comments=(
            review("hana-m", "Could `Group` also take middleware? Happy to do that separately.", 70),
            issue("jules-r", "Separately please, this one is already useful as is.", 75),
        ),
    ),
)

README = """# httprouter-lite

A small HTTP request router for Go with method-based dispatch. It has no dependencies
outside the standard library.

```go
r := router.New()
r.HandleFunc("GET", "/health", health)
log.Fatal(http.ListenAndServe(":8080", r))
```
"""

REPO = RepoSpec(
    full_name="hrgc-samples/httprouter-lite",
    license_spdx="Apache-2.0",
    description="A small HTTP request router for Go",
    stars=860,
    maintainer="hana-m",
    created=at("2023-04-03 12:00"),
    files={
        "LICENSE": APACHE_2_0,
        "README.md": README,
        "go.mod": "module github.com/hrgc-samples/httprouter-lite\n\ngo 1.21\n",
        "router.go": ROUTER_GO,
        "router_test.go": ROUTER_TEST_GO,
    },
    pulls=PULLS,
)
