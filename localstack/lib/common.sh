# shellcheck shell=bash
# shellcheck disable=SC2034  # the variables are used by the scripts that source this file
# Shared settings and helpers for localstack/up, down, status and env. Sourced, not run.

LS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN_DIR="$LS_DIR/.run"          # everything at run time: pid files, logs, emulator data
PID_DIR="$RUN_DIR/pids"
LOG_DIR="$RUN_DIR/logs"
DATA_DIR="$RUN_DIR/data"
VENV="$LS_DIR/.venv"            # LocalStack + the fake-gcs-server wheel
NODE_DIR="$LS_DIR/node_modules" # Azurite

HOST=127.0.0.1
LOCALSTACK_S3_PORT="${LOCALSTACK_S3_PORT:-4566}"
AZURITE_BLOB_PORT="${AZURITE_BLOB_PORT:-10000}"
FAKE_GCS_PORT="${FAKE_GCS_PORT:-9023}"
TEST_BUCKET="${SESSIONSTORE_TEST_BUCKET:-sessionstore-test}"
UP_TIMEOUT="${LOCALSTACK_UP_TIMEOUT:-120}"
DOWN_TIMEOUT="${LOCALSTACK_DOWN_TIMEOUT:-20}"

# Azurite's well-known development account (published in Azurite's documentation).
AZURITE_ACCOUNT=devstoreaccount1
AZURITE_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='

EMULATORS=(localstack azurite fake-gcs)

QUIET=0
say() { [[ $QUIET == 1 ]] || printf '%s\n' "$*" >&2; }
die() { printf 'localstack: error: %s\n' "$*" >&2; exit 1; }

port_of() {
  case $1 in
    localstack) echo "$LOCALSTACK_S3_PORT" ;;
    azurite) echo "$AZURITE_BLOB_PORT" ;;
    fake-gcs) echo "$FAKE_GCS_PORT" ;;
  esac
}

# A string that the emulator's command line contains: a pid file is trusted only if
# the process behind the pid still matches (guards against pid reuse).
marker_of() {
  case $1 in
    localstack) echo "localstack.runtime.main" ;;
    azurite) echo "azurite-blob" ;;
    fake-gcs) echo "fake-gcs-server" ;;
  esac
}

pid_file() { echo "$PID_DIR/$1.pid"; }
log_file() { echo "$LOG_DIR/$1.log"; }

# Is the process alive (a zombie is not)?
pid_alive() {
  local stat
  stat="$(ps -o stat= -p "$1" 2>/dev/null)" || return 1
  [[ -n $stat && $stat != Z* ]]
}

# Is any live (non-zombie) process left in process group $1?
group_alive() {
  ps -e -o pgid= -o stat= 2>/dev/null | awk -v g="$1" '$1 == g && $2 !~ /^Z/ { found = 1 } END { exit !found }'
}

# Prints the pid of emulator $1 if `up` started it and it is still running.
running_pid() {
  local file pid args
  file="$(pid_file "$1")"
  [[ -f $file ]] || return 1
  pid="$(tr -dc '0-9' <"$file")"
  [[ -n $pid ]] || return 1
  pid_alive "$pid" || return 1
  args="$(ps -o args= -p "$pid" 2>/dev/null)" || return 1
  [[ $args == *"$(marker_of "$1")"* ]] || return 1
  echo "$pid"
}

# Does something accept TCP connections on $HOST:$1?
port_busy() {
  (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null
}

# Does emulator $1 answer its health check?
healthy() {
  local port
  port="$(port_of "$1")"
  case $1 in
    localstack)
      curl -fsS --max-time 3 "http://$HOST:$port/_localstack/health" 2>/dev/null |
        grep -Eq '"s3": *"(available|running)"'
      ;;
    azurite)
      # Any HTTP answer from Azurite will do (an unauthenticated request gets a 4xx).
      curl -sS --max-time 3 -o /dev/null -D - "http://$HOST:$port/$AZURITE_ACCOUNT?comp=list" 2>/dev/null |
        grep -iq '^server: *azurite'
      ;;
    fake-gcs)
      curl -fsS --max-time 3 "http://$HOST:$port/storage/v1/b" 2>/dev/null | grep -q 'storage#buckets'
      ;;
  esac
}

azure_connection_string() {
  printf 'DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;BlobEndpoint=http://%s:%s/%s;' \
    "$AZURITE_ACCOUNT" "$AZURITE_KEY" "$HOST" "$AZURITE_BLOB_PORT" "$AZURITE_ACCOUNT"
}

# The variables that point the AWS, Google Cloud and Azure SDKs at the emulators, as
# `export` lines for eval. Values never contain a single quote.
print_env() {
  local name value
  while IFS='=' read -r name value; do
    printf "export %s='%s'\n" "$name" "$value"
  done <<EOF
AWS_ENDPOINT_URL=http://$HOST:$LOCALSTACK_S3_PORT
AWS_ACCESS_KEY_ID=test
AWS_SECRET_ACCESS_KEY=test
AWS_DEFAULT_REGION=us-east-1
STORAGE_EMULATOR_HOST=http://$HOST:$FAKE_GCS_PORT
AZURE_STORAGE_CONNECTION_STRING=$(azure_connection_string)
SESSIONSTORE_TEST_BUCKET=$TEST_BUCKET
EOF
}

# Serialise up/down so that two of them never start or stop the same emulator at once.
# The lock is on fd 9; started emulators must not inherit it (see start_detached).
take_lock() {
  mkdir -p "$RUN_DIR"
  exec 9>"$RUN_DIR/lock"
  if command -v flock >/dev/null 2>&1; then
    if ! flock -n 9; then
      say "waiting for another localstack/up or localstack/down to finish ..."
      flock 9
    fi
  fi
}
