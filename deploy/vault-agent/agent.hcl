# Vault Agent for an application that consumes the rotor-managed secret
# clerk-secret-key: it logs in with AppRole (a role whose token carries
# only the policy `rotor policy vault --role app` prints) and renders the
# keys into clerk-secret-key.env, re-reading the KV secret every
# static_secret_render_interval. Run it from this directory:
#
#   VAULT_ADDR=https://vault.example.com:8200 vault agent -config=agent.hcl
#
# role-id and secret-id are files next to it (0600). See README.md,
# "Vault Agent and the Agent Injector", for the interval to choose: it
# must stay well below the grace period and below consumer_timeout when
# rotor verifies adoption.

auto_auth {
  method "approle" {
    config = {
      role_id_file_path                   = "role-id"
      secret_id_file_path                 = "secret-id"
      remove_secret_id_file_after_reading = false
    }
  }
}

template_config {
  # KV v2 secrets have no lease: the agent re-reads them on this interval
  # (its default is 5m).
  static_secret_render_interval = "30s"
  exit_on_retry_failure         = true
}

template {
  source      = "clerk-secret-key.env.ctmpl"
  destination = "clerk-secret-key.env"
  perms       = "0600"
  # Tell the app to re-read the file, as `rotor run --mode signal` does:
  # exec = { command = ["pkill", "-HUP", "-x", "my-app"] }
}
