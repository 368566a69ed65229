package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/heraldproject/herald/config"
	"github.com/heraldproject/herald/secrets"
	"github.com/heraldproject/herald/store"
)

func secretsCmd(environ []string, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secrets",
		Short: "Make encryption keys and re-encrypt stored secrets under the current key",
		Long: `Herald encrypts users' Slack tokens and webhook signing secrets in the
database, and the contacts it caches in Redis, with secrets.key
(HERALD_SECRETS_KEY). Keys listed in secrets.previousKeys
(HERALD_SECRETS_PREVIOUS_KEYS) only decrypt. See docs/SECURITY.md for the
rotation procedure.`,
	}
	cmd.AddCommand(keygenCmd(), rotateCmd(environ, stderr))
	return cmd
}

func keygenCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "keygen",
		Short: "Print a new random key for secrets.key (32 bytes, base64)",
		Example: `  herald secrets keygen
  HERALD_SECRETS_KEY=$(herald secrets keygen) herald serve`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			k, err := secrets.GenerateKey()
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), k)
			return nil
		},
	}
}

func rotateCmd(environ []string, stderr io.Writer) *cobra.Command {
	var configPath string
	var batch int
	cmd := &cobra.Command{
		Use:   "rotate",
		Short: "Re-encrypt every stored secret under secrets.key, reading old values with secrets.previousKeys",
		Long: `Re-encrypts every secret stored in the database (users' Slack tokens and webhook
signing secrets) under the current key, secrets.key, a batch of users at a
time. Values encrypted under a key in secrets.previousKeys, in an older format,
or stored before encryption was turned on are re-encrypted; values already
under the current key are left alone, so running it again is harmless.

It opens the same database as "herald serve" with the same configuration
(--config, --data-dir, HERALD_* variables) and is safe to run while Herald
runs: a user changed meanwhile is never overwritten. When it reports no
failures, the previous keys can be removed from secrets.previousKeys.`,
		Example: `  HERALD_SECRETS_KEY=<new key> HERALD_SECRETS_PREVIOUS_KEYS=<old key> herald secrets rotate --data-dir ./herald-data
  herald secrets rotate --config herald.yaml`,
		Args: cobra.NoArgs,
	}
	cmd.Flags().StringVar(&configPath, "config", "", "YAML config file (env HERALD_CONFIG)")
	cmd.Flags().String("data-dir", "./herald-data", "where the SQLite database lives (env HERALD_DATA_DIR)")
	cmd.Flags().IntVar(&batch, "batch-size", 500, "users re-encrypted per write transaction")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if configPath == "" {
			configPath = lookup(environ, "HERALD_CONFIG")
		}
		if batch < 1 {
			return fmt.Errorf("--batch-size must be at least 1, not %d", batch)
		}
		overrides := map[string]any{}
		if f := cmd.Flags().Lookup("data-dir"); f.Changed {
			overrides["dataDir"] = f.Value.String()
		}
		cfg, err := config.Load(configPath, environ, overrides)
		if err != nil {
			return err
		}
		key, _ := cfg.Secrets.KeyBytes()          // validated with the config
		prev, _ := cfg.Secrets.PreviousKeyBytes() // validated with the config
		if key == nil {
			return errors.New("secrets.key (HERALD_SECRETS_KEY) is not set: there is no key to re-encrypt under " +
				"(make one with herald secrets keygen)")
		}
		dsn := cfg.StoreDSN()
		ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		// Opening the store migrates it: check first that this is a Herald
		// database, so a wrong --data-dir or store.dsn is not given empty tables.
		switch ok, err := store.HasSchema(ctx, store.Options{Driver: cfg.Store.Driver, DSN: dsn}); {
		case err != nil:
			return err
		case !ok && cfg.Store.Driver == "postgres":
			return errors.New("no Herald tables in the PostgreSQL database store.dsn names (is HERALD_STORE_DSN right?)")
		case !ok:
			return fmt.Errorf("no Herald database at %s (is --data-dir right?)", dsn)
		}
		st, err := store.Open(ctx, store.Options{Driver: cfg.Store.Driver, DSN: dsn, Logger: newLogger(stderr, cfg.Log),
			SecretsKey: key, PreviousSecretsKeys: prev})
		if err != nil {
			return err
		}
		defer st.Close()
		kid := secrets.KeyID(key)
		out := cmd.OutOrStdout()
		fmt.Fprintf(stderr, "re-encrypting secrets under key %s (%d previous keys), %d users per batch\n", kid, len(prev), batch)
		stats, err := st.RotateSecrets(ctx, store.RotateOptions{BatchSize: batch, Progress: func(p store.RotateStats) {
			fmt.Fprintf(stderr, "  %d/%d users, %d secrets re-encrypted\n", p.Scanned, p.Users, p.Resealed)
		}})
		fmt.Fprintf(out, "re-encrypted %d secrets under key %s; %d already under it; %d could not be read; %d users examined\n",
			stats.Resealed, kid, stats.Current, stats.Failed, stats.Scanned)
		if err != nil {
			return err
		}
		if len(prev) > 0 {
			fmt.Fprintln(stderr, "every stored secret is under the current key: once every Herald process runs with it, "+
				"secrets.previousKeys can be emptied")
		}
		return nil
	}
	return cmd
}
