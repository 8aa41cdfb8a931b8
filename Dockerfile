# syntax=docker/dockerfile:1.7
# The operator image: one static `datamigrate` binary on distroless, non-root, meant to run with a
# read-only root filesystem. Build from the repository root:
#   docker build -t ghcr.io/datamigrate-ai/datamigrate-operator:0.1.0 .
# The binary is linked against musl so the image needs no libc (distroless/static).

ARG RUST_VERSION=1.95.0

FROM rust:${RUST_VERSION}-slim-bookworm AS build
ARG TARGETARCH=amd64
# ring builds C code for its target: musl-gcc comes from musl-tools. The version pin follows
# Debian 12; bump it when apt reports it gone.
RUN apt-get update \
    && apt-get install -y --no-install-recommends musl-tools=1.2.3-1 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY crds ./crds
# The cache mounts keep the registry and target folders between builds without putting them in
# a layer; the binary is copied out of the cached target folder.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    case "$TARGETARCH" in \
      amd64) triple=x86_64-unknown-linux-musl ;; \
      arm64) triple=aarch64-unknown-linux-musl ;; \
      *) echo "unsupported TARGETARCH $TARGETARCH" >&2; exit 1 ;; \
    esac \
    && rustup target add "$triple" \
    && cargo build --release --locked --bin datamigrate --target "$triple" \
    && install -D -m 0755 "target/$triple/release/datamigrate" /out/datamigrate

# nonroot: uid/gid 65532, no shell, no package manager.
FROM gcr.io/distroless/static-debian12:nonroot
LABEL org.opencontainers.image.title="datamigrate-operator" \
      org.opencontainers.image.description="DataMigrate Kubernetes operator" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/datamigrate /usr/local/bin/datamigrate
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/datamigrate"]
CMD ["controller"]
