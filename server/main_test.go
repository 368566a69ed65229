package server_test

import (
	"os"
	"testing"

	"github.com/heraldproject/herald/internal/testauth"
)

func TestMain(m *testing.M) {
	testauth.UseAdminToken()
	os.Exit(m.Run())
}
