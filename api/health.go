package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"
)

type healthOutput struct {
	Body struct {
		Status string `json:"status" example:"ok" doc:"ok when the check passed"`
	}
}

func (s *Server) registerHealth(a huma.API) {
	huma.Register(a, huma.Operation{
		OperationID: "healthz", Method: http.MethodGet, Path: "/healthz", Tags: []string{"health"},
		Security: []map[string][]string{}, // no token
		Summary:  "Liveness", Description: "Answers 200 while the process is alive.",
	}, func(context.Context, *struct{}) (*healthOutput, error) {
		out := &healthOutput{}
		out.Body.Status = "ok"
		return out, nil
	})
	huma.Register(a, huma.Operation{
		OperationID: "readyz", Method: http.MethodGet, Path: "/readyz", Tags: []string{"health"},
		Security:    []map[string][]string{}, // no token
		Summary:     "Readiness",
		Description: "Answers 200 when the broker and the store answer, 503 otherwise (and while shutting down).",
	}, func(ctx context.Context, _ *struct{}) (*healthOutput, error) {
		if s.draining.Load() {
			return nil, huma.Error503ServiceUnavailable("shutting down")
		}
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if err := errors.Join(s.Store.Ping(ctx), s.Producer.Ping(ctx)); err != nil {
			return nil, huma.Error503ServiceUnavailable("not ready: " + err.Error())
		}
		out := &healthOutput{}
		out.Body.Status = "ok"
		return out, nil
	})
}
