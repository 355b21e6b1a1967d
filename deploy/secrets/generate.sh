#!/bin/sh
# Writes the secrets deploy/compose.yaml reads, into this folder: random database passwords (hex, so they need
# no URL quoting) and the dashboard's basic-auth login. Existing files are kept, unless named with --rotate,
# which rewrites that file in place (running containers see the new content: Docker bind-mounts the file).
#   deploy/secrets/generate.sh [--rotate NAME] [ANALYST_NAME]
# What to run after a rotation: deploy/README.md, "Security". Needs openssl.
set -eu
rotate=""
if [ "${1:-}" = "--rotate" ]; then
    rotate="${2:?--rotate needs a name: postgres_admin_password, finsent_db_password, finsent_dashboard_db_password or dashboard_htpasswd}"
    shift 2
fi
cd "$(dirname "$0")"
umask 077
chmod 0700 .
for name in postgres_admin_password finsent_db_password finsent_dashboard_db_password; do
    if [ ! -s "$name" ] || [ "$rotate" = "$name" ]; then
        openssl rand -hex 24 >"$name"
        echo "wrote $name"
    fi
done
if [ ! -s dashboard_htpasswd ] || [ "$rotate" = dashboard_htpasswd ]; then
    analyst="${1:-analyst}"
    password="$(openssl rand -base64 18)"
    # SHA-512 crypt, read from stdin: the password is never an argument of any process
    hash="$(printf '%s' "$password" | openssl passwd -6 -stdin)"
    printf '%s:%s\n' "$analyst" "$hash" >dashboard_htpasswd
    echo "dashboard login (shown once, only its hash is kept): $analyst / $password"
fi
# The containers run as other users than you: the files are readable, the folder (0700) keeps others out.
chmod 0644 postgres_admin_password finsent_db_password finsent_dashboard_db_password dashboard_htpasswd
