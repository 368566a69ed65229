package api

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/uuid"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/notify"
	"github.com/heraldproject/herald/secrets"
)

// SlackInput is how a user is reached on Slack: an incoming-webhook URL, or a
// channel posted to with chat.postMessage (with the user's token, else the
// server's bot token).
type SlackInput struct {
	WebhookURL string `json:"webhookUrl,omitempty" maxLength:"2048" doc:"Slack incoming-webhook URL"`
	Channel    string `json:"channel,omitempty" maxLength:"80" doc:"channel or member id for chat.postMessage"`
	Token      string `json:"token,omitempty" writeOnly:"true" doc:"bot token for chat.postMessage, at most 256 characters; never returned"`
}

// SlackOutput is a user's Slack contact as returned by the API; the token is
// never returned.
type SlackOutput struct {
	WebhookURL string `json:"webhookUrl,omitempty"`
	Channel    string `json:"channel,omitempty"`
	HasToken   bool   `json:"hasToken"`
}

// UserInput creates a user.
type UserInput struct {
	Name       string `json:"name" pattern:"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$" doc:"unique; addressed as @name"`
	Email      string `json:"email,omitempty" format:"email" maxLength:"254"`
	Phone      string `json:"phone,omitempty" pattern:"^\\+[1-9][0-9]{6,14}$" doc:"E.164, e.g. +15551234567"`
	WebhookURL string `json:"webhookUrl,omitempty" maxLength:"2048" doc:"http(s) URL that receives a JSON POST per delivery"`
	// WebhookSecret has no schema length bounds: huma would echo a value
	// out of bounds in its 422; checkUser checks it without echoing.
	WebhookSecret string      `json:"webhookSecret,omitempty" writeOnly:"true" doc:"signs this user's webhook requests (Herald-Signature) instead of the server's webhook.signingSecret; 16 to 256 characters; never returned"`
	Slack         *SlackInput `json:"slack,omitempty"`
	Department    string      `json:"department,omitempty" maxLength:"128"`
}

// UserPatch changes a user: fields present are set (an empty string clears
// one), fields absent are left alone. slack, when present, replaces the whole
// Slack contact.
type UserPatch struct {
	Name          *string     `json:"name,omitempty" pattern:"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"`
	Email         *string     `json:"email,omitempty" maxLength:"254"`
	Phone         *string     `json:"phone,omitempty" maxLength:"16"`
	WebhookURL    *string     `json:"webhookUrl,omitempty" maxLength:"2048"`
	WebhookSecret *string     `json:"webhookSecret,omitempty" writeOnly:"true" doc:"16 to 256 characters; \"\" removes it (the server's webhook.signingSecret signs again); never returned"`
	Slack         *SlackInput `json:"slack,omitempty"`
	Department    *string     `json:"department,omitempty" maxLength:"128"`
}

// UserOutput is a user as returned by the API; secrets (webhook secret,
// Slack token) are never returned, only whether they are set.
type UserOutput struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Email      string `json:"email,omitempty"`
	Phone      string `json:"phone,omitempty"`
	WebhookURL string `json:"webhookUrl,omitempty" doc:"scheme and host only; the path may hold a secret"`
	// HasWebhookSecret tells whether the user's webhook requests are signed
	// with their own secret.
	HasWebhookSecret bool         `json:"hasWebhookSecret" doc:"whether the user has their own webhook signing secret (the secret is never returned)"`
	Slack            *SlackOutput `json:"slack,omitempty"`
	Department       string       `json:"department,omitempty"`
	CreatedAt        time.Time    `json:"createdAt"`
	UpdatedAt        time.Time    `json:"updatedAt"`
}

func userOutput(u *herald.User) UserOutput {
	o := UserOutput{ID: u.ID, Name: u.Name, Email: u.Email, Phone: u.Phone, WebhookURL: redactURL(u.WebhookURL),
		HasWebhookSecret: u.WebhookSecret != "", Department: u.Department, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt}
	if !u.Slack.Empty() {
		o.Slack = &SlackOutput{WebhookURL: redactURL(u.Slack.WebhookURL), Channel: u.Slack.Channel, HasToken: u.Slack.Token != ""}
	}
	return o
}

