# Multi-stage build: compile with the Rust toolchain, run on a small Debian base as non-root.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
# Cargo.toml declares the hot_path bench: without its file cargo refuses the manifest.
COPY benches ./benches
# The workspace's other member: the carrier simulator the server runs in simulator mode.
COPY crates ./crates
COPY twiml ./twiml
COPY config ./config
RUN cargo build --release --locked --bin callverify

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin callverify
COPY --from=build /src/target/release/callverify /usr/local/bin/callverify
COPY config/default.toml /etc/callverify/default.toml
USER 10001:10001
ENV CALLVERIFY__SERVER__LISTEN=0.0.0.0:8080
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/readyz || exit 1
ENTRYPOINT ["callverify"]
CMD ["serve"]
