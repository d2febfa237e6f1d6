# Build: docker build -t escalation-gate .
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
# Cargo.toml names the benches as targets: without their files the manifest does not parse.
COPY benches ./benches
# The sandbox's sample Help Center includes the demo articles at compile time.
COPY connectors ./connectors
RUN cargo build --release --locked --bin escalation-gate

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home /app gate
WORKDIR /app
COPY --from=build /src/target/release/escalation-gate /usr/local/bin/escalation-gate
COPY connectors ./connectors
# The embedded knowledge bases' indexes (EG_INDEX_DIR); connectors/ stays read-only.
RUN mkdir -p /app/index && chown gate /app/index
USER gate
EXPOSE 8080 9091
ENV EG_LISTEN=0.0.0.0:8080 EG_CONNECTORS=/app/connectors EG_INDEX_DIR=/app/index
ENTRYPOINT ["escalation-gate"]
CMD ["serve"]
