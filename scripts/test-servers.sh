#!/usr/bin/env bash
# Installs and starts the real object-store servers MediaGit's tests run
# against, on 127.0.0.1, each with a bucket/container named "mediagit-test":
#   S3:         moto[server] (PyPI)
#   Azure Blob: azurite (npm)
#   GCS:        gcp-storage-emulator (PyPI)
#
#   scripts/test-servers.sh start   prints `export ...` lines to eval
#   scripts/test-servers.sh stop    stops what `start` started
#
# Everything lives in target/test-servers/ (installed once, reused).
set -euo pipefail
cd "$(dirname "$0")/.."
dir="$PWD/target/test-servers"
mkdir -p "$dir"

log() { echo "test-servers: $*" >&2; }

install() {
  if [ ! -x "$dir/venv/bin/moto_server" ] || [ ! -x "$dir/venv/bin/gcp-storage-emulator" ] \
    || ! "$dir/venv/bin/python" -c 'import azure.storage.blob' 2>/dev/null; then
    log "installing moto[server], gcp-storage-emulator, azure-storage-blob into $dir/venv"
    python3 -m venv "$dir/venv"
    "$dir/venv/bin/pip" install -q --disable-pip-version-check \
      "moto[server]>=5.1" "gcp-storage-emulator>=2024" "azure-storage-blob>=12" >&2
  fi
  if [ ! -x "$dir/node/node_modules/.bin/azurite-blob" ]; then
    log "installing azurite into $dir/node"
    npm install --silent --no-audit --no-fund --prefix "$dir/node" azurite@3 >&2
  fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_port() {
  local port=$1 name=$2
  for _ in $(seq 1 150); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  log "$name did not start on port $port; its log:"
  cat "$dir/$name.log" >&2 || true
  return 1
}

# Azurite's well-known development account (public, documented by Microsoft).
AZ_ACCOUNT=devstoreaccount1
AZ_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='

start() {
  install
  stop_servers
  local s3 az gcs
  s3=$(free_port); az=$(free_port); gcs=$(free_port)
  # moto with conditional writes made atomic (scripts/moto_atomic.py).
  setsid "$dir/venv/bin/python" "$(dirname "$0")/moto_atomic.py" 127.0.0.1 "$s3" >"$dir/moto.log" 2>&1 &
  echo $! >"$dir/moto.pid"
  rm -rf "$dir/azurite-data"
  setsid "$dir/node/node_modules/.bin/azurite-blob" --blobHost 127.0.0.1 --blobPort "$az" \
    --location "$dir/azurite-data" --silent --skipApiVersionCheck --loose >"$dir/azurite.log" 2>&1 &
  echo $! >"$dir/azurite.pid"
  setsid "$dir/venv/bin/gcp-storage-emulator" start --host 127.0.0.1 --port "$gcs" --in-memory \
    >"$dir/gcs.log" 2>&1 &
  echo $! >"$dir/gcs.pid"
  wait_port "$s3" moto
  wait_port "$az" azurite
  wait_port "$gcs" gcs
  S3=http://127.0.0.1:$s3 AZ=http://127.0.0.1:$az/$AZ_ACCOUNT GCS=http://127.0.0.1:$gcs \
    AZ_ACCOUNT=$AZ_ACCOUNT AZ_KEY=$AZ_KEY "$dir/venv/bin/python" - <<'EOF'
import os, time, boto3, requests
from azure.storage.blob import BlobServiceClient
for _ in range(50):
    try:
        s3 = boto3.client("s3", endpoint_url=os.environ["S3"], aws_access_key_id="test",
                          aws_secret_access_key="test", region_name="us-east-1")
        s3.create_bucket(Bucket="mediagit-test")
        # For backups under S3 Object Lock (versioned, no default
        # retention yet: `backup init --lock` sets it).
        s3.create_bucket(Bucket="mediagit-lock", ObjectLockEnabledForBucket=True)
        # Locked from the start (governance, 1 day): backups copied into
        # it from another bucket.
        s3.create_bucket(Bucket="mediagit-locked", ObjectLockEnabledForBucket=True)
        s3.put_object_lock_configuration(Bucket="mediagit-locked", ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}})
        break
    except Exception:
        time.sleep(0.2)
else:
    raise SystemExit("could not create the S3 bucket")
conn = ("DefaultEndpointsProtocol=http;AccountName={a};AccountKey={k};BlobEndpoint={e};"
        .format(a=os.environ["AZ_ACCOUNT"], k=os.environ["AZ_KEY"], e=os.environ["AZ"]))
BlobServiceClient.from_connection_string(conn).create_container("mediagit-test")
r = requests.post(os.environ["GCS"] + "/storage/v1/b?project=test", json={"name": "mediagit-test"})
r.raise_for_status()
EOF
  log "S3 (moto) :$s3, Azure (azurite) :$az, GCS (emulator) :$gcs"
  cat <<EOF
export MEDIAGIT_TEST_S3=http://127.0.0.1:$s3
export MEDIAGIT_TEST_S3_LOCK_BUCKET=mediagit-lock
export MEDIAGIT_TEST_S3_LOCKED_BUCKET=mediagit-locked
export MEDIAGIT_TEST_AZURE=http://127.0.0.1:$az/$AZ_ACCOUNT
export MEDIAGIT_TEST_GCS=http://127.0.0.1:$gcs
export AWS_ACCESS_KEY_ID=test
export AWS_SECRET_ACCESS_KEY=test
export AWS_REGION=us-east-1
export AZURE_STORAGE_ACCOUNT=$AZ_ACCOUNT
export AZURE_STORAGE_KEY='$AZ_KEY'
EOF
}

stop_servers() {
  for name in moto azurite gcs; do
    if [ -f "$dir/$name.pid" ]; then
      kill -- "-$(cat "$dir/$name.pid")" 2>/dev/null || kill "$(cat "$dir/$name.pid")" 2>/dev/null || true
      rm -f "$dir/$name.pid"
    fi
  done
}

case "${1:-}" in
  start) start ;;
  stop) stop_servers ;;
  install) install ;;
  *) echo "usage: $0 start|stop|install" >&2; exit 2 ;;
esac
