# syntax=docker/dockerfile:1
# The image the Helm chart deploys: ghcr.io/infobip-billing-exporter/infobip-billing-exporter
#
#   docker build --build-arg INFOBIP_EXPORTER_REVISION=$(git rev-parse --short=12 HEAD) \
#     -t ghcr.io/infobip-billing-exporter/infobip-billing-exporter:dev .
#
# Build stage: the release binary (rustls with aws-lc-rs, so no OpenSSL at run time).
FROM docker.io/library/rust:1.95-bookworm AS build
# The context has no .git: build_info's revision label comes from here,
# e.g. --build-arg INFOBIP_EXPORTER_REVISION=$(git rev-parse --short=12 HEAD).
ARG INFOBIP_EXPORTER_REVISION=unknown
ENV INFOBIP_EXPORTER_REVISION=${INFOBIP_EXPORTER_REVISION}
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin infobip-billing-exporter \
 && install -D -m 0755 target/release/infobip-billing-exporter /out/infobip-billing-exporter \
 && install -d -m 0700 /out/state

# Run stage: distroless with glibc and libgcc (aws-lc-rs needs them), no shell, non-root.
FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="infobip-billing-exporter" \
      org.opencontainers.image.description="Prometheus and OpenTelemetry exporter for Infobip Billing Usage API costs" \
      org.opencontainers.image.source="https://github.com/infobip-billing-exporter/infobip-billing-exporter" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/infobip-billing-exporter /usr/local/bin/infobip-billing-exporter
COPY --from=build --chown=65532:65532 /out/state /var/lib/infobip-billing-exporter
USER 65532:65532
# 9477: /metrics and health (internal); 9478: the callback listener Infobip posts to.
EXPOSE 9477 9478
VOLUME ["/var/lib/infobip-billing-exporter"]
ENTRYPOINT ["/usr/local/bin/infobip-billing-exporter"]
CMD ["run", "--config", "/etc/infobip-billing-exporter/config.yaml"]