type userBody struct {
	Location string `header:"Location"`
	Body     UserOutput
}

type idPath struct {
	ID string `path:"id" maxLength:"64"`
}

type pageQuery struct {
	Limit  int    `query:"limit" minimum:"1" maximum:"500" default:"50" doc:"page size"`
	Cursor string `query:"cursor" maxLength:"512" doc:"nextCursor from the previous page"`
}

type userList struct {
	Body struct {
		Users      []UserOutput `json:"users"`
		NextCursor string       `json:"nextCursor,omitempty" doc:"pass as cursor for the next page; absent on the last page"`
	}
}

// Bounds of a user's webhook signing secret, in characters.
const (
	minWebhookSecret = 16
	maxWebhookSecret = 256
	maxSlackToken    = 256
)

// checkUser validates what the JSON schema cannot: URL schemes, the shape
// of a Slack contact, and secrets (whose values are never echoed back).
func checkUser(u *herald.User) error {
	if !herald.ValidName(u.Name) {
		return invalid("body.name", "name must match "+herald.NamePattern, u.Name)
	}
	if u.WebhookURL != "" {
		if err := checkURL(u.WebhookURL); err != nil {
			return invalid("body.webhookUrl", err.Error(), u.WebhookURL)
		}
	}
	if u.Slack.WebhookURL != "" {
		if err := checkURL(u.Slack.WebhookURL); err != nil {
			return invalid("body.slack.webhookUrl", err.Error(), "<redacted>")
		}
		if u.Slack.Channel != "" {
			return invalid("body.slack", "give either webhookUrl or channel, not both", nil)
		}
	}
	if u.Slack.Token != "" && u.Slack.Channel == "" {
		return invalid("body.slack.channel", "a token needs a channel to post to", nil)
	}
	if n := utf8.RuneCountInString(u.Slack.Token); n > maxSlackToken {
		return invalid("body.slack.token", fmt.Sprintf("must be at most %d characters, not %d", maxSlackToken, n), nil)
	}
	if secrets.IsSealed(u.Slack.Token) {
		return invalid("body.slack.token", `must not start with "enc:" (Herald's prefix for encrypted values)`, nil)
	}
	if err := checkWebhookSecret(u); err != nil {
		return err
	}
	if u.Phone != "" && !phoneRE.MatchString(u.Phone) {
		return invalid("body.phone", "phone must be E.164, e.g. +15551234567", u.Phone)
	}
	if u.Email != "" && !emailRE.MatchString(u.Email) {
		return invalid("body.email", "not an email address", u.Email)
	}
	return nil
}

// checkWebhookSecret checks a user's own webhook signing secret: its length,
// no control characters, and a webhook URL for it to sign requests to.
func checkWebhookSecret(u *herald.User) error {
	const at = "body.webhookSecret"
	sec := u.WebhookSecret
	if sec == "" {
		return nil
	}
	if n := utf8.RuneCountInString(sec); n < minWebhookSecret || n > maxWebhookSecret {
		return invalid(at, fmt.Sprintf("must be %d to %d characters, not %d (e.g. openssl rand -hex 32)",
			minWebhookSecret, maxWebhookSecret, n), nil)
	}
	if strings.ContainsFunc(sec, unicode.IsControl) {
		return invalid(at, "must not contain control characters (newlines, tabs, ...)", nil)
	}
	if secrets.IsSealed(sec) {
		return invalid(at, `must not start with "enc:" (Herald's prefix for encrypted values)`, nil)
	}
	if u.WebhookURL == "" {
		return invalid(at, `a webhookSecret signs requests to webhookUrl, and there is none: set webhookUrl too, or remove the secret with "webhookSecret": ""`, nil)
	}
	return nil
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return herald.Errorf(herald.EINVALID, "not a URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return herald.Errorf(herald.EINVALID, "URL must be http or https")
	}
	if u.Host == "" {
		return herald.Errorf(herald.EINVALID, "URL has no host")
	}
	return nil
}

// redactURL shows where a webhook goes but not its path and query, which
// often hold a secret (Slack's do).
func redactURL(u string) string {
	if u == "" {
		return ""
	}
	return notify.RedactURL(u)
}

