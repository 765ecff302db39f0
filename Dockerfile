# Multi-stage build of the switchboard binary.
#   docker build -t switchboard .          (or: docker-compose build)

FROM rust:1-bookworm AS builder
WORKDIR /src
# The whole workspace: migrations are embedded into the binary at compile time.
COPY . .
RUN cargo build --release --locked -p switchboard \
    && install -m 0755 target/release/switchboard /usr/local/bin/switchboard

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 switchboard \
    && useradd --system --uid 10001 --gid switchboard --home-dir /data --shell /usr/sbin/nologin switchboard \
    && mkdir -p /data \
    && chown switchboard:switchboard /data
COPY --from=builder /usr/local/bin/switchboard /usr/local/bin/switchboard

# Defaults for a container: listen on all interfaces, embedded SQLite in the
# /data volume. docker-compose.yml points the database at Postgres instead.
ENV SWITCHBOARD_DATABASE_URL=sqlite:///data/switchboard.db \
    SWITCHBOARD_HTTP_ADDR=0.0.0.0:8080 \
    SWITCHBOARD_SIP_ADDR=0.0.0.0:5060 \
    SWITCHBOARD_RTP_PORTS=20000-20999 \
    RUST_LOG=info

USER switchboard
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080/tcp 5060/udp 5060/tcp 20000-20999/udp
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=6s --start-period=20s --retries=3 CMD ["switchboard", "healthcheck"]
ENTRYPOINT ["switchboard"]
CMD ["serve"]
