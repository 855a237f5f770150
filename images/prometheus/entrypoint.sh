#!/bin/sh
# Prometheus entrypoint. With SCRAPE_TARGETS="host:port,..." it writes a config that scrapes
# those targets (job SCRAPE_JOB, default demo-api) every SCRAPE_INTERVAL (default 1s);
# otherwise it uses /etc/prometheus/prometheus.yml. Extra arguments go to prometheus.
set -eu
config=/etc/prometheus/prometheus.yml
if [ -n "${SCRAPE_TARGETS:-}" ]; then
    config=/prometheus/prometheus.yml
    interval="${SCRAPE_INTERVAL:-1s}"
    targets="$(printf '%s' "$SCRAPE_TARGETS" | sed 's/[^,][^,]*/"&"/g')"
    cat >"$config" <<YAML
global:
  scrape_interval: $interval
  evaluation_interval: $interval
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ["localhost:9090"]
  - job_name: ${SCRAPE_JOB:-demo-api}
    static_configs:
      - targets: [$targets]
YAML
fi
exec prometheus --config.file="$config" --storage.tsdb.path=/prometheus \
    --web.listen-address=0.0.0.0:9090 --web.enable-lifecycle "$@"