func slackContact(in *SlackInput) herald.SlackContact {
	if in == nil {
		return herald.SlackContact{}
	}
	return herald.SlackContact{WebhookURL: in.WebhookURL, Channel: in.Channel, Token: in.Token}
}

func (s *Server) registerUsers(a huma.API) {
	tags := []string{"directory"}
	huma.Register(a, huma.Operation{
		OperationID: "create-user", Method: http.MethodPost, Path: "/v1/users", Tags: tags,
		Summary: "Create a user", DefaultStatus: http.StatusCreated,
	}, func(ctx context.Context, in *struct{ Body UserInput }) (*userBody, error) {
		b := in.Body
		u := &herald.User{ID: uuid.Must(uuid.NewV7()).String(), Name: b.Name, Email: b.Email, Phone: b.Phone,
			WebhookURL: b.WebhookURL, WebhookSecret: b.WebhookSecret, Slack: slackContact(b.Slack), Department: b.Department}
		if err := checkUser(u); err != nil {
			return nil, err
		}
		if err := s.Store.CreateUser(ctx, u); err != nil {
			return nil, s.problem(ctx, err)
		}
		return &userBody{Location: "/v1/users/" + u.ID, Body: userOutput(u)}, nil
	})
	huma.Register(a, huma.Operation{
		OperationID: "list-users", Method: http.MethodGet, Path: "/v1/users", Tags: tags,
		Summary: "List users", Description: "Users ordered by name, a page at a time.",
	}, func(ctx context.Context, in *pageQuery) (*userList, error) {
		after, err := nameCursor(in.Cursor)
		if err != nil {
			return nil, err
		}
		users, err := s.Store.ListUsers(ctx, after, in.Limit+1)
		if err != nil {
			return nil, s.problem(ctx, err)
		}
		out := &userList{}
		out.Body.Users = []UserOutput{}
		for i, u := range users {
			if i == in.Limit {
				out.Body.NextCursor = encodeCursor(users[i-1].Name)
				break
			}
			out.Body.Users = append(out.Body.Users, userOutput(u))
		}
		return out, nil
	})
	huma.Register(a, huma.Operation{
		OperationID: "get-user", Method: http.MethodGet, Path: "/v1/users/{id}", Tags: tags, Summary: "Get a user",
	}, func(ctx context.Context, in *idPath) (*userBody, error) {
		u, err := s.Store.User(ctx, in.ID)
		if err != nil {
			return nil, s.problem(ctx, err)
		}
		return &userBody{Body: userOutput(u)}, nil
	})
	huma.Register(a, huma.Operation{
		OperationID: "update-user", Method: http.MethodPatch, Path: "/v1/users/{id}", Tags: tags,
		Summary: "Change a user", Description: "Fields present are set (an empty string clears one); absent fields are kept.",
	}, func(ctx context.Context, in *struct {
		ID   string `path:"id" maxLength:"64"`
		Body UserPatch
	}) (*userBody, error) {
		p := in.Body
		u, err := s.Store.UpdateUser(ctx, in.ID, func(u *herald.User) error {
			set(&u.Name, p.Name)
			set(&u.Email, p.Email)
			set(&u.Phone, p.Phone)
			set(&u.WebhookURL, p.WebhookURL)
			set(&u.WebhookSecret, p.WebhookSecret)
			set(&u.Department, p.Department)
			if p.Slack != nil {
				u.Slack = slackContact(p.Slack)
			}
			return checkUser(u)
		})
		if err != nil {
			return nil, s.problem(ctx, err)
		}
		s.directoryChanged(ctx)
		return &userBody{Body: userOutput(u)}, nil
	})
	huma.Register(a, huma.Operation{
		OperationID: "delete-user", Method: http.MethodDelete, Path: "/v1/users/{id}", Tags: tags,
		Summary: "Delete a user", Description: "Removes the user and their group memberships; past deliveries are kept.",
		DefaultStatus: http.StatusNoContent,
	}, func(ctx context.Context, in *idPath) (*struct{}, error) {
		if err := s.Store.DeleteUser(ctx, in.ID); err != nil {
			return nil, s.problem(ctx, err)
		}
		s.directoryChanged(ctx)
		return nil, nil
	})
}

func set(dst *string, v *string) {
	if v != nil {
		*dst = *v
	}
}
