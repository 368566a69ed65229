// Package testauth lets tests talk to a Herald that checks tokens: a fixed
// admin token, and an http.Client transport that sends it on every request
// that has no Authorization header of its own.
package testauth

import "net/http"

// AdminToken is the admin token test servers are started with
// (HERALD_ADMIN_TOKEN).
const AdminToken = "hrl_test-admin-token-for-tests-only"

type transport struct{ base http.RoundTripper }

func (t transport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Header.Get("Authorization") == "" {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+AdminToken)
	}
	return t.base.RoundTrip(r)
}

// UseAdminToken makes http.DefaultClient send AdminToken. Call it from
// TestMain, before any test runs.
func UseAdminToken() {
	http.DefaultClient = &http.Client{Transport: transport{base: http.DefaultTransport}}
}
