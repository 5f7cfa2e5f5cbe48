# Multi-stage build: compile with the Rust toolchain, run on a small Debian base as non-root.
# Dependencies are built in a layer of their own (from the manifests and empty sources), so a
# change to callverify's code rebuilds callverify only. Checked with hadolint in CI
# (scripts/lint-docker.sh).
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates/simulator/Cargo.toml ./crates/simulator/
# Empty targets for every one the manifests declare: cargo reads them before building anything.
RUN mkdir -p src benches examples crates/simulator/src \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs crates/simulator/src/lib.rs \
 && echo 'fn main() {}' > benches/hot_path.rs \
 && cargo build --release --locked --bin callverify \
 && rm -rf src benches examples crates/simulator/src
COPY src ./src
COPY benches ./benches
# The workspace's other member: the carrier simulator the server runs in simulator mode.
COPY crates ./crates
COPY twiml ./twiml
COPY config ./config
# The sources are newer than the empty layer's build: cargo rebuilds the two crates only.
RUN touch src/main.rs src/lib.rs crates/simulator/src/lib.rs \
 && cargo build --release --locked --bin callverify

FROM debian:bookworm-slim
# Pinned (Debian bookworm's current versions; a point release replaces them: bump with
# `apt-cache policy curl ca-certificates`, or pass --build-arg).
ARG CA_CERTIFICATES_VERSION=20250419~deb12u2
ARG CURL_VERSION=7.88.1-10+deb12u15
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      "ca-certificates=${CA_CERTIFICATES_VERSION}" "curl=${CURL_VERSION}" \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin callverify
COPY --from=build /src/target/release/callverify /usr/local/bin/callverify
COPY config/default.toml /etc/callverify/default.toml
USER 10001:10001
ENV CALLVERIFY__SERVER__LISTEN=0.0.0.0:8080
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["curl", "-fsS", "http://127.0.0.1:8080/readyz"]
ENTRYPOINT ["callverify"]
CMD ["serve"]
