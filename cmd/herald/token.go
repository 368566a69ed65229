package main

import (
	"fmt"
	"net/url"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

type token struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Scope      string     `json:"scope"`
	UserID     string     `json:"userId"`
	Token      string     `json:"token"`
	CreatedAt  time.Time  `json:"createdAt"`
	LastUsedAt *time.Time `json:"lastUsedAt"`
	RevokedAt  *time.Time `json:"revokedAt"`
}

func tokenCmd(environ []string) *cobra.Command {
	c := newAPIClient()
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Create, list and revoke API tokens of a running Herald (needs an admin token)",
	}
	clientFlags(cmd, c, environ)
	var name, scope, user string
	create := &cobra.Command{
		Use: "create", Short: "Create a token; its secret is printed once", Args: cobra.NoArgs,
		Example: `  herald token create --scope ingest --name ci
  herald token create --scope read --name alice-phone --user <user id>`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			body := map[string]any{"name": name, "scope": scope}
			if user != "" {
				body["userId"] = user
			}
			var t token
			if err := c.do("POST", "/v1/tokens", body, &t); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s\n", t.Token)
			fmt.Fprintf(cmd.ErrOrStderr(), "token %s (%s, scope %s) created; the secret above is not shown again\n", t.ID, t.Name, t.Scope)
			return nil
		},
	}
	create.Flags().StringVar(&name, "name", "", "what the token is for (required)")
	create.Flags().StringVar(&scope, "scope", "", "ingest, read or admin (required)")
	create.Flags().StringVar(&user, "user", "", "bind the token to this user id")
	_ = create.MarkFlagRequired("name")
	_ = create.MarkFlagRequired("scope")
	list := &cobra.Command{
		Use: "list", Short: "List tokens (never their secrets)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out struct{ Tokens []token }
			if err := c.do("GET", "/v1/tokens", nil, &out); err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tNAME\tSCOPE\tUSER\tCREATED\tLAST USED\tREVOKED")
			for _, t := range out.Tokens {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Scope, dash(t.UserID),
					t.CreatedAt.Local().Format(time.DateTime), when(t.LastUsedAt), when(t.RevokedAt))
			}
			return w.Flush()
		},
	}
	revoke := &cobra.Command{
		Use: "revoke ID", Short: "Revoke a token", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.do("DELETE", "/v1/tokens/"+url.PathEscape(args[0]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "revoked", args[0])
			return nil
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}

func when(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Local().Format(time.DateTime)
}
