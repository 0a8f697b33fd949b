# syntax=docker/dockerfile:1
# cds-redis-operator: one binary, `run` by default; `simulator`, `crd` and `cds` in the same image.
# Build:  docker build -t cds-redis-operator:0.1.0 .
# The runtime image is distroless (glibc, CA certificates, no shell) and runs as uid 65532 with a
# read-only root filesystem (the chart sets readOnlyRootFilesystem; the binary writes no files).

FROM docker.io/library/rust:1.95-bookworm AS build
WORKDIR /src
# Manifests first, so the dependency layer is cached across source changes.
COPY Cargo.toml Cargo.lock rustfmt.toml ./
COPY src ./src
# Cargo refuses a manifest whose [[test]] and [[bench]] targets are missing, even to build the
# binary alone: the tests and benches are copied for that reason only (the binary embeds nothing
# from them).
COPY tests ./tests
COPY benches ./benches
COPY examples ./examples
RUN cargo build --release --locked --bin cds-redis-operator \
 && strip target/release/cds-redis-operator \
 && target/release/cds-redis-operator --version

FROM gcr.io/distroless/cc-debian12:nonroot
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="cds-redis-operator" \
      org.opencontainers.image.description="Kubernetes operator for Redis instances on CapitalOnline cloud (CDS)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/cds-redis-operator/cds-redis-operator" \
      org.opencontainers.image.vendor="cds-redis-operator"
COPY --from=build /src/target/release/cds-redis-operator /usr/local/bin/cds-redis-operator
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/cds-redis-operator"]
CMD ["run"]
