package main

import (
	"os"
	"testing"

	"github.com/heraldproject/herald/internal/testauth"
)

func TestMain(m *testing.M) {
	testauth.UseAdminToken()
	// Child `herald serve` processes inherit the admin token.
	os.Setenv("HERALD_ADMIN_TOKEN", testauth.AdminToken)
	os.Exit(m.Run())
}
