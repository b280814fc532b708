#!/bin/sh
# Registers ragline's custom search attributes (workflows/search-attributes.ts) on the compose Temporal server.
# The dev server gets them from `--search-attribute` flags; a full server needs the operator API, once per
# namespace. Idempotent: attributes already present are left alone, so `docker compose up` can rerun it.
set -eu

namespace="${TEMPORAL_NAMESPACE:-default}"

until temporal operator cluster health >/dev/null 2>&1; do
  echo "waiting for Temporal at ${TEMPORAL_ADDRESS}..."
  sleep 2
done
until temporal operator namespace describe --namespace "$namespace" >/dev/null 2>&1; do
  echo "waiting for namespace ${namespace}..."
  sleep 2
done

existing="$(temporal operator search-attribute list --namespace "$namespace")"
for pair in RaglineTenant:Keyword RaglineCacheHit:Bool RaglineQualityTier:Keyword; do
  name="${pair%%:*}"
  type="${pair#*:}"
  if printf '%s\n' "$existing" | grep -qw "$name"; then
    echo "search attribute ${name} already exists"
  else
    temporal operator search-attribute create --namespace "$namespace" --name "$name" --type "$type"
    echo "created search attribute ${name} (${type})"
  fi
done
