package api

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/uuid"

	"github.com/heraldproject/herald"
)

// GroupInput creates a group.
type GroupInput struct {
	Name        string `json:"name" pattern:"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$" doc:"unique; addressed as @@name"`
	Description string `json:"description,omitempty" maxLength:"1024"`
}

// Member is a group member as listed in a group.
type Member struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// GroupOutput is a group as returned by the API. Members are listed when one
// group is fetched.
type GroupOutput struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
	CreatedAt   time.Time `json:"createdAt"`
	Members     []Member  `json:"members,omitempty"`
}

func groupOutput(g *herald.Group) GroupOutput {
	return GroupOutput{ID: g.ID, Name: g.Name, Description: g.Description, CreatedAt: g.CreatedAt}
}

type groupBody struct {
	Location string `header:"Location"`
	Body     GroupOutput
}

type groupList struct {
	Body struct {
		Groups     []GroupOutput `json:"groups"`
		NextCursor string        `json:"nextCursor,omitempty"`
	}
}

type memberPath struct {
	ID     string `path:"id" maxLength:"64"`
	UserID string `path:"userId" maxLength:"64"`
}

func (s *Server) registerGroups(a huma.API) {
	tags := []string{"directory"}
	huma.Register(a, huma.Operation{
		OperationID: "create-group", Method: http.MethodPost, Path: "/v1/groups", Tags: tags,
		Summary: "Create a group", DefaultStatus: http.StatusCreated,
	}, func(ctx context.Context, in *struct{ Body GroupInput }) (*groupBody, error) {
		g := &herald.Group{ID: uuid.Must(uuid.NewV7()).String(), Name: in.Body.Name, Description: in.Body.Description}
		if !herald.ValidName(g.Name) {
			return nil, invalid("body.name", "name must match "+herald.NamePattern, g.Name)
		}
		if err := s.Store.CreateGroup(ctx, g); err != nil {
			return nil, s.problem(ctx, err)
		}
		return &groupBody{Location: "/v1/groups/" + g.ID, Body: groupOutput(g)}, nil
	})
	huma.Register(a, huma.Operation{
		OperationID: "list-groups", Method: http.MethodGet, Path: "/v1/groups", Tags: tags,
		Summary: "List groups", Description: "Groups ordered by name, a page at a time.",
	}, func(ctx context.Context, in *pageQuery) (*groupList, error) {
		after, err := nameCursor(in.Cursor)
		if err != nil {
			return nil, err
		}
		gs, err := s.Store.ListGroups(ctx, after, in.Limit+1)
		if err != nil {
			return nil, s.problem(ctx, err)
		}
		out := &groupList{}
		out.Body.Groups = []GroupOutput{}
		for i, g := range gs {
			if i == in.Limit {
				out.Body.NextCursor = encodeCursor(gs[i-1].Name)
				break
			}
			out.Body.Groups = append(out.Body.Groups, groupOutput(g))
		}
		return out, nil
	})
	huma.Register(a, huma.Operation{
		OperationID: "get-group", Method: http.MethodGet, Path: "/v1/groups/{id}", Tags: tags,
		Summary: "Get a group with its members",
	}, func(ctx context.Context, in *idPath) (*groupBody, error) {
		g, err := s.Store.Group(ctx, in.ID)
		if err != nil {
			return nil, s.problem(ctx, err)
		}
		ms, err := s.Store.Members(ctx, g.ID)
		if err != nil {
			return nil, s.problem(ctx, err)
		}
		out := groupOutput(g)
		out.Members = []Member{}
		for _, m := range ms {
			out.Members = append(out.Members, Member{ID: m.ID, Name: m.Name})
		}
		return &groupBody{Body: out}, nil
	})
	huma.Register(a, huma.Operation{
		OperationID: "delete-group", Method: http.MethodDelete, Path: "/v1/groups/{id}", Tags: tags,
		Summary: "Delete a group", DefaultStatus: http.StatusNoContent,
	}, func(ctx context.Context, in *idPath) (*struct{}, error) {
		if err := s.Store.DeleteGroup(ctx, in.ID); err != nil {
			return nil, s.problem(ctx, err)
		}
		return nil, nil
	})
	huma.Register(a, huma.Operation{
		OperationID: "subscribe", Method: http.MethodPut, Path: "/v1/groups/{id}/members/{userId}", Tags: tags,
		Summary: "Subscribe a user to a group", Description: "Idempotent: subscribing a member again changes nothing.",
		DefaultStatus: http.StatusNoContent,
	}, func(ctx context.Context, in *memberPath) (*struct{}, error) {
		if err := s.Store.AddMember(ctx, in.ID, in.UserID); err != nil {
			return nil, s.problem(ctx, err)
		}
		return nil, nil
	})
	huma.Register(a, huma.Operation{
		OperationID: "unsubscribe", Method: http.MethodDelete, Path: "/v1/groups/{id}/members/{userId}", Tags: tags,
		Summary: "Unsubscribe a user from a group", DefaultStatus: http.StatusNoContent,
	}, func(ctx context.Context, in *memberPath) (*struct{}, error) {
		if err := s.Store.RemoveMember(ctx, in.ID, in.UserID); err != nil {
			return nil, s.problem(ctx, err)
		}
		return nil, nil
	})
}
