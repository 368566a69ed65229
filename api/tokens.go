package api

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/uuid"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/auth"
)

// TokenInput creates a token.
type TokenInput struct {
	Name   string `json:"name" minLength:"1" maxLength:"128"`
	Scope  string `json:"scope" enum:"ingest,read,admin"`
	UserID string `json:"userId,omitempty" maxLength:"64" doc:"bind the token to one user: it can read only that user"`
}

// TokenOutput is a token as listed; Token (the secret) is set only in the
// answer to its creation.
type TokenOutput struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Scope      string     `json:"scope"`
	UserID     string     `json:"userId,omitempty"`
	Token      string     `json:"token,omitempty" doc:"the secret, shown once"`
	CreatedAt  time.Time  `json:"createdAt"`
	LastUsedAt *time.Time `json:"lastUsedAt,omitempty"`
	RevokedAt  *time.Time `json:"revokedAt,omitempty"`
}

func tokenOutput(t *herald.Token) TokenOutput {
	return TokenOutput{ID: t.ID, Name: t.Name, Scope: t.Scope, UserID: t.UserID, CreatedAt: t.CreatedAt,
		LastUsedAt: t.LastUsedAt, RevokedAt: t.RevokedAt}
}

func (s *Server) registerTokens(a huma.API) {
	tags := []string{"tokens"}
	huma.Register(a, huma.Operation{
		OperationID: "create-token", Method: http.MethodPost, Path: "/v1/tokens", Tags: tags,
		Summary: "Create an API token", Description: "The secret is in the answer and never shown again.",
		DefaultStatus: http.StatusCreated,
	}, func(ctx context.Context, in *struct{ Body TokenInput }) (*struct{ Body TokenOutput }, error) {
		if in.Body.UserID != "" {
			// A bound token reads its user and nothing else: any other
			// scope would make a token that answers 403 to everything.
			if in.Body.Scope != herald.ScopeRead {
				return nil, invalid("body.scope", "a token bound to a user (userId) can only read that user: give scope read", in.Body.Scope)
			}
			if _, err := s.Store.User(ctx, in.Body.UserID); err != nil {
				if herald.ErrorCode(err) == herald.ENOTFOUND {
					return nil, invalid("body.userId", "no user has this id", in.Body.UserID)
				}
				return nil, s.problem(ctx, err)
			}
		}
		secret := auth.Generate()
		t := &herald.Token{ID: uuid.Must(uuid.NewV7()).String(), Name: in.Body.Name, Scope: in.Body.Scope, UserID: in.Body.UserID}
		if err := s.Store.CreateToken(ctx, t, auth.Hash(secret)); err != nil {
			return nil, s.problem(ctx, err)
		}
		out := tokenOutput(t)
		out.Token = secret
		return &struct{ Body TokenOutput }{Body: out}, nil
	})
	huma.Register(a, huma.Operation{
		OperationID: "list-tokens", Method: http.MethodGet, Path: "/v1/tokens", Tags: tags, Summary: "List API tokens",
	}, func(ctx context.Context, _ *struct{}) (*struct {
		Body struct {
			Tokens []TokenOutput `json:"tokens"`
		}
	}, error) {
		ts, err := s.Store.Tokens(ctx)
		if err != nil {
			return nil, s.problem(ctx, err)
		}
		out := &struct {
			Body struct {
				Tokens []TokenOutput `json:"tokens"`
			}
		}{}
		out.Body.Tokens = []TokenOutput{}
		for _, t := range ts {
			out.Body.Tokens = append(out.Body.Tokens, tokenOutput(t))
		}
		return out, nil
	})
	huma.Register(a, huma.Operation{
		OperationID: "revoke-token", Method: http.MethodDelete, Path: "/v1/tokens/{id}", Tags: tags,
		Summary: "Revoke an API token", DefaultStatus: http.StatusNoContent,
	}, func(ctx context.Context, in *idPath) (*struct{}, error) {
		if err := s.Store.RevokeToken(ctx, in.ID); err != nil {
			return nil, s.problem(ctx, err)
		}
		if s.Auth != nil {
			s.Auth.Forget()
		}
		return nil, nil
	})
}
