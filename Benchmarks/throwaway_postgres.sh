# Sourced by the PostgreSQL benchmarks: starts a throwaway PostgreSQL 15 cluster on a free loopback port (fsync off,
# as the tests run it; synchronous_commit on), sets `url` to its superuser's URL, and stops and removes the cluster
# when the script exits. Installs postgresql-15 with apt when it is missing.
bin=/usr/lib/postgresql/15/bin
if [[ ! -x $bin/initdb ]]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-15
fi
dir=$(mktemp -d /tmp/sluice-bench-pg-XXXXXX)
as_server() { if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
password=bench-secret
echo "$password" > "$dir/password"
[[ $(id -u) -eq 0 ]] && chown -R postgres:postgres "$dir"
as_server "$bin/initdb" -D "$dir/data" -U postgres --pwfile="$dir/password" --auth-host=scram-sha-256 \
    --auth-local=trust -E UTF8 --locale=C.UTF-8 --no-sync >/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >> "$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
fsync = off
full_page_writes = off
CONF
as_server "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w start >/dev/null
trap 'as_server "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null; rm -rf "$dir"' EXIT
url="postgres://postgres:$password@127.0.0.1:$port/postgres"
