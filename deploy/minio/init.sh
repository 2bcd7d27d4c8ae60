#!/bin/sh
# minio-init (deploy/docker-compose.yml): the bucket, one user per service with its policy
# (minio/{ingest,transcoder,edge}-policy.json), and the object every /readyz HEADs. Idempotent:
# run again on every `docker compose up`.
set -eu
mc alias set local http://minio:9000 "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD"
mc mb --ignore-existing local/ringcast
# Found by HEAD with GetObject alone (without ListBucket a missing key would answer 403).
echo ok | mc pipe local/ringcast/readyz/probe
for svc in ingest transcoder edge; do
  case $svc in
    ingest) secret=$INGEST_S3_SECRET ;;
    transcoder) secret=$TRANSCODER_S3_SECRET ;;
    edge) secret=$EDGE_S3_SECRET ;;
  esac
  mc admin user add local "ringcast-$svc" "$secret"
  mc admin policy create local "ringcast-$svc" "/init/$svc-policy.json"
  mc admin policy attach local "ringcast-$svc" --user "ringcast-$svc" || true
done
echo "minio-init: bucket ringcast and users ringcast-{ingest,transcoder,edge} ready"
